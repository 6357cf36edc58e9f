//! AMF0, the value encoding of RTMP command messages (`connect`, `publish`, …) and data messages
//! (`@setDataFrame`/`onMetaData`).
//!
//! This module owns decoding and encoding of whole AMF0 value sequences; it knows nothing about
//! what the values mean (that is [`crate::rtmp`]). It covers what publishers actually send:
//! numbers, booleans, strings, objects, ECMA and strict arrays, null/undefined and dates.
//! References, typed objects, XML and the switch to AMF3 are refused as
//! [`Amf0Error::Unsupported`] rather than half-decoded.
//!
//! The input is untrusted: nesting depth and the total number of values are bounded, and nothing
//! is allocated from a declared count before the bytes that would back it are present, so a
//! ten-byte message cannot claim a four-billion-element array.

use thiserror::Error;

/// Deepest nesting of objects/arrays accepted; real metadata nests two or three levels.
pub const MAX_DEPTH: usize = 16;
/// Most values (including nested ones and object properties) accepted in one [`decode_all`].
pub const MAX_ELEMENTS: usize = 65_536;

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0A;
const DATE: u8 = 0x0B;
const LONG_STRING: u8 = 0x0C;

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// IEEE 754 double; AMF0 has no integer type.
    Number(f64),
    /// `true` / `false`.
    Boolean(bool),
    /// String of at most 65535 bytes on the wire (longer ones are encoded as a long string).
    String(String),
    /// Anonymous object: ordered key/value pairs.
    Object(Vec<(String, Value)>),
    /// `null`.
    Null,
    /// `undefined`.
    Undefined,
    /// Associative array; `onMetaData` usually arrives as one.
    EcmaArray(Vec<(String, Value)>),
    /// Dense array.
    StrictArray(Vec<Value>),
    /// Milliseconds since the Unix epoch (the time-zone field is ignored, as the spec asks).
    Date(f64),
    /// String with a 32-bit length.
    LongString(String),
}

impl Value {
    /// The text of a `String` or `LongString`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::LongString(s) => Some(s),
            _ => None,
        }
    }

    /// The number of a `Number`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The flag of a `Boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The properties of an `Object` or `EcmaArray`.
    pub fn properties(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(props) | Value::EcmaArray(props) => Some(props),
            _ => None,
        }
    }

    /// The first property named `key` of an `Object` or `EcmaArray`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// Why AMF0 bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Amf0Error {
    /// The bytes end in the middle of a value (or a declared length/count exceeds them).
    #[error("AMF0 data ends in the middle of a value")]
    Truncated,
    /// A type marker this decoder does not handle (reference, typed object, XML, AMF3, …).
    #[error("unsupported AMF0 type marker {0:#04x}")]
    Unsupported(u8),
    /// An object-end marker where a value was expected.
    #[error("AMF0 object end marker outside an object")]
    UnexpectedObjectEnd,
    /// Objects/arrays nested deeper than [`MAX_DEPTH`].
    #[error("AMF0 values nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// More than [`MAX_ELEMENTS`] values in one message.
    #[error("more than {MAX_ELEMENTS} AMF0 values in one message")]
    TooManyElements,
}

/// Decodes every value in `buf`, back to back, as command and data messages carry them.
///
/// Strings that are not valid UTF-8 are decoded lossily: encoder names and titles in metadata
/// are sometimes Latin-1, and refusing the whole message for that would help nobody.
pub fn decode_all(buf: &[u8]) -> Result<Vec<Value>, Amf0Error> {
    let mut decoder = Decoder {
        buf,
        pos: 0,
        elements: 0,
    };
    let mut values = Vec::new();
    while decoder.pos < buf.len() {
        values.push(decoder.value(0)?);
    }
    Ok(values)
}

/// Appends the encoding of `values`, back to back, to `out`.
pub fn encode(values: &[Value], out: &mut Vec<u8>) {
    for value in values {
        encode_value(value, out);
    }
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    elements: usize,
}

impl<'a> Decoder<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Amf0Error> {
        if n > self.remaining() {
            return Err(Amf0Error::Truncated);
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Amf0Error> {
        let bytes = self.take(N)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        Ok(f64::from_be_bytes(self.array()?))
    }

    fn string(&mut self, len: usize) -> Result<String, Amf0Error> {
        let bytes = self.take(len)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    fn count_element(&mut self) -> Result<(), Amf0Error> {
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            return Err(Amf0Error::TooManyElements);
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, Amf0Error> {
        if depth > MAX_DEPTH {
            return Err(Amf0Error::TooDeep);
        }
        self.count_element()?;
        let value = match self.u8()? {
            NUMBER => Value::Number(self.f64()?),
            BOOLEAN => Value::Boolean(self.u8()? != 0),
            STRING => {
                let len = self.u16()?;
                Value::String(self.string(usize::from(len))?)
            }
            OBJECT => Value::Object(self.properties(depth, false)?),
            NULL => Value::Null,
            UNDEFINED => Value::Undefined,
            ECMA_ARRAY => {
                // The count is only a hint (encoders get it wrong); the end marker decides.
                self.u32()?;
                Value::EcmaArray(self.properties(depth, true)?)
            }
            OBJECT_END => return Err(Amf0Error::UnexpectedObjectEnd),
            STRICT_ARRAY => Value::StrictArray(self.strict_array(depth)?),
            DATE => {
                let millis = self.f64()?;
                self.u16()?;
                Value::Date(millis)
            }
            LONG_STRING => {
                let len = self.u32()?;
                // A u32 always fits the usize of the 32/64-bit targets we build for; if it did
                // not, the length could not be backed by the buffer anyway.
                let len = usize::try_from(len).map_err(|_| Amf0Error::Truncated)?;
                Value::LongString(self.string(len)?)
            }
            other => return Err(Amf0Error::Unsupported(other)),
        };
        Ok(value)
    }

    fn strict_array(&mut self, depth: usize) -> Result<Vec<Value>, Amf0Error> {
        let count = usize::try_from(self.u32()?).map_err(|_| Amf0Error::Truncated)?;
        // Every element takes at least one byte, so the count can be checked against the bytes
        // left before anything is reserved for it.
        if count > self.remaining() {
            return Err(Amf0Error::Truncated);
        }
        if count > MAX_ELEMENTS - self.elements {
            return Err(Amf0Error::TooManyElements);
        }
        let mut items = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            items.push(self.value(depth + 1)?);
        }
        Ok(items)
    }

    /// Key/value pairs up to the end marker. `lenient_end` accepts an ECMA array that runs to the
    /// end of the buffer without its marker, which some encoders emit for `onMetaData`.
    fn properties(
        &mut self,
        depth: usize,
        lenient_end: bool,
    ) -> Result<Vec<(String, Value)>, Amf0Error> {
        let mut props = Vec::new();
        loop {
            if lenient_end && self.remaining() == 0 {
                return Ok(props);
            }
            let key_len = usize::from(self.u16()?);
            if key_len == 0 && self.buf.get(self.pos) == Some(&OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            let key = self.string(key_len)?;
            self.count_element()?;
            let value = self.value(depth + 1)?;
            props.push((key, value));
        }
    }
}

fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Number(n) => {
            out.push(NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::Boolean(b) => out.extend_from_slice(&[BOOLEAN, u8::from(*b)]),
        Value::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                out.push(STRING);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Err(_) => encode_long_string(s, out),
        },
        Value::Object(props) => {
            out.push(OBJECT);
            encode_properties(props, out);
        }
        Value::Null => out.push(NULL),
        Value::Undefined => out.push(UNDEFINED),
        Value::EcmaArray(props) => {
            out.push(ECMA_ARRAY);
            let count = u32::try_from(props.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&count.to_be_bytes());
            encode_properties(props, out);
        }
        Value::StrictArray(items) => {
            out.push(STRICT_ARRAY);
            let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&count.to_be_bytes());
            // `take` keeps the written count truthful for the (theoretical) >4G-item array.
            for item in items.iter().take(count as usize) {
                encode_value(item, out);
            }
        }
        Value::Date(millis) => {
            out.push(DATE);
            out.extend_from_slice(&millis.to_be_bytes());
            out.extend_from_slice(&0u16.to_be_bytes());
        }
        Value::LongString(s) => encode_long_string(s, out),
    }
}

fn encode_long_string(s: &str, out: &mut Vec<u8>) {
    let bytes = truncate_utf8(s, u32::MAX as usize);
    out.push(LONG_STRING);
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn encode_properties(props: &[(String, Value)], out: &mut Vec<u8>) {
    for (key, value) in props {
        // Keys have a 16-bit length and no long form: cut at a character boundary.
        let key = truncate_utf8(key, usize::from(u16::MAX));
        out.extend_from_slice(&(key.len() as u16).to_be_bytes());
        out.extend_from_slice(key);
        encode_value(value, out);
    }
    out.extend_from_slice(&[0, 0, OBJECT_END]);
}

fn truncate_utf8(s: &str, max: usize) -> &[u8] {
    if s.len() <= max {
        return s.as_bytes();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s.as_bytes()[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.to_owned())
    }

    fn round_trip(values: &[Value]) {
        let mut buf = Vec::new();
        encode(values, &mut buf);
        assert_eq!(decode_all(&buf).unwrap(), values);
    }

    #[test]
    fn round_trips_every_type() {
        round_trip(&[
            Value::Number(1.5),
            Value::Boolean(true),
            Value::Boolean(false),
            s(""),
            s("héllo"),
            Value::Object(vec![
                ("a".into(), Value::Null),
                ("".into(), Value::Undefined),
                ("nested".into(), Value::Object(vec![("x".into(), s("y"))])),
            ]),
            Value::EcmaArray(vec![("duration".into(), Value::Number(0.0))]),
            Value::StrictArray(vec![
                Value::Number(1.0),
                s("two"),
                Value::StrictArray(vec![]),
            ]),
            Value::Date(1_700_000_000_000.0),
            Value::LongString("long".into()),
            Value::Object(vec![]),
        ]);
    }

    #[test]
    fn long_strings_switch_marker() {
        let text = "x".repeat(70_000);
        let mut buf = Vec::new();
        encode(&[s(&text)], &mut buf);
        assert_eq!(buf[0], LONG_STRING);
        assert_eq!(decode_all(&buf).unwrap(), vec![Value::LongString(text)]);
    }

    /// `connect` as ffmpeg's RTMP muxer sends it, written out byte by byte from the AMF0 spec.
    #[test]
    fn decodes_connect_fixture() {
        let mut bytes = vec![0x02, 0x00, 0x07];
        bytes.extend_from_slice(b"connect");
        bytes.extend_from_slice(&[0x00, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0]);
        bytes.push(0x03);
        for (key, val) in [
            ("app", "live"),
            ("type", "nonprivate"),
            ("flashVer", "FMLE/3.0 (compatible; Lavf61.7.100)"),
            ("tcUrl", "rtmp://127.0.0.1:1935/live"),
        ] {
            bytes.extend_from_slice(&(key.len() as u16).to_be_bytes());
            bytes.extend_from_slice(key.as_bytes());
            bytes.push(0x02);
            bytes.extend_from_slice(&(val.len() as u16).to_be_bytes());
            bytes.extend_from_slice(val.as_bytes());
        }
        bytes.extend_from_slice(&[0x00, 0x00, 0x09]);

        let values = decode_all(&bytes).unwrap();
        assert_eq!(values.len(), 3);
        assert_eq!(values[0].as_str(), Some("connect"));
        assert_eq!(values[1].as_f64(), Some(1.0));
        assert_eq!(values[2].get("app").and_then(Value::as_str), Some("live"));
        assert_eq!(
            values[2].get("tcUrl").and_then(Value::as_str),
            Some("rtmp://127.0.0.1:1935/live")
        );
        assert_eq!(values[2].get("missing"), None);

        let mut again = Vec::new();
        encode(&values, &mut again);
        assert_eq!(again, bytes);
    }

    #[test]
    fn ecma_array_without_end_marker_at_buffer_end() {
        let mut bytes = vec![ECMA_ARRAY, 0, 0, 0, 1, 0, 1, b'w', NUMBER];
        bytes.extend_from_slice(&640f64.to_be_bytes());
        assert_eq!(
            decode_all(&bytes).unwrap(),
            vec![Value::EcmaArray(vec![("w".into(), Value::Number(640.0))])]
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut buf = Vec::new();
        encode(
            &[
                s("onMetaData"),
                Value::Object(vec![
                    ("n".into(), Value::Number(2.0)),
                    ("d".into(), Value::Date(0.0)),
                    ("l".into(), Value::LongString("abc".into())),
                    ("a".into(), Value::StrictArray(vec![Value::Boolean(true)])),
                ]),
            ],
            &mut buf,
        );
        // Cuts at a value boundary decode fine; any other cut must fail, never panic.
        for cut in 0..buf.len() {
            if cut == 0 || cut == 13 {
                assert!(decode_all(&buf[..cut]).is_ok());
            } else {
                assert!(decode_all(&buf[..cut]).is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn rejects_garbage_markers() {
        assert_eq!(decode_all(&[0x07, 0, 1]), Err(Amf0Error::Unsupported(0x07)));
        assert_eq!(decode_all(&[0x10]), Err(Amf0Error::Unsupported(0x10)));
        assert_eq!(decode_all(&[0x11, 0x01]), Err(Amf0Error::Unsupported(0x11)));
        assert_eq!(decode_all(&[0xFF]), Err(Amf0Error::Unsupported(0xFF)));
        assert_eq!(
            decode_all(&[OBJECT_END]),
            Err(Amf0Error::UnexpectedObjectEnd)
        );
        assert_eq!(decode_all(&[STRING, 0, 5, b'a']), Err(Amf0Error::Truncated));
        assert_eq!(
            decode_all(&[LONG_STRING, 0xFF, 0xFF, 0xFF, 0xFF, b'a']),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(decode_all(&[OBJECT, 0, 1, b'k']), Err(Amf0Error::Truncated));
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily() {
        let values = decode_all(&[STRING, 0, 2, 0xE9, b'a']).unwrap();
        assert_eq!(values[0].as_str(), Some("\u{FFFD}a"));
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let mut deep = Value::Null;
        for _ in 0..=MAX_DEPTH {
            deep = Value::StrictArray(vec![deep]);
        }
        let mut buf = Vec::new();
        encode(&[deep], &mut buf);
        assert_eq!(decode_all(&buf), Err(Amf0Error::TooDeep));

        // A long run of object openers must stop at the depth limit, not overflow the stack.
        let mut bytes = vec![OBJECT];
        for _ in 0..100_000 {
            bytes.extend_from_slice(&[0, 1, b'k', OBJECT]);
        }
        assert_eq!(decode_all(&bytes), Err(Amf0Error::TooDeep));

        let mut ok = Value::Null;
        for _ in 0..MAX_DEPTH {
            ok = Value::Object(vec![("k".into(), ok)]);
        }
        round_trip(&[ok]);
    }

    #[test]
    fn huge_declared_counts_are_rejected_without_allocating() {
        assert_eq!(
            decode_all(&[STRICT_ARRAY, 0xFF, 0xFF, 0xFF, 0xFF, NULL]),
            Err(Amf0Error::Truncated)
        );
        // An ECMA array's count is ignored, so a huge one costs nothing.
        assert_eq!(
            decode_all(&[ECMA_ARRAY, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, OBJECT_END]).unwrap(),
            vec![Value::EcmaArray(vec![])]
        );
        // Backed by real bytes, the element limit still applies.
        let mut bytes = vec![STRICT_ARRAY];
        bytes.extend_from_slice(&(MAX_ELEMENTS as u32 + 1).to_be_bytes());
        bytes.resize(bytes.len() + MAX_ELEMENTS + 1, NULL);
        assert_eq!(decode_all(&bytes), Err(Amf0Error::TooManyElements));
        let many_values = vec![NULL; MAX_ELEMENTS + 1];
        assert_eq!(decode_all(&many_values), Err(Amf0Error::TooManyElements));
    }
}

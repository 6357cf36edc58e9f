//! Still pictures: what a file says it is, from its header alone (format, width, height), so a
//! picture too large to decode, or a file that only pretends to be one, is refused before a
//! single pixel is decoded or a buffer for them allocated. Reads JPEG (the frame header after
//! any number of segments), PNG (`IHDR`), WebP (`VP8 `, `VP8L`, `VP8X`) and GIF (the logical
//! screen). Everything is bounds-checked; nothing here allocates.

/// A picture format moim accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
}

impl ImageFormat {
    /// The media type it is served as.
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
        }
    }
}

/// What a picture's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

impl ImageHeader {
    /// Width × height.
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// Why a header was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Not one of the formats above.
    #[error("not a JPEG, PNG, WebP or GIF picture")]
    Unsupported,
    /// It starts like one but ends before its size is given.
    #[error("the picture ends before its header does")]
    Truncated,
    /// It starts like one but its header is wrong.
    #[error("the picture's header is damaged: {0}")]
    Malformed(&'static str),
}

/// Reads the format and size from the first bytes of a file (a few hundred bytes are enough
/// for PNG, GIF and WebP; a JPEG's frame header may follow its metadata, so give it the file).
pub fn read_header(data: &[u8]) -> Result<ImageHeader, HeaderError> {
    let (format, width, height) = if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let (w, h) = jpeg(data)?;
        (ImageFormat::Jpeg, w, h)
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        let (w, h) = png(data)?;
        (ImageFormat::Png, w, h)
    } else if data.len() >= 12 && &data[0..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        let (w, h) = webp(data)?;
        (ImageFormat::Webp, w, h)
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        let (w, h) = gif(data)?;
        (ImageFormat::Gif, w, h)
    } else {
        return Err(HeaderError::Unsupported);
    };
    if width == 0 || height == 0 {
        return Err(HeaderError::Malformed("a side of zero pixels"));
    }
    Ok(ImageHeader {
        format,
        width,
        height,
    })
}

fn bytes<const N: usize>(data: &[u8], at: usize) -> Result<[u8; N], HeaderError> {
    data.get(at..at.checked_add(N).ok_or(HeaderError::Truncated)?)
        .and_then(|s| s.try_into().ok())
        .ok_or(HeaderError::Truncated)
}

fn be16(data: &[u8], at: usize) -> Result<u16, HeaderError> {
    bytes::<2>(data, at).map(u16::from_be_bytes)
}

fn le16(data: &[u8], at: usize) -> Result<u16, HeaderError> {
    bytes::<2>(data, at).map(u16::from_le_bytes)
}

fn be32(data: &[u8], at: usize) -> Result<u32, HeaderError> {
    bytes::<4>(data, at).map(u32::from_be_bytes)
}

fn le24(data: &[u8], at: usize) -> Result<u32, HeaderError> {
    bytes::<3>(data, at).map(|b| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16)
}

/// Walks the markers after SOI to the first frame header (SOF0–SOF15 but DHT, JPG and DAC).
fn jpeg(data: &[u8]) -> Result<(u32, u32), HeaderError> {
    let mut at = 2;
    loop {
        // A marker: 0xFF, any number of fill 0xFF bytes, then its code.
        if *data.get(at).ok_or(HeaderError::Truncated)? != 0xFF {
            return Err(HeaderError::Malformed(
                "a JPEG segment does not start with a marker",
            ));
        }
        while data.get(at) == Some(&0xFF) {
            at += 1;
        }
        let marker = *data.get(at).ok_or(HeaderError::Truncated)?;
        at += 1;
        match marker {
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            0xD8 => return Err(HeaderError::Malformed("a second start of image")),
            0xD9 | 0xDA => return Err(HeaderError::Malformed("no frame header before the data")),
            _ => {}
        }
        let len = usize::from(be16(data, at)?);
        if len < 2 {
            return Err(HeaderError::Malformed(
                "a JPEG segment shorter than its length field",
            ));
        }
        let sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if sof {
            // Length, precision, height, width.
            if len < 8 {
                return Err(HeaderError::Malformed("a JPEG frame header too short"));
            }
            let h = be16(data, at + 3)?;
            let w = be16(data, at + 5)?;
            return Ok((u32::from(w), u32::from(h)));
        }
        at += len;
    }
}

fn png(data: &[u8]) -> Result<(u32, u32), HeaderError> {
    // The first chunk must be IHDR, 13 bytes long.
    if be32(data, 8)? != 13 || bytes::<4>(data, 12)? != *b"IHDR" {
        return Err(HeaderError::Malformed(
            "a PNG must start with its IHDR chunk",
        ));
    }
    let (w, h) = (be32(data, 16)?, be32(data, 20)?);
    if w > i32::MAX as u32 || h > i32::MAX as u32 {
        return Err(HeaderError::Malformed("a PNG side over 2³¹ − 1"));
    }
    Ok((w, h))
}

fn webp(data: &[u8]) -> Result<(u32, u32), HeaderError> {
    let chunk = bytes::<4>(data, 12)?;
    let body = 20;
    match &chunk {
        b"VP8 " => {
            // Frame tag (3 bytes), start code, then 14-bit width and height.
            if bytes::<3>(data, body + 3)? != [0x9D, 0x01, 0x2A] {
                return Err(HeaderError::Malformed(
                    "a WebP VP8 frame without its start code",
                ));
            }
            let w = le16(data, body + 6)? & 0x3FFF;
            let h = le16(data, body + 8)? & 0x3FFF;
            Ok((u32::from(w), u32::from(h)))
        }
        b"VP8L" => {
            if *data.get(body).ok_or(HeaderError::Truncated)? != 0x2F {
                return Err(HeaderError::Malformed(
                    "a WebP lossless frame without its signature",
                ));
            }
            let b = bytes::<4>(data, body + 1)?;
            let bits = u32::from_le_bytes(b);
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8X" => Ok((le24(data, body + 4)? + 1, le24(data, body + 7)? + 1)),
        _ => Err(HeaderError::Malformed("a WebP with an unknown first chunk")),
    }
}

fn gif(data: &[u8]) -> Result<(u32, u32), HeaderError> {
    Ok((u32::from(le16(data, 6)?), u32::from(le16(data, 8)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        v.extend_from_slice(&13u32.to_be_bytes());
        v.extend_from_slice(b"IHDR");
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        v
    }

    /// SOI, an APP1 segment (where EXIF lives), fill bytes, then SOF0.
    fn jpeg_header(w: u16, h: u16) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x08];
        v.extend_from_slice(b"Exif\0\0");
        v.extend_from_slice(&[0xFF, 0xFF, 0xC0, 0x00, 0x11, 0x08]);
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        v
    }

    #[test]
    fn reads_each_format_from_its_header() {
        let png = read_header(&png_header(640, 480)).unwrap();
        assert_eq!(
            (png.format, png.width, png.height),
            (ImageFormat::Png, 640, 480)
        );
        let jpg = read_header(&jpeg_header(4032, 3024)).unwrap();
        assert_eq!(
            (jpg.format, jpg.width, jpg.height),
            (ImageFormat::Jpeg, 4032, 3024)
        );
        assert_eq!(jpg.pixels(), 12_192_768);
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&[0x40, 0x01, 0xF0, 0x00, 0, 0, 0]);
        assert_eq!(read_header(&gif).unwrap().width, 320);
        // WebP: lossy, lossless, extended.
        let riff = |chunk: &[u8], body: &[u8]| {
            let mut v = b"RIFF\0\0\0\0WEBP".to_vec();
            v.extend_from_slice(chunk);
            v.extend_from_slice(&(body.len() as u32).to_le_bytes());
            v.extend_from_slice(body);
            v
        };
        let lossy = riff(
            b"VP8 ",
            &[0, 0, 0, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01],
        );
        assert_eq!(read_header(&lossy).unwrap().width, 640);
        assert_eq!(read_header(&lossy).unwrap().height, 480);
        let bits: u32 = (639) | (479 << 14);
        let mut l = vec![0x2F];
        l.extend_from_slice(&bits.to_le_bytes());
        let lossless = read_header(&riff(b"VP8L", &l)).unwrap();
        assert_eq!((lossless.width, lossless.height), (640, 480));
        let x = riff(b"VP8X", &[0, 0, 0, 0, 0x7F, 0x02, 0, 0xDF, 0x01, 0]);
        let ext = read_header(&x).unwrap();
        assert_eq!(
            (ext.format, ext.width, ext.height),
            (ImageFormat::Webp, 640, 480)
        );
    }

    #[test]
    fn a_huge_claim_is_read_not_decoded() {
        // 100000 × 100000: the caller refuses it from these 33 bytes.
        let h = read_header(&png_header(100_000, 100_000)).unwrap();
        assert_eq!(h.pixels(), 10_000_000_000);
        assert_eq!(
            read_header(&png_header(u32::MAX, 1)),
            Err(HeaderError::Malformed("a PNG side over 2³¹ − 1"))
        );
    }

    #[test]
    fn refuses_what_is_not_a_picture_or_is_cut_short() {
        for bad in [
            &b""[..],
            b"hello",
            b"%PDF-1.7",
            b"PK\x03\x04",
            b"RIFF\0\0\0\0WAVE",
        ] {
            assert_eq!(read_header(bad), Err(HeaderError::Unsupported), "{bad:?}");
        }
        let png = png_header(10, 10);
        for cut in 8..png.len() - 9 {
            assert!(read_header(&png[..cut]).is_err(), "{cut}");
        }
        let jpg = jpeg_header(10, 10);
        for cut in 3..20 {
            assert!(read_header(&jpg[..cut]).is_err(), "{cut}");
        }
        assert_eq!(
            read_header(&png_header(0, 10)),
            Err(HeaderError::Malformed("a side of zero pixels"))
        );
        // A JPEG whose data starts before any frame header, or whose length field lies.
        assert!(matches!(
            read_header(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]),
            Err(HeaderError::Malformed(_))
        ));
        assert!(matches!(
            read_header(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 1, 0, 0]),
            Err(HeaderError::Malformed(_))
        ));
        // A length that points far past the end is only truncated, not followed.
        assert_eq!(
            read_header(&[0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xFF, 0]),
            Err(HeaderError::Truncated)
        );
    }
}

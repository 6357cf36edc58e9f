//! H.264 (AVC) decoder configuration: the `AVCDecoderConfigurationRecord` of ISO 14496-15 and
//! just enough of the sequence parameter set (ITU-T H.264 §7.3.2.1) to learn the picture size.
//!
//! The record arrives in the FLV sequence header and goes verbatim into the `avcC` box of the
//! init segment; we parse it only to fill `tkhd`/`avc1` dimensions and the RFC 6381 codec string
//! for the multivariant playlist. Slices are never decoded here.
//!
//! Input is untrusted: every read is bounds-checked and every loop bounded by the data, so
//! garbage yields an [`AvcError`], never a panic.

use bytes::Bytes;

/// Why a decoder configuration record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvcError {
    /// The record ended before a field it announced.
    #[error("truncated AVCDecoderConfigurationRecord")]
    Truncated,
    /// `configurationVersion` was not 1.
    #[error("unsupported AVCDecoderConfigurationRecord version {0}")]
    Version(u8),
    /// The record lists no SPS, so the picture size is unknown.
    #[error("AVCDecoderConfigurationRecord carries no SPS")]
    NoSps,
    /// The first SPS could not be parsed; the message names the field.
    #[error("invalid SPS: {0}")]
    Sps(&'static str),
}

/// A parsed `AVCDecoderConfigurationRecord`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// `AVCProfileIndication` (66 baseline, 77 main, 100 high …).
    pub profile: u8,
    /// `profile_compatibility` (the SPS constraint flags byte).
    pub compat: u8,
    /// `AVCLevelIndication` (31 = level 3.1).
    pub level: u8,
    /// Bytes in each NAL unit length prefix of the samples (1, 2 or 4).
    pub nal_length_size: u8,
    /// Sequence parameter set NAL units (with their one-byte NAL header).
    pub sps: Vec<Bytes>,
    /// Picture parameter set NAL units (with their one-byte NAL header).
    pub pps: Vec<Bytes>,
    /// Displayed width in pixels, after frame cropping.
    pub width: u32,
    /// Displayed height in pixels, after frame cropping.
    pub height: u32,
    /// The record exactly as received, for the `avcC` box.
    pub raw: Bytes,
}

impl AvcConfig {
    /// Parses a record (the payload of an FLV AVC sequence header).
    pub fn parse(record: &Bytes) -> Result<Self, AvcError> {
        let mut r = Reader {
            data: record,
            pos: 0,
        };
        let version = r.u8()?;
        if version != 1 {
            return Err(AvcError::Version(version));
        }
        let profile = r.u8()?;
        let compat = r.u8()?;
        let level = r.u8()?;
        let nal_length_size = (r.u8()? & 0b11) + 1;
        let sps_count = r.u8()? & 0b1_1111;
        let sps = (0..sps_count)
            .map(|_| r.nal_unit())
            .collect::<Result<Vec<_>, _>>()?;
        let pps_count = r.u8()?;
        let pps = (0..pps_count)
            .map(|_| r.nal_unit())
            .collect::<Result<Vec<_>, _>>()?;
        // High-profile records may continue with chroma format and bit depths; the SPS says
        // the same thing, and the record is passed on verbatim, so the tail is not read.
        let first = sps.first().ok_or(AvcError::NoSps)?;
        let (width, height) = sps_dimensions(first)?;
        Ok(Self {
            profile,
            compat,
            level,
            nal_length_size,
            sps,
            pps,
            width,
            height,
            raw: record.clone(),
        })
    }

    /// The RFC 6381 `CODECS` value, e.g. `avc1.64001f` for High at level 3.1.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile, self.compat, self.level
        )
    }
}

impl AvcConfig {
    /// Builds the record from an SPS and a PPS seen in-band (an RTP stream carries them before
    /// each keyframe, never a record): 4-byte NAL lengths, and for the High profiles the 4:2:0,
    /// 8-bit extension WebRTC encoders produce.
    pub fn from_parameter_sets(sps: &[u8], pps: &[u8]) -> Result<Self, AvcError> {
        if sps.len() < 4 || sps[0] & 0x1f != 7 {
            return Err(AvcError::Sps("not an SPS NAL unit"));
        }
        if pps.is_empty() || pps[0] & 0x1f != 8 {
            return Err(AvcError::NoSps);
        }
        let too_long = |n: &[u8]| u16::try_from(n.len()).map_err(|_| AvcError::Sps("too long"));
        let mut rec = Vec::with_capacity(sps.len() + pps.len() + 16);
        rec.extend_from_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
        rec.extend_from_slice(&too_long(sps)?.to_be_bytes());
        rec.extend_from_slice(sps);
        rec.push(1);
        rec.extend_from_slice(&too_long(pps)?.to_be_bytes());
        rec.extend_from_slice(pps);
        if HIGH_PROFILES.contains(&sps[1]) {
            // chroma_format 1, luma and chroma bit depth 8, no SPS extensions.
            rec.extend_from_slice(&[0xfd, 0xf8, 0xf8, 0]);
        }
        AvcConfig::parse(&Bytes::from(rec))
    }
}

/// The NAL units of an Annex B byte stream (each after a `00 00 01` or `00 00 00 01` start
/// code), without their start codes. Bytes before the first start code are skipped; empty
/// units are not yielded.
pub fn annexb_nalus(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = next_start(data, 0).map(|(_, body)| body);
    std::iter::from_fn(move || loop {
        let start = pos?;
        let (end, next) = match next_start(data, start) {
            Some((code_at, body)) => (code_at, Some(body)),
            None => (data.len(), None),
        };
        pos = next;
        // A zero before the next start code belongs to a 4-byte code (trailing_zero_8bits).
        let mut unit = &data[start..end];
        while let [rest @ .., 0] = unit {
            unit = rest;
        }
        if !unit.is_empty() {
            return Some(unit);
        }
    })
}

/// The next `00 00 01` at or after `from`: where it starts and where its unit's body starts.
fn next_start(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let tail = data.get(from..)?;
    let at = tail.windows(3).position(|w| w == [0, 0, 1])?;
    Some((from + at, from + at + 3))
}

/// Whether an AVCC-framed access unit contains an IDR slice (NAL unit type 5).
///
/// Useful when a publisher's FLV frame-type flag cannot be trusted. Malformed framing ends the
/// scan and counts as "no IDR".
pub fn is_keyframe_nalus(data: &[u8], nal_length_size: u8) -> bool {
    let n = usize::from(nal_length_size);
    if !(1..=4).contains(&n) {
        return false;
    }
    let mut rest = data;
    while rest.len() > n {
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let Some(nal) = rest.get(n..n + len) else {
            return false;
        };
        if nal.first().is_some_and(|h| h & 0x1f == 5) {
            return true;
        }
        rest = &rest[n + len..];
    }
    false
}

/// Byte reader over the record.
struct Reader<'a> {
    data: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, AvcError> {
        let b = *self.data.get(self.pos).ok_or(AvcError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// A 16-bit length followed by that many bytes, sliced without copying.
    fn nal_unit(&mut self) -> Result<Bytes, AvcError> {
        let len = usize::from(u16::from_be_bytes([self.u8()?, self.u8()?]));
        let end = self.pos + len;
        if end > self.data.len() {
            return Err(AvcError::Truncated);
        }
        let nal = self.data.slice(self.pos..end);
        self.pos = end;
        Ok(nal)
    }
}

/// Profiles whose SPS carries chroma format, bit depth and scaling matrices (H.264 §7.3.2.1.1).
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// Largest picture side we believe; H.264 level 6.2 tops out far below this.
const MAX_SIDE: u32 = 16_384;

/// Reads the cropped picture size from an SPS NAL unit (header byte included).
fn sps_dimensions(nal: &[u8]) -> Result<(u32, u32), AvcError> {
    let (&header, body) = nal.split_first().ok_or(AvcError::Sps("empty NAL unit"))?;
    if header & 0x1f != 7 {
        return Err(AvcError::Sps("NAL unit type is not 7"));
    }
    let rbsp = unescape(body);
    let mut b = BitReader::new(&rbsp);

    let profile_idc = b.bits(8)? as u8;
    b.bits(8)?; // constraint flags
    b.bits(8)?; // level_idc
    b.ue()?; // seq_parameter_set_id

    let mut chroma_format_idc = 1; // inferred 4:2:0 when absent
    let mut separate_colour_plane = false;
    if HIGH_PROFILES.contains(&profile_idc) {
        chroma_format_idc = b.ue()?;
        if chroma_format_idc > 3 {
            return Err(AvcError::Sps("chroma_format_idc"));
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = b.flag()?;
        }
        b.ue()?; // bit_depth_luma_minus8
        b.ue()?; // bit_depth_chroma_minus8
        b.flag()?; // qpprime_y_zero_transform_bypass_flag
        if b.flag()? {
            // seq_scaling_matrix_present_flag: six 4x4 lists, then two (or six for 4:4:4)
            // 8x8 lists, each optional.
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.flag()? {
                    skip_scaling_list(&mut b, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }

    b.ue()?; // log2_max_frame_num_minus4
    match b.ue()? {
        0 => {
            b.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            b.flag()?; // delta_pic_order_always_zero_flag
            b.se()?; // offset_for_non_ref_pic
            b.se()?; // offset_for_top_to_bottom_field
            let cycle = b.ue()?;
            if cycle > 255 {
                return Err(AvcError::Sps("num_ref_frames_in_pic_order_cnt_cycle"));
            }
            for _ in 0..cycle {
                b.se()?;
            }
        }
        2 => {}
        _ => return Err(AvcError::Sps("pic_order_cnt_type")),
    }
    b.ue()?; // max_num_ref_frames
    b.flag()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(b.ue()?) + 1;
    let height_map_units = u64::from(b.ue()?) + 1;
    let frame_mbs_only = b.flag()?;
    if !frame_mbs_only {
        b.flag()?; // mb_adaptive_frame_field_flag
    }
    b.flag()?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if b.flag()? {
        left = u64::from(b.ue()?);
        right = u64::from(b.ue()?);
        top = u64::from(b.ue()?);
        bottom = u64::from(b.ue()?);
    }

    // Crop units per H.264 §7.4.2.1.1: chroma subsampling, doubled vertically for field coding.
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (crop_x, crop_y) = match chroma_array_type {
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };
    let coded_w = width_mbs * 16;
    let coded_h = height_map_units * 16 * field_factor;
    let crop_w = crop_x * (left + right);
    let crop_h = crop_y * (top + bottom);
    if crop_w >= coded_w || crop_h >= coded_h {
        return Err(AvcError::Sps("cropping exceeds the picture"));
    }
    let (w, h) = (coded_w - crop_w, coded_h - crop_h);
    if w > u64::from(MAX_SIDE) || h > u64::from(MAX_SIDE) {
        return Err(AvcError::Sps("picture size out of range"));
    }
    Ok((w as u32, h as u32))
}

/// Skips one `scaling_list()` (H.264 §7.3.2.1.1.1): its length depends on the deltas read.
fn skip_scaling_list(b: &mut BitReader<'_>, size: usize) -> Result<(), AvcError> {
    let mut last = 8i64;
    let mut next = 8i64;
    for _ in 0..size {
        if next != 0 {
            let delta = i64::from(b.se()?);
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Removes emulation-prevention bytes: `00 00 03` becomes `00 00`.
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &byte in data {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
    out
}

/// MSB-first bit reader with Exp-Golomb codes.
struct BitReader<'a> {
    data: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, bit: 0 }
    }

    fn flag(&mut self) -> Result<bool, AvcError> {
        let byte = self
            .data
            .get(self.bit / 8)
            .ok_or(AvcError::Sps("ends early"))?;
        let set = byte >> (7 - self.bit % 8) & 1 == 1;
        self.bit += 1;
        Ok(set)
    }

    fn bits(&mut self, n: u32) -> Result<u32, AvcError> {
        debug_assert!(n <= 32);
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | u32::from(self.flag()?);
        }
        Ok(v)
    }

    /// Unsigned Exp-Golomb; anything wider than 32 bits is garbage for the fields we read.
    fn ue(&mut self) -> Result<u32, AvcError> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros > 31 {
                return Err(AvcError::Sps("Exp-Golomb code too long"));
            }
        }
        let suffix = u64::from(self.bits(zeros)?);
        let value = (1u64 << zeros) - 1 + suffix;
        u32::try_from(value).map_err(|_| AvcError::Sps("Exp-Golomb value too large"))
    }

    /// Signed Exp-Golomb: 1, 2, 3, 4 … map to 1, -1, 2, -2 ….
    fn se(&mut self) -> Result<i32, AvcError> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Ok(v as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Bytes {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<_>>()
            .into()
    }

    // avcC records written by ffmpeg 5.1 / libx264 for `-f lavfi -i testsrc2=size=WxH` with
    // `-profile:v high|baseline` (and `-pix_fmt yuv444p`, `-x264-params interlaced=1` below),
    // copied out of the resulting MP4's `avcC` box.
    const HIGH_720P: &str = "0164001fffe1001a6764001facd9405005bb0110000003001000000303c0f18319\
                             6001000668ebe3cb22c0fdf8f800";
    const HIGH_1080P: &str = "01640028ffe1001b67640028acd940780227e5c0440000030004000003\
                              00f03c60c65801000668ebe3cb22c0fdf8f800";
    const BASELINE_240P: &str = "0142c00dffe100186742c00dd90141fb0110000003001000000303c0f142a4\
                                 8001000568cb83cb20";
    /// High 4:4:4 Predictive, 854x480: chroma_format_idc 3, so crop units are single pixels.
    const HIGH444_480P: &str = "01f4001fffe1001b67f4001f919b281b07bc5f80880000030008000003\
                                01e078c18cb001000668ebe3c44844fff8f800";
    /// Interlaced 1080 (frame_mbs_only = 0): height counts map units of two macroblock rows.
    const INTERLACED_1080: &str = "01640028ffe1001a67640028acd94078044fde02200000030020000007\
                                   83e2c5b2c001000668fba3cb22c0fdf8f800";

    #[test]
    fn high_profile_720p() {
        let c = AvcConfig::parse(&hex(HIGH_720P)).unwrap();
        assert_eq!((c.width, c.height), (1280, 720));
        assert_eq!((c.profile, c.compat, c.level), (100, 0, 31));
        assert_eq!(c.nal_length_size, 4);
        assert_eq!((c.sps.len(), c.pps.len()), (1, 1));
        assert_eq!(c.sps[0][0] & 0x1f, 7);
        assert_eq!(c.pps[0][0] & 0x1f, 8);
        assert_eq!(c.codec_string(), "avc1.64001f");
        assert_eq!(c.raw, hex(HIGH_720P));
    }

    #[test]
    fn high_profile_1080p_is_cropped_from_1088() {
        let c = AvcConfig::parse(&hex(HIGH_1080P)).unwrap();
        assert_eq!((c.width, c.height), (1920, 1080));
        assert_eq!(c.codec_string(), "avc1.640028");
    }

    #[test]
    fn baseline_240p() {
        let c = AvcConfig::parse(&hex(BASELINE_240P)).unwrap();
        assert_eq!((c.width, c.height), (320, 240));
        assert_eq!(c.profile, 66);
        assert_eq!(c.codec_string(), "avc1.42c00d");
    }

    #[test]
    fn high444_and_interlaced() {
        let c = AvcConfig::parse(&hex(HIGH444_480P)).unwrap();
        assert_eq!((c.width, c.height, c.profile), (854, 480, 244));
        let c = AvcConfig::parse(&hex(INTERLACED_1080)).unwrap();
        assert_eq!((c.width, c.height), (1920, 1080));
    }

    /// Writes bits MSB first, for hand-built SPS fixtures.
    #[derive(Default)]
    struct BitWriter {
        out: Vec<u8>,
        n: usize,
    }

    impl BitWriter {
        fn bit(&mut self, b: bool) {
            if self.n.is_multiple_of(8) {
                self.out.push(0);
            }
            if b {
                *self.out.last_mut().unwrap() |= 0x80 >> (self.n % 8);
            }
            self.n += 1;
        }
        fn bits(&mut self, v: u32, n: u32) {
            for i in (0..n).rev() {
                self.bit(v >> i & 1 == 1);
            }
        }
        fn ue(&mut self, v: u32) {
            let x = v + 1;
            let len = 32 - x.leading_zeros();
            self.bits(0, len - 1);
            self.bits(x, len);
        }
        fn se(&mut self, v: i32) {
            self.ue(if v > 0 {
                2 * v as u32 - 1
            } else {
                (-2 * v) as u32
            });
        }
        /// rbsp_stop_one_bit and alignment, then emulation prevention.
        fn finish(mut self) -> Vec<u8> {
            self.bit(true);
            while !self.n.is_multiple_of(8) {
                self.bit(false);
            }
            let mut escaped = Vec::new();
            let mut zeros = 0;
            for b in self.out {
                if zeros >= 2 && b <= 3 {
                    escaped.push(3);
                    zeros = 0;
                }
                zeros = if b == 0 { zeros + 1 } else { 0 };
                escaped.push(b);
            }
            escaped
        }
    }

    /// A High-profile SPS with explicit scaling lists (x264 puts its matrices in the PPS, so
    /// no encoder at hand produces one) and poc type 1, ending in 1280x720 cropping.
    fn sps_with_scaling_lists() -> Vec<u8> {
        let mut w = BitWriter::default();
        w.bits(100, 8);
        w.bits(0, 8);
        w.bits(31, 8);
        w.ue(0); // sps id
        w.ue(1); // chroma 4:2:0
        w.ue(0);
        w.ue(0);
        w.bit(false);
        w.bit(true); // seq_scaling_matrix_present_flag
        for i in 0..8 {
            let present = i % 2 == 0;
            w.bit(present);
            if present {
                let size = if i < 6 { 16 } else { 64 };
                // Deltas that wander, then a zero next-scale that ends the explicit values.
                let mut last = 8;
                for j in 0..size {
                    if j == size / 2 {
                        w.se(-last); // next_scale = 0: the rest repeat, nothing more coded
                        break;
                    }
                    let delta = if j % 3 == 0 { 5 } else { -2 };
                    w.se(delta);
                    last = (last + delta).rem_euclid(256);
                }
            }
        }
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(1); // pic_order_cnt_type
        w.bit(false);
        w.se(-3);
        w.se(2);
        w.ue(2);
        w.se(1);
        w.se(-1);
        w.ue(4); // max_num_ref_frames
        w.bit(false);
        w.ue(79); // 80 MBs = 1280
        w.ue(44); // 45 MBs = 720
        w.bit(true); // frame_mbs_only
        w.bit(true);
        w.bit(true); // cropping, all zero except one bottom unit to prove it is applied
        w.ue(0);
        w.ue(0);
        w.ue(0);
        w.ue(4);
        w.bit(false); // vui
        let mut nal = vec![0x67];
        nal.extend(w.finish());
        nal
    }

    fn record_with_sps(sps: &[u8]) -> Bytes {
        let mut r = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
        r.extend((sps.len() as u16).to_be_bytes());
        r.extend(sps);
        r.extend([1, 0, 2, 0x68, 0xce]);
        r.into()
    }

    #[test]
    fn sps_scaling_lists_are_skipped() {
        let c = AvcConfig::parse(&record_with_sps(&sps_with_scaling_lists())).unwrap();
        assert_eq!((c.width, c.height), (1280, 720 - 8));
    }

    #[test]
    fn emulation_prevention_is_removed() {
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3]), [0, 0, 1, 0, 0]);
        assert_eq!(unescape(&[0, 0, 0, 3, 3]), [0, 0, 0, 3]);
        assert_eq!(unescape(&[0, 3, 0, 0, 3, 0, 0, 3]), [0, 3, 0, 0, 0, 0]);
    }

    #[test]
    fn record_errors() {
        assert_eq!(AvcConfig::parse(&Bytes::new()), Err(AvcError::Truncated));
        assert_eq!(
            AvcConfig::parse(&hex("02640028ffe0")),
            Err(AvcError::Version(2))
        );
        assert_eq!(
            AvcConfig::parse(&hex("01640028ffe000")),
            Err(AvcError::NoSps)
        );
        // SPS length running past the end.
        assert_eq!(
            AvcConfig::parse(&hex("01640028ffe100ff6764")),
            Err(AvcError::Truncated)
        );
        // A PPS in the SPS slot.
        assert_eq!(
            AvcConfig::parse(&hex("01640028ffe1000268ce00")),
            Err(AvcError::Sps("NAL unit type is not 7"))
        );
    }

    #[test]
    fn garbage_never_panics() {
        // Every truncation of real records, then pseudo-random records behind a valid prefix.
        for fixture in [HIGH_720P, HIGH_1080P, BASELINE_240P, HIGH444_480P] {
            let full = hex(fixture);
            for len in 0..full.len() {
                let _ = AvcConfig::parse(&full.slice(..len));
            }
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..5_000 {
            let sps_len = 2 + round % 60;
            let mut r = vec![1, 100, 0, 31, 0xff, 0xe1, 0, sps_len as u8, 0x67];
            for _ in 1..sps_len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                r.push(seed as u8);
            }
            r.push(0); // no PPS, so parsing reaches the SPS
            let _ = AvcConfig::parse(&r.into());
        }
    }

    #[test]
    fn keyframe_detection() {
        // Non-IDR slice, then SEI + IDR.
        assert!(!is_keyframe_nalus(&[0, 0, 0, 2, 0x41, 0x9a], 4));
        assert!(is_keyframe_nalus(
            &[0, 0, 0, 2, 0x06, 0x05, 0, 0, 0, 2, 0x65, 0x88],
            4
        ));
        assert!(is_keyframe_nalus(&[0, 2, 0x65, 0x88], 2));
        // Length past the end, and invalid length sizes.
        assert!(!is_keyframe_nalus(&[0, 0, 0, 9, 0x65], 4));
        assert!(!is_keyframe_nalus(&[1, 0x65], 0));
        assert!(!is_keyframe_nalus(&[1, 0x65], 5));
    }
}

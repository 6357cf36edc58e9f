//! Photos: a member's picture turned into the three sizes moim serves, and nothing else of it.
//!
//! The header is read first ([`moim_media::image::read_header`]): a file that is not a JPEG,
//! PNG, WebP or GIF is refused, and so is one whose header claims more than the pixel limit,
//! before a byte of pixels is decoded or a buffer for them allocated. Then the picture is
//! decoded under the `image` crate's [`image::Limits`] (width, height and allocation bounded
//! again, in case a later frame or chunk disagrees with the first header), turned upright by its
//! EXIF orientation, and resized by `fast_image_resize` into `large` (≤ 2560 px on the long
//! side), `medium` (≤ 1280) and `thumb` (≤ 320), each from the one above, never upscaled.
//!
//! Every served file is encoded afresh from pixels alone: an opaque picture as a baseline JPEG,
//! one with transparency as a lossless WebP. No EXIF (GPS included), XMP, IPTC, ICC or comment
//! block of the upload survives, and the upload itself is not kept. A thumbhash (a 25-byte
//! placeholder the page paints while the photo loads) comes from the thumb.
//!
//! The work is CPU-bound and runs on the blocking pool, a few pictures at a time
//! ([`Photos::process`]); more callers than that wait in a bounded queue, and beyond the queue
//! they are told to come back ([`PhotoError::Busy`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine;
use fast_image_resize as fr;
use image::ImageDecoder;
use moim_media::image::{read_header, HeaderError, ImageFormat};
use tokio::sync::Semaphore;

/// The sizes served, largest first: name and longest side.
pub const VARIANTS: [(&str, u32); 3] = [("large", 2560), ("medium", 1280), ("thumb", 320)];

/// JPEG quality of the served files.
const JPEG_QUALITY: u8 = 82;

/// What a picture may be.
#[derive(Debug, Clone, Copy)]
pub struct PhotoLimits {
    /// Bytes of the upload.
    pub max_bytes: usize,
    /// Width × height, from the header.
    pub max_pixels: u64,
    /// Pictures processed at once.
    pub workers: usize,
    /// Pictures waiting for a worker before callers are told to come back.
    pub queue: usize,
}

impl Default for PhotoLimits {
    fn default() -> Self {
        PhotoLimits {
            max_bytes: 25 * 1024 * 1024,
            max_pixels: 40_000_000,
            workers: 2,
            queue: 16,
        }
    }
}

/// One served size.
pub struct Variant {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    /// `jpg` or `webp`.
    pub ext: &'static str,
    pub bytes: Vec<u8>,
}

impl Variant {
    pub fn mime(&self) -> &'static str {
        mime_of_ext(self.ext)
    }
}

/// The media type of a served file by its extension.
pub fn mime_of_ext(ext: &str) -> &'static str {
    match ext {
        "webp" => "image/webp",
        _ => "image/jpeg",
    }
}

/// A processed picture.
pub struct Processed {
    /// Upright size of the picture as uploaded.
    pub width: u32,
    pub height: u32,
    /// The uploaded format.
    pub format: ImageFormat,
    /// Base64 of the thumbhash.
    pub thumbhash: String,
    /// Large, medium, thumb.
    pub variants: Vec<Variant>,
}

#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// Over the byte or pixel limit.
    #[error("{0}")]
    TooLarge(String),
    /// Not a picture moim reads, or a broken one.
    #[error("{0}")]
    Unsupported(String),
    /// Every worker is busy and the queue is full.
    #[error("too many pictures are being processed; try again in a moment")]
    Busy,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The bounded pool pictures are processed on.
#[derive(Clone)]
pub struct Photos {
    limits: PhotoLimits,
    workers: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
}

impl Photos {
    pub fn new(limits: PhotoLimits) -> Photos {
        Photos {
            limits,
            workers: Arc::new(Semaphore::new(limits.workers.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn limits(&self) -> PhotoLimits {
        self.limits
    }

    /// Checks the header at once (so an oversized picture is refused without waiting), then
    /// processes the picture on the blocking pool when a worker is free.
    pub async fn process(&self, data: bytes::Bytes) -> Result<Processed, PhotoError> {
        check(&data, &self.limits)?;
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _unqueue = Unqueue(&self.waiting);
        if queued >= self.limits.queue + self.limits.workers {
            return Err(PhotoError::Busy);
        }
        let permit = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PhotoError::Busy)?;
        let limits = self.limits;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            process(&data, &limits)
        })
        .await
        .map_err(|e| PhotoError::Internal(anyhow::anyhow!("picture worker failed: {e}")))?
    }
}

struct Unqueue<'a>(&'a AtomicUsize);

impl Drop for Unqueue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The header check alone: format known, size within the limits.
pub fn check(
    data: &[u8],
    limits: &PhotoLimits,
) -> Result<moim_media::image::ImageHeader, PhotoError> {
    if data.len() > limits.max_bytes {
        return Err(too_many_bytes(limits));
    }
    let header = read_header(data).map_err(|e| {
        PhotoError::Unsupported(match e {
            HeaderError::Unsupported => "this is not a JPEG, PNG, WebP or GIF picture".to_string(),
            HeaderError::Truncated => "the picture is cut short before its size".to_string(),
            HeaderError::Malformed(why) => format!("the picture's header is broken: {why}"),
        })
    })?;
    if header.width == 0 || header.height == 0 {
        return Err(PhotoError::Unsupported(
            "the picture's header gives it no size".into(),
        ));
    }
    if header.pixels() > limits.max_pixels {
        return Err(PhotoError::TooLarge(format!(
            "the picture is {} × {} ({:.1} megapixels); the limit is {:.0} megapixels",
            header.width,
            header.height,
            header.pixels() as f64 / 1e6,
            limits.max_pixels as f64 / 1e6
        )));
    }
    Ok(header)
}

pub fn too_many_bytes(limits: &PhotoLimits) -> PhotoError {
    PhotoError::TooLarge(format!(
        "a picture may be at most {} MB",
        limits.max_bytes / (1024 * 1024)
    ))
}

/// Decodes, turns upright, resizes and encodes: the whole job, on the calling thread.
pub fn process(data: &[u8], limits: &PhotoLimits) -> Result<Processed, PhotoError> {
    let header = check(data, limits)?;
    let format = match header.format {
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Webp => image::ImageFormat::WebP,
        ImageFormat::Gif => image::ImageFormat::Gif,
    };
    let broken = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => {
            PhotoError::TooLarge("the picture is larger than its header said".into())
        }
        other => PhotoError::Unsupported(format!("the picture could not be read: {other}")),
    };
    let mut decoder = image::ImageReader::with_format(std::io::Cursor::new(data), format)
        .into_decoder()
        .map_err(broken)?;
    let mut bounds = image::Limits::default();
    bounds.max_image_width = Some(header.width);
    bounds.max_image_height = Some(header.height);
    // Room for the decoded frame in RGBA plus the decoder's own buffers.
    bounds.max_alloc = Some(header.pixels() * 4 + 64 * 1024 * 1024);
    decoder.set_limits(bounds).map_err(broken)?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        return Err(PhotoError::TooLarge(
            "the picture is larger than its header said".into(),
        ));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut picture = image::DynamicImage::from_decoder(decoder).map_err(broken)?;
    picture.apply_orientation(orientation);
    let opaque = !picture.color().has_alpha() || is_opaque(&picture);
    let (width, height) = (picture.width(), picture.height());
    let (pixels, pixel_type) = if opaque {
        (picture.into_rgb8().into_raw(), fr::PixelType::U8x3)
    } else {
        (picture.into_rgba8().into_raw(), fr::PixelType::U8x4)
    };
    let mut resizer = fr::Resizer::new();
    let options =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    let mut variants = Vec::with_capacity(VARIANTS.len());
    // Each size is made from the one above it (the first from the picture): less work, and
    // the picture's own buffer is dropped as soon as the large one exists.
    let mut above: Option<(u32, u32, Vec<u8>)> = None;
    let mut source = Some(pixels);
    for (name, longest) in VARIANTS {
        let (sw, sh, src): (u32, u32, &[u8]) = match (&above, &source) {
            (Some((aw, ah, buf)), _) => (*aw, *ah, buf),
            (None, Some(buf)) => (width, height, buf),
            (None, None) => unreachable!("the source is kept until the first size is made"),
        };
        let (dw, dh) = fit(width, height, longest);
        let out = if (dw, dh) == (sw, sh) {
            src.to_vec()
        } else {
            let src_view = fr::images::ImageRef::new(sw, sh, src, pixel_type)
                .map_err(|e| anyhow::anyhow!("resizing: {e}"))?;
            let mut dst = fr::images::Image::new(dw, dh, pixel_type);
            resizer
                .resize(&src_view, &mut dst, &options)
                .map_err(|e| anyhow::anyhow!("resizing: {e}"))?;
            dst.into_vec()
        };
        let (ext, bytes) = encode(&out, dw, dh, opaque)?;
        variants.push(Variant {
            name,
            width: dw,
            height: dh,
            ext,
            bytes,
        });
        above = Some((dw, dh, out));
        source = None;
    }
    let thumb = above.expect("three sizes were made");
    let thumbhash = thumbhash_of(&thumb.2, thumb.0, thumb.1, opaque, &mut resizer)?;
    Ok(Processed {
        width,
        height,
        format: header.format,
        thumbhash,
        variants,
    })
}

/// The size that fits `longest` on the long side, keeping the aspect, never larger than the
/// picture, at least one pixel.
pub fn fit(width: u32, height: u32, longest: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= longest {
        return (width, height);
    }
    let scale = f64::from(longest) / f64::from(long);
    let w = ((f64::from(width) * scale).round() as u32).clamp(1, longest);
    let h = ((f64::from(height) * scale).round() as u32).clamp(1, longest);
    (w, h)
}

fn is_opaque(picture: &image::DynamicImage) -> bool {
    match picture {
        image::DynamicImage::ImageRgba8(b) => b.pixels().all(|p| p.0[3] == 255),
        image::DynamicImage::ImageLumaA8(b) => b.pixels().all(|p| p.0[1] == 255),
        other => other.to_rgba8().pixels().all(|p| p.0[3] == 255),
    }
}

fn encode(
    pixels: &[u8],
    w: u32,
    h: u32,
    opaque: bool,
) -> Result<(&'static str, Vec<u8>), PhotoError> {
    if opaque {
        let mut out = Vec::with_capacity(pixels.len() / 8);
        let encoder = jpeg_encoder::Encoder::new(&mut out, JPEG_QUALITY);
        let (w16, h16) = (
            u16::try_from(w).map_err(|_| anyhow::anyhow!("width {w} too large for JPEG"))?,
            u16::try_from(h).map_err(|_| anyhow::anyhow!("height {h} too large for JPEG"))?,
        );
        encoder
            .encode(pixels, w16, h16, jpeg_encoder::ColorType::Rgb)
            .map_err(|e| anyhow::anyhow!("encoding JPEG: {e}"))?;
        Ok(("jpg", out))
    } else {
        let mut out = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut out)
            .encode(pixels, w, h, image::ExtendedColorType::Rgba8)
            .map_err(|e| anyhow::anyhow!("encoding WebP: {e}"))?;
        Ok(("webp", out))
    }
}

/// The thumbhash of a small version (at most 100 px on the long side, as the format wants).
fn thumbhash_of(
    pixels: &[u8],
    w: u32,
    h: u32,
    opaque: bool,
    resizer: &mut fr::Resizer,
) -> Result<String, PhotoError> {
    let pixel_type = if opaque {
        fr::PixelType::U8x3
    } else {
        fr::PixelType::U8x4
    };
    let (tw, th) = fit(w, h, 100);
    let src = fr::images::ImageRef::new(w, h, pixels, pixel_type)
        .map_err(|e| anyhow::anyhow!("resizing: {e}"))?;
    let mut dst = fr::images::Image::new(tw, th, pixel_type);
    resizer
        .resize(
            &src,
            &mut dst,
            &fr::ResizeOptions::new()
                .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear)),
        )
        .map_err(|e| anyhow::anyhow!("resizing: {e}"))?;
    let small = dst.into_vec();
    let rgba: Vec<u8> = if opaque {
        small
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect()
    } else {
        small
    };
    let hash = thumbhash::rgba_to_thumb_hash(tw as usize, th as usize, &rgba);
    Ok(base64::engine::general_purpose::STANDARD.encode(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let pixels: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [(x * 255 / w) as u8, (y * 255 / h) as u8, 128]
            })
            .collect();
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90)
            .encode(&pixels, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn fit_keeps_aspect_and_never_upscales() {
        assert_eq!(fit(4000, 3000, 2560), (2560, 1920));
        assert_eq!(fit(3000, 4000, 320), (240, 320));
        assert_eq!(fit(200, 100, 320), (200, 100));
        assert_eq!(fit(10000, 1, 320), (320, 1));
    }

    #[test]
    fn three_sizes_from_each_other() {
        let p = process(&jpeg(3000, 1500), &PhotoLimits::default()).unwrap();
        assert_eq!((p.width, p.height), (3000, 1500));
        let sizes: Vec<(&str, u32, u32)> = p
            .variants
            .iter()
            .map(|v| (v.name, v.width, v.height))
            .collect();
        assert_eq!(
            sizes,
            [
                ("large", 2560, 1280),
                ("medium", 1280, 640),
                ("thumb", 320, 160)
            ]
        );
        for v in &p.variants {
            let h = read_header(&v.bytes).unwrap();
            assert_eq!(
                (h.format, h.width, h.height),
                (ImageFormat::Jpeg, v.width, v.height)
            );
        }
        assert!(!p.thumbhash.is_empty());
    }

    #[test]
    fn small_pictures_stay_their_size() {
        let p = process(&jpeg(100, 60), &PhotoLimits::default()).unwrap();
        assert!(p.variants.iter().all(|v| (v.width, v.height) == (100, 60)));
    }

    #[test]
    fn transparency_is_kept_as_webp() {
        let mut img = image::RgbaImage::new(50, 40);
        for (x, _, p) in img.enumerate_pixels_mut() {
            *p = image::Rgba([200, 10, 10, if x < 25 { 0 } else { 255 }]);
        }
        let mut png = Vec::new();
        image::DynamicImage::ImageRgba8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let p = process(&png, &PhotoLimits::default()).unwrap();
        assert!(p.variants.iter().all(|v| v.ext == "webp"));
        let back = image::load_from_memory(&p.variants[2].bytes).unwrap();
        assert_eq!(back.to_rgba8().get_pixel(0, 0).0[3], 0);
    }

    #[test]
    fn limits_are_decided_from_the_header() {
        let limits = PhotoLimits {
            max_pixels: 1000,
            ..PhotoLimits::default()
        };
        assert!(matches!(
            process(&jpeg(40, 30), &limits),
            Err(PhotoError::TooLarge(_))
        ));
        assert!(matches!(
            process(b"GIF89a\x01", &PhotoLimits::default()),
            Err(PhotoError::Unsupported(_))
        ));
        assert!(matches!(
            process(b"hello, world", &PhotoLimits::default()),
            Err(PhotoError::Unsupported(_))
        ));
    }
}

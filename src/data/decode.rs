//! Decode and resize one image within the decoding memory budget (any size and colour type,
//! to RGB with a bilinear filter widened when shrinking, like PIL's BILINEAR); files that are
//! not images, or too big to decode, say why (`stream` decodes many as they are used).

use super::budget::{Reservation, DECODE_BUDGET, IMAGE_MEMORY};
use super::reduced_jpeg::{decode_reduced, JpegHeader};
use image::imageops::FilterType;
use image::{ColorType, DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Seek};
use std::path::{Path, PathBuf};

/// A file that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// Why an image could not be used: too big to decode within the memory budget (from its
/// header, before any pixel was allocated), or not a readable image at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Refused from its header: decoding it would need more than [`IMAGE_MEMORY`] bytes
    /// (a decompression bomb, or a photo too big for this machine). `serve` can answer 413.
    #[error("too big to decode: {0}")]
    TooBig(String),
    /// Not an image, or a broken one.
    #[error("{0}")]
    Unreadable(String),
}

impl From<std::io::Error> for DecodeError {
    fn from(e: std::io::Error) -> DecodeError {
        DecodeError::Unreadable(e.to_string())
    }
}

impl From<image::ImageError> for DecodeError {
    fn from(e: image::ImageError) -> DecodeError {
        match e {
            image::ImageError::Limits(limit) => DecodeError::TooBig(limit.to_string()),
            other => DecodeError::Unreadable(other.to_string()),
        }
    }
}

/// One image file as `size` x `size` RGB bytes (HWC), exactly as training saw its images.
pub fn decode_file(path: &Path, size: usize) -> Result<Vec<u8>, DecodeError> {
    decode_file_as(path, size, &|image| resized(image, size))
}

/// One image file decoded within the budget and made into `size` x `size` RGB bytes by
/// `finish` (a plain resize, or an augmented view).
pub fn decode_file_as(
    path: &Path,
    size: usize,
    finish: &dyn Fn(DynamicImage) -> Vec<u8>,
) -> Result<Vec<u8>, DecodeError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        // A FIFO or device named like a photo (e.g. listed in a manifest) would block or
        // never end.
        return Err(DecodeError::Unreadable(
            "not a regular file (a folder, FIFO, socket or device)".into(),
        ));
    }
    let encoded = meta.len();
    let open = || Ok(BufReader::new(File::open(path)?));
    decode_within_budget(
        open,
        ImageFormat::from_path(path).ok(),
        encoded,
        size,
        finish,
    )
}

/// An image held in memory (an upload) as `size` x `size` RGB bytes, as [`decode_file`] does.
pub fn decode_bytes(bytes: &[u8], size: usize) -> Result<Vec<u8>, DecodeError> {
    let finish = |image| resized(image, size);
    decode_within_budget(
        || Ok(Cursor::new(bytes)),
        None,
        bytes.len() as u64,
        size,
        &finish,
    )
}

/// Decode what `open` reads (`encoded` bytes long; `named` is the format its file name says,
/// which its first bytes override): its header is read first, what decoding it
/// needs is reserved from [`DECODE_BUDGET`] (waiting while other images hold it), and an image that
/// would need more than [`IMAGE_MEMORY`] is refused before any pixel is allocated.
fn decode_within_budget<R: BufRead + Seek>(
    open: impl Fn() -> std::io::Result<R>,
    named: Option<ImageFormat>,
    encoded: u64,
    size: usize,
    finish: &dyn Fn(DynamicImage) -> Vec<u8>,
) -> Result<Vec<u8>, DecodeError> {
    let target = size as u64;
    let mut reader = ImageReader::new(open()?);
    if let Some(format) = named {
        reader.set_format(format);
    }
    let mut reader = reader.with_guessed_format()?;
    // A header jpeg-decoder cannot read is left to the image crate, which says what is wrong.
    let jpeg = match reader.format() {
        Some(ImageFormat::Jpeg) => JpegHeader::read(open()?).ok(),
        _ => None,
    };
    if let Some(header) = jpeg.as_ref().filter(|h| encoded < h.least_encoded_bytes()) {
        return Err(DecodeError::Unreadable(format!(
            "its header claims {}x{} pixels but the file holds only {encoded} bytes, fewer \
             than any JPEG that size (at least {})",
            header.width,
            header.height,
            header.least_encoded_bytes()
        )));
    }
    if let Some((header, k)) = jpeg.as_ref().and_then(|h| Some((h, h.reduction(target)?))) {
        let (w, h) = header.reduced_sides(k);
        // The decoder's planes and its output, at the reduced size.
        let decoded = 2 * w * h * header.components + header.coefficient_bytes();
        let rgb = if header.components == 3 { 0 } else { w * h * 3 };
        let needed = decoded + rgb + resize_bytes(w, target);
        let _reserved = reserve(needed, header.width, header.height)?;
        let image = decode_reduced(open()?, header, k).map_err(DecodeError::Unreadable)?;
        return Ok(finish(image));
    }
    reader.limits(limits());
    let decoder = reader.into_decoder()?;
    let (width, height) = decoder.dimensions();
    let (w, h) = (u64::from(width), u64::from(height));
    let rgb = if decoder.color_type() == ColorType::Rgb8 {
        0
    } else {
        w * h * 3
    };
    // The JPEG decoder holds the whole file, and a progressive one its coefficients.
    let jpeg_extra = jpeg.map_or(0, |h| encoded + h.coefficient_bytes());
    let needed = decoder.total_bytes() + rgb + resize_bytes(w, target) + jpeg_extra;
    let _reserved = reserve(needed, w, h)?;
    Ok(finish(DynamicImage::from_decoder(decoder)?))
}

/// What the image crate's decoders may allocate: no side over 65,535 pixels, no buffer over
/// [`IMAGE_MEMORY`] (checked by each decoder against its header).
fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(u32::from(u16::MAX));
    limits.max_image_height = Some(u32::from(u16::MAX));
    limits.max_alloc = Some(IMAGE_MEMORY);
    limits
}

/// The resize's intermediate: one RGBA f32 row of the source width per output row, and the
/// output itself.
fn resize_bytes(source_width: u64, size: u64) -> u64 {
    source_width * size * 16 + size * size * 3
}

/// `needed` bytes of the decoding budget for a `width` x `height` image, or why not.
fn reserve(needed: u64, width: u64, height: u64) -> Result<Reservation<'static>, DecodeError> {
    if needed > IMAGE_MEMORY {
        return Err(DecodeError::TooBig(format!(
            "{width}x{height} pixels would need {} MiB, over the {} MiB one image may use",
            needed >> 20,
            IMAGE_MEMORY >> 20
        )));
    }
    Ok(DECODE_BUDGET.reserve(needed))
}

/// The image as `size` x `size` RGB bytes: the plain resize every unaugmented image gets.
pub fn resized(image: DynamicImage, size: usize) -> Vec<u8> {
    let rgb = image.into_rgb8();
    let side = size as u32;
    image::imageops::resize(&rgb, side, side, FilterType::Triangle).into_raw()
}

/// The words a model card uses for what [`decode_file`] does.
pub const DECODING: &str =
    "any image file, converted to RGB and resized to image_size x image_size (bilinear, no crop)";

/// Bumped whenever decoding or resizing changes the pixels a file gives: activations cached
/// from another version's pixels are not reused.
pub const PIXELS_VERSION: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn write_png(path: &Path, w: u32, h: u32, gray: bool) {
        if gray {
            image::GrayImage::from_pixel(w, h, image::Luma([200]))
                .save(path)
                .unwrap();
        } else {
            image::RgbaImage::from_pixel(w, h, image::Rgba([10, 20, 30, 255]))
                .save(path)
                .unwrap();
        }
    }

    #[test]
    fn decodes_any_size_and_colour_type_and_skips_what_is_not_an_image() {
        let dir = tempfile::tempdir().unwrap();
        let paths = [
            dir.path().join("a.png"),
            dir.path().join("b.png"),
            dir.path().join("c.jpg"),
            dir.path().join("d.jpg"),
        ];
        write_png(&paths[0], 40, 20, true);
        write_png(&paths[1], 7, 9, false);
        std::fs::write(&paths[2], b"this is a text file named .jpg").unwrap();
        let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/footwear/boot/boot_0030.jpg");
        let bytes = std::fs::read(real).unwrap();
        std::fs::write(&paths[3], &bytes[..bytes.len() / 3]).unwrap(); // truncated JPEG
        let results: Vec<_> = paths.iter().map(|p| decode_file(p, 16)).collect();
        let (decoded, skipped): (Vec<_>, Vec<_>) =
            paths.iter().zip(&results).partition(|(_, r)| r.is_ok());
        let pixels: Vec<u8> = decoded
            .iter()
            .flat_map(|(_, r)| r.as_ref().unwrap().clone())
            .collect();
        assert_eq!(pixels.len(), decoded.len() * 16 * 16 * 3);
        assert_eq!(pixels[..3], [200, 200, 200], "grey expands to RGB");
        assert_eq!(
            pixels[16 * 16 * 3..16 * 16 * 3 + 3],
            [10, 20, 30],
            "alpha dropped"
        );
        // The text file is skipped; the truncated JPEG decodes (its missing rows filled in).
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(*skipped[0].0, paths[2]);
        let reason = skipped[0].1.as_ref().unwrap_err().to_string();
        assert!(reason.contains("Jpeg"), "{reason}");
        let kept: Vec<_> = decoded.iter().map(|(p, _)| (*p).clone()).collect();
        assert_eq!(kept, [paths[0].clone(), paths[1].clone(), paths[3].clone()]);
    }
}

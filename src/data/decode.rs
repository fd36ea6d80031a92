//! Decode and resize every image once, in parallel; files that are not images are skipped.

use super::Sample;
use image::imageops::FilterType;
use rayon::prelude::*;
use std::path::PathBuf;

/// Images decoded to RGB bytes, `size` x `size`, HWC, one after another.
pub struct DecodedImages {
    pub size: usize,
    /// The samples that decoded, in input order.
    pub samples: Vec<Sample>,
    /// `samples.len() * size * size * 3` bytes.
    pub pixels: Vec<u8>,
}

/// A file that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// Decode `samples` (any size and colour type) into `size` x `size` RGB with a bilinear filter
/// (widened when shrinking, like PIL's BILINEAR). `on_done` is called once per file.
pub fn decode_all(
    samples: &[Sample],
    size: usize,
    on_done: &(dyn Fn() + Sync),
) -> (DecodedImages, Vec<Skipped>) {
    let results: Vec<Result<Vec<u8>, String>> = samples
        .par_iter()
        .map(|sample| {
            let result = decode_one(sample, size);
            on_done();
            result
        })
        .collect();
    let mut decoded = DecodedImages {
        size,
        samples: Vec::with_capacity(samples.len()),
        pixels: Vec::with_capacity(samples.len() * size * size * 3),
    };
    let mut skipped = Vec::new();
    for (sample, result) in samples.iter().zip(results) {
        match result {
            Ok(pixels) => {
                decoded.samples.push(sample.clone());
                decoded.pixels.extend_from_slice(&pixels);
            }
            Err(reason) => skipped.push(Skipped {
                path: sample.path.clone(),
                reason,
            }),
        }
    }
    (decoded, skipped)
}

fn decode_one(sample: &Sample, size: usize) -> Result<Vec<u8>, String> {
    decode_file(&sample.path, size)
}

/// One image file as `size` x `size` RGB bytes (HWC), exactly as training saw its images.
pub fn decode_file(path: &std::path::Path, size: usize) -> Result<Vec<u8>, String> {
    let reader = image::ImageReader::open(path).map_err(|e| e.to_string())?;
    let reader = reader.with_guessed_format().map_err(|e| e.to_string())?;
    Ok(resized(reader.decode().map_err(|e| e.to_string())?, size))
}

/// An image held in memory (an upload) as `size` x `size` RGB bytes, as [`decode_file`] does.
pub fn decode_bytes(bytes: &[u8], size: usize) -> Result<Vec<u8>, String> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes));
    let reader = reader.with_guessed_format().map_err(|e| e.to_string())?;
    Ok(resized(reader.decode().map_err(|e| e.to_string())?, size))
}

fn resized(image: image::DynamicImage, size: usize) -> Vec<u8> {
    let rgb = image.to_rgb8();
    let side = size as u32;
    image::imageops::resize(&rgb, side, side, FilterType::Triangle).into_raw()
}

/// The words a model card uses for what [`decode_file`] does.
pub const DECODING: &str =
    "any image file, converted to RGB and resized to image_size x image_size (bilinear, no crop)";

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
        let samples: Vec<Sample> = paths
            .iter()
            .map(|p| Sample {
                path: p.clone(),
                label: 0,
            })
            .collect();
        let (decoded, skipped) = decode_all(&samples, 16, &|| {});
        assert_eq!(decoded.pixels.len(), decoded.samples.len() * 16 * 16 * 3);
        assert_eq!(decoded.samples[0].path, paths[0]);
        assert_eq!(decoded.pixels[..3], [200, 200, 200], "grey expands to RGB");
        assert_eq!(
            decoded.pixels[16 * 16 * 3..16 * 16 * 3 + 3],
            [10, 20, 30],
            "alpha dropped"
        );
        // The text file is skipped; the truncated JPEG decodes (its missing rows filled in).
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].path, paths[2]);
        assert!(skipped[0].reason.contains("Jpeg"), "{}", skipped[0].reason);
        let kept: Vec<_> = decoded.samples.iter().map(|s| s.path.clone()).collect();
        assert_eq!(kept, [paths[0].clone(), paths[1].clone(), paths[3].clone()]);
    }
}

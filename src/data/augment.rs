//! Augmented views of an image, drawn as a view set says and seeded by the image's content and
//! the view's number, so a view is the same pixels in every run, process and study.

use super::decode::{decode_file_as, DecodeError};
use crate::trial::ViewSet;
use image::imageops::{self, FilterType};
use image::{DynamicImage, RgbImage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Bumped whenever drawing a view changes for the same seed: cached views of another version
/// are not reused (their identities differ).
const VIEWS_VERSION: u32 = 1;

/// The identity of view `number` of `set` of the image whose file has SHA-256 `image`: also the
/// seed its random draws come from.
pub fn view_id(image: &[u8; 32], set: &ViewSet, number: usize) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(format!(
        "gridsearch view {VIEWS_VERSION}\n{}\n{number}\n",
        set.describe()
    ));
    hasher.update(image);
    hasher.finalize().into()
}

/// The view with identity `id` (see [`view_id`]) of the image file at `path`, as `size` x
/// `size` RGB bytes (HWC), decoded within the same memory budget as [`super::decode::decode_file`].
pub fn decode_view(
    path: &Path,
    size: usize,
    set: &ViewSet,
    id: &[u8; 32],
) -> Result<Vec<u8>, DecodeError> {
    decode_file_as(path, size, &|image| draw_view(image, size, set, id))
}

/// Crop (random resized crop), resize, mirror, then jitter the colours, in that order, each
/// from the random stream seeded by `seed`.
pub fn draw_view(image: DynamicImage, size: usize, set: &ViewSet, seed: &[u8; 32]) -> Vec<u8> {
    let mut rng = StdRng::from_seed(*seed);
    let rgb = image.into_rgb8();
    let (x, y, w, h) = random_crop(rgb.width(), rgb.height(), set.crop, &mut rng);
    let cropped = imageops::crop_imm(&rgb, x, y, w, h).to_image();
    let side = size as u32;
    let mut view = imageops::resize(&cropped, side, side, FilterType::Triangle);
    if set.hflip && rng.random_bool(0.5) {
        imageops::flip_horizontal_in_place(&mut view);
    }
    if set.colour > 0.0 {
        jitter(&mut view, set.colour, &mut rng);
    }
    view.into_raw()
}

/// A rectangle of a `width` x `height` image keeping a share of its area drawn from
/// [`least`, 1] and an aspect ratio drawn log-uniformly from [3/4, 4/3] (as torchvision's
/// `RandomResizedCrop`); the whole image when `least` is 1 or ten draws do not fit.
fn random_crop(width: u32, height: u32, least: f64, rng: &mut StdRng) -> (u32, u32, u32, u32) {
    if least >= 1.0 {
        return (0, 0, width, height);
    }
    let area = f64::from(width) * f64::from(height);
    let (low, high) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let share = rng.random_range(least..=1.0);
        let ratio = rng.random_range(low..=high).exp();
        let w = (area * share * ratio).sqrt().round() as u32;
        let h = (area * share / ratio).sqrt().round() as u32;
        if (1..=width).contains(&w) && (1..=height).contains(&h) {
            let x = rng.random_range(0..=width - w);
            let y = rng.random_range(0..=height - h);
            return (x, y, w, h);
        }
    }
    (0, 0, width, height)
}

/// Scale brightness, then contrast (about the mean grey), then saturation (about each pixel's
/// grey) by factors drawn from [1 - strength, 1 + strength].
fn jitter(image: &mut RgbImage, strength: f64, rng: &mut StdRng) {
    let mut factor = || rng.random_range(1.0 - strength..=1.0 + strength) as f32;
    let (brightness, contrast, saturation) = (factor(), factor(), factor());
    let grey = |p: &[f32; 3]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
    let mut pixels: Vec<[f32; 3]> = image
        .pixels()
        .map(|p| p.0.map(|c| f32::from(c) * brightness))
        .collect();
    let mean = pixels.iter().map(grey).sum::<f32>() / pixels.len().max(1) as f32;
    for p in &mut pixels {
        *p = p.map(|c| mean + (c - mean) * contrast);
        let g = grey(p);
        *p = p.map(|c| g + (c - g) * saturation);
    }
    for (out, p) in image.pixels_mut().zip(pixels) {
        out.0 = p.map(|c| c.round().clamp(0.0, 255.0) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::decode::resized as unchanged;
    use crate::digest::file_sha256;

    fn photo() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/footwear/sandal/sandal_0102.jpg")
    }

    const ALL: ViewSet = ViewSet {
        hflip: true,
        crop: 0.5,
        colour: 0.3,
    };

    #[test]
    fn a_view_is_the_same_pixels_every_time_and_views_differ() {
        let sha = file_sha256(&photo()).unwrap();
        let view = |set: &ViewSet, n| decode_view(&photo(), 64, set, &view_id(&sha, set, n));
        let first = view(&ALL, 0).unwrap();
        assert_eq!(first.len(), 64 * 64 * 3);
        assert_eq!(first, view(&ALL, 0).unwrap(), "same seed, same pixels");
        let others: Vec<Vec<u8>> = (1..4).map(|n| view(&ALL, n).unwrap()).collect();
        assert!(
            others.iter().all(|o| *o != first),
            "each number its own view"
        );
        let flip_only = ViewSet {
            crop: 1.0,
            colour: 0.0,
            ..ALL
        };
        assert_ne!(
            view(&flip_only, 0).unwrap(),
            first,
            "another set, another view"
        );
    }

    #[test]
    fn a_set_that_changes_nothing_gives_the_plain_decode() {
        let none = ViewSet {
            hflip: false,
            crop: 1.0,
            colour: 0.0,
        };
        let image = image::open(photo()).unwrap();
        let seed = [7u8; 32];
        assert_eq!(
            draw_view(image.clone(), 48, &none, &seed),
            unchanged(image, 48)
        );
    }

    #[test]
    fn a_mirrored_view_is_the_plain_decode_mirrored() {
        let flip = ViewSet {
            hflip: true,
            crop: 1.0,
            colour: 0.0,
        };
        let image = image::open(photo()).unwrap();
        let plain = image::RgbImage::from_raw(32, 32, unchanged(image.clone(), 32)).unwrap();
        let mirrored = imageops::flip_horizontal(&plain).into_raw();
        let views: Vec<Vec<u8>> = (0..16u8)
            .map(|n| draw_view(image.clone(), 32, &flip, &[n; 32]))
            .collect();
        assert!(views
            .iter()
            .all(|v| *v == plain.as_raw()[..] || *v == mirrored));
        let flipped = views.iter().filter(|v| **v == mirrored).count();
        assert!((3..=13).contains(&flipped), "about half: {flipped} of 16");
    }

    #[test]
    fn crops_keep_at_least_the_share_asked_and_fit_the_image() {
        let mut rng = StdRng::from_seed([1; 32]);
        for _ in 0..200 {
            let (x, y, w, h) = random_crop(136, 102, 0.6, &mut rng);
            assert!(x + w <= 136 && y + h <= 102);
            let share = f64::from(w * h) / (136.0 * 102.0);
            assert!(share >= 0.6 * 0.97, "{share}");
        }
        assert_eq!(random_crop(136, 102, 1.0, &mut rng), (0, 0, 136, 102));
    }
}

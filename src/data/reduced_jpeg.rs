//! Big JPEGs decoded at reduced scale (1/2, 1/4 or 1/8, by the DCT, with `jpeg-decoder`), so a
//! camera photo never needs its full-size pixels in memory just to be shrunk to a few hundred.
//!
//! Only JPEGs over [`FULL_DECODE_PIXELS`] are reduced, and only as far as keeps both sides at
//! least [`MIN_OVERSAMPLING`] times the target size: the bilinear resize that follows then still
//! averages several decoded pixels into each output pixel, so the output barely moves (tested
//! on a 6000 x 4000 photo below). Every smaller JPEG decodes in full, as it always did.

use image::DynamicImage;
use jpeg_decoder::{CodingProcess, Decoder, ImageInfo, PixelFormat};
use std::io::Read;

/// JPEGs of up to this many pixels (4096 x 4096) decode in full, bit-identical to before.
pub const FULL_DECODE_PIXELS: u64 = 4096 * 4096;

/// A reduced decode keeps both sides at least this many times the target size.
pub const MIN_OVERSAMPLING: u64 = 4;

/// What a JPEG's header says about it.
pub struct JpegHeader {
    pub width: u64,
    pub height: u64,
    pub components: u64,
    pub progressive: bool,
    /// 8-bit grey or RGB output, which the reduced decode supports (CMYK and 16-bit do not).
    pub reducible: bool,
}

impl JpegHeader {
    /// The header of the JPEG `reader` starts with; no pixel is decoded.
    pub fn read(reader: impl Read) -> Result<JpegHeader, String> {
        let mut decoder = Decoder::new(reader);
        decoder
            .read_info()
            .map_err(|e| format!("JPEG header: {e}"))?;
        let info = decoder.info().ok_or("JPEG header: no frame")?;
        Ok(JpegHeader::from_info(&info))
    }

    fn from_info(info: &ImageInfo) -> JpegHeader {
        JpegHeader {
            width: info.width.into(),
            height: info.height.into(),
            components: info.pixel_format.pixel_bytes() as u64,
            progressive: info.coding_process == CodingProcess::DctProgressive,
            reducible: matches!(info.pixel_format, PixelFormat::L8 | PixelFormat::RGB24),
        }
    }

    /// The fewest bytes a JPEG of this size can hold: every 8 x 8 block of its first component
    /// codes its DC coefficient in at least one bit (baseline or progressive, Huffman-coded).
    /// A file shorter than this claims more pixels than it carries: a decompression bomb or a
    /// truncated file, whose decoders would otherwise invent the missing pixels.
    pub fn least_encoded_bytes(&self) -> u64 {
        self.width.div_ceil(8) * self.height.div_ceil(8) / 8
    }

    /// Bytes a progressive JPEG's decoder keeps for its coefficients (16 bits per sample at full
    /// size, whatever the output scale); nothing for a sequential one.
    pub fn coefficient_bytes(&self) -> u64 {
        if self.progressive {
            self.width * self.height * self.components * 2
        } else {
            0
        }
    }

    /// The denominator (2, 4 or 8) to decode at for `size` x `size` output, or None for a
    /// full decode.
    pub fn reduction(&self, size: u64) -> Option<u64> {
        if !self.reducible || self.width * self.height <= FULL_DECODE_PIXELS {
            return None;
        }
        let shortest = self.width.min(self.height);
        [8, 4, 2]
            .into_iter()
            .find(|&k| shortest.div_ceil(k) >= MIN_OVERSAMPLING * size)
    }

    /// Output sides at `1/k` scale, as the decoder rounds them.
    pub fn reduced_sides(&self, k: u64) -> (u64, u64) {
        (self.width.div_ceil(k), self.height.div_ceil(k))
    }
}

/// The JPEG `reader` holds, decoded at `1/k` scale (k from [`JpegHeader::reduction`]).
pub fn decode_reduced(
    reader: impl Read,
    header: &JpegHeader,
    k: u64,
) -> Result<DynamicImage, String> {
    let failed = |e: jpeg_decoder::Error| format!("JPEG decoded at 1/{k} scale: {e}");
    let (width, height) = header.reduced_sides(k);
    let mut decoder = Decoder::new(reader);
    // Asking for exactly the 1/k sides makes the decoder choose 1/k (its smallest scale that
    // reaches them).
    let (w, h) = decoder.scale(width as u16, height as u16).map_err(failed)?;
    let pixels = decoder.decode().map_err(failed)?;
    let info = decoder.info().ok_or("JPEG: no frame")?;
    let (w, h) = (u32::from(w), u32::from(h));
    let image = match info.pixel_format {
        PixelFormat::L8 => image::GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8),
        PixelFormat::RGB24 => image::RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
        other => {
            return Err(format!(
                "JPEG: {other:?} cannot be decoded at reduced scale"
            ))
        }
    };
    image.ok_or_else(|| format!("JPEG decoded at 1/{k} scale: fewer pixels than {w}x{h}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(width: u64, height: u64) -> JpegHeader {
        JpegHeader {
            width,
            height,
            components: 3,
            progressive: false,
            reducible: true,
        }
    }

    #[test]
    fn only_jpegs_over_the_threshold_are_reduced_and_never_below_four_times_the_target() {
        assert_eq!(header(4096, 4096).reduction(224), None, "at the threshold");
        assert_eq!(
            header(6000, 4000).reduction(224),
            Some(4),
            "1500x1000 >= 896"
        );
        assert_eq!(header(6000, 4000).reduction(64), Some(8), "750x500 >= 256");
        assert_eq!(
            header(6000, 4000).reduction(1024),
            None,
            "2000 < 4096 at 1/2"
        );
        let cmyk = JpegHeader {
            reducible: false,
            ..header(6000, 4000)
        };
        assert_eq!(cmyk.reduction(224), None);
        assert_eq!(
            header(13_000, 13_000).least_encoded_bytes(),
            1625 * 1625 / 8
        );
    }
}

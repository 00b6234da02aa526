//! Decoding input images and encoding output, with the format-specific choices in one place.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder, ImageFormat, ImageReader, Limits, RgbaImage};
use imagemcp_core::Error;
use imagemcp_core::image_params::OutputFormat;

/// The largest edge and pixel count the offline model draws or accepts: the catalog's flexible
/// size limits, which also bound memory (8.3 million pixels is 33 MB of RGBA).
pub(super) const MAX_EDGE: u32 = 3840;
pub(super) const MAX_PIXELS: u64 = 8_294_400;

/// The JPEG quality used when the request sets no `output_compression`.
const DEFAULT_JPEG_QUALITY: u8 = 90;

/// Checks an output size before any memory is allocated for it.
pub(super) fn check_size(width: u32, height: u32) -> Result<(), Error> {
    if width == 0
        || height == 0
        || width > MAX_EDGE
        || height > MAX_EDGE
        || u64::from(width) * u64::from(height) > MAX_PIXELS
    {
        return Err(Error::invalid(
            "size",
            format!(
                "{width}x{height} is outside what the offline model draws: edges 1 to {MAX_EDGE} px, at most {MAX_PIXELS} pixels"
            ),
        ));
    }
    Ok(())
}

/// Decodes a PNG, JPEG or WebP image (whatever its bytes say it is) to RGBA. Errors name `field`.
pub(super) fn decode(
    bytes: &[u8],
    field: &str,
    only: Option<ImageFormat>,
) -> Result<RgbaImage, Error> {
    let bad = |why: String| Error::invalid(field, why);
    let mut reader = ImageReader::new(Cursor::new(bytes));
    match only {
        Some(format) => reader.set_format(format),
        None => {
            reader = reader
                .with_guessed_format()
                .map_err(|e| bad(format!("could not be read: {e}")))?;
            match reader.format() {
                Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP) => {}
                _ => return Err(bad("is not a PNG, JPEG or WebP image".to_owned())),
            }
        }
    }
    // Bound the decoder before it allocates: a small file can claim an enormous canvas.
    let mut limits = Limits::default();
    limits.max_image_width = Some(4 * MAX_EDGE);
    limits.max_image_height = Some(4 * MAX_EDGE);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| bad(format!("could not be decoded: {e}")))?;
    Ok(image.to_rgba8())
}

/// Encodes RGBA pixels. `opaque` drops the alpha channel (the pixels must already be opaque, or
/// flattened by the caller); JPEG is always opaque. `compression` is JPEG's quality.
pub(super) fn encode(
    img: &RgbaImage,
    format: OutputFormat,
    compression: Option<u8>,
    opaque: bool,
) -> Result<Vec<u8>, Error> {
    let (w, h) = img.dimensions();
    let rgb;
    let (data, colour) = if opaque || format == OutputFormat::Jpeg {
        rgb = img
            .pixels()
            .flat_map(|p| [p.0[0], p.0[1], p.0[2]])
            .collect::<Vec<u8>>();
        (rgb.as_slice(), ExtendedColorType::Rgb8)
    } else {
        (img.as_raw().as_slice(), ExtendedColorType::Rgba8)
    };
    let mut out = Vec::new();
    let result = match format {
        OutputFormat::Png => PngEncoder::new(&mut out).write_image(data, w, h, colour),
        OutputFormat::Jpeg => {
            let quality = compression.unwrap_or(DEFAULT_JPEG_QUALITY).clamp(1, 100);
            JpegEncoder::new_with_quality(&mut out, quality).write_image(data, w, h, colour)
        }
        // The image crate's WebP encoder is lossless only, so `compression` does not apply.
        OutputFormat::Webp => WebPEncoder::new_lossless(&mut out).write_image(data, w, h, colour),
    };
    result.map_err(Error::internal)?;
    Ok(out)
}

/// Composites RGBA pixels over a solid colour, leaving every pixel opaque.
pub(super) fn flatten(img: &mut RgbaImage, matte: [u8; 3]) {
    for p in img.pixels_mut() {
        let a = u32::from(p.0[3]);
        for (v, m) in p.0.iter_mut().zip(matte) {
            *v = ((u32::from(*v) * a + u32::from(m) * (255 - a) + 127) / 255) as u8;
        }
        p.0[3] = 255;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_bounded() {
        assert!(check_size(3840, 2160).is_ok());
        assert!(check_size(64, 64).is_ok());
        for (w, h) in [(0, 10), (3856, 16), (3840, 3840)] {
            assert!(
                matches!(check_size(w, h), Err(Error::Invalid { field, .. }) if field == "size"),
                "{w}x{h}"
            );
        }
    }

    #[test]
    fn garbage_names_the_field() {
        let err = decode(b"not an image", "image", None).unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "image"),
            "{err}"
        );
        let err = decode(
            b"\x89PNG\r\n\x1a\ntruncated",
            "mask",
            Some(ImageFormat::Png),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "mask"),
            "{err}"
        );
    }

    #[test]
    fn every_format_round_trips_its_size() {
        let img = RgbaImage::from_pixel(24, 16, image::Rgba([200, 10, 10, 128]));
        for format in OutputFormat::ALL {
            let bytes = encode(&img, *format, Some(80), false).unwrap();
            assert_eq!(OutputFormat::sniff(&bytes), Some(*format));
            let back = decode(&bytes, "image", None).unwrap();
            assert_eq!(back.dimensions(), (24, 16));
        }
        let mut flat = img.clone();
        flatten(&mut flat, [255, 255, 255]);
        assert_eq!(flat.get_pixel(0, 0).0, [227, 132, 132, 255]);
    }
}

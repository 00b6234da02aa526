//! Pixel work the application does itself: checking uploads, reading dimensions, and making the
//! small previews returned inline in chat clients.

use std::io::Cursor;

use base64::Engine;
use image::{DynamicImage, GenericImageView, ImageReader};
use imagemcp_core::Error;
use imagemcp_core::image_params::OutputFormat;
use imagemcp_core::model::InputImage;

/// Decodes standard or URL-safe base64, with or without padding, or a `data:` URL.
pub fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, Error> {
    let text = text.trim();
    let payload = match text.strip_prefix("data:") {
        Some(rest) => rest.split_once(',').map(|(_, data)| data).unwrap_or(""),
        None => text,
    };
    let cleaned: String = payload.chars().filter(|c| !c.is_whitespace()).collect();
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines
        .iter()
        .find_map(|engine| engine.decode(&cleaned).ok())
        .ok_or_else(|| Error::invalid(field, "is not valid base64"))
}

pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The width and height of an encoded image, reading only its header.
pub fn dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

/// Checks an uploaded image: size limit, a supported format (by content, not by claim), and that
/// it decodes. Returns it as a model input.
pub fn check_upload(field: &str, bytes: Vec<u8>, max_bytes: usize) -> Result<InputImage, Error> {
    if bytes.is_empty() {
        return Err(Error::invalid(field, "is empty"));
    }
    if bytes.len() > max_bytes {
        return Err(Error::invalid(
            field,
            format!(
                "is {} bytes; the limit is {} MB",
                bytes.len(),
                max_bytes / (1024 * 1024)
            ),
        ));
    }
    let format = OutputFormat::sniff(&bytes)
        .ok_or_else(|| Error::invalid(field, "is not a PNG, JPEG or WebP image"))?;
    let (w, h) = dimensions(&bytes)
        .ok_or_else(|| Error::invalid(field, "could not be decoded as an image"))?;
    if w == 0 || h == 0 || u64::from(w) * u64::from(h) > 64_000_000 {
        return Err(Error::invalid(
            field,
            format!("has unsupported dimensions {w}x{h}"),
        ));
    }
    Ok(InputImage { bytes, format })
}

/// Checks a mask against the image it applies to: a PNG of exactly the same dimensions.
pub fn check_mask(mask: &[u8], image: &InputImage) -> Result<(), Error> {
    if OutputFormat::sniff(mask) != Some(OutputFormat::Png) {
        return Err(Error::invalid(
            "mask",
            "must be a PNG with an alpha channel",
        ));
    }
    let mask_dims =
        dimensions(mask).ok_or_else(|| Error::invalid("mask", "could not be decoded"))?;
    let image_dims =
        dimensions(&image.bytes).ok_or_else(|| Error::invalid("image", "could not be decoded"))?;
    if mask_dims != image_dims {
        return Err(Error::invalid(
            "mask",
            format!(
                "is {}x{} but the image is {}x{}; they must have the same dimensions",
                mask_dims.0, mask_dims.1, image_dims.0, image_dims.1
            ),
        ));
    }
    Ok(())
}

/// The dimensions of a preview of a `w`x`h` image whose longest edge is at most `max_edge`.
fn preview_dimensions(w: u32, h: u32, max_edge: u32) -> (u32, u32) {
    if w.max(h) <= max_edge {
        return (w, h);
    }
    let scale =
        |edge: u32| ((u64::from(edge) * u64::from(max_edge)) / u64::from(w.max(h))).max(1) as u32;
    (scale(w), scale(h))
}

/// A preview for chat: the longest edge at most `max_edge`, PNG when the image has transparency
/// (to keep it), JPEG otherwise (small). Returns the bytes and their MIME type.
///
/// This runs on the request path of every generation, so natively it uses the SIMD resizer of
/// `fast_image_resize` and the SIMD JPEG encoder of `jpeg-encoder`: together about four times
/// faster than the `image` crate's own `thumbnail` and JPEG encoder (see `scripts/bench`). The
/// Worker resizes with the `image` crate instead (see [`resize`]); the output's dimensions and
/// format are the same on both.
pub fn preview(bytes: &[u8], max_edge: u32) -> Result<(Vec<u8>, &'static str), Error> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        Error::internal(format!("preview {what} failed: {e}"))
    };
    let img = image::load_from_memory(bytes).map_err(|e| failed("decoding", &e))?;
    let img = if img.color().has_alpha() {
        DynamicImage::ImageRgba8(img.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(img.into_rgb8())
    };
    let (w, h) = img.dimensions();
    let (pw, ph) = preview_dimensions(w, h, max_edge);
    let img = if (pw, ph) == (w, h) {
        img
    } else {
        resize(img, pw, ph).map_err(|e| failed("resizing", &e))?
    };
    let transparent = match &img {
        DynamicImage::ImageRgba8(rgba) => rgba.pixels().any(|p| p.0[3] < 255),
        _ => false,
    };
    let mut out = Vec::new();
    if transparent {
        use image::codecs::png::{CompressionType, FilterType, PngEncoder};
        let encoder =
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
        img.write_with_encoder(encoder)
            .map_err(|e| failed("encoding", &e))?;
        Ok((out, OutputFormat::Png.mime()))
    } else {
        let rgb = img.into_rgb8();
        jpeg_encoder::Encoder::new(&mut out, 82)
            .encode(
                rgb.as_raw(),
                pw as u16,
                ph as u16,
                jpeg_encoder::ColorType::Rgb,
            )
            .map_err(|e| failed("encoding", &e))?;
        Ok((out, OutputFormat::Jpeg.mime()))
    }
}

/// Resizes an RGB8 or RGBA8 image to `pw`x`ph` (Lanczos3) with `fast_image_resize`'s SIMD kernels.
#[cfg(not(target_arch = "wasm32"))]
fn resize(img: DynamicImage, pw: u32, ph: u32) -> Result<DynamicImage, String> {
    use fast_image_resize::{IntoImageView, Resizer, images::Image};
    let pixel_type = img.pixel_type().ok_or("unsupported pixel type")?;
    let mut dst = Image::new(pw, ph, pixel_type);
    Resizer::new()
        .resize(&img, &mut dst, None)
        .map_err(|e| e.to_string())?;
    let buffer = dst.into_vec();
    match img {
        DynamicImage::ImageRgba8(_) => {
            image::RgbaImage::from_raw(pw, ph, buffer).map(DynamicImage::ImageRgba8)
        }
        _ => image::RgbImage::from_raw(pw, ph, buffer).map(DynamicImage::ImageRgb8),
    }
    .ok_or_else(|| "buffer size mismatch".to_owned())
}

#[cfg(target_arch = "wasm32")]
fn resize(img: DynamicImage, pw: u32, ph: u32) -> Result<DynamicImage, String> {
    resize_portable(img, pw, ph)
}

/// The Worker's resizer: the `image` crate's own resampler (the crate is linked anyway, to decode),
/// Catmull-Rom, which is close to Lanczos3 for downscaling at two thirds of its taps.
/// `fast_image_resize` carries kernels for every pixel type, algorithm and CPU extension: 308 KB of
/// the gzipped bundle (measured), which kept it over its 1.5 MiB target; a preview is at most
/// `preview_max_edge` pixels a side, so the slower scalar path costs milliseconds. Natively it only
/// runs in tests, which compare it with the fast path.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn resize_portable(img: DynamicImage, pw: u32, ph: u32) -> Result<DynamicImage, String> {
    use image::imageops::{FilterType, resize};
    match img {
        DynamicImage::ImageRgba8(rgba) => Ok(DynamicImage::ImageRgba8(resize(
            &rgba,
            pw,
            ph,
            FilterType::CatmullRom,
        ))),
        DynamicImage::ImageRgb8(rgb) => Ok(DynamicImage::ImageRgb8(resize(
            &rgb,
            pw,
            ph,
            FilterType::CatmullRom,
        ))),
        _ => Err("unsupported pixel type".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, alpha: u8) -> Vec<u8> {
        let img = image::RgbaImage::from_pixel(w, h, image::Rgba([200, 10, 10, alpha]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn previews_shrink_and_keep_transparency() {
        let (bytes, mime) = preview(&png(1024, 512, 255), 256).unwrap();
        assert_eq!(mime, "image/jpeg");
        assert_eq!(dimensions(&bytes), Some((256, 128)));
        let (bytes, mime) = preview(&png(64, 64, 0), 256).unwrap();
        assert_eq!(mime, "image/png");
        assert_eq!(dimensions(&bytes), Some((64, 64)));
    }

    #[test]
    fn the_workers_resizer_matches_the_native_one() {
        // A gradient with an alpha ramp, so both channels layouts and real filtering are compared.
        let rgba = image::RgbaImage::from_fn(600, 400, |x, y| {
            image::Rgba([
                (x % 256) as u8,
                (y % 256) as u8,
                ((x + y) / 4 % 256) as u8,
                (y / 2) as u8,
            ])
        });
        for img in [
            DynamicImage::ImageRgba8(rgba.clone()),
            DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(rgba).into_rgb8()),
        ] {
            let fast = resize(img.clone(), 150, 100).unwrap();
            let portable = resize_portable(img, 150, 100).unwrap();
            assert_eq!(fast.dimensions(), portable.dimensions());
            assert_eq!(fast.color(), portable.color());
            let (a, b) = (fast.as_bytes(), portable.as_bytes());
            let mean = a
                .iter()
                .zip(b)
                .map(|(x, y)| x.abs_diff(*y) as u64)
                .sum::<u64>()
                / a.len() as u64;
            assert!(mean <= 3, "mean channel difference {mean}");
        }
        let gray = DynamicImage::ImageLuma8(image::GrayImage::new(4, 4));
        assert!(resize_portable(gray, 2, 2).is_err());
    }

    #[test]
    fn preview_dimensions_keep_the_aspect_ratio() {
        assert_eq!(preview_dimensions(1536, 1024, 512), (512, 341));
        assert_eq!(preview_dimensions(1024, 3072, 512), (170, 512));
        assert_eq!(preview_dimensions(300, 200, 512), (300, 200));
        assert_eq!(preview_dimensions(5000, 1, 512), (512, 1));
    }

    #[test]
    fn uploads_are_checked() {
        assert!(
            matches!(check_upload("image", b"hello".to_vec(), 100), Err(Error::Invalid { field, .. }) if field == "image")
        );
        assert!(
            check_upload("image", png(8, 8, 255), 10).is_err(),
            "over the size limit"
        );
        let ok = check_upload("image", png(8, 8, 255), 1 << 20).unwrap();
        assert!(check_mask(&png(8, 8, 0), &ok).is_ok());
        let err = check_mask(&png(9, 8, 0), &ok).unwrap_err().to_string();
        assert!(err.contains("mask") && err.contains("9x8"), "{err}");
    }

    #[test]
    fn base64_variants() {
        assert_eq!(decode_base64("f", "aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("f", "aGk").unwrap(), b"hi");
        assert_eq!(
            decode_base64("f", "data:image/png;base64,aGk=").unwrap(),
            b"hi"
        );
        assert!(decode_base64("f", "!!!").is_err());
    }
}

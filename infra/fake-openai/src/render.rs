//! Cheap stand-in images: a gradient seeded by the prompt, encoded in the requested format (with an
//! alpha channel for transparent backgrounds), and the inspection of uploaded images.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageDecoder, ImageEncoder, ImageReader};
use imagemcp_core::image_params::OutputFormat;

/// A stable 64-bit hash (FNV-1a), so the same prompt renders the same picture on every run.
pub(crate) fn seed(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// What to draw.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Canvas {
    pub(crate) seed: u64,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) format: OutputFormat,
    pub(crate) transparent: bool,
    pub(crate) compression: Option<u8>,
}

/// Renders and encodes one image.
pub(crate) fn render(c: Canvas) -> Result<Vec<u8>, String> {
    let [r0, g0, b0, r1, g1, b1, ..] = c.seed.to_le_bytes();
    let (w, h) = (c.width.max(1), c.height.max(1));
    let channels: usize = if c.transparent { 4 } else { 3 };
    let mut pixels = Vec::with_capacity(w as usize * h as usize * channels);
    let lerp = |a: u8, b: u8, t: u32, span: u32| -> u8 {
        let (a, b, t, span) = (
            i64::from(a),
            i64::from(b),
            i64::from(t),
            i64::from(span.max(1)),
        );
        u8::try_from(a + (b - a) * t / span).unwrap_or(0)
    };
    // The transparent variant keeps an opaque ellipse and clears the corners, so alpha really varies.
    let (cx, cy) = (i64::from(w) / 2, i64::from(h) / 2);
    let (rx2, ry2) = (
        (i64::from(w) / 2).pow(2).max(1),
        (i64::from(h) / 2).pow(2).max(1),
    );
    for y in 0..h {
        for x in 0..w {
            pixels.push(lerp(r0, r1, x, w));
            pixels.push(lerp(g0, g1, y, h));
            pixels.push(lerp(b0, b1, x + y, w + h));
            if c.transparent {
                let (dx, dy) = (i64::from(x) - cx, i64::from(y) - cy);
                let inside = dx * dx * ry2 + dy * dy * rx2 <= rx2 * ry2;
                pixels.push(if inside { 255 } else { 0 });
            }
        }
    }
    let colour = if c.transparent {
        ExtendedColorType::Rgba8
    } else {
        ExtendedColorType::Rgb8
    };
    let mut out = Vec::new();
    let result = match c.format {
        OutputFormat::Png => PngEncoder::new(&mut out).write_image(&pixels, w, h, colour),
        OutputFormat::Webp => {
            WebPEncoder::new_lossless(&mut out).write_image(&pixels, w, h, colour)
        }
        OutputFormat::Jpeg => {
            let quality = c.compression.unwrap_or(100).clamp(1, 100);
            JpegEncoder::new_with_quality(&mut out, quality).write_image(&pixels, w, h, colour)
        }
    };
    result.map_err(|e| e.to_string())?;
    Ok(out)
}

/// An uploaded image's format, dimensions and whether it has an alpha channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Inspected {
    pub(crate) format: OutputFormat,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) has_alpha: bool,
}

/// Reads an upload's header (not its pixels). Fails for anything but PNG, JPEG and WebP.
pub(crate) fn inspect(bytes: &[u8]) -> Result<Inspected, String> {
    let format = OutputFormat::sniff(bytes).ok_or("not a PNG, JPEG or WebP image")?;
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let decoder = reader
        .into_decoder()
        .map_err(|e| format!("unreadable image: {e}"))?;
    let (width, height) = decoder.dimensions();
    Ok(Inspected {
        format,
        width,
        height,
        has_alpha: decoder.color_type().has_alpha(),
    })
}

/// A plain description of an image for the fake's alt text: size and dominant colour.
pub(crate) fn describe(bytes: &[u8]) -> Result<String, String> {
    let img = image::load_from_memory(bytes).map_err(|e| format!("unreadable image: {e}"))?;
    let small = img.thumbnail(32, 32).to_rgb8();
    let n = u64::from(small.width()) * u64::from(small.height());
    let mut sum = [0u64; 3];
    for p in small.pixels() {
        for (s, v) in sum.iter_mut().zip(p.0) {
            *s += u64::from(v);
        }
    }
    let avg = sum.map(|s| s / n.max(1));
    let colour = match avg {
        [r, g, b] if r > 200 && g > 200 && b > 200 => "pale",
        [r, g, b] if r < 50 && g < 50 && b < 50 => "dark",
        [r, g, b] if r >= g && r >= b => "warm red",
        [r, g, b] if g >= r && g >= b => "green",
        _ => "cool blue",
    };
    Ok(format!(
        "An abstract gradient in mostly {colour} tones, {} by {} pixels, with no text or people.",
        img.width(),
        img.height()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canvas(format: OutputFormat, transparent: bool) -> Canvas {
        Canvas {
            seed: seed(&[b"a red fox"]),
            width: 64,
            height: 48,
            format,
            transparent,
            compression: None,
        }
    }

    #[test]
    fn renders_decodable_images_of_the_requested_size_and_format() {
        for format in OutputFormat::ALL {
            let bytes = render(canvas(*format, false)).unwrap();
            let info = inspect(&bytes).unwrap();
            assert_eq!((info.format, info.width, info.height), (*format, 64, 48));
            assert!(!info.has_alpha);
        }
    }

    #[test]
    fn transparent_images_have_clear_corners() {
        let bytes = render(canvas(OutputFormat::Png, true)).unwrap();
        let img = image::load_from_memory(&bytes).unwrap().to_rgba8();
        assert_eq!(img.get_pixel(0, 0).0[3], 0);
        assert_eq!(img.get_pixel(32, 24).0[3], 255);
    }

    #[test]
    fn same_prompt_same_picture() {
        assert_eq!(
            render(canvas(OutputFormat::Png, false)),
            render(canvas(OutputFormat::Png, false))
        );
        assert_ne!(seed(&[b"a"]), seed(&[b"b"]));
        assert_ne!(
            seed(&[b"ab", b""]),
            seed(&[b"a", b"b"]),
            "parts are delimited"
        );
    }

    #[test]
    fn refuses_non_images() {
        assert!(inspect(b"GIF89a....").is_err());
        assert!(inspect(b"\x89PNG\r\n\x1a\ntruncated").is_err());
        assert!(
            describe(&render(canvas(OutputFormat::Jpeg, false)).unwrap())
                .unwrap()
                .contains("64 by 48")
        );
    }
}

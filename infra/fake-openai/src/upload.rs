//! Checks on uploaded images, as the real API applies them: PNG, JPEG or WebP, under 50 MB, and a
//! mask that is a PNG with an alpha channel and the first image's dimensions.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::ApiError;
use crate::render::{Inspected, inspect};

/// The largest image an edit accepts.
pub(crate) const MAX_IMAGE_BYTES: usize = 50 * 1024 * 1024;
/// The largest mask an edit accepts.
pub(crate) const MAX_MASK_BYTES: usize = 4 * 1024 * 1024;
/// How many images one edit takes.
pub(crate) const MAX_IMAGES: usize = 16;

/// An upload that passed the checks.
#[derive(Clone, Debug)]
pub(crate) struct Upload {
    pub(crate) bytes: Vec<u8>,
    pub(crate) info: Inspected,
}

pub(crate) fn image(param: &str, bytes: Vec<u8>) -> Result<Upload, ApiError> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ApiError::invalid(
            param,
            "image_file_too_large",
            format!(
                "Invalid '{param}': the file is {} bytes; each image must be under 50 MB.",
                bytes.len()
            ),
        ));
    }
    let info = inspect(&bytes).map_err(|why| {
        ApiError::invalid(
            param,
            "invalid_image_format",
            format!("Invalid image file or mode for image {param}: {why}. Supported formats are 'image/png', 'image/jpeg' and 'image/webp'."),
        )
    })?;
    Ok(Upload { bytes, info })
}

pub(crate) fn mask(bytes: Vec<u8>, first: &Upload) -> Result<Upload, ApiError> {
    let bad = |message: String| ApiError::invalid("mask", "invalid_mask_image", message);
    if bytes.len() > MAX_MASK_BYTES {
        return Err(bad(format!(
            "Invalid mask: the file is {} bytes; a mask must be under 4 MB.",
            bytes.len()
        )));
    }
    let info = inspect(&bytes).map_err(|why| bad(format!("Invalid mask: {why}.")))?;
    if info.format != imagemcp_core::image_params::OutputFormat::Png {
        return Err(bad("Invalid mask: the mask must be a PNG.".into()));
    }
    if !info.has_alpha {
        return Err(bad("Invalid mask: the mask must have an alpha channel; its transparent pixels mark where to edit.".into()));
    }
    if (info.width, info.height) != (first.info.width, first.info.height) {
        return Err(bad(format!(
            "Invalid mask: the mask is {}x{} but the image is {}x{}; they must have the same dimensions.",
            info.width, info.height, first.info.width, first.info.height
        )));
    }
    Ok(Upload { bytes, info })
}

/// The bytes of a base64 `data:` URL. The fake has no network, so http(s) URLs are refused.
pub(crate) fn data_url(param: &str, url: &str) -> Result<Vec<u8>, ApiError> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(ApiError::invalid_value(
            param,
            format!(
                "Invalid '{param}': the fake OpenAI server accepts only base64 data URLs (it cannot fetch URLs)."
            ),
        ));
    };
    let Some((meta, data)) = rest.split_once(',') else {
        return Err(ApiError::invalid_value(
            param,
            format!("Invalid '{param}': malformed data URL."),
        ));
    };
    if !meta.ends_with(";base64") {
        return Err(ApiError::invalid_value(
            param,
            format!("Invalid '{param}': data URLs must be base64-encoded."),
        ));
    }
    STANDARD.decode(data.trim()).map_err(|e| {
        ApiError::invalid_value(
            param,
            format!("Invalid '{param}': bad base64 in data URL ({e})."),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Canvas, render};
    use imagemcp_core::image_params::OutputFormat;

    fn png(w: u32, h: u32, transparent: bool) -> Vec<u8> {
        render(Canvas {
            seed: 1,
            width: w,
            height: h,
            format: OutputFormat::Png,
            transparent,
            compression: None,
        })
        .unwrap()
    }

    #[test]
    fn masks_must_match_the_first_image() {
        let first = image("image", png(64, 64, false)).unwrap();
        assert!(mask(png(64, 64, true), &first).is_ok());
        let wrong_size = mask(png(32, 64, true), &first).unwrap_err();
        assert_eq!(wrong_size.param.as_deref(), Some("mask"));
        assert!(
            wrong_size.message.contains("32x64"),
            "{}",
            wrong_size.message
        );
        assert!(
            mask(png(64, 64, false), &first).is_err(),
            "no alpha channel"
        );
    }

    #[test]
    fn images_must_be_real_images() {
        let err = image("image[]", b"GIF89a".to_vec()).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("image[]"));
        assert_eq!(err.status.as_u16(), 400);
    }

    #[test]
    fn data_urls_decode() {
        assert_eq!(
            data_url("x", "data:image/png;base64,AAEC").unwrap(),
            vec![0, 1, 2]
        );
        assert!(data_url("x", "https://example.com/a.png").is_err());
        assert!(data_url("x", "data:image/png,raw").is_err());
    }
}

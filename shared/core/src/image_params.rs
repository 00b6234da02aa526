//! The parameters of an image request — size, quality, background, output format, style — parsed at
//! the edge. Whether a given model accepts a value is the catalog's business (`catalog.rs`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The requested size: `auto` or `WIDTHxHEIGHT` in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ImageSize {
    #[default]
    Auto,
    Fixed {
        width: u32,
        height: u32,
    },
}

impl ImageSize {
    /// The dimensions an `auto` request is rendered (and estimated) at.
    pub const AUTO_DIMENSIONS: (u32, u32) = (1024, 1024);

    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("auto") {
            return Ok(ImageSize::Auto);
        }
        let parsed = s
            .split_once(['x', 'X'])
            .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
            .filter(|(w, h)| *w > 0 && *h > 0);
        match parsed {
            Some((width, height)) => Ok(ImageSize::Fixed { width, height }),
            None => Err(Error::invalid(
                "size",
                format!("`{s}` is not `auto` or WIDTHxHEIGHT (e.g. 1024x1536)"),
            )),
        }
    }

    /// The pixel dimensions this size renders at.
    pub fn dimensions(self) -> (u32, u32) {
        match self {
            ImageSize::Auto => Self::AUTO_DIMENSIONS,
            ImageSize::Fixed { width, height } => (width, height),
        }
    }
}

impl fmt::Display for ImageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageSize::Auto => f.write_str("auto"),
            ImageSize::Fixed { width, height } => write!(f, "{width}x{height}"),
        }
    }
}

/// Declares a closed string enum with `parse`, `as_str`, `Display` and serde, from one list of
/// variants and wire names, so the names live in exactly one place.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal, default = $default:ident, { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The wire names, in [`Self::ALL`]'s order: what a JSON Schema lists as allowed.
            pub const NAMES: &'static [&'static str] = &[$($wire),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)+ }
            }

            pub fn parse(s: &str) -> Result<Self, Error> {
                s.parse()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($wire => Ok($name::$variant),)+
                    other => Err(Error::invalid(
                        $field,
                        format!("`{other}` is not one of: {}", [$($wire),+].join(", ")),
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// Rendering quality. `xhigh` and `max` exist on the 2.5 and 2.6 models only.
    Quality, "quality", default = Auto,
    { Low = "low", Medium = "medium", High = "high", XHigh = "xhigh", Max = "max", Auto = "auto" }
);

wire_enum!(
    /// Background treatment. `transparent` needs PNG or WebP output.
    Background, "background", default = Auto,
    { Transparent = "transparent", Opaque = "opaque", Auto = "auto" }
);

wire_enum!(
    /// The encoded format of the image.
    OutputFormat, "output_format", default = Png,
    { Png = "png", Jpeg = "jpeg", Webp = "webp" }
);

wire_enum!(
    /// The content filter's strictness on the model side.
    ModerationLevel, "moderation", default = Auto,
    { Auto = "auto", Low = "low" }
);

wire_enum!(
    /// A style preset: a phrase appended to the prompt so a team gets a consistent look without
    /// writing it every time.
    Style, "style", default = None,
    {
        None = "none", Photorealistic = "photorealistic", Illustration = "illustration",
        FlatVector = "flat_vector", Watercolor = "watercolor", Render3d = "3d_render",
        PixelArt = "pixel_art", LineArt = "line_art", Cinematic = "cinematic", Minimalist = "minimalist",
    }
);

impl OutputFormat {
    pub fn mime(self) -> &'static str {
        match self {
            OutputFormat::Png => "image/png",
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Webp => "image/webp",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Png => "png",
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Webp => "webp",
        }
    }

    pub fn supports_alpha(self) -> bool {
        !matches!(self, OutputFormat::Jpeg)
    }

    /// The format of a MIME type, for uploads.
    pub fn from_mime(mime: &str) -> Option<Self> {
        match mime {
            "image/png" => Some(OutputFormat::Png),
            "image/jpeg" | "image/jpg" => Some(OutputFormat::Jpeg),
            "image/webp" => Some(OutputFormat::Webp),
            _ => None,
        }
    }

    /// Sniffs the format from the first bytes of an encoded image.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(OutputFormat::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(OutputFormat::Jpeg)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(OutputFormat::Webp)
        } else {
            None
        }
    }
}

impl Style {
    /// The phrase this preset adds to a prompt, if any.
    pub fn phrase(self) -> Option<&'static str> {
        Some(match self {
            Style::None => return None,
            Style::Photorealistic => "photorealistic, natural lighting, high detail",
            Style::Illustration => "editorial illustration, clean shapes, balanced palette",
            Style::FlatVector => "flat vector art, solid colours, crisp edges, no gradients",
            Style::Watercolor => "soft watercolour painting on textured paper",
            Style::Render3d => "3D render, soft global illumination, studio lighting",
            Style::PixelArt => "pixel art, limited palette, crisp pixels",
            Style::LineArt => "monochrome line art, clean ink strokes",
            Style::Cinematic => "cinematic still, dramatic lighting, shallow depth of field",
            Style::Minimalist => "minimalist composition, generous negative space",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(ImageSize::parse("auto").unwrap(), ImageSize::Auto);
        assert_eq!(
            ImageSize::parse("1536x1024").unwrap().dimensions(),
            (1536, 1024)
        );
        for bad in ["", "big", "1024", "0x10", "10x", "-5x5", "1024x1024x1"] {
            assert!(
                matches!(ImageSize::parse(bad), Err(Error::Invalid { field, .. }) if field == "size"),
                "{bad}"
            );
        }
    }

    #[test]
    fn enums_parse_and_name_the_field() {
        assert_eq!(Quality::parse("HIGH").unwrap(), Quality::High);
        let err = Background::parse("clear").unwrap_err().to_string();
        assert!(
            err.contains("background") && err.contains("transparent"),
            "{err}"
        );
        assert_eq!(Style::parse("3d_render").unwrap(), Style::Render3d);
        assert_eq!(
            OutputFormat::sniff(b"\x89PNG\r\n\x1a\nrest"),
            Some(OutputFormat::Png)
        );
    }
}

//! Edits. The edited area is the whole image, or with a mask only the pixels whose mask alpha is
//! 0 (every other pixel is left exactly as it was). In it, the image is recoloured towards the
//! prompt's palette (or, for a transparent background under a mask, cleared), and the subject the
//! prompt names is drawn over it, sized to the area's bounding box.

use image::RgbaImage;

use super::colour::{BLACK, WHITE, luma, mix};
use super::intent::{self, Intent};
use super::raster::{Colour, blend, colour as paint};
use super::scene::{self, Frame};

/// How far the recolouring moves each pixel towards the palette (the rest keeps the original's
/// colour, so the picture stays recognisable).
const RECOLOUR_STRENGTH: f32 = 0.8;

pub(super) struct Edit<'a> {
    pub(super) intent: &'a Intent,
    pub(super) seed: u64,
    pub(super) detail: usize,
    /// A transparent background was asked for: a masked area is cleared rather than recoloured.
    pub(super) transparent: bool,
    /// The prompt names a subject, which is drawn over the edited area.
    pub(super) overlay: bool,
}

impl Edit<'_> {
    pub(super) fn apply(&self, img: &mut RgbaImage, mask: Option<&RgbaImage>) {
        let editable = |x: u32, y: u32| mask.is_none_or(|m| m.get_pixel(x, y).0[3] == 0);
        let (w, h) = img.dimensions();
        let bbox = match mask {
            Some(mask) => masked_bounds(mask),
            None if w > 0 && h > 0 => Some((0, 0, w - 1, h - 1)),
            None => None,
        };
        let Some((x0, y0, x1, y1)) = bbox else { return };

        let pal = intent::palette(self.intent, self.seed);
        let stops = [
            paint(mix(pal.background, BLACK, 0.3)),
            paint(pal.subject),
            paint(mix(pal.accent, WHITE, 0.5)),
        ];
        let clear = self.transparent && mask.is_some();
        for y in y0..=y1 {
            for x in x0..=x1 {
                if editable(x, y) {
                    let p = &mut img.get_pixel_mut(x, y).0;
                    if clear {
                        *p = [0; 4];
                    } else {
                        recolour(p, &stops);
                    }
                }
            }
        }

        if self.overlay {
            let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
            let frame = Frame {
                width: bw,
                height: bh,
                detail: self.detail,
                transparent: true,
            };
            let (layer, _) = scene::render(self.intent, self.seed, frame);
            for y in y0..=y1 {
                for x in x0..=x1 {
                    let i = ((y - y0) as usize * bw as usize + (x - x0) as usize) * 4;
                    match layer.px.get(i..i + 4) {
                        Some(src) if src[3] > 0 && editable(x, y) => {
                            let c: Colour = [src[0], src[1], src[2]].map(f32::from);
                            blend(&mut img.get_pixel_mut(x, y).0, c, f32::from(src[3]) / 255.0);
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// The bounding box `(x0, y0, x1, y1)` of the mask's fully transparent pixels, if any.
fn masked_bounds(mask: &RgbaImage) -> Option<(u32, u32, u32, u32)> {
    let mut bbox: Option<(u32, u32, u32, u32)> = None;
    for (x, y, p) in mask.enumerate_pixels() {
        if p.0[3] == 0 {
            bbox = Some(match bbox {
                None => (x, y, x, y),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
            });
        }
    }
    bbox
}

/// Maps a pixel's brightness onto the palette (shadows to the background's shade, mid-tones to
/// the subject colour, highlights to a tint of the accent), keeping its alpha.
fn recolour(p: &mut [u8; 4], stops: &[Colour; 3]) {
    let lerp =
        |a: Colour, b: Colour, t: f32| -> Colour { [0, 1, 2].map(|i| a[i] + (b[i] - a[i]) * t) };
    let l = f32::from(luma([p[0], p[1], p[2]])) / 255.0;
    let target = if l < 0.55 {
        lerp(stops[0], stops[1], l / 0.55)
    } else {
        lerp(stops[1], stops[2], (l - 0.55) / 0.45)
    };
    for (v, t) in p.iter_mut().zip(target) {
        *v = (f32::from(*v) + (t - f32::from(*v)) * RECOLOUR_STRENGTH + 0.5) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_transparent_edit_clears_only_the_masked_area() {
        let intent = Intent::from_prompt("a red heart");
        let mut img = RgbaImage::from_pixel(40, 40, image::Rgba([90, 90, 90, 255]));
        let mask = RgbaImage::from_fn(40, 40, |x, _| {
            image::Rgba([0, 0, 0, if x < 20 { 0 } else { 255 }])
        });
        Edit {
            intent: &intent,
            seed: 0,
            detail: 3,
            transparent: true,
            overlay: false,
        }
        .apply(&mut img, Some(&mask));
        assert_eq!(img.get_pixel(5, 5).0[3], 0);
        assert_eq!(img.get_pixel(30, 5).0, [90, 90, 90, 255]);
        let untouched = img.clone();
        let opaque = RgbaImage::from_pixel(40, 40, image::Rgba([0, 0, 0, 255]));
        Edit {
            intent: &intent,
            seed: 0,
            detail: 3,
            transparent: false,
            overlay: true,
        }
        .apply(&mut img, Some(&opaque));
        assert_eq!(
            img, untouched,
            "a mask with no transparent pixel edits nothing"
        );
    }
}

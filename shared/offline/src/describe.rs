//! Alt text from the pixels alone: size, orientation, the dominant colours named with the nearest
//! colour word, and whether the background is transparent. Deterministic and cheap (one pass).

use image::RgbaImage;

use super::colour::{Rgb, nearest_name};

/// Pixels with less alpha than this are ignored when counting colours.
const VISIBLE_ALPHA: u8 = 128;

/// The named colours of an image, most common first, each with the mean of its pixels and its
/// share of the visible pixels (0 to 1).
pub(super) fn dominant(img: &RgbaImage) -> Vec<(&'static str, Rgb, f32)> {
    // A 16x16x16 histogram first, so the nearest name is computed per bin (at most 4,096 times)
    // rather than per pixel.
    let mut bins = vec![[0u64; 4]; 4096];
    let mut visible = 0u64;
    for p in img.pixels() {
        let [r, g, b, a] = p.0;
        if a < VISIBLE_ALPHA {
            continue;
        }
        visible += 1;
        let bin = &mut bins
            [(usize::from(r >> 4) << 8) | (usize::from(g >> 4) << 4) | usize::from(b >> 4)];
        bin[0] += 1;
        bin[1] += u64::from(r);
        bin[2] += u64::from(g);
        bin[3] += u64::from(b);
    }
    // Per name: pixel count and channel sums, in first-seen order so ties break the same way.
    let mut names: Vec<(&'static str, [u64; 4])> = Vec::new();
    for bin in bins.iter().filter(|b| b[0] > 0) {
        let n = bin[0];
        let mean = [(bin[1] / n) as u8, (bin[2] / n) as u8, (bin[3] / n) as u8];
        let name = nearest_name(mean);
        match names.iter_mut().find(|(w, _)| *w == name) {
            Some((_, acc)) => (0..4).for_each(|i| acc[i] += bin[i]),
            None => names.push((name, *bin)),
        }
    }
    names.sort_by(|a, b| b.1[0].cmp(&a.1[0]));
    names
        .into_iter()
        .map(|(name, [n, r, g, b])| {
            (
                name,
                [(r / n) as u8, (g / n) as u8, (b / n) as u8],
                n as f32 / visible.max(1) as f32,
            )
        })
        .collect()
}

/// One sentence of alt text, e.g. "A 1024×1536 portrait image in mostly navy and gold tones with
/// a transparent background."
pub(super) fn describe(img: &RgbaImage) -> String {
    let (w, h) = img.dimensions();
    let orientation = match w.cmp(&h) {
        std::cmp::Ordering::Greater => "landscape",
        std::cmp::Ordering::Less => "portrait",
        std::cmp::Ordering::Equal => "square",
    };
    let colours = dominant(img);
    let Some((first, _, _)) = colours.first() else {
        return format!("A {w}×{h} {orientation} image that is fully transparent.");
    };
    // A second colour is named only when it covers a noticeable part of the picture.
    let tones = match colours.get(1) {
        Some((second, _, share)) if *share >= 0.08 => format!("{first} and {second}"),
        _ => (*first).to_owned(),
    };
    let clear = img.pixels().filter(|p| p.0[3] == 0).count() as u64;
    let transparent = clear * 100 >= u64::from(w) * u64::from(h);
    let background = if transparent {
        " with a transparent background"
    } else {
        ""
    };
    format!("A {w}×{h} {orientation} image in mostly {tones} tones{background}.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    #[test]
    fn names_size_orientation_colours_and_transparency() {
        // Navy top two thirds, gold bottom third, a transparent frame.
        let img = RgbaImage::from_fn(40, 60, |x, y| match (x, y) {
            (0 | 39, _) => Rgba([0, 0, 0, 0]),
            (_, 0..40) => Rgba([22, 32, 92, 255]),
            _ => Rgba([212, 168, 52, 255]),
        });
        assert_eq!(
            describe(&img),
            "A 40×60 portrait image in mostly navy and gold tones with a transparent background."
        );
        let red = RgbaImage::from_pixel(30, 20, Rgba([200, 30, 30, 255]));
        assert_eq!(
            describe(&red),
            "A 30×20 landscape image in mostly red tones."
        );
        let clear = RgbaImage::from_pixel(8, 8, Rgba([0, 0, 0, 0]));
        assert_eq!(
            describe(&clear),
            "A 8×8 square image that is fully transparent."
        );
        let top = dominant(&img);
        assert_eq!((top[0].0, top[0].1), ("navy", [22, 32, 92]));
    }
}

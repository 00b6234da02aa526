//! A small anti-aliased rasteriser: an RGBA canvas, a background gradient with a vignette, and
//! shapes described by signed distance functions, each blended over the canvas within its bounding
//! box.
//!
//! Only `+ - * /`, `sqrt`, `floor`, `abs`, `min` and `max` are used on floats. IEEE 754 makes those
//! exact to the bit on every platform, and Rust never fuses them into FMA behind our back, so the
//! same picture comes out everywhere. Transcendental functions (`sin`, `exp`, `powf`) come from the
//! platform's maths library and may differ in the last bit, so they are avoided: waves use
//! [`sin_approx`].
//!
//! Float-to-`u8` conversions rely on `as` saturating (negative and NaN give 0, above 255 gives
//! 255), which Rust guarantees; no separate clamp is needed.

/// A colour as three floats, 0 to 255.
pub(super) type Colour = [f32; 3];

pub(super) fn colour(rgb: [u8; 3]) -> Colour {
    rgb.map(f32::from)
}

/// A parabolic approximation of `sin` (error under 0.1 %), good for drawing and bit-identical
/// everywhere, unlike the platform's `sin`.
pub(super) fn sin_approx(x: f32) -> f32 {
    use std::f32::consts::{PI, TAU};
    let x = x - TAU * (x / TAU + 0.5).floor();
    let y = 4.0 / PI * x - 4.0 / (PI * PI) * x * x.abs();
    0.225 * (y * y.abs() - y) + y
}

pub(super) fn cos_approx(x: f32) -> f32 {
    sin_approx(x + std::f32::consts::FRAC_PI_2)
}

/// RGBA pixels, row-major, straight (not premultiplied) alpha.
pub(super) struct Canvas {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) px: Vec<u8>,
}

/// How the background is painted: from `from` to `to` along a direction or outwards from the
/// centre, darkened towards the corners by `vignette` (0 to 1).
pub(super) struct Gradient {
    pub(super) from: Colour,
    pub(super) to: Colour,
    pub(super) direction: Direction,
    pub(super) vignette: f32,
}

#[derive(Clone, Copy)]
pub(super) enum Direction {
    /// Along a vector (need not be unit length; it is normalised to the canvas).
    Linear(f32, f32),
    /// Outwards from the centre; the squared distance is used, which avoids a square root per
    /// pixel and looks like a soft spotlight.
    Radial,
}

/// One shape to draw, in pixel coordinates.
pub(super) enum Shape {
    Circle {
        cx: f32,
        cy: f32,
        r: f32,
    },
    Ring {
        cx: f32,
        cy: f32,
        r: f32,
        half: f32,
    },
    RoundRect {
        cx: f32,
        cy: f32,
        hw: f32,
        hh: f32,
        radius: f32,
    },
    /// A heart whose bottom tip is at `(cx, tip)` and which is `size * 1.1` tall.
    Heart {
        cx: f32,
        tip: f32,
        size: f32,
    },
    /// A five-pointed star with outer radius `r` and inner radius `r * inner`.
    Star {
        cx: f32,
        cy: f32,
        r: f32,
        inner: f32,
    },
    /// A convex polygon as half-planes `nx·x + ny·y ≤ c` with unit normals.
    Convex {
        edges: Vec<[f32; 3]>,
        bounds: [f32; 4],
    },
    /// The area below a surface: `top[x]` is the surface's height in column `x`, and `scale[x]`
    /// converts a vertical distance into a distance across the slope (for even anti-aliasing).
    Ridge {
        top: Vec<f32>,
        scale: Vec<f32>,
    },
}

impl Shape {
    /// A convex polygon through `points` (either winding).
    pub(super) fn convex(points: &[[f32; 2]]) -> Shape {
        let n = points.len();
        let area: f32 = (0..n)
            .map(|i| {
                let (a, b) = (points[i], points[(i + 1) % n]);
                a[0] * b[1] - b[0] * a[1]
            })
            .sum();
        let sign = if area >= 0.0 { 1.0 } else { -1.0 };
        let mut edges = Vec::with_capacity(n);
        let mut bounds = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
        for i in 0..n {
            let (a, b) = (points[i], points[(i + 1) % n]);
            let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
            let len = (dx * dx + dy * dy).sqrt();
            if len > 0.0 {
                let (nx, ny) = (sign * dy / len, -sign * dx / len);
                edges.push([nx, ny, nx * a[0] + ny * a[1]]);
            }
            bounds = [
                bounds[0].min(a[0]),
                bounds[1].min(a[1]),
                bounds[2].max(a[0]),
                bounds[3].max(a[1]),
            ];
        }
        Shape::Convex { edges, bounds }
    }

    /// The area below a surface given as one height per column.
    pub(super) fn ridge(top: Vec<f32>) -> Shape {
        let scale = (0..top.len())
            .map(|x| {
                let prev = top[x.saturating_sub(1)];
                let next = top[(x + 1).min(top.len() - 1)];
                let slope = (next - prev) / 2.0;
                1.0 / (1.0 + slope * slope).sqrt()
            })
            .collect();
        Shape::Ridge { top, scale }
    }

    /// `[x0, y0, x1, y1]` outside which the shape is certainly empty.
    fn bounds(&self, height: f32) -> [f32; 4] {
        match self {
            Shape::Circle { cx, cy, r } => [cx - r, cy - r, cx + r, cy + r],
            Shape::Ring { cx, cy, r, half } => {
                [cx - r - half, cy - r - half, cx + r + half, cy + r + half]
            }
            Shape::RoundRect { cx, cy, hw, hh, .. } => [cx - hw, cy - hh, cx + hw, cy + hh],
            Shape::Heart { cx, tip, size } => {
                [cx - 0.65 * size, tip - 1.15 * size, cx + 0.65 * size, *tip]
            }
            Shape::Star { cx, cy, r, .. } => [cx - r, cy - r, cx + r, cy + r],
            Shape::Convex { bounds, .. } => *bounds,
            Shape::Ridge { top, .. } => {
                let min = top.iter().copied().fold(height, f32::min);
                [0.0, min, top.len() as f32, height]
            }
        }
    }

    /// The signed distance in pixels from `(x, y)` to the shape's edge: negative inside.
    fn distance(&self, column: usize, x: f32, y: f32) -> f32 {
        let len = |a: f32, b: f32| (a * a + b * b).sqrt();
        match self {
            Shape::Circle { cx, cy, r } => len(x - cx, y - cy) - r,
            Shape::Ring { cx, cy, r, half } => (len(x - cx, y - cy) - r).abs() - half,
            Shape::RoundRect {
                cx,
                cy,
                hw,
                hh,
                radius,
            } => {
                let qx = (x - cx).abs() - hw + radius;
                let qy = (y - cy).abs() - hh + radius;
                len(qx.max(0.0), qy.max(0.0)) + qx.max(qy).min(0.0) - radius
            }
            Shape::Heart { cx, tip, size } => heart((x - cx).abs() / size, (tip - y) / size) * size,
            Shape::Star { cx, cy, r, inner } => star(x - cx, cy - y, *r, *inner),
            Shape::Convex { edges, .. } => edges
                .iter()
                .map(|[nx, ny, c]| nx * x + ny * y - c)
                .fold(f32::MIN, f32::max),
            Shape::Ridge { top, scale } => match (top.get(column), scale.get(column)) {
                (Some(t), Some(s)) => (t - y) * s,
                _ => f32::MAX,
            },
        }
    }
}

/// Inigo Quilez's exact heart distance (x mirrored to be non-negative, y up, tip at the origin).
fn heart(x: f32, y: f32) -> f32 {
    let dot2 = |a: f32, b: f32| a * a + b * b;
    if x + y > 1.0 {
        return dot2(x - 0.25, y - 0.75).sqrt() - std::f32::consts::SQRT_2 / 4.0;
    }
    let m = 0.5 * (x + y).max(0.0);
    let d = dot2(x, y - 1.0).min(dot2(x - m, y - m)).sqrt();
    if x - y < 0.0 { -d } else { d }
}

/// Inigo Quilez's five-pointed star distance (y up, point at the top): folds the plane into one
/// tenth of the star with two reflections, then measures to one edge.
fn star(x: f32, y: f32, r: f32, inner: f32) -> f32 {
    // cos and sin of 36 degrees, written out so no maths library is involved.
    const K1: [f32; 2] = [0.809_017, -0.587_785_24];
    const K2: [f32; 2] = [-0.809_017, -0.587_785_24];
    let (mut px, mut py) = (x.abs(), y);
    for k in [K1, K2] {
        let d = 2.0 * (k[0] * px + k[1] * py).max(0.0);
        px -= d * k[0];
        py -= d * k[1];
    }
    px = px.abs();
    py -= r;
    let (bx, by) = (inner * -K1[1], inner * K1[0] - 1.0);
    let h = ((px * bx + py * by) / (bx * bx + by * by)).clamp(0.0, r);
    let (dx, dy) = (px - bx * h, py - by * h);
    let d = (dx * dx + dy * dy).sqrt();
    if py * bx - px * by < 0.0 { -d } else { d }
}

/// A shape with its paint. `feather` is the width in pixels of the soft edge (1 = crisp,
/// anti-aliased); `shade` lightens the top and darkens the bottom of the shape by up to half of
/// itself, which gives flat shapes a little volume.
pub(super) struct Layer {
    pub(super) shape: Shape,
    pub(super) colour: Colour,
    pub(super) opacity: f32,
    pub(super) feather: f32,
    pub(super) shade: f32,
}

impl Layer {
    pub(super) fn new(shape: Shape, colour: Colour) -> Layer {
        Layer {
            shape,
            colour,
            opacity: 1.0,
            feather: 1.0,
            shade: 0.0,
        }
    }

    pub(super) fn opacity(self, opacity: f32) -> Layer {
        Layer { opacity, ..self }
    }

    pub(super) fn feather(self, feather: f32) -> Layer {
        Layer {
            feather: feather.max(1.0),
            ..self
        }
    }

    pub(super) fn shade(self, shade: f32) -> Layer {
        Layer { shade, ..self }
    }
}

impl Canvas {
    /// A fully transparent canvas.
    pub(super) fn new(width: u32, height: u32) -> Canvas {
        Canvas {
            width,
            height,
            px: vec![0; width as usize * height as usize * 4],
        }
    }

    /// Paints every pixel, opaque.
    pub(super) fn fill(&mut self, g: &Gradient) {
        let (w, h) = (self.width as f32, self.height as f32);
        // t = x·gx + y·gy + g0 maps the canvas onto 0..1 along the direction.
        let (gx, gy, g0) = match g.direction {
            Direction::Linear(dx, dy) => {
                let (dx, dy) = (dx / w, dy / h);
                let span = dx.abs() * w + dy.abs() * h;
                let (gx, gy) = if span > 0.0 {
                    (dx / span, dy / span)
                } else {
                    (0.0, 0.0)
                };
                (gx, gy, 0.5 - (gx * w + gy * h) / 2.0)
            }
            Direction::Radial => (0.0, 0.0, 0.0),
        };
        let radial = matches!(g.direction, Direction::Radial);
        // Both the gradient position and the squared distance from the centre are a column term
        // plus a row term, so the per-column halves are computed once.
        let half_r2 = |v: f32, size: f32| {
            let d = (v / size - 0.5) * 2.0;
            d * d / 2.0
        };
        let columns: Vec<(f32, f32)> = (0..self.width)
            .map(|x| {
                let px = x as f32 + 0.5;
                (px * gx, half_r2(px, w))
            })
            .collect();
        let span = [0, 1, 2].map(|i| g.to[i] - g.from[i]);
        for (y, row) in self
            .px
            .chunks_exact_mut(self.width as usize * 4)
            .enumerate()
        {
            let py = y as f32 + 0.5;
            let (row_t, row_r2) = (py * gy + g0, half_r2(py, h));
            for (p, (col_t, col_r2)) in row.chunks_exact_mut(4).zip(&columns) {
                let r2 = col_r2 + row_r2;
                let t = if radial { r2 } else { col_t + row_t }.clamp(0.0, 1.0);
                let dim = 1.0 - g.vignette * r2 * r2;
                p[0] = ((g.from[0] + span[0] * t) * dim + 0.5) as u8;
                p[1] = ((g.from[1] + span[1] * t) * dim + 0.5) as u8;
                p[2] = ((g.from[2] + span[2] * t) * dim + 0.5) as u8;
                p[3] = 255;
            }
        }
    }

    /// Blends a layer over the canvas.
    pub(super) fn draw(&mut self, layer: &Layer) {
        let (w, h) = (self.width as f32, self.height as f32);
        let pad = layer.feather / 2.0 + 1.0;
        let [bx0, by0, bx1, by1] = layer.shape.bounds(h);
        let x0 = (bx0 - pad).floor().clamp(0.0, w) as usize;
        let x1 = (bx1 + pad).ceil().clamp(0.0, w) as usize;
        let y0 = (by0 - pad).floor().clamp(0.0, h) as usize;
        let y1 = (by1 + pad).ceil().clamp(0.0, h) as usize;
        let (top, span) = (by0, (by1 - by0).max(1.0));
        let stride = self.width as usize * 4;
        for y in y0..y1 {
            let py = y as f32 + 0.5;
            let lift = 1.0 + layer.shade * (0.5 - (py - top) / span);
            let paint = layer.colour.map(|c| (c * lift).clamp(0.0, 255.0));
            let solid = [0, 1, 2, 3].map(|i| if i == 3 { 255 } else { (paint[i] + 0.5) as u8 });
            let row = &mut self.px[y * stride..(y + 1) * stride];
            for (x, p) in row.chunks_exact_mut(4).enumerate().take(x1).skip(x0) {
                let d = layer.shape.distance(x, x as f32 + 0.5, py);
                let a = coverage(d, layer.feather) * layer.opacity;
                if a >= 1.0 {
                    // The inside of an opaque shape: a plain copy, no blending arithmetic.
                    p.copy_from_slice(&solid);
                } else if a > 0.0 {
                    blend(p, paint, a);
                }
            }
        }
    }

    /// The fraction of pixels whose alpha is 255.
    #[cfg(test)]
    pub(super) fn opaque_fraction(&self) -> f32 {
        let n = self.px.len() / 4;
        self.px.chunks_exact(4).filter(|p| p[3] == 255).count() as f32 / n.max(1) as f32
    }
}

/// How much of a pixel a shape covers, from its signed distance: a one-pixel linear ramp for crisp
/// edges, a smoothstep across `feather` pixels for soft ones.
fn coverage(d: f32, feather: f32) -> f32 {
    let t = (0.5 - d / feather).clamp(0.0, 1.0);
    if feather > 1.0 {
        t * t * (3.0 - 2.0 * t)
    } else {
        t
    }
}

/// Porter-Duff "over" with straight alpha.
pub(super) fn blend(p: &mut [u8], c: Colour, a: f32) {
    let a = a.clamp(0.0, 1.0);
    if p[3] == 255 {
        // Over an opaque pixel (the common case) "over" is a plain mix, with no division.
        for i in 0..3 {
            let d = f32::from(p[i]);
            p[i] = (d + (c[i] - d) * a + 0.5) as u8;
        }
        return;
    }
    let da = f32::from(p[3]) / 255.0;
    let keep = da * (1.0 - a);
    let out = a + keep;
    if out <= 0.0 {
        return;
    }
    for i in 0..3 {
        p[i] = ((c[i] * a + f32::from(p[i]) * keep) / out + 0.5) as u8;
    }
    p[3] = (out * 255.0 + 0.5) as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(c: &Canvas, x: u32, y: u32) -> [u8; 4] {
        let i = (y * c.width + x) as usize * 4;
        [c.px[i], c.px[i + 1], c.px[i + 2], c.px[i + 3]]
    }

    #[test]
    fn sin_approx_is_close() {
        for i in -100..100 {
            let x = i as f32 * 0.1;
            assert!((sin_approx(x) - x.sin()).abs() < 0.002, "{x}");
            assert!((cos_approx(x) - x.cos()).abs() < 0.002, "{x}");
        }
    }

    #[test]
    fn shapes_cover_their_inside_and_not_their_outside() {
        let shapes = [
            Shape::Circle {
                cx: 32.0,
                cy: 32.0,
                r: 20.0,
            },
            Shape::RoundRect {
                cx: 32.0,
                cy: 32.0,
                hw: 20.0,
                hh: 12.0,
                radius: 5.0,
            },
            Shape::Heart {
                cx: 32.0,
                tip: 54.0,
                size: 40.0,
            },
            Shape::Star {
                cx: 32.0,
                cy: 32.0,
                r: 24.0,
                inner: 0.45,
            },
            Shape::convex(&[[12.0, 50.0], [32.0, 10.0], [52.0, 50.0]]),
            Shape::ridge(vec![30.0; 64]),
        ];
        for shape in shapes {
            let mut c = Canvas::new(64, 64);
            c.draw(&Layer::new(shape, [255.0, 0.0, 0.0]));
            assert_eq!(pixel(&c, 32, 40), [255, 0, 0, 255], "the middle is painted");
            assert_eq!(pixel(&c, 1, 1)[3], 0, "a corner is not");
        }
        let mut c = Canvas::new(64, 64);
        c.draw(&Layer::new(
            Shape::Ring {
                cx: 32.0,
                cy: 32.0,
                r: 20.0,
                half: 3.0,
            },
            [0.0, 0.0, 255.0],
        ));
        assert_eq!(pixel(&c, 32, 32)[3], 0, "a ring's hole is empty");
        assert_eq!(pixel(&c, 52, 32)[3], 255);
    }

    #[test]
    fn edges_are_anti_aliased_and_blending_composes() {
        let mut c = Canvas::new(64, 64);
        c.draw(&Layer::new(
            Shape::Circle {
                cx: 32.0,
                cy: 32.0,
                r: 20.3,
            },
            [255.0, 255.0, 255.0],
        ));
        let edge = pixel(&c, 52, 32)[3];
        assert!(
            edge > 0 && edge < 255,
            "partial coverage at the rim: {edge}"
        );
        let mut p = [0, 0, 0, 255];
        blend(&mut p, [255.0, 255.0, 255.0], 0.5);
        assert_eq!(p, [128, 128, 128, 255]);
        let mut clear = [0, 0, 0, 0];
        blend(&mut clear, [10.0, 20.0, 30.0], 0.5);
        assert_eq!(
            clear,
            [10, 20, 30, 128],
            "over a transparent pixel the colour is kept as is"
        );
    }

    #[test]
    fn gradients_run_from_one_colour_to_the_other() {
        let mut c = Canvas::new(16, 64);
        let g = Gradient {
            from: [0.0; 3],
            to: [200.0; 3],
            direction: Direction::Linear(0.0, 1.0),
            vignette: 0.0,
        };
        c.fill(&g);
        assert!(pixel(&c, 8, 0)[0] < 5 && pixel(&c, 8, 63)[0] > 195);
        assert_eq!(c.opaque_fraction(), 1.0);
    }
}

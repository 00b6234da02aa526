//! From an [`Intent`] to a picture: [`render`] lays out a background gradient, soft decorations
//! and the subject the prompt names, with every free choice drawn from the turn's PRNG, and
//! rasterises them.

use std::f32::consts::TAU;

use super::colour::{self, BLACK, Rgb, WHITE, mix};
use super::intent::{Intent, Palette, layout_rng, resolve};
use super::raster::{
    Canvas, Direction, Gradient, Layer, Shape, colour as paint, cos_approx, sin_approx,
};
use super::rng::SplitMix;
use super::words::Kind;

/// The canvas and how much to put on it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Frame {
    pub(super) width: u32,
    pub(super) height: u32,
    /// The number of background decorations (the quality knob).
    pub(super) detail: usize,
    /// Leave the background transparent and draw the subject alone.
    pub(super) transparent: bool,
}
/// Draws the picture for `intent` and `seed` on a canvas of `frame`'s size.
pub(super) fn render(intent: &Intent, seed: u64, frame: Frame) -> (Canvas, Palette) {
    let mut rng = layout_rng(intent, seed);
    let pal = resolve(intent, &mut rng);
    let g = Geo::new(frame.width, frame.height);
    let mut canvas = Canvas::new(frame.width, frame.height);
    // Separate streams for each part, so the decorations' count (quality) never moves the subject.
    let (mut deco_rng, mut subject_rng) = (rng.fork(), rng.fork());
    let direction = [
        Direction::Linear(0.0, 1.0),
        Direction::Linear(1.0, 1.0),
        Direction::Linear(-1.0, 1.0),
        Direction::Radial,
    ][rng.below(4)];
    let mut layers = Vec::new();
    if !frame.transparent {
        canvas.fill(&Gradient {
            from: paint(mix(pal.background, WHITE, 0.14)),
            to: paint(mix(pal.background, BLACK, 0.22)),
            direction,
            vignette: 0.25,
        });
        decorations(&mut layers, &pal, &mut deco_rng, &g, frame.detail);
    }
    let scene = Scene {
        pal,
        g,
        detail: frame.detail,
        transparent: frame.transparent,
    };
    scene.subject(intent.kind, &mut subject_rng, &mut layers);
    for layer in &layers {
        canvas.draw(layer);
    }
    (canvas, pal)
}

/// Canvas geometry in pixels: size, short edge and centre.
struct Geo {
    w: f32,
    h: f32,
    s: f32,
    cx: f32,
    cy: f32,
}

impl Geo {
    fn new(width: u32, height: u32) -> Geo {
        let (w, h) = (width as f32, height as f32);
        Geo {
            w,
            h,
            s: w.min(h),
            cx: w / 2.0,
            cy: h / 2.0,
        }
    }
}

/// Soft circles, rounded rectangles and thin rings behind the subject, mostly in shades of the
/// background so the named colours keep dominating.
fn decorations(out: &mut Vec<Layer>, pal: &Palette, rng: &mut SplitMix, g: &Geo, count: usize) {
    for _ in 0..count {
        let (x, y) = (g.w * rng.range(-0.1, 1.1), g.h * rng.range(-0.1, 1.1));
        let c = match rng.below(5) {
            0 | 1 => mix(pal.background, WHITE, 0.25),
            2 => mix(pal.background, BLACK, 0.35),
            3 => pal.subject,
            _ => pal.accent,
        };
        let opacity = rng.range(0.06, 0.22);
        let layer = match rng.below(3) {
            0 => {
                let r = g.s * rng.range(0.08, 0.35);
                Layer::new(Shape::Circle { cx: x, cy: y, r }, paint(c))
                    .feather(r * rng.range(0.4, 1.2))
                    .opacity(opacity)
            }
            1 => {
                let (hw, hh) = (g.s * rng.range(0.05, 0.25), g.s * rng.range(0.05, 0.25));
                let radius = hw.min(hh) * 0.3;
                let shape = Shape::RoundRect {
                    cx: x,
                    cy: y,
                    hw,
                    hh,
                    radius,
                };
                Layer::new(shape, paint(c))
                    .feather(g.s * rng.range(0.01, 0.08))
                    .opacity(opacity)
            }
            _ => {
                let (r, half) = (
                    g.s * rng.range(0.06, 0.22),
                    (g.s * rng.range(0.002, 0.006)).max(0.75),
                );
                Layer::new(
                    Shape::Ring {
                        cx: x,
                        cy: y,
                        r,
                        half,
                    },
                    paint(c),
                )
                .opacity(opacity * 1.5)
            }
        };
        out.push(layer);
    }
}

/// Everything the subject builders share.
struct Scene {
    pal: Palette,
    g: Geo,
    detail: usize,
    transparent: bool,
}

impl Scene {
    fn subject(&self, kind: Kind, rng: &mut SplitMix, out: &mut Vec<Layer>) {
        match kind {
            Kind::Abstract => self.abstract_shapes(rng, out),
            Kind::Disc => self.disc(rng, out),
            Kind::Sun => self.sun(rng, out),
            Kind::Mountains => self.mountains(rng, out),
            Kind::Badge => self.badge(rng, out),
            Kind::Waves => self.waves(rng, out),
            Kind::Heart => self.heart(rng, out),
            Kind::Star => self.star(rng, out),
            Kind::Skyline => self.skyline(rng, out),
            Kind::Flower => self.flower(rng, out),
            Kind::Tree => self.tree(rng, out),
        }
    }

    /// A main shape with a soft drop shadow (on opaque backgrounds) and a little shading.
    fn solid(&self, out: &mut Vec<Layer>, shape: Shape, c: Rgb) {
        if !self.transparent {
            let shadow = shape.offset(0.0, self.g.s * 0.02);
            out.push(
                Layer::new(shadow, [0.0; 3])
                    .feather(self.g.s * 0.05)
                    .opacity(0.3),
            );
        }
        out.push(Layer::new(shape, paint(c)).shade(0.3));
    }

    /// A soft white glint, for a little volume.
    fn highlight(&self, out: &mut Vec<Layer>, cx: f32, cy: f32, r: f32) {
        out.push(
            Layer::new(Shape::Circle { cx, cy, r }, paint(WHITE))
                .feather(r)
                .opacity(0.22),
        );
    }

    fn line(&self) -> f32 {
        (self.g.s * 0.004).max(0.75)
    }

    fn abstract_shapes(&self, rng: &mut SplitMix, out: &mut Vec<Layer>) {
        let (g, pal) = (&self.g, &self.pal);
        let (fx, fy) = (
            g.cx + g.s * rng.range(-0.1, 0.1),
            g.cy + g.s * rng.range(-0.08, 0.08),
        );
        let r = g.s * rng.range(0.2, 0.26);
        let focal = rng.below(3);
        let side = if rng.chance(0.5) { 1.0 } else { -1.0 };
        let (ox, oy, or) = (
            g.s * rng.range(0.14, 0.26) * side,
            g.s * rng.range(0.1, 0.2),
            g.s * rng.range(0.05, 0.09),
        );
        let wave = rng.chance(0.6);
        match focal {
            0 => self.solid(out, Shape::Circle { cx: fx, cy: fy, r }, pal.subject),
            1 => {
                let shape = Shape::RoundRect {
                    cx: fx,
                    cy: fy,
                    hw: r * 1.2,
                    hh: r * 0.8,
                    radius: r * 0.2,
                };
                self.solid(out, shape, pal.subject);
            }
            _ => {
                self.solid(
                    out,
                    Shape::Ring {
                        cx: fx,
                        cy: fy,
                        r,
                        half: r * 0.22,
                    },
                    pal.subject,
                );
                out.push(
                    Layer::new(
                        Shape::Circle {
                            cx: fx,
                            cy: fy,
                            r: r * 0.42,
                        },
                        paint(pal.accent),
                    )
                    .shade(0.3),
                );
            }
        }
        if self.detail >= 6 {
            let ring = Shape::Ring {
                cx: fx,
                cy: fy,
                r: r * 1.35,
                half: self.line(),
            };
            out.push(Layer::new(ring, paint(pal.accent)).opacity(0.6));
        }
        self.solid(
            out,
            Shape::Circle {
                cx: fx + ox,
                cy: fy - oy,
                r: or,
            },
            pal.accent,
        );
        if wave && self.detail >= 4 {
            let phase = rng.range(0.0, TAU);
            let top = (0..g.w as usize)
                .map(|x| {
                    g.h * 0.86 + g.s * 0.025 * sin_approx(TAU * x as f32 / (g.s * 0.6) + phase)
                })
                .collect();
            let c = mix(pal.subject, pal.background, 0.5);
            out.push(Layer::new(Shape::ridge(top), paint(c)).opacity(0.7));
        }
    }

    fn disc(&self, rng: &mut SplitMix, out: &mut Vec<Layer>) {
        let (g, pal) = (&self.g, &self.pal);
        let r = g.s * rng.range(0.2, 0.27);
        let (x, y) = (
            g.cx + g.s * rng.range(-0.08, 0.08),
            g.cy + g.s * rng.range(-0.06, 0.06),
        );
        let orbit = rng.chance(0.5);
        out.push(
            Layer::new(
                Shape::Circle {
                    cx: x,
                    cy: y,
                    r: r * 1.3,
                },
                paint(pal.subject),
            )
            .feather(r * 0.7)
            .opacity(0.28),
        );
        self.solid(out, Shape::Circle { cx: x, cy: y, r }, pal.subject);
        self.highlight(out, x - 0.3 * r, y - 0.32 * r, 0.4 * r);
        if orbit && self.detail >= 6 {
            let ring = Shape::Ring {
                cx: x,
                cy: y,
                r: r * 1.45,
                half: self.line() * 1.5,
            };
            out.push(Layer::new(ring, paint(pal.accent)).opacity(0.8));
        }
    }

    fn sun(&self, rng: &mut SplitMix, out: &mut Vec<Layer>) {
        let (g, pal) = (&self.g, &self.pal);
        let r = g.s * rng.range(0.13, 0.18);
        let x = g.cx + g.w * rng.range(-0.15, 0.15);
        let horizon = g.h * rng.range(0.62, 0.72);
        let y = horizon - r * rng.range(0.1, 0.9);
        let (lambda, phase) = (g.s * rng.range(0.6, 1.2), rng.range(0.0, TAU));
        out.push(
            Layer::new(
                Shape::Circle {
                    cx: x,
                    cy: y,
                    r: r * 2.4,
                },
                paint(pal.subject),
            )
            .feather(r * 2.0)
            .opacity(0.35),
        );
        out.push(Layer::new(Shape::Circle { cx: x, cy: y, r }, paint(pal.subject)).shade(0.2));
        // The horizon and the reflection are scenery: on a transparent background (and in edits)
        // the sun is drawn alone.
        if self.transparent {
            return;
        }
        let top = (0..g.w as usize)
            .map(|c| horizon + g.s * 0.012 * sin_approx(TAU * c as f32 / lambda + phase))
            .collect();
        out.push(Layer::new(Shape::ridge(top), paint(mix(pal.background, BLACK, 0.45))).shade(0.2));
        if self.detail >= 6 {
            // The sun's reflection: shrinking streaks on the water below it.
            for i in 0..4 {
                let hw = r * (0.9 - 0.18 * i as f32);
                let cy = horizon + g.s * (0.04 + 0.035 * i as f32);
                let shape = Shape::RoundRect {
                    cx: x,
                    cy,
                    hw,
                    hh: self.line() * 1.5,
                    radius: self.line() * 1.5,
                };
                out.push(Layer::new(shape, paint(pal.subject)).opacity(0.55));
            }
        }
    }

    fn mountains(&self, rng: &mut SplitMix, out: &mut Vec<Layer>) {
        let (g, pal) = (&self.g, &self.pal);
        let sun = rng.chance(0.7);
        let (sx, sy, sr) = (
            g.w * rng.range(0.2, 0.8),
            g.h * rng.range(0.14, 0.3),
            g.s * rng.range(0.05, 0.08),
        );
        if sun && !self.transparent {
            out.push(
                Layer::new(
                    Shape::Circle {
                        cx: sx,
                        cy: sy,
                        r: sr * 2.0,
                    },
                    paint(pal.accent),
                )
                .feather(sr * 1.5)
                .opacity(0.3),
            );
            out.push(Layer::new(
                Shape::Circle {
                    cx: sx,
                    cy: sy,
                    r: sr,
                },
                paint(pal.accent),
            ));
        }
        for (layer, fade) in [0.6, 0.3, 0.0].into_iter().enumerate() {
            let base = g.h * (0.52 + 0.13 * layer as f32);
            let peaks: Vec<(f32, f32, f32)> = (0..2 + rng.below(3))
                .map(|_| {
                    (
                        g.w * rng.range(-0.1, 1.1),
                        g.s * rng.range(0.15, 0.35),
                        rng.range(0.6, 1.2),
                    )
                })
                .collect();
            let (ripple, phase) = (g.s * 0.008, rng.range(0.0, TAU));
            let top = (0..g.w as usize)
                .map(|c| {
                    let x = c as f32;
                    let lift = peaks
                        .iter()
                        .map(|(px, ph, slope)| ph - (x - px).abs() * slope)
                        .fold(0.0, f32::max);
                    base - lift + ripple * sin_approx(x / (g.s * 0.03) + phase)
                })
                .collect();
            out.push(
                Layer::new(
                    Shape::ridge(top),
                    paint(mix(pal.subject, pal.background, fade)),
                )
                .shade(0.15),
            );
        }
    }

    fn badge(&self, rng: &mut SplitMix, out: &mut Vec<Layer>) {
        let (g, pal) = (&self.g, &self.pal);
        let side = g.s * rng.range(0.46, 0.56);
        let radius = side * rng.range(0.16, 0.3);
        let mark = rng.below(3);
        let (cx, cy) = (g.cx, g.cy);
        self.solid(
            out,
            Shape::RoundRect {
                cx,
                cy,
                hw: side / 2.0,
                hh: side / 2.0,
                radius,
            },
            pal.subject,
        );
        let ring = Shape::Ring {
            cx,
            cy,
            r: side * 0.3,
            half: (side * 0.035).max(1.0),
        };
        out.push(Layer::new(ring, paint(pal.accent)));
        let mark = match mark {
            0 => Shape::Star {
                cx,
                cy,
                r: side * 0.2,
                inner: 0.45,
            },
            1 => Shape::Circle {
                cx,
                cy,
                r: side * 0.13,
            },
            _ => Shape::Heart {
                cx,
                tip: cy + side * 0.14,
                size: side * 0.26,
            },
        };
        out.push(Layer::new(mark, paint(pal.accent)).shade(0.2));
    }

    fn waves(&self, rng: &mut SplitMix, out: &mut Vec<Layer>) {
        let (g, pal) = (&self.g, &self.pal);
        let sun = rng.chance(0.5);
        let (sx, sy, sr) = (
            g.w * rng.range(0.2, 0.8),
            g.h * rng.range(0.15, 0.28),
            g.s * rng.range(0.05, 0.09),
        );
        if sun && !self.transparent {
            out.push(
                Layer::new(
                    Shape::Circle {
                        cx: sx,
                        cy: sy,
                        r: sr,
                    },
                    paint(pal.accent),
                )
                .feather(sr * 0.2),
            );
        }
        for (i, fade) in [0.6, 0.4, 0.2, 0.0].into_iter().enumerate() {
            let base = g.h * (0.4 + 0.14 * i as f32);
            let (amp, lambda, phase) = (
                g.s * rng.range(0.02, 0.045),
                g.s * rng.range(0.35, 0.8),
                rng.range(0.0, TAU),
            );
            let top = (0..g.w as usize)
                .map(|c| {
                    let t = TAU * c as f32 / lambda + phase;
                    base + amp * sin_approx(t) + 0.35 * amp * sin_approx(2.13 * t + phase)
                })
                .collect();
            out.push(
                Layer::new(
                    Shape::ridge(top),
                    paint(mix(pal.subject, pal.background, fade)),
                )
                .shade(0.2),
            );
        }
    }

    fn heart(&self, rng: &mut SplitMix, out: &mut Vec<Layer>) {
        let (g, pal) = (&self.g, &self.pal);
        let size = g.s * rng.range(0.52, 0.6);
        let tip = g.cy + size * 0.55;
        let small: Vec<(f32, f32, f32)> = (0..2 + rng.below(3))
            .map(|_| {
                (
                    g.w * rng.range(0.05, 0.95),
                    g.h * rng.range(0.1, 0.95),
                    g.s * rng.range(0.06, 0.1),
                )
            })
            .collect();
        if self.detail >= 6 {
            for (x, y, size) in small {
                out.push(
                    Layer::new(
                        Shape::Heart {
                            cx: x,
                            tip: y,
                            size,
                        },
                        paint(pal.accent),
                    )
                    .opacity(0.8),
                );
            }
        }
        self.solid(
            out,
            Shape::Heart {
                cx: g.cx,
                tip,
                size,
            },
            pal.subject,
        );
        self.highlight(out, g.cx - 0.25 * size, tip - 0.8 * size, 0.12 * size);
    }

    fn star(&self, rng: &mut SplitMix, out: &mut Vec<Layer>) {
        let (g, pal) = (&self.g, &self.pal);
        let (r, inner) = (g.s * rng.range(0.28, 0.34), rng.range(0.42, 0.5));
        let count = 2 + self.detail / 3;
        for _ in 0..count {
            let shape = Shape::Star {
                cx: g.w * rng.range(0.0, 1.0),
                cy: g.h * rng.range(0.0, 1.0),
                r: g.s * rng.range(0.02, 0.05),
                inner: 0.45,
            };
            out.push(Layer::new(shape, paint(pal.accent)).opacity(rng.range(0.6, 1.0)));
        }
        self.solid(
            out,
            Shape::Star {
                cx: g.cx,
                cy: g.cy + r * 0.05,
                r,
                inner,
            },
            pal.subject,
        );
    }

    fn skyline(&self, rng: &mut SplitMix, out: &mut Vec<Layer>) {
        let (g, pal) = (&self.g, &self.pal);
        let moon = Shape::Circle {
            cx: g.w * rng.range(0.15, 0.85),
            cy: g.h * rng.range(0.12, 0.28),
            r: g.s * rng.range(0.05, 0.08),
        };
        if !self.transparent {
            out.push(Layer::new(moon, paint(pal.accent)).shade(0.2));
        }
        let (pitch, pane) = ((g.s * 0.035).max(3.0), (g.s * 0.012).max(1.0));
        let mut x = -g.w * rng.range(0.0, 0.05);
        while x < g.w {
            let bw = (g.w * rng.range(0.07, 0.14)).max(2.0);
            let bh = g.h * rng.range(0.22, 0.6);
            let c = mix(pal.subject, BLACK, rng.range(0.0, 0.35));
            let gap = (bw * 0.04).max(0.5);
            let body = Shape::RoundRect {
                cx: x + bw / 2.0,
                cy: g.h - bh / 2.0 + 2.0,
                hw: bw / 2.0 - gap,
                hh: bh / 2.0 + 2.0,
                radius: 2.0,
            };
            out.push(Layer::new(body, paint(c)).shade(0.15));
            // Lit windows on a grid inside the building.
            let cols = ((bw - 2.0 * pitch) / pitch).max(0.0) as usize + 1;
            let rows = ((bh - 2.0 * pitch) / pitch).max(0.0) as usize;
            for row in 0..rows {
                for col in 0..cols {
                    let lit = rng.chance(0.45);
                    if lit && self.detail >= 4 {
                        let (wx, wy) = (
                            x + pitch + col as f32 * pitch,
                            g.h - bh + pitch + row as f32 * pitch,
                        );
                        if wx + pane < x + bw - pitch / 2.0 {
                            let pane = Shape::RoundRect {
                                cx: wx,
                                cy: wy,
                                hw: pane / 2.0,
                                hh: pane * 0.7,
                                radius: 0.5,
                            };
                            out.push(Layer::new(pane, paint(pal.accent)).opacity(0.85));
                        }
                    }
                }
            }
            x += bw;
        }
    }

    fn flower(&self, rng: &mut SplitMix, out: &mut Vec<Layer>) {
        let (g, pal) = (&self.g, &self.pal);
        let n = 5 + rng.below(4);
        let (dist, rot) = (g.s * rng.range(0.12, 0.15), rng.range(0.0, TAU));
        // Petals just overlapping their neighbours: half the chord between two petal centres is
        // dist·sin(π/n), and a fifth more makes them touch without crowding.
        let rp = dist * sin_approx(std::f32::consts::PI / n as f32) * 1.2;
        let (fx, fy) = (g.cx, g.cy - g.s * 0.06);
        let stem_w = (g.s * 0.012).max(1.0);
        let stem = Shape::RoundRect {
            cx: fx,
            cy: (fy + g.h) / 2.0,
            hw: stem_w,
            hh: (g.h - fy) / 2.0 + 2.0,
            radius: stem_w,
        };
        out.push(Layer::new(stem, paint(mix(pal.subject, BLACK, 0.55))));
        if !self.transparent {
            let shadow = Shape::Circle {
                cx: fx,
                cy: fy + g.s * 0.02,
                r: dist + rp,
            };
            out.push(
                Layer::new(shadow, [0.0; 3])
                    .feather(g.s * 0.05)
                    .opacity(0.25),
            );
        }
        for k in 0..n {
            let a = rot + TAU * k as f32 / n as f32;
            let petal = Shape::Circle {
                cx: fx + dist * cos_approx(a),
                cy: fy + dist * sin_approx(a),
                r: rp,
            };
            out.push(Layer::new(petal, paint(pal.subject)).shade(0.25));
        }
        // The heart of the flower covers the petals' inner halves, so no gap shows between them.
        let heart = (dist - rp * 0.5).max(rp * 0.6);
        out.push(
            Layer::new(
                Shape::Circle {
                    cx: fx,
                    cy: fy,
                    r: heart,
                },
                paint(pal.accent),
            )
            .shade(0.3),
        );
    }

    fn tree(&self, rng: &mut SplitMix, out: &mut Vec<Layer>) {
        let (g, pal) = (&self.g, &self.pal);
        let small: Vec<(f32, f32)> = (0..2 + rng.below(3))
            .map(|_| (g.w * rng.range(0.05, 0.95), rng.range(0.3, 0.5)))
            .collect();
        if self.detail >= 6 {
            let c = mix(pal.subject, pal.background, 0.5);
            for (x, scale) in small {
                self.one_tree(out, x, g.h * scale, c, 0.0);
            }
        }
        self.one_tree(out, g.cx, g.h * 0.86, pal.subject, 0.2);
    }

    /// A conifer standing on the bottom edge at `x`: a trunk and three tiers of triangles.
    fn one_tree(&self, out: &mut Vec<Layer>, x: f32, height: f32, c: Rgb, shade: f32) {
        let g = &self.g;
        let ground = g.h;
        let top = ground - height;
        let trunk_w = height * 0.045;
        let trunk = Shape::RoundRect {
            cx: x,
            cy: ground - height * 0.1,
            hw: trunk_w,
            hh: height * 0.12,
            radius: 2.0,
        };
        out.push(Layer::new(trunk, paint(mix(c, [110, 72, 40], 0.6))));
        for tier in 0..3 {
            let apex = top + height * 0.22 * tier as f32;
            let base = apex + height * 0.38;
            let half = height * (0.2 + 0.07 * tier as f32);
            let shape = Shape::convex(&[[x - half, base], [x, apex], [x + half, base]]);
            out.push(Layer::new(shape, paint(c)).shade(shade));
        }
    }
}

impl Shape {
    /// The same shape moved by `(dx, dy)` pixels.
    fn offset(&self, dx: f32, dy: f32) -> Shape {
        match self {
            Shape::Circle { cx, cy, r } => Shape::Circle {
                cx: cx + dx,
                cy: cy + dy,
                r: *r,
            },
            Shape::Ring { cx, cy, r, half } => Shape::Ring {
                cx: cx + dx,
                cy: cy + dy,
                r: *r,
                half: *half,
            },
            Shape::RoundRect {
                cx,
                cy,
                hw,
                hh,
                radius,
            } => Shape::RoundRect {
                cx: cx + dx,
                cy: cy + dy,
                hw: *hw,
                hh: *hh,
                radius: *radius,
            },
            Shape::Heart { cx, tip, size } => Shape::Heart {
                cx: cx + dx,
                tip: tip + dy,
                size: *size,
            },
            Shape::Star { cx, cy, r, inner } => Shape::Star {
                cx: cx + dx,
                cy: cy + dy,
                r: *r,
                inner: *inner,
            },
            Shape::Convex { edges, bounds } => Shape::Convex {
                edges: edges
                    .iter()
                    .map(|[nx, ny, c]| [*nx, *ny, c + nx * dx + ny * dy])
                    .collect(),
                bounds: [
                    bounds[0] + dx,
                    bounds[1] + dy,
                    bounds[2] + dx,
                    bounds[3] + dy,
                ],
            },
            // Ridges span the width; only a vertical move makes sense for them.
            Shape::Ridge { top, scale } => Shape::Ridge {
                top: top.iter().map(|t| t + dy).collect(),
                scale: scale.clone(),
            },
        }
    }
}

/// How many background decorations a quality gets.
pub(super) fn detail(quality: imagemcp_core::image_params::Quality) -> usize {
    use imagemcp_core::image_params::Quality;
    match quality {
        Quality::Low => 3,
        Quality::Medium | Quality::Auto => 6,
        Quality::High => 9,
        Quality::XHigh => 12,
        Quality::Max => 15,
    }
}

/// The canonical colour word for a colour, for revised prompts and alt text.
pub(super) fn name(c: Rgb) -> &'static str {
    colour::nearest_name(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(transparent: bool) -> Frame {
        Frame {
            width: 96,
            height: 64,
            detail: 6,
            transparent,
        }
    }

    #[test]
    fn every_kind_renders_with_and_without_a_background() {
        for kind in Kind::ALL {
            let intent = Intent {
                kind,
                ..Intent::from_prompt("x")
            };
            let (opaque, _) = render(&intent, 3, frame(false));
            assert_eq!(opaque.opaque_fraction(), 1.0, "{kind:?}");
            let (clear, _) = render(&intent, 3, frame(true));
            let covered = clear.opaque_fraction();
            assert!(covered > 0.01 && covered < 0.9, "{kind:?} covers {covered}");
            assert_ne!(
                opaque.px,
                render(&intent, 4, frame(false)).0.px,
                "{kind:?} varies with the seed"
            );
        }
    }
}

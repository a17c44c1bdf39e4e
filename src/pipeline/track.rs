//! Fastener slots from the track's geometry (`roi = "track"`).
//!
//! A fastener that is missing, displaced or inverted does not look like a fastener, so it cannot
//! be *found* by what it looks like (`fastener_search`). Where it must be follows from the track:
//! every sleeper carries one assembly on each side of each rail, right against the rail head. So
//! the locator finds the rails and the sleepers and places the slots from them; what is in a slot
//! (a fastener, half of one, bare concrete) is the model's business.
//!
//! On a copy of the frame shrunk to [`WORK_PX_PER_M`] (a 1 MP frame becomes ~0.1 MP), with the
//! rails turned to run left–right (`orientation = "down"` frames are transposed):
//! 1. **Rails**: the rail head is a band of a known width whose two long edges run through the
//!    whole frame. Each column block's mean vertical gradient gives an edge profile across the
//!    track; the head's response at a row is the median over blocks of the contrast between its
//!    two edges (plus the two rail-foot edges), so structures that cover only part of the length
//!    (sleepers, plates, stones) drop out. Scanned over small rotations (±3°).
//! 2. **Sleepers**: their two edges are straight lines perpendicular to the rails. The median over
//!    row blocks beside the rails of the horizontal gradient gives an along-track profile in which
//!    a sleeper is a pair of opposite edges ~0.28 m apart; a comb over period (nominal ±15 %) and
//!    phase finds the sleeper centres, each then refined within ±5 cm.
//! 3. **Slots**: at every sleeper centre, one square of `fastener_size_m` on each side of each
//!    rail, its inner edge on the rail head's edge.
//!
//! A frame in which no rail stands out (blank, sky, a hand over the lens) is [`Located::NoTrack`]
//! with the reason, never an empty "normal" frame.

use opencv::core::{Mat, Rect};
use opencv::prelude::*;

use crate::config::GeometryConfig;
use crate::error::{Error, Result};

/// The working scale (reached within an integer shrink factor): the rail head is ~5 px wide, a
/// sleeper period ~40 px.
pub const WORK_PX_PER_M: f64 = 70.0;
const ROTATIONS_DEG: f64 = 3.0;
const COARSE_STEP_DEG: f64 = 1.0;
const ROTATION_STEP_DEG: f64 = 0.25;
const RAIL_FOOT_M: f64 = 0.15;
const SLEEPER_HALF_WIDTH_M: (f64, f64) = (0.12, 0.16);
const PERIOD_TOLERANCE: f64 = 0.15;
const REFINE_M: f64 = 0.05;
/// Rows this far beyond the fastener boxes show bare sleeper or ballast.
const OUTER_BAND_M: f64 = 0.3;
/// Half-width of a sleeper's middle, where its texture is measured.
const SLEEPER_CORE_M: f64 = 0.08;
/// The rail's response must stand this many robust standard deviations above the profile's
/// median, with this edge contrast, and be carried by this share of the column blocks. On the
/// generated sets (seeds 11 and 12, docs/performance.md) track frames reach z ≥ 23.6 and a
/// contrast ≥ 8.0; blank, sky and hand frames at most z 18.4 (an arm's straight edges) and a
/// contrast of 4.6.
const MIN_RAIL_Z: f64 = 12.0;
const MIN_BLOCK_SUPPORT: f64 = 0.6;
/// Edge contrast (grey levels per pixel at the working scale) below which nothing is a rail.
const MIN_RAIL_CONTRAST: f64 = 5.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    /// Rails run left–right.
    Across,
    /// Rails run top–bottom.
    Down,
}

/// Checks a [`GeometryConfig`] and parses its orientation.
fn validate(c: &GeometryConfig) -> Result<Orientation> {
    let bad = |m: String| Err(Error::Config(format!("geometry: {m}")));
    let orientation = match c.orientation.as_str() {
        "across" => Orientation::Across,
        "down" => Orientation::Down,
        o => return bad(format!("orientation must be across or down, not {o:?}")),
    };
    if !(20.0..=5000.0).contains(&c.px_per_m) {
        return bad(format!("px_per_m must be 20..5000, not {}", c.px_per_m));
    }
    if !(1..=2).contains(&c.rails) {
        return bad(format!("rails must be 1 or 2, not {}", c.rails));
    }
    for (name, v, lo, hi) in [
        ("sleeper_spacing_m", c.sleeper_spacing_m, 0.3, 1.2),
        ("fastener_size_m", c.fastener_size_m, 0.05, 0.6),
        ("rail_head_m", c.rail_head_m, 0.03, 0.15),
        ("gauge_m", c.gauge_m, 0.6, 2.0),
        ("min_visible", c.min_visible, 0.0, 1.0),
    ] {
        if !(lo..=hi).contains(&v) {
            return bad(format!("{name} must be {lo}..{hi}, not {v}"));
        }
    }
    Ok(orientation)
}

/// One place where a fastener assembly must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    /// Bounding box in frame pixels of the (slightly rotated) square; may reach past the frame.
    pub rect: Rect,
    /// Share of the box inside the frame.
    pub visible: f64,
    /// Rail index, in order of the coordinate across the track.
    pub rail: usize,
    /// -1: the side of the rail with the smaller coordinate across the track (above it when the
    /// rails run across, left of it when they run down); +1 the other.
    pub side: i8,
    /// Sleeper index along the track (0 = the first sleeper whose slots reach into the frame).
    pub sleeper: usize,
}

/// What the locator found.
#[derive(Debug, Clone, PartialEq)]
pub enum Located {
    Track(TrackLayout),
    NoTrack { reason: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrackLayout {
    /// Rotation of the rails against the frame axis, degrees.
    pub angle_deg: f64,
    /// Each rail's centre line across the track at the frame's middle, frame pixels.
    pub rails: Vec<f64>,
    /// Measured sleeper spacing, metres at the nominal scale.
    pub sleeper_spacing_m: f64,
    pub slots: Vec<Slot>,
    /// How far the weakest rail stands out (robust z-score of its response).
    pub rail_z: f64,
}

/// Places fastener slots from the rails and sleepers of a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackLocator {
    /// The camera's geometry, checked.
    pub geometry: GeometryConfig,
    pub orientation: Orientation,
}

/// A single-channel f32 image in row-major order.
struct Plane {
    w: usize,
    h: usize,
    v: Vec<f32>,
}

impl Plane {
    fn at(&self, x: usize, y: usize) -> f32 {
        self.v[y * self.w + x]
    }
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    let hi = v[mid];
    if v.len() % 2 == 1 {
        hi
    } else {
        let lo = v[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lo + hi)
    }
}

/// Linear interpolation of a profile at a fractional index; outside it, `None`.
fn sample(p: &[f64], t: f64) -> Option<f64> {
    if !(0.0..=(p.len() - 1) as f64).contains(&t) {
        return None;
    }
    let i = t.floor() as usize;
    let f = t - i as f64;
    Some(if i + 1 < p.len() {
        p[i] * (1.0 - f) + p[i + 1] * f
    } else {
        p[i]
    })
}

impl TrackLocator {
    pub fn from_config(c: &GeometryConfig) -> Result<Self> {
        Ok(Self {
            orientation: validate(c)?,
            geometry: c.clone(),
        })
    }

    /// Splits a `w`×`h` frame's slots into the whole ones, scored (boxes clipped to the frame),
    /// and the boxes of those cut by its edge below `min_visible`, reported only.
    pub fn whole_and_partial(&self, slots: Vec<Slot>, w: i32, h: i32) -> (Vec<Slot>, Vec<Rect>) {
        let full = Rect::new(0, 0, w, h);
        let (whole, partial): (Vec<Slot>, Vec<Slot>) = slots
            .into_iter()
            .partition(|s| s.visible >= self.geometry.min_visible);
        let whole = whole
            .into_iter()
            .map(|s| Slot {
                rect: s.rect & full,
                ..s
            })
            .collect();
        (whole, partial.into_iter().map(|s| s.rect).collect())
    }

    /// Finds the rails, the sleepers and the fastener slots of an 8-bit gray frame.
    pub fn locate(&self, gray: &Mat) -> Result<Located> {
        let g = &self.geometry;
        if gray.channels() != 1 || gray.depth() != opencv::core::CV_8U {
            return Err(Error::Preprocess(
                "track: expects an 8-bit gray frame".into(),
            ));
        }
        let (fw, fh) = (gray.cols(), gray.rows());
        // an integer shrink factor (a plain block mean), the working scale near WORK_PX_PER_M
        let k = (g.px_per_m / WORK_PX_PER_M).round().max(1.0) as usize;
        let ppm = g.px_per_m / k as f64; // working pixels per metre
        let work = self.working_plane(gray, k)?;
        let (w, h) = (work.w, work.h);
        if w < 16 || h < 16 {
            return Ok(Located::NoTrack {
                reason: format!(
                    "frame {fw}x{fh} is too small for a {} px/m camera",
                    g.px_per_m
                ),
            });
        }
        let rails = match self.find_rails(&work, ppm) {
            Ok(r) => r,
            Err(reason) => return Ok(Located::NoTrack { reason }),
        };
        let (centres, spacing_px) = self.find_sleepers(&work, ppm, &rails);
        // back to frame pixels (rails running across): working pixel i covers frame pixels
        // [i·k, (i+1)·k)
        let to_frame = |v: f64| (v + 0.5) * k as f64 - 0.5;
        let (sin, cos) = rails.angle.sin_cos();
        let tan = rails.angle.tan();
        let side_px = g.fastener_size_m * g.px_per_m;
        let bb = side_px * (cos.abs() + sin.abs());
        let offset = (0.5 * g.rail_head_m + 0.5 * g.fastener_size_m) * g.px_per_m;
        let mut slots = Vec::new();
        for (k, &xs_w) in centres.iter().enumerate() {
            for (ri, &yc_w) in rails.centres.iter().enumerate() {
                // the rail's centre line at this sleeper, frame pixels (rails across)
                let x = to_frame(xs_w);
                let y = to_frame(yc_w + tan * (xs_w - 0.5 * w as f64));
                for side in [-1i8, 1] {
                    let d = side as f64 * offset;
                    let (cx, cy) = (x - sin * d, y + cos * d);
                    let r = Rect::new(
                        (cx - 0.5 * bb).round() as i32,
                        (cy - 0.5 * bb).round() as i32,
                        bb.round() as i32,
                        bb.round() as i32,
                    );
                    let r = match self.orientation {
                        Orientation::Across => r,
                        Orientation::Down => Rect::new(r.y, r.x, r.height, r.width),
                    };
                    let visible = visible_share(r, fw, fh);
                    if visible > 0.0 {
                        slots.push(Slot {
                            rect: r,
                            visible,
                            rail: ri,
                            side,
                            sleeper: k,
                        });
                    }
                }
            }
        }
        // renumber sleepers from the first one that reaches into the frame
        if let Some(first) = slots.iter().map(|s| s.sleeper).min() {
            for s in &mut slots {
                s.sleeper -= first;
            }
        }
        Ok(Located::Track(TrackLayout {
            angle_deg: rails.angle.to_degrees(),
            rails: rails.centres.iter().map(|&c| to_frame(c)).collect(),
            sleeper_spacing_m: spacing_px / ppm,
            slots,
            rail_z: rails.z,
        }))
    }

    /// The frame shrunk to the working scale, lightly smoothed, rails running across.
    /// The frame shrunk by an integer factor (the mean of each k×k block), smoothed with a
    /// [1 2 1]/4 kernel both ways, rails turned to run across.
    fn working_plane(&self, gray: &Mat, k: usize) -> Result<Plane> {
        let gray = if gray.is_continuous() {
            gray.try_clone()?
        } else {
            gray.clone()
        };
        let (fw, fh) = (gray.cols() as usize, gray.rows() as usize);
        let px = gray.data_bytes()?;
        let (sw, sh) = (fw / k, fh / k);
        let mut small = vec![0f32; sw * sh];
        let mut row = vec![0u32; sw];
        for y in 0..sh {
            row.iter_mut().for_each(|v| *v = 0);
            for yy in y * k..(y + 1) * k {
                let line = &px[yy * fw..yy * fw + sw * k];
                for (x, acc) in row.iter_mut().enumerate() {
                    *acc += line[x * k..(x + 1) * k]
                        .iter()
                        .map(|&v| v as u32)
                        .sum::<u32>();
                }
            }
            let norm = 1.0 / (k * k) as f32;
            for (x, acc) in row.iter().enumerate() {
                small[y * sw + x] = *acc as f32 * norm;
            }
        }
        let (w, h, mut v) = if self.orientation == Orientation::Down {
            let mut t = vec![0f32; sw * sh];
            for y in 0..sh {
                for x in 0..sw {
                    t[x * sh + y] = small[y * sw + x];
                }
            }
            (sh, sw, t)
        } else {
            (sw, sh, small)
        };
        let mut tmp = v.clone();
        for y in 0..h {
            for x in 1..w.saturating_sub(1) {
                let i = y * w + x;
                tmp[i] = 0.25 * (v[i - 1] + 2.0 * v[i] + v[i + 1]);
            }
        }
        for y in 1..h.saturating_sub(1) {
            for x in 0..w {
                let i = y * w + x;
                v[i] = 0.25 * (tmp[i - w] + 2.0 * tmp[i] + tmp[i + w]);
            }
        }
        Ok(Plane { w, h, v })
    }

    fn find_rails(&self, p: &Plane, ppm: f64) -> std::result::Result<Rails, String> {
        let g = &self.geometry;
        let (w, h) = (p.w, p.h);
        let blocks = (w / 12).clamp(4, 16);
        // m[b][y]: mean vertical gradient of column block b at row y
        let mut m = vec![vec![0f64; h]; blocks];
        let bw = w as f64 / blocks as f64;
        for (b, prof) in m.iter_mut().enumerate() {
            let (x0, x1) = (
                (b as f64 * bw) as usize,
                (((b + 1) as f64 * bw) as usize).min(w),
            );
            for (y, out) in prof.iter_mut().enumerate().take(h - 1).skip(1) {
                let mut s = 0f64;
                for x in x0..x1 {
                    s += (p.at(x, y + 1) - p.at(x, y - 1)) as f64 * 0.5;
                }
                *out = s / (x1 - x0).max(1) as f64;
            }
        }
        let centres_x: Vec<f64> = (0..blocks)
            .map(|b| (b as f64 + 0.5) * bw - 0.5 * w as f64)
            .collect();
        let half_head = 0.5 * g.rail_head_m * ppm;
        let half_foot = 0.5 * RAIL_FOOT_M * ppm;
        // per block and row: the gradient one head half-width above and below, and one foot
        // half-width above and below; NaN where that leaves the frame
        let at = |prof: &[f64], t: f64| sample(prof, t).unwrap_or(f64::NAN);
        let shifted = |d: f64| -> Vec<Vec<f64>> {
            m.iter()
                .map(|p| (0..h).map(|y| at(p, y as f64 + d)).collect())
                .collect()
        };
        let planes = [
            shifted(-half_head),
            shifted(half_head),
            shifted(-half_foot),
            shifted(half_foot),
        ];
        let mut vals: [Vec<f64>; 4] = std::array::from_fn(|_| vec![0f64; blocks]);
        let mut response = |angle: f64| -> Vec<f64> {
            let offsets: Vec<isize> = centres_x
                .iter()
                .map(|x| (angle.tan() * x).round() as isize)
                .collect();
            (0..h)
                .map(|y| {
                    let mut med = [0f64; 4];
                    for (k, plane) in planes.iter().enumerate() {
                        let mut n = 0;
                        for b in 0..blocks {
                            let t = y as isize + offsets[b];
                            if t < 0 || t >= h as isize {
                                continue;
                            }
                            let v = plane[b][t as usize];
                            if !v.is_nan() {
                                vals[k][n] = v;
                                n += 1;
                            }
                        }
                        if n * 2 < blocks {
                            return 0.0;
                        }
                        med[k] = median(&mut vals[k][..n]);
                    }
                    // both edges of the head, of opposite signs (a bright head: dark→bright
                    // above it, bright→dark below; or the reverse), and both edges of the foot:
                    // one long step edge (a shadow, an arm) is only half a rail
                    let head = med[0].min(-med[1]).max((-med[0]).min(med[1]));
                    let foot = med[2].abs().min(med[3].abs());
                    head.max(0.0) + 0.5 * foot
                })
                .collect()
        };
        // coarse to fine over the rotation
        let mut best: Option<(f64, Vec<f64>)> = None; // (angle, response per row)
        let mut best_peak = f64::NEG_INFINITY;
        let mut consider = |angle: f64, best: &mut Option<(f64, Vec<f64>)>| {
            let resp = response(angle);
            let peak = resp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if peak > best_peak {
                best_peak = peak;
                *best = Some((angle, resp));
            }
        };
        let coarse = (ROTATIONS_DEG / COARSE_STEP_DEG).round() as i32;
        for s in -coarse..=coarse {
            consider((s as f64 * COARSE_STEP_DEG).to_radians(), &mut best);
        }
        let centre = best.as_ref().map(|b| b.0.to_degrees()).unwrap_or(0.0);
        let fine = (COARSE_STEP_DEG / ROTATION_STEP_DEG).round() as i32;
        for s in -fine..=fine {
            if s != 0 && (centre + s as f64 * ROTATION_STEP_DEG).abs() <= ROTATIONS_DEG {
                consider(
                    (centre + s as f64 * ROTATION_STEP_DEG).to_radians(),
                    &mut best,
                );
            }
        }
        let (angle, resp) = best.ok_or("no rail response")?;
        let mut sorted = resp.clone();
        let med = median(&mut sorted);
        let mut dev: Vec<f64> = resp.iter().map(|v| (v - med).abs()).collect();
        let mad = 1.4826 * median(&mut dev) + 1e-3;
        let z = |v: f64| (v - med) / mad;
        let gauge = g.gauge_m * ppm;
        let centres: Vec<usize> = if g.rails == 1 {
            vec![argmax(&resp)]
        } else {
            // the best pair a gauge apart (±10 %: the scale may be off by 5 %)
            let mut best_pair = (0, 0, f64::NEG_INFINITY);
            for y1 in 0..h {
                let lo = (y1 as f64 + 0.9 * gauge).ceil() as usize;
                let hi = ((y1 as f64 + 1.1 * gauge).floor() as usize).min(h.saturating_sub(1));
                for y2 in lo..=hi {
                    let s = resp[y1].min(resp[y2]);
                    if s > best_pair.2 {
                        best_pair = (y1, y2, s);
                    }
                }
            }
            if best_pair.2 == f64::NEG_INFINITY {
                return Err(format!(
                    "two rails {:.2} m apart do not fit in the frame",
                    g.gauge_m
                ));
            }
            vec![best_pair.0, best_pair.1]
        };
        let weakest = centres
            .iter()
            .map(|&c| resp[c])
            .fold(f64::INFINITY, f64::min);
        let rail_z = z(weakest);
        if weakest < MIN_RAIL_CONTRAST {
            return Err(format!(
                "no rail found: edge contrast {weakest:.2} below {MIN_RAIL_CONTRAST}"
            ));
        }
        if rail_z < MIN_RAIL_Z {
            return Err(format!(
                "no rail found: the best rail candidate stands {rail_z:.1} robust SDs out (needs {MIN_RAIL_Z})"
            ));
        }
        // the rail must be carried by most of the length, not one bright patch
        let tan = angle.tan();
        for &c in &centres {
            let v: Vec<(f64, f64)> = (0..blocks)
                .filter_map(|b| {
                    let yc = c as f64 + tan * centres_x[b];
                    Some((
                        sample(&m[b], yc - half_head)?,
                        sample(&m[b], yc + half_head)?,
                    ))
                })
                .collect();
            // each block's head contrast in the rail's polarity, against their median (a
            // shadow across part of the frame weakens the edges there, it does not remove them)
            let polarity = {
                let mut tops: Vec<f64> = v.iter().map(|(t, _)| *t).collect();
                median(&mut tops).signum()
            };
            let heads: Vec<f64> = v
                .iter()
                .map(|(top, bot)| (polarity * top).min(-polarity * bot))
                .collect();
            let typical = median(&mut heads.clone());
            let support = heads
                .iter()
                .filter(|h| **h >= 0.2 * typical && **h > 0.0)
                .count();
            let share = support as f64 / v.len().max(1) as f64;
            if share < MIN_BLOCK_SUPPORT {
                return Err(format!(
                    "no rail found: the best candidate runs through {:.0} % of the frame's length",
                    100.0 * share
                ));
            }
        }
        Ok(Rails {
            angle,
            centres: centres.into_iter().map(|c| c as f64).collect(),
            z: rail_z,
        })
    }

    /// Sleeper centres along the track (working pixels, rails across) and their spacing.
    fn find_sleepers(&self, p: &Plane, ppm: f64, rails: &Rails) -> (Vec<f64>, f64) {
        let g = &self.geometry;
        let (w, h) = (p.w, p.h);
        let tan = rails.angle.tan();
        let inner = 0.5 * RAIL_FOOT_M.max(g.rail_head_m) * ppm + 1.0;
        let reach = (0.5 * g.rail_head_m + g.fastener_size_m) * ppm;
        let outer = reach + OUTER_BAND_M * ppm;
        // row blocks beside each rail, clear of it: two across the fastener zone and two beyond
        // it on each side (beyond: bare sleeper or ballast, the texture test below)
        let mut bands: Vec<(f64, f64, bool)> = Vec::new();
        for &c in &rails.centres {
            let mid = 0.5 * (inner + reach);
            let far = 0.5 * (reach + outer);
            for sign in [-1.0, 1.0] {
                let band = |a: f64, b: f64| {
                    let (u, v) = (c + sign * a, c + sign * b);
                    (u.min(v), u.max(v))
                };
                let (i0, i1) = band(inner, mid);
                let (m0, m1) = band(mid, reach);
                let (r0, r1) = band(reach, far);
                let (f0, f1) = band(far, outer);
                bands.extend([
                    (i0, i1, false),
                    (m0, m1, false),
                    (r0, r1, true),
                    (f0, f1, true),
                ]);
            }
        }
        // per band, the mean horizontal gradient and the mean gradient magnitude along lines
        // perpendicular to the rails
        let mut edges: Vec<Vec<f64>> = Vec::new();
        let mut texture = vec![0f64; w];
        let mut texture_rows = 0usize;
        let mut texture_all = vec![0f64; w];
        for &(y0, y1, beyond) in &bands {
            let (y0, y1) = (
                y0.max(1.0).round() as usize,
                (y1.min(h as f64 - 2.0)).round() as usize,
            );
            if y1 <= y0 + 1 {
                continue;
            }
            let mut prof = vec![0f64; w];
            let mut cnt = vec![0u32; w];
            for y in y0..y1 {
                // a line perpendicular to the rails drifts by -tan per row
                let shift = (-tan * (y as f64 - 0.5 * h as f64)).round() as isize;
                for x in 1..w - 1 {
                    let xi = x as isize + shift;
                    if xi < 1 || xi >= w as isize - 1 {
                        continue;
                    }
                    let xi = xi as usize;
                    let gx = 0.5 * (p.at(xi + 1, y) - p.at(xi - 1, y)) as f64;
                    let gy = 0.5 * (p.at(xi, y + 1) - p.at(xi, y - 1)) as f64;
                    prof[x] += gx;
                    cnt[x] += 1;
                    let mag = gx.abs() + gy.abs();
                    texture_all[x] += mag;
                    if beyond {
                        texture[x] += mag;
                    }
                }
            }
            if beyond {
                texture_rows += y1 - y0;
            }
            for (v, n) in prof.iter_mut().zip(&cnt) {
                *v /= (*n).max(1) as f64;
            }
            edges.push(prof);
        }
        if texture_rows == 0 {
            texture = texture_all; // the frame shows nothing beyond the fasteners
        }
        let mut col = vec![0f64; edges.len()];
        let edge: Vec<f64> = (0..w)
            .map(|x| {
                for (c, p) in col.iter_mut().zip(&edges) {
                    *c = p[x];
                }
                median(&mut col)
            })
            .collect();
        // a sleeper centred at x: an edge on each side, of opposite signs
        let (a, b) = (SLEEPER_HALF_WIDTH_M.0 * ppm, SLEEPER_HALF_WIDTH_M.1 * ppm);
        let taps: Vec<f64> = {
            let n = ((b - a).ceil() as usize).max(1);
            (0..=n).map(|i| a + (b - a) * i as f64 / n as f64).collect()
        };
        let pair = |x: f64| -> f64 {
            let s: f64 = taps
                .iter()
                .map(|&d| sample(&edge, x - d).unwrap_or(0.0) - sample(&edge, x + d).unwrap_or(0.0))
                .sum();
            s / taps.len() as f64
        };
        let rising: Vec<f64> = (0..w).map(|x| pair(x as f64)).collect();
        let nominal = g.sleeper_spacing_m * ppm;
        let margin = 0.5 * g.fastener_size_m * ppm + 1.0;
        let half = (SLEEPER_CORE_M * ppm).max(1.0);
        // Both polarities fit a comb equally well: a sleeper (light concrete between ballast) and
        // the ballast between two sleepers are both bands between opposite edges. Concrete is
        // the smooth one.
        let mut best: Option<(f64, Vec<f64>, f64)> = None; // (texture, centres, period)
        for polarity in [1.0, -1.0] {
            let resp: Vec<f64> = rising.iter().map(|v| v * polarity).collect();
            let (period, centres) = comb(&resp, nominal, margin, REFINE_M * ppm, w);
            let inside: Vec<f64> = centres
                .iter()
                .copied()
                .filter(|&c| c - half >= 0.0 && c + half <= (w - 1) as f64)
                .collect();
            let t = if inside.is_empty() {
                f64::INFINITY
            } else {
                inside
                    .iter()
                    .map(|&c| {
                        let (x0, x1) = ((c - half).round() as usize, (c + half).round() as usize);
                        texture[x0..=x1].iter().sum::<f64>() / (x1 - x0 + 1) as f64
                    })
                    .sum::<f64>()
                    / inside.len() as f64
            };
            if best.as_ref().is_none_or(|b| t < b.0) {
                best = Some((t, centres, period));
            }
        }
        let (_, centres, period) = best.unwrap_or((0.0, Vec::new(), nominal));
        (centres, period)
    }
}

/// The comb of sleeper centres that best fits a response profile: period within
/// ±`PERIOD_TOLERANCE` of `nominal`, any phase; every centre whose slots reach into the frame
/// (`margin`), each refined to its local maximum within ±`refine`.
fn comb(resp: &[f64], nominal: f64, margin: f64, refine: f64, w: usize) -> (f64, Vec<f64>) {
    let (pmin, pmax) = (
        nominal * (1.0 - PERIOD_TOLERANCE),
        nominal * (1.0 + PERIOD_TOLERANCE),
    );
    let mut best = (nominal, 0.0, f64::NEG_INFINITY);
    let mut period = pmin;
    while period <= pmax {
        let mut phase = 0.0;
        while phase < period {
            let (mut s, mut n) = (0.0, 0);
            let mut x = phase;
            while x < w as f64 {
                if let Some(v) = sample(resp, x) {
                    s += v;
                    n += 1;
                }
                x += period;
            }
            if n > 0 && s / n as f64 > best.2 {
                best = (period, phase, s / n as f64);
            }
            phase += 0.5;
        }
        period += 0.25;
    }
    let (period, phase, _) = best;
    let mut centres = Vec::new();
    let mut x = phase;
    while x - period > -margin {
        x -= period;
    }
    while x < w as f64 + margin {
        let mut bx = x;
        if x >= refine && x <= w as f64 - 1.0 - refine {
            let mut bv = sample(resp, x).unwrap_or(f64::NEG_INFINITY);
            let mut t = x - refine;
            while t <= x + refine {
                if let Some(v) = sample(resp, t) {
                    if v > bv {
                        bv = v;
                        bx = t;
                    }
                }
                t += 0.5;
            }
        }
        centres.push(bx);
        x += period;
    }
    (period, centres)
}

struct Rails {
    angle: f64,
    /// Centre rows at the frame's middle column (working pixels).
    centres: Vec<f64>,
    z: f64,
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap_or(0)
}

/// Share of `r` inside a `w`×`h` frame.
pub fn visible_share(r: Rect, w: i32, h: i32) -> f64 {
    let c = r & Rect::new(0, 0, w, h);
    if r.width <= 0 || r.height <= 0 || c.width <= 0 || c.height <= 0 {
        return 0.0;
    }
    (c.width as f64 * c.height as f64) / (r.width as f64 * r.height as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{Point, Scalar, CV_8UC1};
    use opencv::imgproc;

    /// A plain drawn track: ballast-grey noise, light sleepers every `spacing` px, a bright rail
    /// head with darker feet at row `rail_y`, a dark square "fastener" on each side of the rail
    /// on every sleeper except `missing`.
    fn drawn(w: i32, h: i32, g: &GeometryConfig, rail_y: f64, phase: f64, missing: usize) -> Mat {
        let ppm = g.px_per_m;
        let mut m = Mat::new_rows_cols_with_default(h, w, CV_8UC1, Scalar::all(70.0)).unwrap();
        let mut noise = Mat::new_rows_cols_with_default(h, w, CV_8UC1, Scalar::all(0.0)).unwrap();
        opencv::core::randu(&mut noise, &Scalar::all(0.0), &Scalar::all(40.0)).unwrap();
        let mut sum = Mat::default();
        opencv::core::add(&m, &noise, &mut sum, &opencv::core::no_array(), -1).unwrap();
        m = sum;
        let spacing = g.sleeper_spacing_m * ppm;
        let sw = 0.28 * ppm;
        let mut k = 0;
        let mut x = phase;
        while x < w as f64 + spacing {
            let r = Rect::new((x - sw / 2.0) as i32, 0, sw as i32, h);
            imgproc::rectangle(&mut m, r, Scalar::all(150.0), -1, imgproc::LINE_8, 0).unwrap();
            if k != missing {
                let b = g.fastener_size_m * ppm;
                for side in [-1.0, 1.0] {
                    let cy = rail_y + side * (0.5 * g.rail_head_m * ppm + 0.5 * b);
                    let c = Point::new(x as i32, cy as i32);
                    imgproc::circle(
                        &mut m,
                        c,
                        (0.3 * b) as i32,
                        Scalar::all(40.0),
                        -1,
                        imgproc::LINE_8,
                        0,
                    )
                    .unwrap();
                }
            }
            k += 1;
            x += spacing;
        }
        let foot = RAIL_FOOT_M * ppm;
        let head = g.rail_head_m * ppm;
        let band = |m: &mut Mat, half: f64, v: f64| {
            let r = Rect::new(0, (rail_y - half) as i32, w, (2.0 * half) as i32);
            imgproc::rectangle(m, r, Scalar::all(v), -1, imgproc::LINE_8, 0).unwrap();
        };
        band(&mut m, foot / 2.0, 90.0);
        band(&mut m, head / 2.0, 230.0);
        m
    }

    fn geometry() -> GeometryConfig {
        GeometryConfig {
            px_per_m: 300.0,
            ..Default::default()
        }
    }

    #[test]
    fn slots_sit_beside_the_rail_on_every_sleeper_even_where_the_fastener_is_missing() {
        let g = geometry();
        let frame = drawn(900, 600, &g, 310.0, 100.0, 1);
        let loc = TrackLocator::from_config(&g).unwrap();
        let Located::Track(layout) = loc.locate(&frame).unwrap() else {
            panic!("track expected");
        };
        assert!((layout.rails[0] - 310.0).abs() < 6.0, "{:?}", layout.rails);
        assert!(
            (layout.sleeper_spacing_m - 0.6).abs() < 0.02,
            "{}",
            layout.sleeper_spacing_m
        );
        let whole: Vec<&Slot> = layout.slots.iter().filter(|s| s.visible >= 0.99).collect();
        // sleepers at x = 100, 280, 460, 640, 820 (boxes 72 px wide, all inside), 2 sides each
        assert_eq!(whole.len(), 10, "{:?}", layout.slots);
        let b = g.fastener_size_m * g.px_per_m;
        for s in &whole {
            let cx = s.rect.x as f64 + s.rect.width as f64 / 2.0;
            let cy = s.rect.y as f64 + s.rect.height as f64 / 2.0;
            let k = ((cx - 100.0) / 180.0).round();
            assert!((cx - (100.0 + 180.0 * k)).abs() < 6.0, "{s:?}");
            let want = 310.0 + s.side as f64 * (0.5 * g.rail_head_m * g.px_per_m + 0.5 * b);
            assert!((cy - want).abs() < 6.0, "{s:?}");
        }
        // the sleeper whose fasteners are missing (x = 280) still has its two slots
        let at_280 = whole
            .iter()
            .filter(|s| ((s.rect.x as f64 + s.rect.width as f64 / 2.0) - 280.0).abs() < 8.0)
            .count();
        assert_eq!(at_280, 2);
    }

    #[test]
    fn rails_running_down_give_the_transposed_slots() {
        let g = geometry();
        let across = drawn(900, 600, &g, 310.0, 100.0, usize::MAX);
        let mut down_frame = Mat::default();
        opencv::core::transpose(&across, &mut down_frame).unwrap();
        let slots = |g: &GeometryConfig, m: &Mat| match TrackLocator::from_config(g)
            .unwrap()
            .locate(m)
            .unwrap()
        {
            Located::Track(l) => l.slots,
            other => panic!("{other:?}"),
        };
        let a = slots(&g, &across);
        let d = slots(
            &GeometryConfig {
                orientation: "down".into(),
                ..g.clone()
            },
            &down_frame,
        );
        assert_eq!(a.len(), d.len());
        for (s, t) in a.iter().zip(&d) {
            assert_eq!(
                Rect::new(s.rect.y, s.rect.x, s.rect.height, s.rect.width),
                t.rect
            );
        }
    }

    #[test]
    fn a_frame_without_track_says_so() {
        let g = geometry();
        let loc = TrackLocator::from_config(&g).unwrap();
        let blank = Mat::new_rows_cols_with_default(600, 900, CV_8UC1, Scalar::all(128.0)).unwrap();
        let mut noise =
            Mat::new_rows_cols_with_default(600, 900, CV_8UC1, Scalar::all(0.0)).unwrap();
        opencv::core::randu(&mut noise, &Scalar::all(0.0), &Scalar::all(255.0)).unwrap();
        let mut blob = blank.clone();
        imgproc::circle(
            &mut blob,
            Point::new(450, 300),
            200,
            Scalar::all(40.0),
            -1,
            imgproc::LINE_AA,
            0,
        )
        .unwrap();
        for (name, m) in [("blank", blank), ("noise", noise), ("blob", blob)] {
            match loc.locate(&m).unwrap() {
                Located::NoTrack { reason } => {
                    assert!(reason.contains("no rail"), "{name}: {reason}")
                }
                Located::Track(l) => panic!("{name}: found a track {l:?}"),
            }
        }
    }

    #[test]
    fn bad_geometry_is_refused_with_the_field_named() {
        for (g, field) in [
            (
                GeometryConfig {
                    orientation: "sideways".into(),
                    ..Default::default()
                },
                "orientation",
            ),
            (
                GeometryConfig {
                    px_per_m: 0.0,
                    ..Default::default()
                },
                "px_per_m",
            ),
            (
                GeometryConfig {
                    rails: 3,
                    ..Default::default()
                },
                "rails",
            ),
            (
                GeometryConfig {
                    fastener_size_m: 2.0,
                    ..Default::default()
                },
                "fastener_size_m",
            ),
        ] {
            let e = TrackLocator::from_config(&g).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }
}

//! Defect heatmaps for inspectors: per-pixel |x − x̂| (mean over channels), resized back onto
//! each region of interest, colour-mapped (JET) and blended over the frame. For a package whose R
//! pools the `topk` of a smoothed error map (docs/scoring.md), the map shown is that same smoothed
//! map s = G_σ ∗ e, so the hottest region is where R looked; for a `mean` package it is e,
//! blurred for display with `heatmap.sigma`.
//!
//! The colour scale is anchored to the calibration (docs/scoring.md, "Heatmap"): a pixel's colour
//! says which A' the crop would have if its worst region looked like that pixel, the crop's own L
//! and the calibration of the verdict held fixed ([`ColourScale::index`]). Up to the threshold the
//! cool half of JET (blue → green), above it the warm half (yellow → red, saturating at twice
//! the threshold): the same colour means the same A' on every frame, and anything warm is over
//! the threshold.
//!
//! [`render_reconstruction`] composes the model's reconstructions x̂, back in pixels, into the
//! frame the same way.

use std::path::Path;

use opencv::core::{Mat, Rect, Size, Vector, CV_32FC1};
use opencv::imgproc;
use opencv::prelude::*;

use crate::config::HeatmapConfig;
use crate::error::{Error, Result};
use crate::pipeline::preprocess::{resize_to, CropView};
use crate::pipeline::scoring::{AdeGan, Normalization};

/// How one crop's map values become colours (docs/scoring.md, "Heatmap"): the crop's λ and L
/// and the calibration (min, max, threshold) its verdict was judged with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColourScale {
    pub lambda: f64,
    /// The crop's own L (RMS feature distance).
    pub l: f64,
    pub norm: Normalization,
    /// Score kind `ade-gan`: its parameters and the crop's own pattern confidence M, through
    /// which a pixel's reconstruction term becomes an A (`None` for `lambda-l1-l2`).
    pub pattern: Option<(AdeGan, f64)>,
}

impl ColourScale {
    /// The heatmap's colour mapping, all of it: a map value `s` → an index into OpenCV's 256-entry
    /// JET colour map.
    ///
    /// `a' = (λ·s + (1 − λ)·L − min) / (max − min)`, the A' the crop would have if its worst
    /// region looked like this pixel (for `ade-gan`, `A(λ·s + (1 − λ)·L, M)` in place of
    /// `λ·s + (1 − λ)·L`, with the crop's own M). With threshold `t > 0`: `a'` in [0, t] runs linearly over
    /// the cool half, indices 0 … 127 (blue → green; `t` itself is 127, the middle); `a'` in
    /// (t, 2t] over the warm half, 128 … 255 (yellow → red); clamped beyond. A' = t is normal
    /// (strict `>`), so only a pixel over the threshold is ever warm. A threshold ≤ 0 (no
    /// calibration method gives one) puts the cool half on [t − 1, t] and the warm half on
    /// (t, t + 1]. NaN maps to 0.
    pub fn index(&self, s: f64) -> u8 {
        let d = self.lambda * s + (1.0 - self.lambda) * self.l;
        let raw = match self.pattern {
            Some((kind, m)) => kind.combine(d, m).0,
            None => d,
        };
        let a = (raw - self.norm.min) / (self.norm.max - self.norm.min);
        let t = self.norm.threshold;
        let half = if t > 0.0 { t } else { 1.0 };
        if a > t {
            128 + (((a - t) / half).clamp(0.0, 1.0) * 127.0).round() as u8
        } else {
            // NaN lands here too: NaN as u8 is 0.
            (((a - (t - half)) / half).clamp(0.0, 1.0) * 127.0).round() as u8
        }
    }
}

/// One region's error map, at model resolution.
pub struct RegionMap {
    pub rect: Rect,
    pub map: Vec<f32>,
    pub height: usize,
    pub width: usize,
    /// How the crop was turned before scoring; turned back onto the frame.
    pub view: CropView,
    /// The map is already the score's smoothed map (`topk` pooling,
    /// [`scoring::ScoreRule::score_and_map`]): drawn as it is, not blurred again with
    /// `heatmap.sigma`.
    pub smoothed: bool,
    /// The crop's colour scale.
    pub scale: ColourScale,
}

/// Blends the colour-mapped error of every region over `frame` (gray or RGB, 8-bit) and returns
/// a BGR image ready for `imwrite`.
pub fn render(frame: &Mat, regions: &[RegionMap], cfg: &HeatmapConfig) -> Result<Mat> {
    let (frame, s) = shrink(frame, cfg.max_side)?;
    let mut canvas = Mat::default();
    let code = if frame.channels() == 1 {
        imgproc::COLOR_GRAY2BGR
    } else {
        imgproc::COLOR_RGB2BGR
    };
    imgproc::cvt_color(&frame, &mut canvas, code, 0)?;
    let full = Rect::new(0, 0, canvas.cols(), canvas.rows());
    for r in regions {
        let rect = scale_rect(r.rect, s) & full;
        if rect.width <= 0 || rect.height <= 0 {
            continue;
        }
        let mut m =
            Mat::new_rows_cols_with_default(r.height as i32, r.width as i32, CV_32FC1, 0.0.into())?;
        m.data_typed_mut::<f32>()?.copy_from_slice(&r.map);
        let m = r.view.undo(&m)?;
        let smooth = if r.smoothed {
            m
        } else {
            let mut smooth = Mat::default();
            imgproc::gaussian_blur(
                &m,
                &mut smooth,
                Size::new(0, 0),
                cfg.sigma.max(0.1),
                0.0,
                opencv::core::BORDER_REFLECT,
            )?;
            smooth
        };
        let mut big = Mat::default();
        imgproc::resize(
            &smooth,
            &mut big,
            rect.size(),
            0.0,
            0.0,
            imgproc::INTER_LINEAR,
        )?;
        let big = if big.is_continuous() {
            big
        } else {
            big.try_clone()?
        };
        let mut u8map = Mat::new_rows_cols_with_default(
            rect.height,
            rect.width,
            opencv::core::CV_8UC1,
            0.0.into(),
        )?;
        for (o, &v) in u8map
            .data_bytes_mut()?
            .iter_mut()
            .zip(big.data_typed::<f32>()?)
        {
            *o = r.scale.index(v as f64);
        }
        let mut colour = Mat::default();
        imgproc::apply_color_map(&u8map, &mut colour, imgproc::COLORMAP_JET)?;
        let base = Mat::roi(&canvas, rect)?.try_clone()?;
        let mut blended = Mat::default();
        opencv::core::add_weighted(
            &base,
            1.0 - cfg.alpha,
            &colour,
            cfg.alpha,
            0.0,
            &mut blended,
            -1,
        )?;
        let mut dst = Mat::roi_mut(&mut canvas, rect)?;
        blended.copy_to(&mut dst)?;
    }
    Ok(canvas)
}

/// One region's reconstruction x̂ back in pixels ([`crate::pipeline::preprocess::Denorm`]), at model
/// resolution.
pub struct RegionPixels {
    pub rect: Rect,
    /// H×W×C bytes, channels interleaved, C = the frame's channels.
    pub pixels: Vec<u8>,
    pub height: usize,
    pub width: usize,
    /// How the crop was turned before scoring; turned back onto the frame.
    pub view: CropView,
}

/// The frame (gray or RGB, 8-bit) with every region's reconstruction resized back onto its box
/// (`INTER_AREA` to shrink, `INTER_LINEAR` to enlarge), the rest of the frame as it is. A gray
/// frame stays gray; RGB comes back BGR, ready for `imwrite`.
pub fn render_reconstruction(frame: &Mat, regions: &[RegionPixels], max_side: i32) -> Result<Mat> {
    let (mut canvas, s) = shrink(frame, max_side)?;
    let channels = canvas.channels() as usize;
    let typ = match channels {
        1 => opencv::core::CV_8UC1,
        3 => opencv::core::CV_8UC3,
        n => {
            return Err(Error::Other(format!(
                "reconstruction of a {n}-channel frame"
            )))
        }
    };
    let full = Rect::new(0, 0, canvas.cols(), canvas.rows());
    for r in regions {
        let rect = scale_rect(r.rect, s) & full;
        if rect.width <= 0 || rect.height <= 0 {
            continue;
        }
        if r.pixels.len() != r.height * r.width * channels {
            return Err(Error::Other(format!(
                "reconstruction holds {} values, not {}×{}×{channels}",
                r.pixels.len(),
                r.height,
                r.width
            )));
        }
        let mut m =
            Mat::new_rows_cols_with_default(r.height as i32, r.width as i32, typ, 0.0.into())?;
        m.data_bytes_mut()?.copy_from_slice(&r.pixels);
        let m = r.view.undo(&m)?;
        let big = resize_to(&m, rect.width as usize, rect.height as usize)?;
        let mut dst = Mat::roi_mut(&mut canvas, rect)?;
        big.copy_to(&mut dst)?;
    }
    if channels == 3 {
        let mut bgr = Mat::default();
        imgproc::cvt_color(&canvas, &mut bgr, imgproc::COLOR_RGB2BGR, 0)?;
        canvas = bgr;
    }
    Ok(canvas)
}

/// The frame shrunk (area averaging) so its longer side is at most `max_side`, and the factor
/// applied; a copy at full size when it fits. A 36 MP frame's overlay at full size costs seconds
/// of the store thread (which every camera's verdict waits behind) and ~100 MB of PNG, for an
/// image a screen shows at a tenth of that.
fn shrink(frame: &Mat, max_side: i32) -> Result<(Mat, f64)> {
    let long = frame.cols().max(frame.rows());
    if max_side <= 0 || long <= max_side {
        return Ok((frame.try_clone()?, 1.0));
    }
    let s = max_side as f64 / long as f64;
    let size = Size::new(
        ((frame.cols() as f64 * s).round() as i32).max(1),
        ((frame.rows() as f64 * s).round() as i32).max(1),
    );
    let mut out = Mat::default();
    imgproc::resize(frame, &mut out, size, 0.0, 0.0, imgproc::INTER_AREA)?;
    Ok((out, s))
}

fn scale_rect(r: Rect, s: f64) -> Rect {
    if s == 1.0 {
        return r;
    }
    let (x0, y0) = ((r.x as f64 * s).floor(), (r.y as f64 * s).floor());
    let (x1, y1) = (
        ((r.x + r.width) as f64 * s).ceil(),
        ((r.y + r.height) as f64 * s).ceil(),
    );
    Rect::new(x0 as i32, y0 as i32, (x1 - x0) as i32, (y1 - y0) as i32)
}

pub fn write_png(path: &Path, bgr: &Mat) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("create {}", parent.display()), e))?;
    }
    let ok = opencv::imgcodecs::imwrite(path.to_string_lossy().as_ref(), bgr, &Vector::new())?;
    if !ok {
        return Err(Error::Other(format!("could not write {}", path.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::scoring::{self, Pooling};
    use opencv::core::{Scalar, Vec3b, CV_8UC1, CV_8UC3};

    /// λ = 1, L = 0, min = 0, max = 1: a' = s, so tests can speak in A'.
    fn plain(threshold: f64) -> ColourScale {
        ColourScale {
            lambda: 1.0,
            l: 0.0,
            norm: Normalization::new(0.0, 1.0, threshold).unwrap(),
            pattern: None,
        }
    }

    #[test]
    fn the_threshold_is_the_middle_of_the_colour_map() {
        let c = plain(0.25);
        assert_eq!(c.index(0.25), 127, "A' = threshold: the last cool entry");
        assert_eq!(c.index(0.25 + 1e-9), 128, "just over: the first warm entry");
        assert_eq!(c.index(0.0), 0);
        assert_eq!(
            c.index(0.125),
            64,
            "half the threshold: half way up the cool half"
        );
        assert_eq!(
            c.index(0.375),
            192,
            "1.5 × threshold: half way up the warm half"
        );
        assert_eq!(c.index(0.5), 255, "2 × threshold: the end of the map");
        assert_eq!((c.index(-0.3), c.index(7.0)), (0, 255), "clamped");
        assert_eq!(c.index(f64::NAN), 0);

        // A package's real λ, L and calibration: the value of s whose A' is the threshold.
        let real = ColourScale {
            lambda: 0.9,
            l: 0.021,
            norm: Normalization::new(0.0257, 0.0821, 0.1274).unwrap(),
            pattern: None,
        };
        let n = real.norm;
        let s_t =
            (n.threshold * (n.max - n.min) + n.min - (1.0 - real.lambda) * real.l) / real.lambda;
        assert_eq!(real.index(s_t - 1e-9), 127);
        assert_eq!(real.index(s_t + 1e-9), 128);
        // The same A' is the same colour whatever the crop's L: L moves s, not the colour.
        let other = ColourScale { l: 0.05, ..real };
        let s_other = s_t - (1.0 - real.lambda) * (other.l - real.l) / real.lambda;
        for d in [-0.01, -0.003, 0.002, 0.008] {
            assert_eq!(real.index(s_t + d), other.index(s_other + d), "offset {d}");
        }

        // A threshold ≤ 0 still splits at the threshold, with half-ranges of one A' unit.
        let zero = plain(0.0);
        assert_eq!((zero.index(0.0), zero.index(1e-9)), (127, 128));
        assert_eq!((zero.index(-1.0), zero.index(1.0)), (0, 255));
    }

    #[test]
    fn ade_gan_pixels_are_coloured_by_the_a_prime_they_stand_for() {
        // The crop's own pooled R gives the colour of the crop's own A' (ScoreRule::score).
        let kind = AdeGan::new(0.3, 0.05, 4).unwrap();
        let rule = scoring::ScoreRule {
            kind: scoring::ScoreKind::AdeGan(kind),
            lambda: 0.8,
            pooling: Pooling::Mean,
        };
        let x = [0.5f32, -0.25, 0.75, 0.0];
        let s = rule.score(
            &x,
            &[0.0; 4],
            &[0.5],
            &[0.0],
            Some(&[1.0, 0.0, 0.0, -1.0]),
            [1, 2, 2],
        );
        let norm = Normalization::new(0.2, 0.7, 0.3).unwrap();
        let c = ColourScale {
            lambda: 0.8,
            l: s.l,
            norm,
            pattern: Some((kind, s.m.unwrap())),
        };
        let t = ColourScale {
            lambda: 1.0,
            l: 0.0,
            norm: Normalization::new(0.0, 1.0, norm.threshold).unwrap(),
            pattern: None,
        };
        assert_eq!(c.index(s.r), t.index(norm.normalize(s.a)));
        // Without the pattern terms the same pixel would be coloured by λ·R + (1 − λ)·L.
        let plain = ColourScale { pattern: None, ..c };
        assert_ne!(plain.index(s.r), c.index(s.r));
    }

    #[test]
    fn colours_grow_monotonically_with_the_error() {
        for scale in [
            plain(0.25),
            plain(1.7),
            ColourScale {
                lambda: 0.9,
                l: 0.03,
                norm: Normalization::new(0.02, 0.09, 0.12).unwrap(),
                pattern: None,
            },
            ColourScale {
                lambda: 0.7,
                l: 0.03,
                norm: Normalization::new(0.1, 0.8, 0.4).unwrap(),
                pattern: Some((AdeGan::new(0.05, 0.02, 10).unwrap(), 0.6)),
            },
        ] {
            let mut last = 0u8;
            for k in 0..=4000 {
                let s = -0.5 + k as f64 * 0.001;
                let i = scale.index(s);
                assert!(
                    i >= last,
                    "{scale:?}: index fell from {last} to {i} at s = {s}"
                );
                last = i;
            }
            assert_eq!(last, 255, "{scale:?} reaches the warm end");
        }
    }

    /// Rendered with OpenCV's JET: the cool half has red ≤ blue, the warm half red > blue.
    fn warm(px: Vec3b) -> bool {
        px[2] > px[0]
    }

    #[test]
    fn a_map_below_the_threshold_renders_no_warm_pixel() {
        let frame = Mat::new_rows_cols_with_default(32, 64, CV_8UC1, Scalar::all(90.0)).unwrap();
        let cfg = HeatmapConfig {
            alpha: 1.0,
            ..HeatmapConfig::default()
        };
        let scale = plain(0.2);
        // 0 … just under the threshold, and 1.2 × … 3 × the threshold.
        let below: Vec<f32> = (0..64).map(|i| 0.199 * i as f32 / 63.0).collect();
        let above: Vec<f32> = (0..64).map(|i| 0.24 + 0.36 * i as f32 / 63.0).collect();
        let region = |x: i32, map: Vec<f32>| RegionMap {
            rect: Rect::new(x, 0, 32, 32),
            map,
            height: 8,
            width: 8,
            view: CropView::AS_IS,
            smoothed: true,
            scale,
        };
        let out = render(&frame, &[region(0, below), region(32, above)], &cfg).unwrap();
        for y in 0..32 {
            for x in 0..64 {
                let px = *out.at_2d::<Vec3b>(y, x).unwrap();
                assert_eq!(warm(px), x >= 32, "({x}, {y}): {px:?}");
            }
        }
    }

    #[test]
    fn reconstructions_replace_their_boxes_and_leave_the_rest() {
        let frame = Mat::new_rows_cols_with_default(40, 80, CV_8UC1, Scalar::all(100.0)).unwrap();
        // 8×8, top half 200, bottom half 10; drawn flipped back, so 10 on top.
        let pixels: Vec<u8> = (0..64).map(|i| if i < 32 { 200 } else { 10 }).collect();
        let region = RegionPixels {
            rect: Rect::new(40, 0, 40, 40),
            pixels,
            height: 8,
            width: 8,
            view: CropView {
                transposed: false,
                flipped: true,
            },
        };
        let out = render_reconstruction(&frame, &[region], 0).unwrap();
        assert_eq!((out.rows(), out.cols(), out.channels()), (40, 80, 1));
        assert_eq!(*out.at_2d::<u8>(20, 20).unwrap(), 100, "outside: the frame");
        assert_eq!(*out.at_2d::<u8>(2, 60).unwrap(), 10);
        assert_eq!(*out.at_2d::<u8>(37, 60).unwrap(), 200);

        // RGB frames come back BGR.
        let rgb =
            Mat::new_rows_cols_with_default(8, 8, CV_8UC3, Scalar::new(10.0, 20.0, 30.0, 0.0))
                .unwrap();
        let red = RegionPixels {
            rect: Rect::new(0, 0, 4, 4),
            pixels: [250u8, 0, 0].repeat(16),
            height: 4,
            width: 4,
            view: CropView::AS_IS,
        };
        let out = render_reconstruction(&rgb, &[red], 0).unwrap();
        assert_eq!(*out.at_2d::<Vec3b>(1, 1).unwrap(), Vec3b::from([0, 0, 250]));
        assert_eq!(
            *out.at_2d::<Vec3b>(6, 6).unwrap(),
            Vec3b::from([30, 20, 10])
        );
    }

    #[test]
    fn a_pre_smoothed_map_is_drawn_as_it_is() {
        // 1 channel 9×9, one hot pixel.
        let mut x = vec![0f32; 81];
        x[40] = 1.0;

        // A pre-smoothed map is drawn as it is; an unsmoothed one is blurred by render.
        let frame = Mat::new_rows_cols_with_default(9, 9, CV_8UC1, Scalar::all(0.0)).unwrap();
        let cfg = HeatmapConfig {
            alpha: 1.0,
            sigma: 2.0,
            ..HeatmapConfig::default()
        };
        let draw = |smoothed| {
            let region = RegionMap {
                rect: Rect::new(0, 0, 9, 9),
                map: x.clone(),
                height: 9,
                width: 9,
                view: CropView::AS_IS,
                smoothed,
                scale: plain(0.25),
            };
            *render(&frame, &[region], &cfg)
                .unwrap()
                .at_2d::<Vec3b>(4, 4)
                .unwrap()
        };
        let (sharp, blurred) = (draw(true), draw(false));
        // Twice the threshold and more is dark red (B≈0, R≈128); blurred, the centre drops
        // towards blue.
        assert!(sharp[0] < 10 && sharp[2] > 100, "{sharp:?}");
        assert!(blurred[0] > sharp[0] + 100, "{blurred:?}");
    }

    #[test]
    fn hot_region_turns_red_and_cold_stays_blue() {
        let frame = Mat::new_rows_cols_with_default(40, 80, CV_8UC1, Scalar::all(128.0)).unwrap();
        let cfg = HeatmapConfig {
            alpha: 1.0,
            ..HeatmapConfig::default()
        };
        let regions = [
            RegionMap {
                rect: Rect::new(0, 0, 40, 40),
                map: vec![0.0; 64],
                height: 8,
                width: 8,
                view: CropView::AS_IS,
                smoothed: false,
                scale: plain(0.25),
            },
            RegionMap {
                rect: Rect::new(40, 0, 40, 40),
                map: vec![10.0; 64],
                height: 8,
                width: 8,
                view: CropView {
                    transposed: false,
                    flipped: true,
                },
                smoothed: false,
                scale: plain(0.25),
            },
        ];
        let out = render(&frame, &regions, &cfg).unwrap();
        let cold = *out.at_2d::<Vec3b>(20, 20).unwrap();
        let hot = *out.at_2d::<Vec3b>(20, 60).unwrap();
        // JET: 0 → dark blue (B high), 255 → dark red (R high); BGR order.
        assert!(cold[0] > 100 && cold[2] < 50, "{cold:?}");
        assert!(hot[2] > 100 && hot[0] < 50, "{hot:?}");
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("h/heat.png");
        write_png(&p, &out).unwrap();
        assert!(std::fs::metadata(&p).unwrap().len() > 100);
    }

    #[test]
    fn a_large_frame_is_drawn_shrunk_to_max_side_with_its_regions_in_place() {
        // 4000×1000 frame, one region at the right end; max_side 1000 -> 1000×250, region ×¼
        let frame =
            Mat::new_rows_cols_with_default(1000, 4000, CV_8UC1, Scalar::all(90.0)).unwrap();
        let region = RegionMap {
            rect: Rect::new(3600, 400, 400, 400),
            map: vec![5.0; 16],
            height: 4,
            width: 4,
            view: CropView::AS_IS,
            smoothed: true,
            scale: plain(0.2),
        };
        let cfg = HeatmapConfig {
            alpha: 1.0,
            max_side: 1000,
            ..HeatmapConfig::default()
        };
        let out = render(&frame, &[region], &cfg).unwrap();
        assert_eq!((out.cols(), out.rows()), (1000, 250));
        let hot = |x: i32, y: i32| {
            let p = *out.at_2d::<Vec3b>(y, x).unwrap();
            p[2] as i32 > p[0] as i32 + 50 // red over blue; outside the region the frame is grey
        };
        assert!(hot(950, 125), "the region is drawn at 900..1000 × 100..200");
        assert!(!hot(850, 125) && !hot(950, 50));
        assert_eq!(
            scale_rect(Rect::new(3, 3, 5, 5), 0.5),
            Rect::new(1, 1, 3, 3)
        );
    }
}

//! Finding every fastener in a track frame: multi-scale template matching (OpenCV
//! `matchTemplate`, `TM_CCOEFF_NORMED`) against reference fastener crops, peak picking per
//! response map and non-maximum suppression across templates and scales.
//!
//! Fasteners move from frame to frame (train speed, sleeper spacing) and vary a little in
//! apparent size, so fixed rectangles are not enough for line-scan frames. The frame is matched at
//! a reduced resolution (`downscale`) because the response is smooth at fastener scale and the
//! cost grows with frame area × template area.

use std::path::Path;

use opencv::core::{Mat, Point, Rect, Scalar, Size};
use opencv::imgproc;
use opencv::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::SearchConfig;
use crate::error::{Error, Result};
use crate::offline::dataset::images_in;
use crate::pipeline::preprocess::{decode, resize_to, to_gray, DecodeLimits};

/// A found fastener, in frame pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
    /// Template-matching response (TM_CCOEFF_NORMED, −1…1); for an inferred box, its
    /// partner's.
    pub match_score: f64,
    /// Matched by the mirrored template (the row on the far side of the rail).
    #[serde(default)]
    pub mirrored: bool,
    /// Not matched but placed opposite a matched fastener (pair completion): fasteners come
    /// in pairs across the rail, and one whose clip is gone no longer looks like the template.
    #[serde(default)]
    pub inferred: bool,
}

impl Detection {
    pub fn rect(&self) -> Rect {
        Rect::new(self.x, self.y, self.w, self.h)
    }
}

/// Intersection over union of two boxes.
pub fn iou(a: Rect, b: Rect) -> f64 {
    let i = a & b;
    if i.width <= 0 || i.height <= 0 {
        return 0.0;
    }
    let inter = i.area() as f64;
    inter / (a.area() as f64 + b.area() as f64 - inter)
}

/// Fraction of the smaller box that lies inside the other.
pub fn containment(a: Rect, b: Rect) -> f64 {
    let i = a & b;
    if i.width <= 0 || i.height <= 0 {
        return 0.0;
    }
    i.area() as f64 / a.area().min(b.area()) as f64
}

/// Greedy non-maximum suppression: keep the best box, drop every box overlapping it by more than
/// `max_iou` (or lying more than `max_containment` inside it), repeat.
pub fn nms(mut dets: Vec<Detection>, max_iou: f64, max_containment: f64) -> Vec<Detection> {
    dets.sort_by(|a, b| b.match_score.total_cmp(&a.match_score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        if kept.iter().all(|k| {
            iou(k.rect(), d.rect()) <= max_iou && containment(k.rect(), d.rect()) <= max_containment
        }) {
            kept.push(d);
        }
    }
    kept
}

/// Gradient magnitude of a lightly smoothed image (f32).
fn gradient(m: &Mat) -> Result<Mat> {
    let mut blurred = Mat::default();
    imgproc::gaussian_blur(
        m,
        &mut blurred,
        Size::new(0, 0),
        1.0,
        0.0,
        opencv::core::BORDER_DEFAULT,
    )?;
    let (mut gx, mut gy, mut mag) = (Mat::default(), Mat::default(), Mat::default());
    imgproc::sobel(
        &blurred,
        &mut gx,
        opencv::core::CV_32F,
        1,
        0,
        3,
        1.0,
        0.0,
        opencv::core::BORDER_DEFAULT,
    )?;
    imgproc::sobel(
        &blurred,
        &mut gy,
        opencv::core::CV_32F,
        0,
        1,
        3,
        1.0,
        0.0,
        opencv::core::BORDER_DEFAULT,
    )?;
    opencv::core::magnitude(&gx, &gy, &mut mag)?;
    Ok(mag)
}

/// One template at one scale: intensity and gradient versions.
struct Scaled {
    intensity: Mat,
    gradient: Mat,
    mirrored: bool,
}

pub struct FastenerSearch {
    /// Templates at matching resolution (already multiplied by `downscale`), per scale and
    /// orientation.
    templates: Vec<Scaled>,
    cfg: SearchConfig,
}

impl std::fmt::Debug for FastenerSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastenerSearch")
            .field("templates", &self.templates.len())
            .field("cfg", &self.cfg)
            .finish()
    }
}

impl FastenerSearch {
    /// Averages the first `template_crops` images (sorted by name) of `dir` into the template.
    pub fn from_dir(dir: &Path, cfg: &SearchConfig) -> Result<Self> {
        let files = images_in(dir).map_err(|e| Error::Search(format!("templates: {e}")))?;
        if files.is_empty() {
            return Err(Error::Search(format!(
                "no template images in {}",
                dir.display()
            )));
        }
        let mut crops = Vec::new();
        for f in files.iter().take(cfg.template_crops.max(1)) {
            let bytes = std::fs::read(f)
                .map_err(|e| Error::io(format!("read template {}", f.display()), e))?;
            crops.push(to_gray(&decode(
                &bytes,
                &f.display().to_string(),
                DecodeLimits::default(),
            )?)?);
        }
        Self::new(&mean_image(&crops)?, cfg)
    }

    /// `template`: a gray 8-bit reference fastener at the crops' resolution.
    pub fn new(template: &Mat, cfg: &SearchConfig) -> Result<Self> {
        let mut variants = vec![(template.clone(), false)];
        if cfg.mirror {
            let mut flipped = Mat::default();
            opencv::core::flip(template, &mut flipped, 0)?;
            variants.push((flipped, true));
        }
        let mut templates = Vec::new();
        for (t, mirrored) in &variants {
            for &s in &cfg.scales {
                let f = s * cfg.downscale;
                let w = ((t.cols() as f64) * f).round().max(4.0) as usize;
                let h = ((t.rows() as f64) * f).round().max(4.0) as usize;
                let intensity = resize_to(t, w, h)?;
                let gradient = gradient(&intensity)?;
                templates.push(Scaled {
                    intensity,
                    gradient,
                    mirrored: *mirrored,
                });
            }
        }
        Ok(Self {
            templates,
            cfg: cfg.clone(),
        })
    }

    pub fn template_count(&self) -> usize {
        self.templates.len()
    }

    /// All fasteners in a gray frame, best first.
    pub fn find(&self, frame_gray: &Mat) -> Result<Vec<Detection>> {
        if frame_gray.channels() != 1 {
            return Err(Error::Search("frame must be gray".into()));
        }
        let ds = self.cfg.downscale;
        let small = if ds < 1.0 {
            let w = ((frame_gray.cols() as f64) * ds).round().max(1.0) as usize;
            let h = ((frame_gray.rows() as f64) * ds).round().max(1.0) as usize;
            resize_to(frame_gray, w, h)?
        } else {
            frame_gray.clone()
        };
        let small_grad = gradient(&small)?;
        let wg = self.cfg.gradient_weight.clamp(0.0, 1.0);
        let no_mask = opencv::core::no_array();
        let mut found = Vec::new();
        for t in &self.templates {
            if t.intensity.cols() > small.cols() || t.intensity.rows() > small.rows() {
                continue;
            }
            let (mut ri, mut rg, mut r) = (Mat::default(), Mat::default(), Mat::default());
            imgproc::match_template(
                &small,
                &t.intensity,
                &mut ri,
                imgproc::TM_CCOEFF_NORMED,
                &no_mask,
            )?;
            imgproc::match_template(
                &small_grad,
                &t.gradient,
                &mut rg,
                imgproc::TM_CCOEFF_NORMED,
                &no_mask,
            )?;
            opencv::core::add_weighted(&ri, 1.0 - wg, &rg, wg, 0.0, &mut r, -1)?;
            found.extend(self.peaks(&mut r, t.intensity.size()?, ds, t.mirrored)?);
        }
        let best = found
            .iter()
            .map(|d| d.match_score)
            .fold(f64::NEG_INFINITY, f64::max);
        found.retain(|d| d.match_score >= self.cfg.relative_score * best);
        let mut kept = nms(found, self.cfg.nms_iou, self.cfg.nms_containment);
        if self.cfg.mirror && self.cfg.pair_completion {
            kept = complete_pairs(kept, frame_gray.cols(), frame_gray.rows());
        }
        kept.truncate(self.cfg.max_detections);
        Ok(kept)
    }

    /// Repeatedly takes the response maximum and blanks its neighbourhood (one template size),
    /// until the maximum falls below `min_score`.
    fn peaks(
        &self,
        response: &mut Mat,
        tsize: Size,
        ds: f64,
        mirrored: bool,
    ) -> Result<Vec<Detection>> {
        let mut out = Vec::new();
        let full = Rect::new(0, 0, response.cols(), response.rows());
        for _ in 0..self.cfg.max_detections {
            let mut max_val = 0.0;
            let mut max_loc = Point::default();
            opencv::core::min_max_loc(
                response,
                None,
                Some(&mut max_val),
                None,
                Some(&mut max_loc),
                &opencv::core::no_array(),
            )?;
            if !max_val.is_finite() || max_val < self.cfg.min_score {
                break;
            }
            out.push(Detection {
                x: (max_loc.x as f64 / ds).round() as i32,
                y: (max_loc.y as f64 / ds).round() as i32,
                w: (tsize.width as f64 / ds).round() as i32,
                h: (tsize.height as f64 / ds).round() as i32,
                match_score: max_val,
                mirrored,
                inferred: false,
            });
            let blank = Rect::new(
                max_loc.x - tsize.width / 2,
                max_loc.y - tsize.height / 2,
                tsize.width + 1,
                tsize.height + 1,
            ) & full;
            if blank.width > 0 && blank.height > 0 {
                let mut roi = Mat::roi_mut(response, blank)?;
                roi.set_to(&Scalar::all(-1.0), &opencv::core::no_array())?;
            }
        }
        Ok(out)
    }
}

/// Pair completion: where fasteners on both sides of the rail were matched (a near-row box and a
/// mirrored far-row box at the same x), the typical gap between the two rows is known; every
/// matched fastener without a partner then gets one inferred at that gap, if it lies inside the
/// frame and on nothing already found. The inferred crop is scored like any other, so a fastener
/// whose clip is missing (and no longer matches the template) is still inspected.
pub fn complete_pairs(dets: Vec<Detection>, frame_w: i32, frame_h: i32) -> Vec<Detection> {
    let partner = |a: &Detection, b: &Detection| {
        a.mirrored != b.mirrored && (a.x - b.x).abs() * 4 < a.w.max(b.w)
    };
    let mut gaps: Vec<i32> = Vec::new();
    for u in dets.iter().filter(|d| !d.mirrored) {
        for l in dets
            .iter()
            .filter(|d| d.mirrored && partner(u, d) && d.y > u.y)
        {
            gaps.push(l.y - (u.y + u.h));
        }
    }
    if gaps.is_empty() {
        return dets;
    }
    gaps.sort_unstable();
    let gap = gaps[gaps.len() / 2];
    let frame = Rect::new(0, 0, frame_w, frame_h);
    let mut out = dets.clone();
    for d in &dets {
        if dets.iter().any(|o| partner(d, o)) {
            continue;
        }
        let y = if d.mirrored {
            d.y - gap - d.h
        } else {
            d.y + d.h + gap
        };
        let cand = Detection {
            y,
            mirrored: !d.mirrored,
            inferred: true,
            ..*d
        };
        let inside = (cand.rect() & frame).area() as f64 / cand.rect().area().max(1) as f64;
        if inside >= 0.9 && out.iter().all(|o| iou(o.rect(), cand.rect()) < 0.3) {
            out.push(cand);
        }
    }
    out
}

/// Pixel-wise mean of gray crops (resized to the first one's size when they differ).
pub fn mean_image(crops: &[Mat]) -> Result<Mat> {
    let first = crops
        .first()
        .ok_or_else(|| Error::Search("no template crops".into()))?;
    let (w, h) = (first.cols() as usize, first.rows() as usize);
    let mut acc = vec![0f64; w * h];
    for c in crops {
        let c = resize_to(c, w, h)?;
        let c = if c.is_continuous() { c } else { c.try_clone()? };
        for (a, &v) in acc.iter_mut().zip(c.data_bytes()?) {
            *a += v as f64;
        }
    }
    let n = crops.len() as f64;
    let mut out = Mat::new_rows_cols_with_default(
        h as i32,
        w as i32,
        opencv::core::CV_8UC1,
        Scalar::all(0.0),
    )?;
    // Truncation, as NumPy's `mean(...).astype(uint8)`.
    for (o, a) in out.data_bytes_mut()?.iter_mut().zip(&acc) {
        *o = (a / n) as u8;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::CV_8UC1;

    #[test]
    fn iou_and_nms() {
        let a = Rect::new(0, 0, 10, 10);
        assert_eq!(iou(a, a), 1.0);
        assert_eq!(iou(a, Rect::new(20, 20, 5, 5)), 0.0);
        assert!((iou(a, Rect::new(5, 0, 10, 10)) - 50.0 / 150.0).abs() < 1e-12);
        let d = |x, s| Detection {
            x,
            y: 0,
            w: 10,
            h: 10,
            match_score: s,
            mirrored: false,
            inferred: false,
        };
        let kept = nms(vec![d(0, 0.5), d(2, 0.9), d(40, 0.7)], 0.3, 0.5);
        assert_eq!(kept.iter().map(|k| k.x).collect::<Vec<_>>(), vec![2, 40]);
        // A small box inside a kept big one goes, though its IoU is low.
        let big = Detection {
            x: 0,
            y: 0,
            w: 40,
            h: 40,
            match_score: 0.9,
            mirrored: false,
            inferred: false,
        };
        let inner = Detection {
            x: 5,
            y: 5,
            w: 12,
            h: 12,
            match_score: 0.8,
            mirrored: false,
            inferred: false,
        };
        assert!(iou(big.rect(), inner.rect()) < 0.3);
        assert_eq!(nms(vec![big, inner], 0.3, 0.5).len(), 1);
    }

    #[test]
    fn pair_completion_fills_the_missing_partner_only() {
        let d = |x, y, mirrored| Detection {
            x,
            y,
            w: 100,
            h: 100,
            match_score: 0.8,
            mirrored,
            inferred: false,
        };
        // Two complete pairs (gap 10 px between the rows), one near-row fastener alone, one far-row
        // fastener alone whose partner would fall outside the frame.
        let dets = vec![
            d(0, 100, false),
            d(2, 210, true),
            d(300, 101, false),
            d(298, 211, true),
            d(600, 99, false),
            d(900, 5, true),
        ];
        let out = complete_pairs(dets, 1200, 400);
        assert_eq!(out.len(), 7, "{out:?}");
        let added = out.iter().find(|o| o.inferred).unwrap();
        assert_eq!(
            (added.x, added.y, added.mirrored),
            (600, 99 + 100 + 10, true)
        );
        // Nothing to learn the gap from: nothing added.
        let lonely = vec![d(0, 100, false), d(300, 100, false)];
        assert_eq!(complete_pairs(lonely, 1200, 400).len(), 2);
    }

    #[test]
    fn mean_image_averages_and_truncates() {
        let a = Mat::new_rows_cols_with_default(2, 2, CV_8UC1, Scalar::all(10.0)).unwrap();
        let b = Mat::new_rows_cols_with_default(2, 2, CV_8UC1, Scalar::all(13.0)).unwrap();
        let m = mean_image(&[a, b]).unwrap();
        assert_eq!(m.data_bytes().unwrap(), &[11, 11, 11, 11]);
    }

    /// A synthetic frame with a textured patch pasted at known places must be found there.
    #[test]
    fn finds_pasted_templates() {
        let mut tpl = Mat::new_rows_cols_with_default(24, 24, CV_8UC1, Scalar::all(0.0)).unwrap();
        for y in 0..24 {
            for x in 0..24 {
                let v = if (x - 12i32).pow(2) + (y - 12i32).pow(2) < 64 {
                    220
                } else {
                    ((x * 5 + y * 11) % 60) as u8 as i32
                };
                *tpl.at_2d_mut::<u8>(y, x).unwrap() = v as u8;
            }
        }
        let mut frame =
            Mat::new_rows_cols_with_default(200, 300, CV_8UC1, Scalar::all(30.0)).unwrap();
        let places = [(20, 30), (150, 100), (250, 160)];
        for &(x, y) in &places {
            let mut roi = Mat::roi_mut(&mut frame, Rect::new(x, y, 24, 24)).unwrap();
            tpl.copy_to(&mut roi).unwrap();
        }
        let cfg = SearchConfig {
            scales: vec![1.0],
            downscale: 1.0,
            min_score: 0.8,
            ..SearchConfig::default()
        };
        let s = FastenerSearch::new(&tpl, &cfg).unwrap();
        let found = s.find(&frame).unwrap();
        assert_eq!(found.len(), 3, "{found:?}");
        for &(x, y) in &places {
            assert!(
                found
                    .iter()
                    .any(|d| iou(d.rect(), Rect::new(x, y, 24, 24)) > 0.9),
                "missed {x},{y}: {found:?}"
            );
        }
    }
}

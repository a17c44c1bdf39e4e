//! `railscope slots`: how well the track locator places fastener slots, against the ground truth
//! the frame generator writes beside each frame (`railscope_train.track`: `frame_*.png` +
//! `frame_*.json`, `notrack_*` frames without track, `camera.toml` with the camera's geometry).
//!
//! Counting rules (docs/performance.md, "Slot localisation"): a slot counts when at least half
//! of it lies inside the frame; a true slot is found when a located slot overlaps it with
//! IoU ≥ 0.5 (one-to-one, best pairs first); a located slot that overlaps no true slot is a
//! false slot. Located and true slots of any visibility may pair, so a slot half cut by the
//! edge is never both missed and false.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use opencv::core::Rect;
use opencv::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::GeometryConfig;
use crate::error::{Error, Result};
use crate::pipeline::fastener_search::iou;
use crate::pipeline::preprocess::{decode, to_gray, DecodeLimits};
use crate::pipeline::track::{Located, TrackLocator};

const MIN_IOU: f64 = 0.5;
const COUNTED_VISIBLE: f64 = 0.5;
/// Labels whose fastener does not look like a normal one: the search's blind spot.
pub const UNLIKE_NORMAL: [&str; 4] = [
    "missing_clip",
    "displaced_clip",
    "inverted_clip",
    "missing_assembly",
];

/// A generated frame's ground truth (`<frame>.json`, the format of `railscope_train.track`).
#[derive(Debug, Deserialize)]
pub struct TruthFrame {
    pub track: bool,
    #[serde(default)]
    pub slots: Vec<TruthSlot>,
}

#[derive(Debug, Deserialize)]
pub struct TruthSlot {
    #[serde(rename = "box")]
    pub bbox: [i32; 4],
    pub visible: f64,
    pub label: String,
}

impl TruthSlot {
    pub fn rect(&self) -> Rect {
        Rect::new(self.bbox[0], self.bbox[1], self.bbox[2], self.bbox[3])
    }
}

/// The ground truth beside a generated frame: `frame_000000.png` → `frame_000000.json`.
pub fn read_truth(frame: &Path) -> Result<TruthFrame> {
    let path = frame.with_extension("json");
    let text =
        std::fs::read_to_string(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
    serde_json::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

#[derive(Debug, Deserialize)]
struct CameraFile {
    geometry: GeometryConfig,
}

/// Reads a `[geometry]` table (the generator's `camera.toml`, or a camera's section).
pub fn load_geometry(path: &Path) -> Result<GeometryConfig> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let c: CameraFile =
        toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    Ok(c.geometry)
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct LabelCount {
    pub slots: usize,
    pub found: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct SlotReport {
    pub frames: usize,
    pub no_track_frames: usize,
    /// No-track frames answered "no track found".
    pub no_track_rejected: usize,
    /// Track frames answered "no track found".
    pub track_missed: usize,
    pub slots: usize,
    pub found: usize,
    pub recall: f64,
    /// Recall over slots whose fastener does not look normal ([`UNLIKE_NORMAL`]).
    pub recall_unlike_normal: f64,
    pub mean_iou: f64,
    pub min_iou: f64,
    pub false_slots: usize,
    pub false_slots_per_100_frames: f64,
    pub by_label: BTreeMap<String, LabelCount>,
    pub locate_ms_mean: f64,
    pub locate_ms_p95: f64,
    pub locate_ms_max: f64,
    pub frame_size: String,
}

/// Evaluates the locator on every frame of `dir` (the set folder or its `frames/`).
pub fn evaluate(dir: &Path, geometry: &GeometryConfig, draw: Option<&Path>) -> Result<SlotReport> {
    let frames_dir = if dir.join("frames").is_dir() {
        dir.join("frames")
    } else {
        dir.to_path_buf()
    };
    let locator = TrackLocator::from_config(geometry)?;
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(&frames_dir)
        .map_err(|e| Error::io(frames_dir.display().to_string(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png") && p.with_extension("json").exists())
        .collect();
    pngs.sort();
    if pngs.is_empty() {
        return Err(Error::Config(format!(
            "{}: no frame_*.png with its .json ground truth",
            frames_dir.display()
        )));
    }
    let mut rep = SlotReport::default();
    let mut times = Vec::with_capacity(pngs.len());
    let mut ious = Vec::new();
    let mut sizes = std::collections::BTreeSet::new();
    for png in &pngs {
        let truth = read_truth(png)?;
        let bytes = std::fs::read(png).map_err(|e| Error::io(png.display().to_string(), e))?;
        let gray = to_gray(&decode(
            &bytes,
            &png.to_string_lossy(),
            DecodeLimits::default(),
        )?)?;
        sizes.insert(format!("{}x{}", gray.cols(), gray.rows()));
        let t = Instant::now();
        let located = locator.locate(&gray)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if let Some(out) = draw {
            draw_frame(
                &gray,
                &truth,
                &located,
                &out.join(png.file_name().unwrap_or_default()),
            )?;
        }
        rep.frames += 1;
        if !truth.track {
            rep.no_track_frames += 1;
            if matches!(located, Located::NoTrack { .. }) {
                rep.no_track_rejected += 1;
            } else if let Located::Track(l) = &located {
                rep.false_slots += l
                    .slots
                    .iter()
                    .filter(|s| s.visible >= COUNTED_VISIBLE)
                    .count();
            }
            continue;
        }
        let found: Vec<(Rect, f64)> = match &located {
            Located::Track(l) => l.slots.iter().map(|s| (s.rect, s.visible)).collect(),
            Located::NoTrack { .. } => {
                rep.track_missed += 1;
                Vec::new()
            }
        };
        // best pairs first, one-to-one
        let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
        for (i, t) in truth.slots.iter().enumerate() {
            let tr = t.rect();
            for (j, (r, _)) in found.iter().enumerate() {
                let v = iou(tr, *r);
                if v >= MIN_IOU {
                    pairs.push((v, i, j));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut t_used, mut f_used) = (vec![None; truth.slots.len()], vec![false; found.len()]);
        for (v, i, j) in pairs {
            if t_used[i].is_none() && !f_used[j] {
                t_used[i] = Some(v);
                f_used[j] = true;
            }
        }
        for (t, m) in truth.slots.iter().zip(&t_used) {
            if t.visible < COUNTED_VISIBLE {
                continue;
            }
            let e = rep.by_label.entry(t.label.clone()).or_default();
            e.slots += 1;
            rep.slots += 1;
            if let Some(v) = m {
                e.found += 1;
                rep.found += 1;
                ious.push(*v);
            }
        }
        rep.false_slots += found
            .iter()
            .zip(&f_used)
            .filter(|((_, vis), used)| !**used && *vis >= COUNTED_VISIBLE)
            .count();
    }
    let ratio = |a: usize, b: usize| {
        if b == 0 {
            f64::NAN
        } else {
            a as f64 / b as f64
        }
    };
    rep.recall = ratio(rep.found, rep.slots);
    let (us, uf) = UNLIKE_NORMAL
        .iter()
        .filter_map(|l| rep.by_label.get(*l))
        .fold((0, 0), |(s, f), c| (s + c.slots, f + c.found));
    rep.recall_unlike_normal = ratio(uf, us);
    rep.mean_iou = if ious.is_empty() {
        f64::NAN
    } else {
        ious.iter().sum::<f64>() / ious.len() as f64
    };
    rep.min_iou = ious.iter().copied().fold(f64::NAN, f64::min);
    rep.false_slots_per_100_frames = 100.0 * rep.false_slots as f64 / rep.frames as f64;
    times.sort_by(f64::total_cmp);
    rep.locate_ms_mean = times.iter().sum::<f64>() / times.len() as f64;
    rep.locate_ms_p95 = times[((times.len() as f64 * 0.95).ceil() as usize).saturating_sub(1)];
    rep.locate_ms_max = *times.last().unwrap_or(&f64::NAN);
    rep.frame_size = sizes.into_iter().collect::<Vec<_>>().join(",");
    Ok(rep)
}

/// The frame with its true slots (green) and located ones (red), for a person to look at.
fn draw_frame(gray: &Mat, truth: &TruthFrame, located: &Located, path: &Path) -> Result<()> {
    use opencv::core::{Scalar, Vector};
    use opencv::imgproc;
    let mut bgr = Mat::default();
    imgproc::cvt_color(gray, &mut bgr, imgproc::COLOR_GRAY2BGR, 0)?;
    let boxes = truth
        .slots
        .iter()
        .map(|t| (t.rect(), Scalar::new(0.0, 200.0, 0.0, 0.0)));
    let found: Vec<Rect> = match located {
        Located::Track(l) => l.slots.iter().map(|s| s.rect).collect(),
        Located::NoTrack { .. } => Vec::new(),
    };
    for (r, c) in boxes.chain(
        found
            .into_iter()
            .map(|r| (r, Scalar::new(0.0, 0.0, 255.0, 0.0))),
    ) {
        imgproc::rectangle(&mut bgr, r, c, 3, imgproc::LINE_8, 0)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
    }
    opencv::imgcodecs::imwrite(path.as_os_str(), &bgr, &Vector::new())?;
    Ok(())
}

//! The library's front door: a model package + its calibration + the engine, turning encoded
//! frames into verdicts. The CLI and the HTTP service both go through [`Inspector`].
//!
//! A frame yields one or more fastener crops (whole frame, fixed rectangles or fastener
//! search); every crop of every frame in a batch goes through one session run, and a frame's
//! verdict is its worst crop's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::Instant;

use opencv::core::{Mat, Rect, Vector};
use opencv::prelude::*;
use serde::Serialize;

use crate::config::{check_camera_id, Config};
use crate::error::{Error, Result};
use crate::pipeline::engine::Engine;
use crate::pipeline::fastener_search::FastenerSearch;
use crate::pipeline::heatmap::{self, ColourScale, RegionMap, RegionPixels};
use crate::pipeline::package::{
    calibration_file_name, calibration_path, Calibration, ModelPackage,
};
use crate::pipeline::preprocess::{crop, to_gray, CropView, Denorm, Preprocessor, RoiMode};
use crate::pipeline::scoring::{
    self, Normalization, Pooling, Score, ScoreKind, ScoreRule, Verdict,
};
use crate::pipeline::track::Located;

/// One encoded frame to inspect.
#[derive(Debug, Clone)]
pub struct ImageInput<'a> {
    /// Name used in results and error messages (file path, request id, …).
    pub id: String,
    pub bytes: &'a [u8],
    /// Camera id; selects `calibration/<model>.<camera>.json` when one exists.
    pub camera: Option<String>,
}

/// Result for one fastener crop.
#[derive(Debug, Clone, Serialize)]
pub struct CropResult {
    /// `[x, y, w, h]` in frame pixels.
    #[serde(rename = "box")]
    pub bbox: [i32; 4],
    /// Template-matching response when the crop came from fastener search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_score: Option<f64>,
    /// True for a fastener placed opposite a matched one by pair completion (search mode).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inferred: bool,
    /// True for a far-row fastener, scored flipped top to bottom (search and track modes).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub mirrored: bool,
    /// True for a crop scored transposed (track mode, rails running down the frame).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub transposed: bool,
    /// Where on the track the slot is (track mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<SlotRef>,
    #[serde(flatten)]
    pub score: Score,
    #[serde(rename = "A_norm")]
    pub a_norm: f64,
    pub verdict: Verdict,
}

/// Result for one frame: the worst crop's scores, every crop, and timing.
#[derive(Debug, Clone, Serialize)]
pub struct FrameResult {
    pub image: String,
    pub camera: Option<String>,
    #[serde(rename = "A")]
    pub a: Option<f64>,
    #[serde(rename = "R")]
    pub r: Option<f64>,
    #[serde(rename = "L")]
    pub l: Option<f64>,
    #[serde(rename = "A_norm")]
    pub a_norm: Option<f64>,
    pub threshold: f64,
    pub verdict: Verdict,
    pub provider: &'static str,
    /// Wall time from the start of the batch until this frame's result was ready.
    pub latency_ms: f64,
    /// Decode + preprocessing (+ search) time of this frame alone.
    pub preprocess_ms: f64,
    pub roi: &'static str,
    pub crops: Vec<CropResult>,
    /// Track mode: slots cut by the frame's edge, `[x, y, w, h]`, reported but not scored.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partial_slots: Vec<[i32; 4]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// PNG of the blended heatmap, when asked for.
    #[serde(skip)]
    pub heatmap_png: Option<Vec<u8>>,
}

/// Raw (uncalibrated) scores of one crop.
#[derive(Debug, Clone)]
pub struct CropScore {
    pub rect: Rect,
    pub match_score: Option<f64>,
    pub inferred: bool,
    pub view: CropView,
    pub slot: Option<SlotRef>,
    pub score: Score,
    /// The heatmap's map at model resolution (the map R pools,
    /// [`scoring::ScoreRule::score_and_map`]: for `topk` pooling the smoothed one), when maps
    /// were kept.
    pub error_map: Option<Vec<f32>>,
    /// The model's reconstruction x̂ back in pixels ([`Denorm`]), H×W×C interleaved at model
    /// resolution and in the orientation the model saw (`view`), when maps
    /// were kept.
    pub reconstruction: Option<Vec<u8>>,
}

/// Raw scores of one frame.
#[derive(Debug)]
pub struct FrameScores {
    pub crops: Vec<CropScore>,
    pub partial: Vec<Rect>,
    /// Track mode: why no track was found in the frame.
    pub no_track: Option<String>,
    pub frame: Option<Mat>,
    pub preprocess_ms: f64,
}

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Explicit calibration file (otherwise `<calibration_dir>/<model>.json`).
    pub calibration: Option<PathBuf>,
    /// Load without a calibration (for `railscope calibrate`): only raw scores are available.
    pub without_calibration: bool,
    /// Override the configured ROI mode.
    pub roi: Option<RoiMode>,
    /// Load the fastener-search templates even when the default ROI does not search (the
    /// service, when some camera searches).
    pub load_search: bool,
}

pub struct Inspector {
    engine: Engine,
    package: ModelPackage,
    /// The manifest's `[score]`, checked: kind, λ and how R pools the reconstruction error.
    rule: ScoreRule,
    pre: Preprocessor,
    roi: RoiMode,
    search: Option<FastenerSearch>,
    calibration_dir: PathBuf,
    default_calibration: Option<(Normalization, PathBuf)>,
    /// Per-camera calibrations looked up so far (files, or set by the service at run time).
    camera_calibrations: RwLock<HashMap<String, Normalization>>,
    config: Config,
}

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspector")
            .field("model", &self.package.name())
            .field("engine", &self.engine)
            .finish()
    }
}

impl Inspector {
    pub fn load(model_dir: &Path, config: &Config, opts: &LoadOptions) -> Result<Self> {
        crate::pipeline::engine::ensure_runtime(&config.engine)?;
        let package = ModelPackage::load(model_dir)?;
        let calibration_dir = config
            .engine
            .calibration_dir
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| package.default_calibration_dir());
        let default_calibration = if opts.without_calibration {
            None
        } else {
            let path = opts
                .calibration
                .clone()
                .unwrap_or_else(|| calibration_path(&calibration_dir, package.name(), None));
            let cal = Calibration::load(&path)?;
            cal.check_model(&package, &path)?;
            let norm = cal.normalization().map_err(|message| Error::Calibration {
                path: path.clone(),
                message,
            })?;
            Some((norm, path))
        };
        let roi = match &opts.roi {
            Some(r) => r.clone(),
            None => RoiMode::from_config(&config.preprocess)?,
        };
        let search = if roi == RoiMode::Search || opts.load_search {
            Some(load_search(&package, config)?)
        } else {
            None
        };
        let pre = Preprocessor::new(&package.manifest.input, &config.preprocess)?;
        let rule = package
            .manifest
            .score_rule()
            .map_err(|message| Error::Package {
                path: package.dir.join("manifest.toml"),
                message,
            })?;
        let engine = Engine::load(&package, &config.engine)?;
        Ok(Self {
            engine,
            package,
            rule,
            pre,
            roi,
            search,
            calibration_dir,
            default_calibration,
            camera_calibrations: RwLock::new(HashMap::new()),
            config: config.clone(),
        })
    }

    /// Where this inspector reads (and `railscope calibrate` writes) calibration files.
    pub fn calibration_dir(&self) -> &Path {
        &self.calibration_dir
    }

    pub fn package(&self) -> &ModelPackage {
        &self.package
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn preprocessor(&self) -> &Preprocessor {
        &self.pre
    }

    /// How this package's R pools the reconstruction error.
    pub fn pooling(&self) -> &Pooling {
        &self.rule.pooling
    }

    /// This package's score: kind (`lambda-l1-l2` or `ade-gan`), λ and pooling.
    pub fn score_rule(&self) -> &ScoreRule {
        &self.rule
    }

    pub fn provider(&self) -> &'static str {
        self.engine.provider().as_str()
    }

    pub fn roi(&self) -> &RoiMode {
        &self.roi
    }

    pub fn default_calibration(&self) -> Option<&Normalization> {
        self.default_calibration.as_ref().map(|(n, _)| n)
    }

    /// The calibration for a camera (`<model>.<camera>.json` when it exists, else the default).
    pub fn calibration_for(&self, camera: Option<&str>) -> Result<Normalization> {
        let (default, _) = self
            .default_calibration
            .clone()
            .ok_or_else(|| Error::Other("inspector was loaded without a calibration".into()))?;
        let Some(cam) = camera else {
            return Ok(default);
        };
        check_camera_id(cam)?;
        if let Some(n) = self.cached_calibration(cam) {
            return Ok(n);
        }
        let path = calibration_path(&self.calibration_dir, self.package.name(), Some(cam));
        let norm = if path.file_name().and_then(|n| n.to_str())
            == Some(&calibration_file_name(self.package.name(), Some(cam)))
        {
            let cal = Calibration::load(&path)?;
            cal.check_model(&self.package, &path)?;
            cal.normalization()
                .map_err(|message| Error::Calibration { path, message })?
        } else {
            default
        };
        // Bounded: unknown ids beyond the cap are looked up again rather than remembered.
        let mut cache = self
            .camera_calibrations
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if cache.len() < 4096 {
            cache.insert(cam.to_string(), norm);
        }
        Ok(norm)
    }

    fn cached_calibration(&self, cam: &str) -> Option<Normalization> {
        self.camera_calibrations
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(cam)
            .copied()
    }

    /// Makes `norm` the camera's calibration from the next frame on (the service applies an
    /// inspector-approved threshold or a configured override file this way).
    pub fn set_camera_calibration(&self, camera: &str, norm: Normalization) -> Result<()> {
        check_camera_id(camera)?;
        self.camera_calibrations
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(camera.to_string(), norm);
        Ok(())
    }

    /// Decodes, finds the regions of and normalizes one frame. Needs only `&self`, so frames can
    /// be prepared on other threads (HTTP handlers) while the session runs the previous batch.
    pub fn prepare(&self, input: &ImageInput<'_>, keep_frame: bool) -> Result<PreparedFrame> {
        self.prepare_with(input, keep_frame, &self.roi, None)
    }

    /// [`Inspector::prepare`] with a camera's own region mode and, for `search`, its own
    /// reference templates (`None`: the model's).
    pub fn prepare_with(
        &self,
        input: &ImageInput<'_>,
        keep_frame: bool,
        roi: &RoiMode,
        search: Option<&FastenerSearch>,
    ) -> Result<PreparedFrame> {
        prepare_frame(
            &self.pre,
            roi,
            search.or(self.search.as_ref()),
            self.engine.chw(),
            input,
            keep_frame,
        )
    }

    /// Prepares several frames, in parallel when it pays (fastener search, or many frames).
    pub fn prepare_all(
        &self,
        inputs: &[ImageInput<'_>],
        keep_frame: bool,
    ) -> Vec<Result<PreparedFrame>> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let worth_it = inputs.len() >= 2 && (self.search.is_some() || inputs.len() >= 16);
        if cores < 2 || !worth_it {
            return inputs.iter().map(|i| self.prepare(i, keep_frame)).collect();
        }
        let (pre, roi, search, chw) = (
            &self.pre,
            &self.roi,
            self.search.as_ref(),
            self.engine.chw(),
        );
        let per = inputs.len().div_ceil(cores.min(inputs.len()));
        std::thread::scope(|s| {
            let handles: Vec<_> = inputs
                .chunks(per)
                .map(|chunk| {
                    s.spawn(move || {
                        chunk
                            .iter()
                            .map(|i| prepare_frame(pre, roi, search, chw, i, keep_frame))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join().unwrap_or_else(|_| {
                        vec![Err(Error::Preprocess(
                            "preprocessing thread panicked".into(),
                        ))]
                    })
                })
                .collect()
        })
    }

    /// Raw R, L, A of every crop of every frame, all crops in as few session runs as
    /// `max_batch` allows. Per-frame errors (undecodable image, …) do not fail the batch.
    pub fn score_batch(
        &self,
        inputs: &[ImageInput<'_>],
        keep_maps: bool,
    ) -> Vec<Result<FrameScores>> {
        let prepared = self.prepare_all(inputs, keep_maps);
        self.score_prepared(prepared, keep_maps)
    }

    /// Runs prepared frames through the session (see [`Inspector::prepare`]).
    pub fn score_prepared(
        &self,
        prepared: Vec<Result<PreparedFrame>>,
        keep_maps: bool,
    ) -> Vec<Result<FrameScores>> {
        let chw = self.engine.chw();
        let rule = &self.rule;
        let total: usize = prepared
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .map(|p| p.regions.len())
            .sum();
        // One contiguous NCHW tensor for the whole batch (frames' crops back to back).
        let mut tensor: Vec<f32> = Vec::with_capacity(total * chw);
        for p in prepared.iter().flatten() {
            tensor.extend_from_slice(&p.tensor);
        }

        let shape = self.engine.shape();
        let [_, h, w] = shape;
        // Each crop's way back to pixels, in tensor order.
        let denorms: Vec<Option<&Denorm>> = prepared
            .iter()
            .flatten()
            .flat_map(|p| (0..p.regions.len()).map(|k| p.denorms.get(k)))
            .collect();
        type Scored = (Score, Option<Vec<f32>>, Option<Vec<u8>>);
        let mut scores: Vec<Scored> = Vec::with_capacity(total);
        let mut start = 0;
        let mut run_error: Option<String> = None;
        while start < total {
            let n = (total - start).min(self.engine.max_batch());
            let input = &tensor[start * chw..(start + n) * chw];
            let r = self.engine.run_view(input, n, |v| {
                (0..n)
                    .map(|k| {
                        let x = &input[k * chw..(k + 1) * chw];
                        let xh = v.reconstruction_of(k);
                        let (fr, ff) = (v.features_real_of(k), v.features_fake_of(k));
                        let logits = v.pattern_logits_of(k);
                        if !keep_maps {
                            return (rule.score(x, xh, fr, ff, logits, shape), None, None);
                        }
                        let (s, map) = rule.score_and_map(x, xh, fr, ff, logits, shape);
                        let map = map.into_iter().map(|v| v as f32).collect();
                        let pixels = denorms[start + k].map(|d| d.to_pixels(xh, h, w));
                        (s, Some(map), pixels)
                    })
                    .collect::<Vec<_>>()
            });
            match r {
                Ok(v) => scores.extend(v),
                Err(e) => {
                    run_error = Some(e.to_string());
                    break;
                }
            }
            start += n;
        }

        let mut next = 0usize;
        prepared
            .into_iter()
            .map(|p| {
                let p = p?;
                let first = next;
                next += p.regions.len();
                if let Some(e) = &run_error {
                    return Err(Error::Inference(e.clone()));
                }
                let crops = p
                    .regions
                    .iter()
                    .enumerate()
                    .map(|(k, r)| {
                        let (score, map, pixels) = scores[first + k].clone();
                        CropScore {
                            rect: r.rect,
                            match_score: r.match_score,
                            inferred: r.inferred,
                            view: r.view,
                            slot: r.slot,
                            score,
                            error_map: map,
                            reconstruction: pixels,
                        }
                    })
                    .collect();
                Ok(FrameScores {
                    crops,
                    partial: p.partial,
                    no_track: p.no_track,
                    frame: p.frame,
                    preprocess_ms: p.preprocess_ms,
                })
            })
            .collect()
    }

    /// Scores, normalizes and judges a batch of frames; optionally renders heatmaps.
    pub fn inspect_batch(
        &self,
        inputs: &[ImageInput<'_>],
        heatmaps: bool,
    ) -> Vec<Result<FrameResult>> {
        let t0 = Instant::now();
        let raw = self.score_batch(inputs, heatmaps);
        inputs
            .iter()
            .zip(raw)
            .map(|(input, r)| {
                let fs = r?;
                let norm = self.calibration_for(input.camera.as_deref())?;
                let mut res = self.judge_with(&input.id, input.camera.as_deref(), &fs, &norm);
                if heatmaps {
                    res.heatmap_png = self.heatmap_png(&fs, &norm)?;
                }
                res.latency_ms = t0.elapsed().as_secs_f64() * 1e3;
                Ok(res)
            })
            .collect()
    }

    /// Normalizes one frame's raw scores with its camera's calibration and judges it: the
    /// frame's verdict is its worst crop's. `latency_ms` is left at 0 for the caller to fill.
    pub fn judge(&self, id: &str, camera: Option<&str>, fs: &FrameScores) -> Result<FrameResult> {
        let norm = self.calibration_for(camera)?;
        Ok(self.judge_with(id, camera, fs, &norm))
    }

    /// [`Inspector::judge`] with the calibration given (the one the heatmap will be drawn with).
    pub fn judge_with(
        &self,
        id: &str,
        camera: Option<&str>,
        fs: &FrameScores,
        norm: &Normalization,
    ) -> FrameResult {
        let crops: Vec<CropResult> = fs
            .crops
            .iter()
            .map(|c| {
                let j = scoring::judge(c.score, norm);
                CropResult {
                    bbox: [c.rect.x, c.rect.y, c.rect.width, c.rect.height],
                    match_score: c.match_score,
                    inferred: c.inferred,
                    mirrored: c.view.flipped,
                    transposed: c.view.transposed,
                    slot: c.slot,
                    score: c.score,
                    a_norm: j.a_norm,
                    verdict: j.verdict,
                }
            })
            .collect();
        let worst = crops.iter().max_by(|a, b| a.a_norm.total_cmp(&b.a_norm));
        let (verdict, note) = match (worst, &fs.no_track) {
            // A frame that should show track and does not is flagged for a person to look at,
            // never passed as normal.
            (_, Some(reason)) => (Verdict::Defect, Some(format!("no track found: {reason}"))),
            (Some(c), None) => (c.verdict, None),
            // Only partial slots: nothing in this frame could be judged.
            (None, None) if !fs.partial.is_empty() => (
                Verdict::Normal,
                Some("every fastener slot is cut by the frame's edge".to_string()),
            ),
            // A frame where search expected fasteners and found none is flagged: a missing
            // fastener is itself a defect.
            (None, None) => (
                Verdict::Defect,
                Some("no fastener found in the frame".to_string()),
            ),
        };
        FrameResult {
            image: id.to_string(),
            camera: camera.map(str::to_string),
            a: worst.map(|c| c.score.a),
            r: worst.map(|c| c.score.r),
            l: worst.map(|c| c.score.l),
            a_norm: worst.map(|c| c.a_norm),
            threshold: norm.threshold,
            verdict,
            provider: self.provider(),
            latency_ms: 0.0,
            preprocess_ms: fs.preprocess_ms,
            roi: self.roi.as_str(),
            crops,
            partial_slots: fs
                .partial
                .iter()
                .map(|r| [r.x, r.y, r.width, r.height])
                .collect(),
            note,
            heatmap_png: None,
        }
    }

    /// PNG of the frame with every crop's error map blended in, coloured by the A' it stands
    /// for under `norm`, the calibration the frame was judged with (docs/scoring.md,
    /// "Heatmap"); `None` when the frame or the maps were not kept (`keep_maps = false`).
    pub fn heatmap_png(&self, fs: &FrameScores, norm: &Normalization) -> Result<Option<Vec<u8>>> {
        let Some(frame) = &fs.frame else {
            return Ok(None);
        };
        let [_, h, w] = self.engine.shape();
        let lambda = self.rule.lambda;
        let regions: Vec<RegionMap> = fs
            .crops
            .iter()
            .filter_map(|c| {
                c.error_map.clone().map(|map| RegionMap {
                    rect: c.rect,
                    map,
                    height: h,
                    width: w,
                    view: c.view,
                    smoothed: matches!(self.rule.pooling, Pooling::TopK { .. }),
                    scale: ColourScale {
                        lambda,
                        l: c.score.l,
                        norm: *norm,
                        pattern: match (self.rule.kind, c.score.m) {
                            (ScoreKind::AdeGan(kind), Some(m)) => Some((kind, m)),
                            _ => None,
                        },
                    },
                })
            })
            .collect();
        let bgr = heatmap::render(frame, &regions, &self.config.heatmap)?;
        Ok(Some(encode_png(&bgr)?))
    }

    /// PNG of the frame with every crop replaced by the model's reconstruction of it, back in
    /// pixels and resized onto its box (the rest of the frame as it is, in the model's
    /// channels); `None` when the frame or the reconstructions were not kept.
    pub fn reconstruction_png(&self, fs: &FrameScores) -> Result<Option<Vec<u8>>> {
        let Some(frame) = &fs.frame else {
            return Ok(None);
        };
        if fs.crops.iter().any(|c| c.reconstruction.is_none()) {
            return Ok(None);
        }
        let [_, h, w] = self.engine.shape();
        let regions: Vec<RegionPixels> = fs
            .crops
            .iter()
            .filter_map(|c| {
                c.reconstruction.clone().map(|pixels| RegionPixels {
                    rect: c.rect,
                    pixels,
                    height: h,
                    width: w,
                    view: c.view,
                })
            })
            .collect();
        Ok(Some(encode_png(&heatmap::render_reconstruction(
            frame,
            &regions,
            self.config.heatmap.max_side,
        )?)?))
    }
}

fn encode_png(m: &Mat) -> Result<Vec<u8>> {
    let mut buf = Vector::<u8>::new();
    opencv::imgcodecs::imencode(".png", m, &mut buf, &Vector::new())?;
    Ok(buf.to_vec())
}

/// One fastener region of a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub rect: Rect,
    /// Template-matching response, for regions found by fastener search.
    pub match_score: Option<f64>,
    /// Placed by pair completion rather than matched.
    pub inferred: bool,
    /// How the crop is turned before scoring so that the model always sees the orientation it
    /// was trained on: a far-row fastener (mirror image of the reference crops) is flipped top
    /// to bottom, a crop from a frame whose rails run down is transposed.
    pub view: CropView,
    /// Track mode: where on the track the slot is.
    pub slot: Option<SlotRef>,
}

/// A track-mode slot's place: rail index, side of the rail (-1 / +1, see `track::Slot`) and
/// sleeper index along the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SlotRef {
    pub rail: usize,
    pub side: i8,
    pub sleeper: usize,
}

/// A frame ready for the session: its regions and their normalized NCHW tensor.
#[derive(Debug, Default)]
pub struct PreparedFrame {
    pub regions: Vec<Region>,
    /// Track mode: slots cut by the frame's edge (not scored).
    pub partial: Vec<Rect>,
    /// Track mode: why no track was found.
    pub no_track: Option<String>,
    /// `regions.len() · C·H·W` values.
    pub tensor: Vec<f32>,
    /// Each region's way from the model's space back to pixels (for the reconstruction).
    pub denorms: Vec<Denorm>,
    /// The frame in the model's channels, kept for heatmaps.
    pub frame: Option<Mat>,
    pub preprocess_ms: f64,
}

fn prepare_frame(
    pre: &Preprocessor,
    roi: &RoiMode,
    search: Option<&FastenerSearch>,
    chw: usize,
    input: &ImageInput<'_>,
    keep_frame: bool,
) -> Result<PreparedFrame> {
    let t = Instant::now();
    let frame = pre.frame(input.bytes, &input.id)?;
    let fixed = |rect| Region {
        rect,
        match_score: None,
        inferred: false,
        view: CropView::AS_IS,
        slot: None,
    };
    let (mut partial, mut no_track) = (Vec::new(), None);
    let regions: Vec<Region> = match roi {
        RoiMode::Whole => vec![fixed(Rect::new(0, 0, frame.cols(), frame.rows()))],
        RoiMode::Rects(r) => r.iter().copied().map(fixed).collect(),
        RoiMode::Search => {
            let search = search.ok_or_else(|| Error::Search("search not loaded".into()))?;
            search
                .find(&to_gray(&frame)?)?
                .into_iter()
                .map(|d| Region {
                    rect: d.rect(),
                    match_score: Some(d.match_score),
                    inferred: d.inferred,
                    view: CropView {
                        transposed: false,
                        flipped: d.mirrored,
                    },
                    slot: None,
                })
                .collect()
        }
        RoiMode::Track(locator) => match locator.locate(&to_gray(&frame)?)? {
            Located::NoTrack { reason } => {
                no_track = Some(reason);
                Vec::new()
            }
            Located::Track(layout) => {
                let (whole, cut) =
                    locator.whole_and_partial(layout.slots, frame.cols(), frame.rows());
                partial = cut;
                whole
                    .into_iter()
                    .map(|s| Region {
                        rect: s.rect,
                        match_score: None,
                        inferred: false,
                        view: CropView::of_slot(&s, locator.orientation),
                        slot: Some(SlotRef {
                            rail: s.rail,
                            side: s.side,
                            sleeper: s.sleeper,
                        }),
                    })
                    .collect()
            }
        },
    };
    let mut tensor = vec![0f32; regions.len() * chw];
    let mut denorms = Vec::with_capacity(regions.len());
    for (r, slot) in regions.iter().zip(tensor.chunks_exact_mut(chw)) {
        let c = r.view.apply(&crop(&frame, r.rect)?)?;
        denorms.push(pre.write_tensor_with_inverse(&c, slot)?);
    }
    Ok(PreparedFrame {
        regions,
        partial,
        no_track,
        tensor,
        denorms,
        frame: keep_frame.then_some(frame),
        preprocess_ms: t.elapsed().as_secs_f64() * 1e3,
    })
}

/// Reference templates: `search.templates_dir`, else the package's own `templates/`.
fn load_search(package: &ModelPackage, config: &Config) -> Result<FastenerSearch> {
    let dir = match &config.search.templates_dir {
        Some(d) if !d.as_os_str().is_empty() => d.clone(),
        _ => package.dir.join("templates"),
    };
    if !dir.is_dir() {
        return Err(Error::Search(format!(
            "no reference crops for fastener search: {} is not a folder; set search.templates_dir \
             or a camera's templates_dir, or use roi = \"track\"",
            dir.display()
        )));
    }
    FastenerSearch::from_dir(&dir, &config.search)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The service moves the inspector into its batching thread and prepares frames elsewhere.
    #[test]
    fn inspector_and_prepared_frames_can_cross_threads() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<Inspector>();
        send::<PreparedFrame>();
        sync::<Preprocessor>();
        sync::<FastenerSearch>();
    }
}

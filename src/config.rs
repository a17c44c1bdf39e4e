//! Service configuration: `config/railscope.toml` overlaid with environment variables
//! `RAILSCOPE__SECTION__KEY` (e.g. `RAILSCOPE__ENGINE__PROVIDERS=cpu`).
//!
//! Every key has a default in code so that a missing file or section still gives a working CPU
//! setup; the file documents the keys that operators usually change.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Default location, relative to the working directory.
pub const DEFAULT_CONFIG_PATH: &str = "config/railscope.toml";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    pub engine: EngineConfig,
    pub preprocess: PreprocessConfig,
    pub search: SearchConfig,
    pub heatmap: HeatmapConfig,
    pub server: ServerConfig,
    pub batching: BatchingConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub calibration: CalibrationConfig,
    pub review: ReviewConfig,
    pub alerts: AlertsConfig,
    pub cameras: Vec<CameraConfig>,
}

/// The Prometheus whose alerts the dashboard's start-of-shift panel shows (`GET /v1/alerts`).
/// Off (not connected) while `prometheus_url` is empty.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AlertsConfig {
    /// Base URL of the Prometheus server that evaluates railscope's alert rules, e.g.
    /// `http://127.0.0.1:9090` (plain http; its `/api/v1/alerts` is asked). Empty: not connected.
    pub prometheus_url: String,
    /// How long one question to Prometheus may take (connect and answer), in milliseconds.
    pub timeout_ms: u64,
    /// Only alerts whose `alertname` starts with this are railscope's (the shipped rules in
    /// docker/prometheus/alerts.yml all start with `Railscope`).
    pub name_prefix: String,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            prometheus_url: String::new(),
            timeout_ms: 2000,
            name_prefix: "Railscope".into(),
        }
    }
}

/// What a confirmed defect records (docs/api.yaml, `ReviewRequest`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ReviewConfig {
    /// The severities an inspector chooses from, most urgent first (the dashboard's default is
    /// the first). Lower-case words with `_`.
    pub severities: Vec<String>,
    /// The most inspections one bulk review (`POST /v1/review-batches`) may review; a larger
    /// selection is refused (422 `too_many`).
    pub max_bulk: usize,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self {
            severities: vec!["immediate".into(), "plan".into(), "monitor".into()],
            max_bulk: 1000,
        }
    }
}

/// Threshold proposals from inspectors' reviews (docs/scoring.md, "Proposals from reviews").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CalibrationConfig {
    /// A proposal needs at least this many confirmed defects and this many false alarms
    /// reviewed under the model version in service; below it the answer has no proposal.
    pub min_reviews_per_class: usize,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        Self {
            min_reviews_per_class: 10,
        }
    }
}

/// `railscope serve`: where it listens and what it serves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ServerConfig {
    pub bind: String,
    /// Separate address for `/metrics`, `/healthz` and `/readyz` (e.g. an internal interface);
    /// empty: they are served on `bind` too.
    pub metrics_bind: Option<String>,
    /// The service's model package (loaded at start and on every reload): it judges every
    /// camera that names no `model` of its own.
    pub model: PathBuf,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// HTTP worker threads (decode and preprocessing run on a separate blocking pool).
    pub workers: usize,
    /// Dashboard files served at `/`; empty: no dashboard.
    pub web_dir: Option<PathBuf>,
    /// A camera that sent nothing for this long is reported silent.
    pub silent_after_s: f64,
    /// On shutdown, in-flight requests get this long to finish.
    pub shutdown_timeout_s: u64,
    /// Mark the dashboard's session cookie `Secure` (behind TLS).
    pub secure_cookies: bool,
    /// Frames decoded and prepared at the same time (each holds its decoded frame in memory);
    /// 0: twice the available cores.
    pub max_concurrent_decodes: usize,
    /// A frame that finds every decode slot busy waits this long for one, then gets 503
    /// `queue_full` with Retry-After.
    pub decode_wait_ms: u64,
    /// The whole request body of a frame must arrive within this many seconds of its headers
    /// (a trickled body is answered 408 and its connection closed).
    pub body_timeout_s: f64,
    /// A frame whose `X-Frame-Id` this camera already sent within this many seconds is answered
    /// with the first stored verdict instead of being inspected again (a camera retrying after
    /// a timeout creates no duplicate); 0: frame ids are not checked.
    pub frame_id_window_s: f64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            metrics_bind: None,
            model: PathBuf::from("models/nested-edgan"),
            max_body_bytes: 32 * 1024 * 1024,
            workers: 0,
            web_dir: Some(PathBuf::from("web")),
            silent_after_s: 30.0,
            shutdown_timeout_s: 30,
            secure_cookies: false,
            max_concurrent_decodes: 0,
            decode_wait_ms: 1000,
            body_timeout_s: 10.0,
            frame_id_window_s: 86_400.0,
        }
    }
}

/// The queue between the HTTP handlers and the engine (Triton-style dynamic batching).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct BatchingConfig {
    /// Frames waiting for the engine; a full queue answers 503 with Retry-After.
    pub queue_capacity: usize,
    /// Most frames in one batch (the engine splits their crops by `engine.max_batch`).
    pub max_batch: usize,
    /// A batch takes every frame queued while the engine was busy (up to `max_batch`), then
    /// waits up to this long for more. 0 suits the CPU, where a batch of 8 costs 8 single runs;
    /// raise it on a GPU, where it costs little more than one.
    pub max_delay_ms: u64,
    /// A request not answered within this is given up with 504 (its verdict, if it comes
    /// later, is still stored).
    pub request_timeout_ms: u64,
    /// Frames one camera may have in flight (body, decode, queue, inference, store) before its
    /// next frame is refused with 503, so that a flooding camera cannot starve the others;
    /// 0: `queue_capacity` shared equally among the configured cameras.
    pub max_in_flight_per_camera: usize,
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 256,
            max_batch: 8,
            max_delay_ms: 0,
            request_timeout_ms: 10_000,
            max_in_flight_per_camera: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StorageConfig {
    /// Folder holding `railscope.db` (SQLite, WAL) and `media/` (kept images and heatmaps).
    pub path: PathBuf,
    /// SQLite `synchronous`: `full` survives power loss, `normal` only a crash of the process.
    pub synchronous: String,
    /// A normal frame's image is kept when the camera's last kept normal image is older than
    /// this (defects are always kept). 0 keeps every normal image.
    pub normal_image_interval_s: f64,
    /// Kept normal images are deleted after this many hours (their verdicts stay); 0 = never.
    pub normal_image_retention_h: f64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data/railscope"),
            synchronous: "full".into(),
            normal_image_interval_s: 5.0,
            normal_image_retention_h: 72.0,
        }
    }
}

/// Bearer tokens per role and the login throttle; named accounts (`railscope accounts`) live in
/// the database, cameras have their own keys in `[[cameras]]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AuthConfig {
    /// May read everything and review defects (recorded as `inspector`).
    pub inspector_tokens: Vec<String>,
    /// Inspector rights plus model reload and applying calibrations (recorded as `admin`).
    pub admin_tokens: Vec<String>,
    /// Failed logins one account name may have within `failed_login_window_s`; beyond it
    /// `POST /v1/login` for that name answers 429 `too_many_attempts`, even with the right
    /// password, until the oldest failure leaves the window. A successful login clears it.
    pub max_failed_logins_per_name: u32,
    /// The same, counted per client IP address (over every name and token it tried).
    pub max_failed_logins_per_ip: u32,
    /// The sliding window of the two limits above, in seconds.
    pub failed_login_window_s: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            inspector_tokens: Vec::new(),
            admin_tokens: Vec::new(),
            max_failed_logins_per_name: 5,
            max_failed_logins_per_ip: 20,
            failed_login_window_s: 900,
        }
    }
}

/// One camera allowed to post frames.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CameraConfig {
    pub id: String,
    pub name: String,
    /// Sent as `Authorization: Bearer <api_key>`; posts only to this camera.
    pub api_key: String,
    /// This camera's region mode (`whole`, `rects`, `search`); empty: `preprocess.roi`.
    pub roi: Option<String>,
    pub rects: Vec<[i32; 4]>,
    /// Reference fastener crops for this camera's fastener search (its own fastener type or
    /// optics); empty: `search.templates_dir` / its model's.
    pub templates_dir: Option<PathBuf>,
    /// Calibration file for this camera; empty: `<calibration_dir>/<model>.<id>.json` (for its
    /// model) when it exists, else its model's.
    pub calibration: Option<PathBuf>,
    /// This camera's view of the track for `roi = "track"`; empty: `preprocess.geometry`.
    pub geometry: Option<GeometryConfig>,
    /// The model package folder this camera's frames are judged with (its own installation or
    /// fastener type); empty: the service's model (`server.model`, or `serve --model`). Each
    /// folder is loaded once however many cameras name it, at start and on every reload.
    pub model: Option<PathBuf>,
}

impl CameraConfig {
    /// The camera's own model package folder, when it names one.
    pub fn own_model(&self) -> Option<&Path> {
        self.model.as_deref().filter(|p| !p.as_os_str().is_empty())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EngineConfig {
    /// Explicit `libonnxruntime.so` path. Empty: `ORT_DYLIB_PATH`, then the project venv.
    pub ort_library: Option<PathBuf>,
    /// Execution providers tried in order; the first that builds a session wins.
    pub providers: Vec<String>,
    pub device_id: i32,
    pub fp16: bool,
    /// TensorRT engine cache; building an engine takes minutes, so it is cached across restarts.
    pub trt_engine_cache_dir: PathBuf,
    /// Intra-op threads for the CPU provider; 0 lets ONNX Runtime choose (one per core).
    pub intra_op_threads: usize,
    /// Whether ONNX Runtime's intra-op threads spin while waiting for work (its default). Off,
    /// they sleep and leave the cores to decoding, HTTP and the store between session runs.
    pub intra_op_spinning: bool,
    /// Largest batch handed to one session run; bigger requests are split.
    pub max_batch: usize,
    /// Run one dummy batch at load so the first real frame does not pay for lazy initialisation.
    pub warmup: bool,
    /// Folder holding `<model>.json` and `<model>.<camera>.json`; empty: `calibration/` beside
    /// `models/`.
    pub calibration_dir: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            ort_library: None,
            providers: vec!["tensorrt".into(), "cuda".into(), "cpu".into()],
            device_id: 0,
            fp16: false,
            trt_engine_cache_dir: PathBuf::from("target/trt-engine-cache"),
            intra_op_threads: 0,
            intra_op_spinning: true,
            max_batch: 64,
            warmup: true,
            calibration_dir: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct PreprocessConfig {
    /// Decoding limits: a frame whose header claims more is refused before any allocation.
    pub max_width: u32,
    pub max_height: u32,
    pub max_decoded_bytes: u64,
    /// Most pixels (width × height) of one frame, checked from the header before decoding.
    pub max_pixels: u64,
    /// Frames whose shorter side is below this many pixels are refused (0: no minimum).
    pub min_side: u32,
    /// Frames longer than this many times their width (or wider than this many times their
    /// height) are refused (0: any ratio).
    pub max_aspect_ratio: u32,
    /// Contrast-limited adaptive histogram equalisation before resizing. Off by default because
    /// the reference scores (and the calibration) are computed without it.
    pub clahe: bool,
    pub clahe_clip_limit: f64,
    pub clahe_tile: i32,
    /// `whole`, `rects`, `search` or `track`.
    pub roi: String,
    /// Fixed rectangles `[x, y, w, h]` for `roi = "rects"`.
    pub rects: Vec<[i32; 4]>,
    /// The camera's view of the track for `roi = "track"` (a camera's own `geometry` wins).
    pub geometry: GeometryConfig,
}

/// How a camera sees the track, for `roi = "track"` (`track.rs`): the fastener slots are placed
/// from the rails and sleepers found in the frame, at these real-world sizes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GeometryConfig {
    /// `across`: the rails run left–right in the frame; `down`: top–bottom.
    pub orientation: String,
    /// Pixels per metre at the rail (the camera's scale; ±5 % is tolerated).
    pub px_per_m: f64,
    /// Rails in view: 1 or 2 (a fastener on each side of each rail on every sleeper).
    pub rails: usize,
    /// Nominal sleeper spacing, centre to centre; the frame's own is measured within ±15 %.
    pub sleeper_spacing_m: f64,
    /// Side of the square crop around one fastener assembly; its inner edge touches the rail head.
    pub fastener_size_m: f64,
    /// Width of the rail head seen from above.
    pub rail_head_m: f64,
    /// Distance between the rail centre lines when `rails = 2`.
    pub gauge_m: f64,
    /// A slot whose box lies less than this fraction inside the frame is reported as partial
    /// and not scored (it is whole in the neighbouring frame when frames overlap).
    pub min_visible: f64,
}

impl Default for GeometryConfig {
    fn default() -> Self {
        Self {
            orientation: "across".into(),
            px_per_m: 200.0,
            rails: 1,
            sleeper_spacing_m: 0.6,
            fastener_size_m: 0.24,
            rail_head_m: 0.072,
            gauge_m: 1.435,
            min_visible: 0.9,
        }
    }
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        Self {
            max_width: 16384,
            max_height: 16384,
            max_decoded_bytes: 512 * 1024 * 1024,
            max_pixels: 40_000_000,
            min_side: 16,
            max_aspect_ratio: 64,
            clahe: false,
            clahe_clip_limit: 2.0,
            clahe_tile: 8,
            roi: "whole".into(),
            rects: Vec::new(),
            geometry: GeometryConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SearchConfig {
    /// Folder of reference fastener crops (normal ones); empty: `<model>/templates`, then the
    /// fixture `tests/fixtures/fasteners/train/good`.
    pub templates_dir: Option<PathBuf>,
    /// How many reference crops are averaged into the template. Averaging washes out the
    /// per-crop jitter and texture and keeps what all fasteners share.
    pub template_crops: usize,
    /// Also match the template mirrored top-to-bottom (the fastener row on the far side of the
    /// rail is the mirror image of the near one).
    pub mirror: bool,
    /// Infer the partner of a fastener matched on one side of the rail only (see
    /// `fastener_search::complete_pairs`).
    pub pair_completion: bool,
    /// Fastener size in the frame relative to the reference crops: set by the camera geometry
    /// (the defaults cover the synthetic 1024-px frames and their 128-px crops).
    pub scales: Vec<f64>,
    /// Weight of the gradient-magnitude correlation against the intensity correlation;
    /// gradients make the match insensitive to illumination and concrete texture.
    pub gradient_weight: f64,
    /// Absolute minimum response for a detection.
    pub min_score: f64,
    /// A detection must also reach this fraction of the frame's best response.
    pub relative_score: f64,
    /// Boxes overlapping more than this (IoU) are merged by non-maximum suppression…
    pub nms_iou: f64,
    /// …and so are boxes lying more than this fraction inside another (a part of a fastener
    /// matched at a smaller scale).
    pub nms_containment: f64,
    pub max_detections: usize,
    /// The frame is matched at this fraction of its size (and templates with it) for speed.
    pub downscale: f64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            templates_dir: None,
            template_crops: 32,
            mirror: true,
            pair_completion: true,
            // 1.1 × 1.1^k: the synthetic frames' fasteners are 145–246 px, the crops 128 px.
            scales: vec![1.1, 1.21, 1.33, 1.46, 1.61, 1.77, 1.95, 2.14],
            gradient_weight: 0.5,
            min_score: 0.45,
            relative_score: 0.65,
            nms_iou: 0.3,
            nms_containment: 0.5,
            max_detections: 32,
            downscale: 0.25,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct HeatmapConfig {
    /// Gaussian σ in model-input pixels that blurs a `mean` package's error map for display (a
    /// `topk` package's map is drawn as the score smoothed it). The colours themselves follow
    /// the calibration (docs/scoring.md, "Heatmap"), so there is no colour-scale key.
    pub sigma: f64,
    /// Weight of the colour map in the blend.
    pub alpha: f64,
    /// Heatmaps and reconstructions are drawn on the frame shrunk to at most this many pixels
    /// on its longer side (0: full size): a 36 MP frame's would otherwise hold up every
    /// camera's verdicts on the store thread for seconds.
    pub max_side: i32,
}

impl Default for HeatmapConfig {
    fn default() -> Self {
        Self {
            sigma: 1.5,
            alpha: 0.45,
            max_side: 2048,
        }
    }
}

impl Config {
    /// Loads `path` (or `config/railscope.toml` when it exists) and the `RAILSCOPE__…` variables.
    /// The file (or `config/railscope.toml` when present) overlaid with the process's
    /// `RAILSCOPE__*` environment variables.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        Self::load_with_env(path, None)
    }

    /// As [`Config::load`], with `env` (`RAILSCOPE__SECTION__KEY` → value) in place of the
    /// process environment when given: tests pass an explicit map so that a developer's shell
    /// cannot change what they check.
    pub fn load_with_env(
        path: Option<&Path>,
        env: Option<std::collections::HashMap<String, String>>,
    ) -> Result<Self> {
        let mut builder = config::Config::builder();
        match path {
            Some(p) => {
                if !p.exists() {
                    return Err(Error::Config(format!(
                        "config file {} does not exist",
                        p.display()
                    )));
                }
                builder = builder.add_source(config::File::from(p.to_path_buf()));
            }
            None => {
                builder = builder
                    .add_source(config::File::with_name(DEFAULT_CONFIG_PATH).required(false));
            }
        }
        builder = builder.add_source(
            config::Environment::with_prefix("RAILSCOPE")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("engine.providers")
                .with_list_parse_key("search.scales")
                .with_list_parse_key("auth.inspector_tokens")
                .with_list_parse_key("auth.admin_tokens")
                .with_list_parse_key("review.severities")
                .try_parsing(true)
                .source(env),
        );
        let cfg = builder.build().map_err(|e| Error::Config(e.to_string()))?;
        let parsed: Config = cfg
            .try_deserialize()
            .map_err(|e| Error::Config(e.to_string()))?;
        parsed.validate()?;
        Ok(parsed)
    }

    pub fn validate(&self) -> Result<()> {
        if self.engine.providers.is_empty() {
            return Err(Error::Config(
                "engine.providers is empty; use e.g. [\"cpu\"]".into(),
            ));
        }
        for p in &self.engine.providers {
            if Provider::parse(p).is_none() {
                return Err(Error::Config(format!(
                    "engine.providers: unknown provider {p:?} (known: tensorrt, cuda, cpu)"
                )));
            }
        }
        if self.engine.max_batch == 0 {
            return Err(Error::Config("engine.max_batch must be at least 1".into()));
        }
        if !ROI_MODES.contains(&self.preprocess.roi.as_str()) {
            return Err(Error::Config(format!(
                "preprocess.roi must be whole, rects, search or track, not {:?}",
                self.preprocess.roi
            )));
        }
        let mut seen = std::collections::HashSet::new();
        let mut keys = std::collections::HashSet::new();
        for c in &self.cameras {
            check_camera_id(&c.id).map_err(|e| Error::Config(format!("cameras: {e}")))?;
            if !seen.insert(c.id.as_str()) {
                return Err(Error::Config(format!(
                    "cameras: id {:?} appears twice",
                    c.id
                )));
            }
            if c.api_key.len() < 8 {
                return Err(Error::Config(format!(
                    "cameras: {:?} needs an api_key of at least 8 characters",
                    c.id
                )));
            }
            if !keys.insert(c.api_key.as_str()) {
                return Err(Error::Config(format!(
                    "cameras: {:?} shares its api_key with another camera",
                    c.id
                )));
            }
            // the mode's name here; its rectangles and track geometry where the service builds it
            if let Some(roi) = c.roi.as_deref() {
                if !ROI_MODES.contains(&roi) {
                    return Err(Error::Config(format!(
                        "cameras: {:?}: roi must be whole, rects, search or track, not {roi:?}",
                        c.id
                    )));
                }
            }
        }
        if self
            .auth
            .inspector_tokens
            .iter()
            .chain(&self.auth.admin_tokens)
            .any(|t| t.len() < 8)
        {
            return Err(Error::Config(
                "auth: tokens must be at least 8 characters".into(),
            ));
        }
        if self.auth.max_failed_logins_per_name == 0
            || self.auth.max_failed_logins_per_ip == 0
            || self.auth.failed_login_window_s == 0
        {
            return Err(Error::Config(
                "auth: max_failed_logins_per_name, max_failed_logins_per_ip and \
                 failed_login_window_s must be at least 1"
                    .into(),
            ));
        }
        if self.review.severities.is_empty() {
            return Err(Error::Config(
                "review.severities is empty; use e.g. [\"immediate\", \"plan\", \"monitor\"]"
                    .into(),
            ));
        }
        let mut severities = std::collections::HashSet::new();
        for s in &self.review.severities {
            let word = !s.is_empty()
                && s.len() <= 32
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !word || !severities.insert(s.as_str()) {
                return Err(Error::Config(format!(
                    "review.severities: {s:?} must be a distinct lower-case word (a-z, 0-9, _)"
                )));
            }
        }
        if self.review.max_bulk == 0 || self.review.max_bulk > 10_000 {
            return Err(Error::Config(
                "review.max_bulk must be between 1 and 10000".into(),
            ));
        }
        let url = self.alerts.prometheus_url.trim();
        if !url.is_empty() {
            let rest = url.strip_prefix("http://").ok_or_else(|| {
                Error::Config(format!(
                    "alerts.prometheus_url must be empty or an http:// URL, not {url:?}"
                ))
            })?;
            if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', ' ']) {
                return Err(Error::Config(format!(
                    "alerts.prometheus_url must be a base URL like http://127.0.0.1:9090, not {url:?}"
                )));
            }
        }
        if self.alerts.timeout_ms == 0 || self.alerts.timeout_ms > 30_000 {
            return Err(Error::Config(
                "alerts.timeout_ms must be between 1 and 30000".into(),
            ));
        }
        if self.calibration.min_reviews_per_class == 0 {
            return Err(Error::Config(
                "calibration.min_reviews_per_class must be at least 1".into(),
            ));
        }
        if self.batching.max_batch == 0 || self.batching.queue_capacity == 0 {
            return Err(Error::Config(
                "batching.max_batch and batching.queue_capacity must be at least 1".into(),
            ));
        }
        if !matches!(self.storage.synchronous.as_str(), "full" | "normal") {
            return Err(Error::Config(format!(
                "storage.synchronous must be full or normal, not {:?}",
                self.storage.synchronous
            )));
        }
        if self.search.scales.is_empty()
            || self.search.scales.iter().any(|s| s.is_nan() || *s <= 0.0)
        {
            return Err(Error::Config(
                "search.scales must be positive numbers".into(),
            ));
        }
        if !(self.search.downscale > 0.0 && self.search.downscale <= 1.0) {
            return Err(Error::Config("search.downscale must be in (0, 1]".into()));
        }
        if self.preprocess.max_pixels == 0 {
            return Err(Error::Config(
                "preprocess.max_pixels must be at least 1".into(),
            ));
        }
        if !(self.server.body_timeout_s.is_finite() && self.server.body_timeout_s > 0.0) {
            return Err(Error::Config(
                "server.body_timeout_s must be a positive number of seconds".into(),
            ));
        }
        Ok(())
    }
}

/// The region modes `preprocess.roi` and a camera's `roi` name (`pipeline::preprocess::RoiMode`).
pub const ROI_MODES: [&str; 4] = ["whole", "rects", "search", "track"];

/// The execution providers `engine.providers` names, in the engine's order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    TensorRt,
    Cuda,
    Cpu,
}

impl Provider {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "tensorrt" | "trt" => Some(Provider::TensorRt),
            "cuda" => Some(Provider::Cuda),
            "cpu" => Some(Provider::Cpu),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::TensorRt => "tensorrt",
            Provider::Cuda => "cuda",
            Provider::Cpu => "cpu",
        }
    }
}

/// Camera ids come from clients and become file names: letters, digits, '-', '_' only.
pub fn check_camera_id(cam: &str) -> Result<()> {
    if cam.is_empty()
        || cam.len() > 64
        || !cam
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::Other(format!(
            "invalid camera id {cam:?} (use letters, digits, '-' and '_', at most 64)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The file alone: whatever `RAILSCOPE__*` the developer's shell exports is not read.
    fn load(p: &Path) -> Result<Config> {
        Config::load_with_env(Some(p), Some(HashMap::new()))
    }

    #[test]
    fn defaults_are_valid_and_prefer_gpu() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.engine.providers, vec!["tensorrt", "cuda", "cpu"]);
    }

    #[test]
    fn file_values_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.toml");
        std::fs::write(
            &p,
            "[engine]\nproviders = [\"cpu\"]\nintra_op_threads = 2\n",
        )
        .unwrap();
        let c = load(&p).unwrap();
        assert_eq!(c.engine.providers, vec!["cpu"]);
        assert_eq!(c.engine.intra_op_threads, 2);
        assert_eq!(c.engine.max_batch, 64);
    }

    #[test]
    fn unknown_provider_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.toml");
        std::fs::write(&p, "[engine]\nproviders = [\"gpu-magic\"]\n").unwrap();
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains("gpu-magic"), "{err}");
    }

    #[test]
    fn calibration_min_reviews_per_class_is_read_and_must_be_positive() {
        assert_eq!(Config::default().calibration.min_reviews_per_class, 10);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.toml");
        std::fs::write(&p, "[calibration]\nmin_reviews_per_class = 3\n").unwrap();
        assert_eq!(load(&p).unwrap().calibration.min_reviews_per_class, 3);
        std::fs::write(&p, "[calibration]\nmin_reviews_per_class = 0\n").unwrap();
        let err = load(&p).unwrap_err().to_string();
        assert!(err.contains("min_reviews_per_class"), "{err}");
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = load(Path::new("/nonexistent/railscope.toml")).unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }

    #[test]
    fn an_explicit_env_map_overrides_the_file_and_replaces_the_process_env() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.toml");
        std::fs::write(&p, "[engine]\nproviders = [\"cpu\"]\nmax_batch = 8\n").unwrap();
        let env = HashMap::from([("RAILSCOPE__ENGINE__MAX_BATCH".to_string(), "4".to_string())]);
        let c = Config::load_with_env(Some(&p), Some(env)).unwrap();
        assert_eq!(c.engine.max_batch, 4);
        assert_eq!(c.engine.providers, vec!["cpu"]);
    }
}

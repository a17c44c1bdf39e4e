//! `railscope serve`: the HTTP service cameras, inspectors and Prometheus talk to.
//!
//! [`routes`] (actix-web handlers) → [`crate::service::batching`] (bounded queue, dynamic batches) →
//! [`crate::pipeline::inspector::Inspector`] (engine + scoring) → [`crate::service::store`] and
//! [`crate::service::telemetry`]. This module wires them together and owns the lifecycle: start,
//! reload (`POST /admin/reload`, SIGHUP) and graceful shutdown (SIGTERM/SIGINT drain the
//! queue before the process exits).

pub mod accounts;
pub mod admission;
pub mod auth;
pub mod batching;
pub mod cameras;
pub mod http;
pub mod recalibration;
pub mod store;
pub mod telemetry;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use actix_web::{middleware, web, App, HttpServer};
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

use crate::config::{CameraConfig, Config, ServerConfig};
use crate::error::{Error, Result};
use crate::pipeline::fastener_search::FastenerSearch;
use crate::pipeline::inspector::{Inspector, LoadOptions};
use crate::pipeline::package::{calibration_file_name, calibration_path, Calibration};
use crate::pipeline::preprocess::RoiMode;
use crate::pipeline::scoring::Normalization;
use crate::service::store::{AppliedUpdate, CalibrationChange, SqliteStore, Store};
use crate::service::telemetry::Metrics;
use batching::{Answer, Batcher, Observer};

use auth::Auth;
use cameras::CameraBoard;

/// A configured camera as the handlers need it.
pub struct CameraEntry {
    /// Its own region mode; `None`: the model's default.
    pub roi: Option<RoiMode>,
    /// Its own fastener-search templates; `None`: its model's.
    pub search: Option<Arc<FastenerSearch>>,
}

pub struct AppState {
    pub config: Config,
    config_path: Option<PathBuf>,
    /// `serve --model/--bind`: re-applied to the config a reload reads.
    overrides: Overrides,
    /// The models in service, which camera each judges and where each camera's calibration
    /// comes from, swapped together.
    served: RwLock<Arc<Served>>,
    batcher: RwLock<Option<Batcher>>,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub board: Arc<CameraBoard>,
    /// Server-sent events, already formatted (`event: …\ndata: …\n\n`).
    pub events: broadcast::Sender<Arc<str>>,
    /// Flips once on shutdown so open event streams end and let the server stop.
    pub shutdown: watch::Sender<bool>,
    pub auth: Auth,
    pub cameras: HashMap<String, CameraEntry>,
    /// How many frames are decoded and prepared at once, each holding its decoded pixels
    /// (`server.max_concurrent_decodes`; 0 = twice the cores).
    pub decode_slots: Arc<tokio::sync::Semaphore>,
    pub decode_slot_count: usize,
    /// Per-camera share of frames in flight, and the frame ids in flight.
    pub admission: Arc<admission::Admission>,
    draining: AtomicBool,
    /// One reload, threshold apply or clear at a time.
    reload_lock: tokio::sync::Mutex<()>,
}

/// Where the calibration a camera is judged with comes from. The first that exists wins, in
/// this order (docs/scoring.md, "Which calibration a camera uses").
#[derive(Debug, Clone, PartialEq)]
pub enum CalibrationOrigin {
    /// A threshold an admin applied (dashboard or `PUT /v1/cameras/{id}/calibration`) for this
    /// camera and this model (name and model.onnx SHA-256), kept in SQLite until cleared.
    Applied {
        by: String,
        at_ms: i64,
        audit_id: i64,
    },
    /// The camera's `calibration` file named in the config.
    Config(PathBuf),
    /// `<calibration_dir>/<model>.<camera>.json`.
    CameraFile(PathBuf),
    /// `<calibration_dir>/<model>.json`, the model's default.
    Default(PathBuf),
}

impl CalibrationOrigin {
    /// `applied`, `config`, `camera_file` or `default`.
    pub fn kind(&self) -> &'static str {
        match self {
            CalibrationOrigin::Applied { .. } => "applied",
            CalibrationOrigin::Config(_) => "config",
            CalibrationOrigin::CameraFile(_) => "camera_file",
            CalibrationOrigin::Default(_) => "default",
        }
    }

    /// As clients may see it: who applied the threshold and when, or the file relative to the
    /// calibration folder (or the working directory) when it lies below it, else its file
    /// name alone — never the server's absolute layout.
    pub fn source(&self, calibration_dir: &std::path::Path) -> String {
        match self {
            CalibrationOrigin::Applied { by, at_ms, .. } => {
                format!("applied by {by} at {}", http::views::rfc3339(*at_ms))
            }
            CalibrationOrigin::Config(p)
            | CalibrationOrigin::CameraFile(p)
            | CalibrationOrigin::Default(p) => public_path(p, calibration_dir),
        }
    }
}

/// The models in service — the service's own (`server.model`) and each configured camera's
/// (its `model`, else the service's; one [`Inspector`] per package folder, shared by the cameras
/// naming it) — with the camera settings they were loaded with and where each camera's
/// calibration comes from.
pub struct Served {
    service_model: Arc<Inspector>,
    /// Every configured camera, in config order.
    cameras: Vec<ServedCamera>,
    origins: RwLock<HashMap<String, CalibrationOrigin>>,
}

struct ServedCamera {
    config: CameraConfig,
    model: Arc<Inspector>,
}

impl Served {
    /// The service's model (`server.model`, or `serve --model`).
    pub fn service_model(&self) -> &Arc<Inspector> {
        &self.service_model
    }

    /// The model that judges `camera`: its own, else the service's (also for an unknown camera).
    pub fn model(&self, camera: &str) -> &Arc<Inspector> {
        self.cameras
            .iter()
            .find(|c| c.config.id == camera)
            .map_or(&self.service_model, |c| &c.model)
    }

    /// Each configured camera's id and model, in config order.
    pub fn camera_models(&self) -> impl Iterator<Item = (&str, &Arc<Inspector>)> {
        self.cameras
            .iter()
            .map(|c| (c.config.id.as_str(), &c.model))
    }

    /// Each model in service once, the service's first (even when no camera is left to it),
    /// with the ids of the cameras it judges.
    pub fn models(&self) -> Vec<(&Arc<Inspector>, Vec<&str>)> {
        let mut out = vec![(&self.service_model, Vec::new())];
        for (id, model) in self.camera_models() {
            match out.iter_mut().find(|(m, _)| Arc::ptr_eq(m, model)) {
                Some((_, ids)) => ids.push(id),
                None => out.push((model, vec![id])),
            }
        }
        out
    }

    /// Where `camera`'s calibration comes from (its model's default for an unknown camera).
    pub fn origin(&self, camera: &str) -> CalibrationOrigin {
        self.origins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(camera)
            .cloned()
            .unwrap_or_else(|| {
                let m = self.model(camera);
                CalibrationOrigin::Default(calibration_path(
                    m.calibration_dir(),
                    m.package().name(),
                    None,
                ))
            })
    }

    /// The calibration `camera` is judged with and where it comes from.
    pub fn calibration(&self, camera: &str) -> Result<(Normalization, CalibrationOrigin)> {
        Ok((
            self.model(camera).calibration_for(Some(camera))?,
            self.origin(camera),
        ))
    }

    /// The calibration files' choice for `camera`, whatever is applied (what clearing an
    /// applied threshold returns to).
    pub fn file_calibration(&self, camera: &str) -> Result<(Normalization, CalibrationOrigin)> {
        let cam = self
            .cameras
            .iter()
            .find(|c| c.config.id == camera)
            .ok_or_else(|| Error::Other(format!("camera {camera:?} is not configured")))?;
        file_calibration(&cam.model, &cam.config)
    }

    /// Makes `norm` from `origin` the camera's calibration from its next frame on.
    pub fn set(&self, camera: &str, norm: Normalization, origin: CalibrationOrigin) -> Result<()> {
        self.model(camera).set_camera_calibration(camera, norm)?;
        self.origins
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(camera.to_string(), origin);
        Ok(())
    }
}

impl AppState {
    /// The models in service with their cameras and calibration origins (one snapshot: a frame
    /// is prepared and scored with the model it took from here, even across a reload).
    pub fn served(&self) -> Arc<Served> {
        self.served
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Held while a reload, or a threshold apply or clear, changes calibrations.
    pub async fn calibration_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.reload_lock.lock().await
    }

    pub fn batcher(&self) -> Option<Batcher> {
        self.batcher
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Sends a live event to every open `/v1/events` stream.
    pub fn publish(&self, event: &str, data: &Value) {
        publish(&self.events, event, data);
    }
}

/// `path` relative to `calibration_dir` or the working directory when below one of them,
/// otherwise only its file name.
fn public_path(path: &std::path::Path, calibration_dir: &std::path::Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    let below = |base: &std::path::Path| {
        let base = if base.is_absolute() {
            base.to_path_buf()
        } else {
            cwd.join(base)
        };
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            cwd.join(path)
        };
        full.strip_prefix(&base)
            .ok()
            .filter(|r| {
                !r.as_os_str().is_empty()
                    && r.components()
                        .all(|c| matches!(c, std::path::Component::Normal(_)))
            })
            .map(|r| r.display().to_string())
    };
    below(calibration_dir)
        .or_else(|| below(&cwd))
        .or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

fn publish(events: &broadcast::Sender<Arc<str>>, event: &str, data: &Value) {
    if events.receiver_count() > 0 {
        let _ = events.send(Arc::from(format!("event: {event}\ndata: {data}\n\n")));
    }
}

/// Loads the models `config` names — the service's (`server.model`) and each camera's own
/// `model`, every package folder once — and settles every configured camera's calibration with
/// its model: a threshold applied for that model (in `store`) wins, else the files
/// ([`file_calibration`]). A package or calibration file that cannot be used fails the load;
/// the error of a camera's own package names the camera and the folder.
pub fn load_models(config: &Config, store: &dyn Store) -> Result<Served> {
    let (folders, model_of) = package_folders(config);
    let models = folders
        .iter()
        .enumerate()
        .map(|(k, dir)| {
            let judged: Vec<&CameraConfig> = config
                .cameras
                .iter()
                .zip(&model_of)
                .filter(|(_, m)| **m == k)
                .map(|(c, _)| c)
                .collect();
            let opts = LoadOptions {
                // A package's templates are needed only by searching cameras without their own.
                load_search: judged.iter().any(|c| {
                    c.roi.as_deref() == Some("search")
                        && c.templates_dir
                            .as_deref()
                            .is_none_or(|d| d.as_os_str().is_empty())
                }),
                ..Default::default()
            };
            Inspector::load(dir, config, &opts)
                .map(Arc::new)
                .map_err(|e| match k {
                    // the service's model: its error as it always was
                    0 => e,
                    _ => {
                        let ids: Vec<String> =
                            judged.iter().map(|c| format!("{:?}", c.id)).collect();
                        Error::Config(format!(
                            "cameras: {}: model {} cannot be loaded: {e}",
                            ids.join(", "),
                            dir.display()
                        ))
                    }
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut origins = HashMap::new();
    let mut cameras = Vec::with_capacity(config.cameras.len());
    for (cam, &k) in config.cameras.iter().zip(&model_of) {
        let model = &models[k];
        let m = &model.package().manifest.model;
        let (files, file_origin) = file_calibration(model, cam)?;
        let (norm, origin) = match store.applied_threshold(&cam.id, &m.name, &m.sha256)? {
            Some(a) => {
                let norm = Normalization::new(a.min, a.max, a.threshold).map_err(|message| {
                    Error::Other(format!("the threshold applied to {}: {message}", cam.id))
                })?;
                if files != norm {
                    tracing::info!(
                        camera = %cam.id,
                        applied = norm.threshold,
                        file = %file_origin.source(model.calibration_dir()),
                        file_threshold = files.threshold,
                        "an applied threshold outranks the calibration file until it is cleared"
                    );
                }
                (
                    norm,
                    CalibrationOrigin::Applied {
                        by: a.applied_by,
                        at_ms: a.applied_ms,
                        audit_id: a.audit_id,
                    },
                )
            }
            None => (files, file_origin),
        };
        model.set_camera_calibration(&cam.id, norm)?;
        origins.insert(cam.id.clone(), origin);
        cameras.push(ServedCamera {
            config: cam.clone(),
            model: model.clone(),
        });
    }
    Ok(Served {
        service_model: models[0].clone(),
        cameras,
        origins: RwLock::new(origins),
    })
}

/// The model package folders `config` names, each once however it is spelt (`models/x`,
/// `./models/x`, its absolute path): the service's model first, then the cameras' own in config
/// order; and for every configured camera, the index of its model's folder.
fn package_folders(config: &Config) -> (Vec<&std::path::Path>, Vec<usize>) {
    // A folder that does not exist keeps its spelling: its load fails with that name.
    let same_as =
        |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut folders = vec![config.server.model.as_path()];
    let mut keys = vec![same_as(&config.server.model)];
    let model_of = config
        .cameras
        .iter()
        .map(|cam| {
            let dir = cam.own_model().unwrap_or(&config.server.model);
            let key = same_as(dir);
            keys.iter().position(|k| *k == key).unwrap_or_else(|| {
                keys.push(key);
                folders.push(dir);
                folders.len() - 1
            })
        })
        .collect();
    (folders, model_of)
}

/// What the calibration files give a camera: its `calibration` file from the config, else
/// `<calibration_dir>/<model>.<camera>.json` when it exists, else the model's
/// `<model>.json`. Each file is loaded and checked against the model.
pub fn file_calibration(
    model: &Inspector,
    cam: &CameraConfig,
) -> Result<(Normalization, CalibrationOrigin)> {
    let load = |path: &std::path::Path| -> Result<Normalization> {
        let cal = Calibration::load(path)?;
        cal.check_model(model.package(), path)?;
        cal.normalization().map_err(|message| Error::Calibration {
            path: path.to_path_buf(),
            message,
        })
    };
    if let Some(path) = cam
        .calibration
        .as_ref()
        .filter(|p| !p.as_os_str().is_empty())
    {
        return Ok((load(path)?, CalibrationOrigin::Config(path.clone())));
    }
    let name = model.package().name();
    let own = model
        .calibration_dir()
        .join(calibration_file_name(name, Some(&cam.id)));
    if own.is_file() {
        return Ok((load(&own)?, CalibrationOrigin::CameraFile(own)));
    }
    let default = *model
        .default_calibration()
        .ok_or_else(|| Error::Other("the model was loaded without a calibration".into()))?;
    Ok((
        default,
        CalibrationOrigin::Default(calibration_path(model.calibration_dir(), name, None)),
    ))
}

/// An audit entry for every configured camera whose calibration in `new` differs (threshold,
/// bounds or source) from `before` (threshold, min, max, source), for a reload or a start.
fn calibration_changes(
    new: &Served,
    before: impl Fn(&str) -> Option<(f64, f64, f64, String)>,
    actor: &str,
    action: &str,
    reason: &str,
) -> Result<Vec<CalibrationChange>> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::new();
    for (camera, model) in new.camera_models() {
        let m = &model.package().manifest.model;
        let (norm, origin) = new.calibration(camera)?;
        let source = origin.source(model.calibration_dir());
        let old = before(camera);
        let same = old.as_ref().is_some_and(|(t, lo, hi, src)| {
            *t == norm.threshold && *lo == norm.min && *hi == norm.max && *src == source
        });
        if same || (old.is_none() && action == "start") {
            continue;
        }
        out.push(CalibrationChange {
            id: 0,
            at_ms: now,
            camera: camera.to_string(),
            actor: actor.to_string(),
            action: action.to_string(),
            old_threshold: old.as_ref().map(|o| o.0),
            new_threshold: norm.threshold,
            old_source: old.map(|o| o.3),
            new_source: source,
            min: norm.min,
            max: norm.max,
            model_name: m.name.clone(),
            model_version: m.version.clone(),
            model_sha256: m.sha256.clone(),
            reason: reason.to_string(),
        });
    }
    Ok(out)
}

fn record_changes(store: &dyn Store, changes: &[CalibrationChange]) -> Result<()> {
    for c in changes {
        store.record_calibration_change(c, &AppliedUpdate::Unchanged)?;
        tracing::info!(camera = %c.camera, action = %c.action, old = ?c.old_threshold, new = c.new_threshold, source = %c.new_source, "calibration changed");
    }
    Ok(())
}

/// Command-line choices (`railscope serve --model/--bind`) that outrank the config file, at
/// start and on every reload.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub model: Option<PathBuf>,
    pub bind: Option<String>,
}

impl Overrides {
    pub fn apply(&self, config: &mut Config) {
        if let Some(m) = &self.model {
            config.server.model = m.clone();
        }
        if let Some(b) = &self.bind {
            config.server.bind = b.clone();
        }
    }
}

/// The config sections that differ between the running service and `new` in ways a reload
/// does not apply (a restart does). A reload rebuilds the models from `server.model` and the
/// cameras' `model`, `[engine]`, `[preprocess]`, `[search]`, `[heatmap]` and the calibrations;
/// every other setting — the list of cameras, and the per-camera keys, regions and templates
/// built at start — stays as it started.
pub fn not_applied(running: &Config, new: &Config) -> Vec<&'static str> {
    let server = |c: &Config| ServerConfig {
        model: PathBuf::new(),
        ..c.server.clone()
    };
    let cameras = |c: &Config| -> Vec<CameraConfig> {
        c.cameras
            .iter()
            .map(|cam| CameraConfig {
                calibration: None,
                model: None,
                ..cam.clone()
            })
            .collect()
    };
    // Cameras with their own region or templates keep what was built from these at start.
    let own_roi = running
        .cameras
        .iter()
        .any(|c| c.roi.is_some() && c.geometry.is_none());
    let own_templates = running.cameras.iter().any(|c| {
        c.templates_dir
            .as_deref()
            .is_some_and(|d| !d.as_os_str().is_empty())
    });
    let mut out = Vec::new();
    if own_roi && running.preprocess.geometry != new.preprocess.geometry {
        out.push("preprocess");
    }
    if own_templates && running.search != new.search {
        out.push("search");
    }
    if server(running) != server(new) {
        out.push("server");
    }
    if running.batching != new.batching {
        out.push("batching");
    }
    if running.storage != new.storage {
        out.push("storage");
    }
    if running.auth != new.auth {
        out.push("auth");
    }
    if running.calibration != new.calibration {
        out.push("calibration");
    }
    if running.review != new.review {
        out.push("review");
    }
    if running.alerts != new.alerts {
        out.push("alerts");
    }
    if cameras(running) != cameras(new) {
        out.push("cameras");
    }
    out
}

/// Counts stored frames, keeps the camera board current and streams them to dashboards.
struct ServiceObserver {
    metrics: Arc<Metrics>,
    board: Arc<CameraBoard>,
    events: broadcast::Sender<Arc<str>>,
}

impl Observer for ServiceObserver {
    fn batch_formed(&self, frames: usize, queue_depth: usize) {
        self.metrics.batch_size.observe(frames as f64);
        self.metrics.queue_depth.set(queue_depth as i64);
    }

    fn stored(&self, a: &Answer) {
        let i = &a.inspection;
        let m = &self.metrics;
        m.frames
            .with_label_values(&[i.meta.camera.as_str(), i.verdict.as_str()])
            .inc();
        if let Some(s) = i.a_norm {
            m.anomaly_score
                .with_label_values(&[i.meta.camera.as_str()])
                .observe(s);
        }
        m.camera_last_frame
            .with_label_values(&[i.meta.camera.as_str()])
            .set(i.meta.received_ms as f64 / 1e3);
        let t = &a.timings;
        for (stage, ms) in [
            ("intake", t.intake),
            ("queue", t.queue),
            ("infer", t.infer),
            ("score", t.score),
            ("store", t.store),
            ("total", t.total),
        ] {
            m.observe_stage(stage, ms / 1e3);
        }
        self.board.record(
            &i.meta.camera,
            i.id,
            i.meta.received_ms,
            i.verdict,
            i.has_image,
        );
        publish(&self.events, "inspection", &http::views::inspection(i));
    }

    fn store_failed(&self) {
        self.metrics.reject("store_failed");
    }
}

/// Swaps in freshly loaded models (the service's and the cameras' own) and calibrations. Frames
/// already prepared finish on the old models; the next ones use the new ones; nothing fails in
/// between. A model that cannot be loaded refuses the whole reload: the old ones keep serving.
/// Every camera whose calibration changes gets an audit entry by `actor` (who asked: an
/// account's name or a token's role, or `signal`), written before the swap: a reload whose
/// audit cannot be written does not happen.
pub async fn reload(state: Arc<AppState>, actor: &str) -> std::result::Result<Value, String> {
    let _one_at_a_time = state.reload_lock.lock().await;
    let config = Config::load(state.config_path.as_deref()).map(|mut c| {
        state.overrides.apply(&mut c);
        c
    });
    let mut skipped = Vec::new();
    let old = state.served();
    let trigger = if actor == "signal" {
        "SIGHUP"
    } else {
        "POST /admin/reload"
    };
    let reason = format!("reload ({trigger}): the model or calibration files on disk");
    let actor = actor.to_string();
    let loaded = match config {
        Ok(c) => {
            skipped = not_applied(&state.config, &c);
            let store = state.store.clone();
            web::block(move || {
                let served = load_models(&c, store.as_ref())?;
                let before = |cam: &str| {
                    old.calibration(cam).ok().map(|(n, o)| {
                        (
                            n.threshold,
                            n.min,
                            n.max,
                            o.source(old.model(cam).calibration_dir()),
                        )
                    })
                };
                let changes = calibration_changes(&served, before, &actor, "reload", &reason)?;
                record_changes(store.as_ref(), &changes)?;
                Ok::<_, Error>(served)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        }
        Err(e) => Err(e.to_string()),
    };
    match loaded {
        Ok(served) => {
            let service_model = served.service_model().clone();
            let mut answer = json!({
                "model": http::views::model_ref(&service_model),
                "provider": service_model.provider(),
                "models": http::views::served_models(&served),
                "reloaded_at": http::views::rfc3339(chrono::Utc::now().timestamp_millis()),
                "not_applied": skipped,
            });
            state.metrics.set_models(served.camera_models());
            *state.served.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(served);
            state.metrics.reloads.with_label_values(&["ok"]).inc();
            tracing::info!(models = %answer["models"], "model reloaded");
            if !skipped.is_empty() {
                let message = format!(
                    "config sections changed on disk but not applied by a reload: {}; restart the service to apply them",
                    skipped.join(", ")
                );
                tracing::warn!(sections = %skipped.join(","), "{message}");
                answer["message"] = json!(message);
            }
            Ok(answer)
        }
        Err(e) => {
            state.metrics.reloads.with_label_values(&["error"]).inc();
            tracing::error!(error = %e, "reload failed; the previous models keep serving");
            Err(e)
        }
    }
}

/// Runs the service until SIGTERM/SIGINT, then drains: stops accepting, answers what is
/// queued, and returns. `overrides` outrank the config at start and on every reload.
pub fn serve(mut config: Config, config_path: Option<PathBuf>, overrides: Overrides) -> Result<()> {
    overrides.apply(&mut config);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(
        &config.storage.path,
        &config.storage.synchronous,
    )?);
    let served = load_models(&config, store.as_ref())?;
    // A calibration that changed while the service was stopped (files, model, config) is a
    // change too: compared with what the audit last recorded for each camera.
    let before = |cam: &str| {
        store
            .calibration_audit(Some(cam), None, 1)
            .ok()
            .and_then(|v| v.into_iter().next())
            .map(|c| (c.new_threshold, c.min, c.max, c.new_source))
    };
    let changes = calibration_changes(
        &served,
        before,
        "service",
        "start",
        "service start: the calibration in force differs from the last one recorded",
    )?;
    record_changes(store.as_ref(), &changes)?;
    let purged = store.purge_sessions(chrono::Utc::now().timestamp_millis())?;
    if purged > 0 {
        tracing::info!(purged, "expired dashboard sessions deleted");
    }
    // The hash an unknown account name is verified against, so the first is not faster.
    accounts::prime();
    let metrics = Arc::new(Metrics::new());
    let camera_ids: Vec<String> = config.cameras.iter().map(|c| c.id.clone()).collect();
    metrics.preset(&camera_ids);
    metrics.set_models(served.camera_models());
    metrics
        .queue_capacity
        .set(config.batching.queue_capacity as i64);
    let board = Arc::new(CameraBoard::default());
    board.seed(&store.camera_totals()?);
    let (events, _) = broadcast::channel(1024);
    let observer = Arc::new(ServiceObserver {
        metrics: metrics.clone(),
        board: board.clone(),
        events: events.clone(),
    });
    let (batcher, workers) =
        batching::start(&config.batching, &config.storage, store.clone(), observer)
            .map_err(|e| Error::io("starting the batching threads", e))?;
    let cameras = config
        .cameras
        .iter()
        .map(|c| {
            let roi = c
                .roi
                .as_deref()
                .map(|r| {
                    RoiMode::parse(
                        r,
                        &c.rects,
                        c.geometry.as_ref().unwrap_or(&config.preprocess.geometry),
                    )
                    .map_err(|e| Error::Config(format!("cameras: {:?}: {e}", c.id)))
                })
                .transpose()?;
            let search = match c
                .templates_dir
                .as_deref()
                .filter(|d| !d.as_os_str().is_empty())
            {
                Some(dir) => Some(Arc::new(FastenerSearch::from_dir(dir, &config.search)?)),
                None => None,
            };
            Ok((c.id.clone(), CameraEntry { roi, search }))
        })
        .collect::<Result<HashMap<_, _>>>()?;
    let (shutdown, _) = watch::channel(false);
    let decode_slot_count = match config.server.max_concurrent_decodes {
        0 => 2 * std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let state = Arc::new(AppState {
        auth: Auth::new(&config, store.clone()),
        config: config.clone(),
        config_path,
        overrides,
        served: RwLock::new(Arc::new(served)),
        batcher: RwLock::new(Some(batcher)),
        store,
        metrics,
        board,
        events,
        shutdown,
        cameras,
        decode_slots: Arc::new(tokio::sync::Semaphore::new(decode_slot_count)),
        decode_slot_count,
        admission: admission::Admission::new(admission::Admission::share(
            config.batching.max_in_flight_per_camera,
            config.batching.queue_capacity,
            config.cameras.len(),
        )),
        draining: AtomicBool::new(false),
        reload_lock: tokio::sync::Mutex::new(()),
    });

    let result = actix_web::rt::System::new().block_on(run_http(state.clone()));
    // The HTTP side is down: release the queue so the workers drain it and stop.
    state.draining.store(true, Ordering::SeqCst);
    state
        .batcher
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    workers.join();
    tracing::info!("stopped; every queued frame was answered or stored");
    result
}

async fn run_http(state: Arc<AppState>) -> Result<()> {
    let cfg = &state.config.server;
    let data = web::Data::from(state.clone());
    let separate_probes = cfg.metrics_bind.as_deref().is_some_and(|s| !s.is_empty());
    let web_dir = cfg
        .web_dir
        .clone()
        .filter(|d| !d.as_os_str().is_empty() && d.join("index.html").is_file());
    if web_dir.is_none() {
        tracing::warn!("no dashboard: server.web_dir has no index.html");
    }
    let app_data = data.clone();
    let mut main = HttpServer::new(move || {
        let metrics = app_data.metrics.clone();
        let mut app = App::new()
            .app_data(app_data.clone())
            .wrap(middleware::from_fn(harden))
            .wrap(middleware::from_fn(move |req, next| {
                let metrics = metrics.clone();
                async move { count_request(metrics, req, next).await }
            }))
            .configure(http::configure);
        if !separate_probes {
            app = app.configure(http::configure_probes);
        }
        if let Some(dir) = &web_dir {
            app = app.service(
                actix_files::Files::new("/", dir)
                    .index_file("index.html")
                    // GET and HEAD only: another method falls through to the default service.
                    .guard(
                        actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()),
                    )
                    .default_handler(web::to(http::no_route))
                    // Only the page's own files: not node_modules, tests, artifacts, package.json.
                    .path_filter(|p, _| {
                        let p = p.to_string_lossy();
                        p.is_empty()
                            || matches!(p.as_ref(), "index.html" | "app.js" | "favicon.svg")
                            || p.starts_with("css/")
                            || p.starts_with("js/")
                    }),
            );
        }
        let dashboard = web_dir.clone();
        app.default_service(web::to(move |req: actix_web::HttpRequest| {
            let dashboard = dashboard.clone();
            async move { dashboard_method_or_no_route(req, dashboard.as_deref()) }
        }))
    })
    .disable_signals()
    .shutdown_timeout(cfg.shutdown_timeout_s);
    if cfg.workers > 0 {
        main = main.workers(cfg.workers);
    }
    let main = main
        .bind(&cfg.bind)
        .map_err(|e| Error::io(format!("binding {}", cfg.bind), e))?
        .run();
    let mut handles = vec![main.handle()];
    let mut servers = vec![main];
    if separate_probes {
        let bind = cfg.metrics_bind.clone().unwrap_or_default();
        let probe_data = data.clone();
        let probes = HttpServer::new(move || {
            App::new()
                .app_data(probe_data.clone())
                .wrap(middleware::from_fn(harden))
                .configure(http::configure_probes)
                .default_service(web::to(http::no_route))
        })
        .workers(1)
        .disable_signals()
        .bind(&bind)
        .map_err(|e| Error::io(format!("binding {bind}"), e))?
        .run();
        handles.push(probes.handle());
        servers.push(probes);
    }
    tracing::info!(bind = %cfg.bind, metrics = ?cfg.metrics_bind, "listening");
    println!("railscope listening on http://{}", cfg.bind);

    let signals_state = state.clone();
    actix_web::rt::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading model and calibration");
                    let _ = reload(signals_state.clone(), "signal").await;
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        tracing::info!("shutting down: finishing in-flight requests and draining the queue");
        signals_state.draining.store(true, Ordering::SeqCst);
        let _ = signals_state.shutdown.send(true);
        for h in handles {
            h.stop(true).await;
        }
    });
    // Both servers are polled together: a server future that is not polled does not answer.
    futures_util::future::try_join_all(servers)
        .await
        .map_err(|e| Error::io("running the HTTP server", e))?;
    Ok(())
}

async fn count_request(
    metrics: Arc<Metrics>,
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> std::result::Result<
    actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
    actix_web::Error,
> {
    let route = req.match_pattern().unwrap_or_else(|| "other".into());
    let res = next.call(req).await?;
    let status = res.status().as_u16().to_string();
    metrics
        .http_requests
        .with_label_values(&[route.as_str(), status.as_str()])
        .inc();
    Ok(res)
}

/// What no route matched: a dashboard file asked with another method than GET/HEAD is 405,
/// anything else 404 (both in the JSON error format).
fn dashboard_method_or_no_route(
    req: actix_web::HttpRequest,
    web_dir: Option<&std::path::Path>,
) -> std::result::Result<actix_web::HttpResponse, http::errors::ApiError> {
    let rel = req.path().trim_start_matches('/');
    let is_page = web_dir.is_some_and(|d| {
        let rel = if rel.is_empty() { "index.html" } else { rel };
        !rel.split('/').any(|c| c == ".." || c.is_empty())
            && (matches!(rel, "index.html" | "app.js" | "favicon.svg")
                || rel.starts_with("css/")
                || rel.starts_with("js/"))
            && d.join(rel).is_file()
    });
    if is_page {
        Err(http::errors::ApiError::method_not_allowed(
            req.method().as_str(),
            req.path(),
            "GET, HEAD",
        ))
    } else {
        Err(http::errors::ApiError::no_route(
            req.method().as_str(),
            req.path(),
        ))
    }
}

/// The dashboard's policy: its own scripts, styles and images only (the page sets a few
/// `style` attributes from script, hence `'unsafe-inline'` for styles but never for scripts),
/// no plugins, no framing, no foreign form targets.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self'; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// CSRF protection beyond the session cookie's SameSite: a state-changing request (anything but
/// GET, HEAD, OPTIONS) that a browser sent from another origin is refused with 403
/// `forbidden_origin`. Browsers always send `Origin` on such requests; programs (cameras,
/// scripts) send none and are not affected.
fn foreign_origin(req: &actix_web::dev::ServiceRequest) -> Option<http::errors::ApiError> {
    use actix_web::http::Method;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let origin = req.headers().get(actix_web::http::header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("null");
    let host = req.connection_info().host().to_ascii_lowercase();
    let same = origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.to_ascii_lowercase() == host);
    (!same).then(|| {
        http::errors::ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "forbidden_origin",
            format!(
                "{} from origin {origin:?} refused: not this service's origin ({host})",
                req.method()
            ),
        )
    })
}

/// On every response: the security headers, and the service's JSON error format for the
/// errors actix-web raises itself (an extractor's body limit, a malformed query or path).
async fn harden(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> std::result::Result<actix_web::dev::ServiceResponse, actix_web::Error> {
    use actix_web::http::header::{self, HeaderValue};
    use actix_web::ResponseError;
    // (Handlers' and extractors' errors arrive as responses carrying the error; routing needs
    // the request to itself, so it is not kept for the rare `Err` a middleware returns.)
    let mut res = match foreign_origin(&req) {
        Some(refusal) => req.into_response(refusal.error_response()),
        None => next.call(req).await?.map_into_boxed_body(),
    };
    let is_error = res.status().is_client_error() || res.status().is_server_error();
    let convert = match res.response().error() {
        Some(e) => e
            .as_error::<http::errors::ApiError>()
            .is_none()
            .then(|| e.to_string()),
        None => (is_error
            && !res
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json")))
        .then(|| {
            res.status()
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
        }),
    };
    if let Some(message) = convert {
        let api = http::errors::ApiError::from_framework(res.status(), message);
        let (r, _) = res.into_parts();
        res = actix_web::dev::ServiceResponse::new(r, api.error_response());
    }
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(id: &str, model: Option<&std::path::Path>) -> CameraConfig {
        CameraConfig {
            id: id.into(),
            model: model.map(std::path::Path::to_path_buf),
            ..Default::default()
        }
    }

    #[test]
    fn each_package_folder_is_loaded_once_however_it_is_spelt() {
        let tmp = tempfile::tempdir().unwrap();
        let (service, track) = (tmp.path().join("service"), tmp.path().join("track"));
        std::fs::create_dir_all(&service).unwrap();
        std::fs::create_dir_all(&track).unwrap();
        let track_again = tmp.path().join("service/../track");
        let missing = tmp.path().join("missing");
        let config = Config {
            server: ServerConfig {
                model: service.clone(),
                ..Default::default()
            },
            cameras: vec![
                camera("cam-01", None),
                camera("cam-02", Some(&track)),
                camera("cam-03", Some(&track_again)),
                camera("cam-04", Some(&service)),
                camera("cam-05", Some(std::path::Path::new(""))),
                camera("cam-06", Some(&missing)),
            ],
            ..Default::default()
        };
        let (folders, model_of) = package_folders(&config);
        assert_eq!(
            folders,
            [service.as_path(), track.as_path(), missing.as_path()]
        );
        assert_eq!(model_of, [0, 1, 1, 0, 0, 2]);
    }

    #[test]
    fn a_reload_applies_a_cameras_model_but_not_a_new_camera() {
        let running = Config {
            cameras: vec![camera("cam-01", None)],
            ..Default::default()
        };
        let mut new = running.clone();
        new.cameras[0].model = Some("models/track-across-2mp".into());
        assert!(not_applied(&running, &new).is_empty());
        new.cameras.push(camera("cam-02", None));
        assert_eq!(not_applied(&running, &new), ["cameras"]);
    }
}

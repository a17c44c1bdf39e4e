//! HTTP handlers. Each checks who is calling, validates its input into a clear 4xx, and
//! hands heavy work (decoding, SQLite) to the blocking pool so the event loop stays free.

use std::time::{Duration, Instant};

use actix_web::http::{header, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{cookie::Cookie, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;

use crate::batching::{Failure, FrameJob, SubmitError};
use crate::inspector::ImageInput;
use crate::recalibration::{propose, ProposalMethod};
use crate::scoring::{Normalization, Verdict};
use crate::store::{
    AppliedThreshold, AppliedUpdate, CalibrationChange, FrameMeta, InspectionFilter, ReviewFilter,
    ReviewState,
};

use super::admission::Refusal;
use super::auth::{session_id, Role, COOKIE};
use super::errors::ApiError;
use super::views::{self, parse_time, rfc3339};
use super::{AppState, CalibrationOrigin};

type Resp = Result<HttpResponse, ApiError>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .service(resource("/login", "POST").route(web::post().to(login)))
            .service(resource("/logout", "POST").route(web::post().to(logout)))
            .service(resource("/me", "GET").route(web::get().to(me)))
            .service(resource("/cameras", "GET").route(web::get().to(cameras)))
            .service(resource("/cameras/{camera}/frames", "POST").route(web::post().to(post_frame)))
            .service(
                resource("/cameras/{camera}/calibration/proposal", "GET")
                    .route(web::get().to(calibration_proposal)),
            )
            .service(
                resource("/cameras/{camera}/calibration", "PUT, DELETE")
                    .route(web::put().to(apply_calibration))
                    .route(web::delete().to(clear_calibration)),
            )
            .service(resource("/calibration/audit", "GET").route(web::get().to(calibration_audit)))
            .service(resource("/inspections", "GET").route(web::get().to(list_inspections)))
            .service(resource("/inspections/{id}", "GET").route(web::get().to(get_inspection)))
            .service(
                resource("/inspections/{id}/image", "GET").route(web::get().to(inspection_image)),
            )
            .service(
                resource("/inspections/{id}/heatmap", "GET")
                    .route(web::get().to(inspection_heatmap)),
            )
            .service(
                resource("/inspections/{id}/reconstruction", "GET")
                    .route(web::get().to(inspection_reconstruction)),
            )
            .service(
                resource("/inspections/{id}/review", "POST")
                    .route(web::post().to(super::defects::review)),
            )
            .service(
                resource("/inspections/{id}/lifecycle", "POST")
                    .route(web::post().to(super::defects::lifecycle)),
            )
            .service(
                resource("/inspections/{id}/history", "GET")
                    .route(web::get().to(super::defects::history)),
            )
            .service(resource("/defects", "GET").route(web::get().to(super::defects::list_defects)))
            .service(
                resource("/defects/catalogue", "GET")
                    .route(web::get().to(super::defects::catalogue)),
            )
            .service(resource("/events", "GET").route(web::get().to(events)))
            .service(resource("/stats/trend", "GET").route(web::get().to(trend)))
            .service(resource("/stats/positions", "GET").route(web::get().to(positions)))
            .service(resource("/stats/scores", "GET").route(web::get().to(scores))),
    )
    .service(resource("/admin/reload", "POST").route(web::post().to(reload)));
}

/// `/healthz`, `/readyz`, `/metrics`: open, on the main or the separate metrics address.
pub fn configure_probes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz", "GET").route(web::get().to(healthz)))
        .service(resource("/readyz", "GET").route(web::get().to(readyz)))
        .service(resource("/metrics", "GET").route(web::get().to(metrics)));
}

/// A path of the API: a method it does not answer gets 405 with `Allow: <allow>` (not the
/// 404 a path the service does not have gets).
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        Err::<HttpResponse, _>(ApiError::method_not_allowed(
            req.method().as_str(),
            req.path(),
            allow,
        ))
    }))
}

/// Anything no route matched: 404 in the JSON error format.
pub async fn no_route(req: HttpRequest) -> Resp {
    Err(ApiError::no_route(req.method().as_str(), req.path()))
}

// Runs blocking work (SQLite, files, ONNX loading) off the event loop.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker pool: {e}")))?
        .map_err(|e| ApiError::internal(e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

/// Metadata from `X-…` headers, else the query string.
#[derive(Debug, Default, Deserialize)]
struct FrameQuery {
    frame_id: Option<String>,
    capture_time: Option<String>,
    track_id: Option<String>,
    position_m: Option<String>,
    speed_kmh: Option<String>,
}

/// The `metadata` part of a multipart frame: the same fields, numbers as JSON numbers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameMetadataJson {
    frame_id: Option<String>,
    capture_time: Option<String>,
    track_id: Option<String>,
    position_m: Option<f64>,
    speed_kmh: Option<f64>,
}

impl From<FrameMetadataJson> for FrameQuery {
    fn from(m: FrameMetadataJson) -> Self {
        FrameQuery {
            frame_id: m.frame_id,
            capture_time: m.capture_time,
            track_id: m.track_id,
            position_m: m.position_m.map(|v| v.to_string()),
            speed_kmh: m.speed_kmh.map(|v| v.to_string()),
        }
    }
}

/// Headers win over `q` (the multipart metadata, else the query string).
/// `source` says where `q` came from: "query parameter" or "metadata field".
fn frame_meta(
    req: &HttpRequest,
    camera: &str,
    q: FrameQuery,
    source: &str,
) -> Result<FrameMeta, ApiError> {
    // Each value from its header, else from the query string or the multipart metadata; a
    // message names the value where it came from.
    let pick = |h: &'static str, field: &'static str, q: &Option<String>| match req.headers().get(h)
    {
        Some(v) => v
            .to_str()
            .map(|s| (Some(s.trim().to_string()), format!("header {h}")))
            .map_err(|_| ApiError::bad_request(format!("header {h} is not ASCII text"))),
        None => Ok((q.clone(), format!("{source} {field}"))),
    };
    let text = |h: &'static str, field: &'static str, q: &Option<String>| {
        let (v, name) = pick(h, field, q)?;
        let v = v.filter(|s| !s.is_empty());
        if v.as_ref().is_some_and(|s| s.len() > 128) {
            return Err(ApiError::bad_request(format!(
                "{name} is longer than 128 characters"
            )));
        }
        Ok((v, name))
    };
    // Plausible ranges, so a typo or a hostile value cannot poison the stored track statistics.
    let number = |h: &'static str, field: &'static str, q: &Option<String>, lo: f64, hi: f64| {
        let (v, name) = pick(h, field, q)?;
        match v.filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => {
                let v = s
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("{name}: {s:?} is not a number"))
                    })?;
                if !(lo..=hi).contains(&v) {
                    return Err(ApiError::bad_request(format!(
                        "{name}: {v} is outside [{lo}, {hi}]"
                    )));
                }
                Ok(Some(v))
            }
        }
    };
    // 2000-01-01 up to a day ahead of the server's clock (a camera clock may run a little fast)
    const EARLIEST_CAPTURE_MS: i64 = 946_684_800_000;
    let latest_capture_ms = chrono::Utc::now().timestamp_millis() + 86_400_000;
    let capture_ms = match text("X-Capture-Time", "capture_time", &q.capture_time)? {
        (None, _) => None,
        (Some(s), name) => {
            let ms = parse_time(&s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{name}: {s:?} is not an RFC 3339 time (e.g. 2026-11-23T14:05:00Z)"
                ))
            })?;
            if !(EARLIEST_CAPTURE_MS..=latest_capture_ms).contains(&ms) {
                return Err(ApiError::bad_request(format!(
                    "{name}: {s:?} is before 2000 or more than a day ahead of the server's clock"
                )));
            }
            Some(ms)
        }
    };
    Ok(FrameMeta {
        camera: camera.to_string(),
        frame_id: text("X-Frame-Id", "frame_id", &q.frame_id)?.0,
        capture_ms,
        received_ms: chrono::Utc::now().timestamp_millis(),
        track_id: text("X-Track-Id", "track_id", &q.track_id)?.0,
        position_m: number("X-Track-Position-M", "position_m", &q.position_m, -1e6, 1e8)?,
        speed_kmh: number("X-Speed-Kmh", "speed_kmh", &q.speed_kmh, 0.0, 1000.0)?,
    })
}

/// The stored file extension, from the image's magic bytes.
fn image_ext(b: &[u8]) -> &'static str {
    if b.starts_with(b"\x89PNG") {
        "png"
    } else if b.starts_with(&[0xFF, 0xD8]) {
        "jpg"
    } else if b.starts_with(b"BM") {
        "bmp"
    } else if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
        "tif"
    } else {
        "bin"
    }
}

/// How the frame is sent: the image as the body, or `multipart/form-data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Image,
    Multipart,
}

fn body_kind(req: &HttpRequest) -> Result<BodyKind, ApiError> {
    let Some(ct) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(BodyKind::Image);
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.starts_with("image/") || essence == "application/octet-stream" {
        Ok(BodyKind::Image)
    } else if essence == "multipart/form-data" {
        Ok(BodyKind::Multipart)
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type {essence:?}: post the image bytes as image/png, image/jpeg, image/bmp or image/tiff, or multipart/form-data with parts `image` and `metadata`"),
        ))
    }
}

/// Reads the body, refusing it as soon as it passes the limit (before it is all in memory).
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than server.max_body_bytes = {limit}"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `multipart/form-data` with a part `image` (the frame) and an optional part `metadata` (JSON:
/// frame_id, capture_time, track_id, position_m, speed_kmh). Other parts are refused so that a
/// misspelt name is an error, not silently lost metadata.
async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<(Vec<u8>, Option<FrameQuery>), ApiError> {
    let mut parts = actix_multipart::Multipart::new(req.headers(), payload);
    let (mut image, mut meta) = (None, None);
    let mut total = 0usize;
    while let Some(field) = parts.next().await {
        let mut field = field.map_err(|e| ApiError::bad_request(format!("multipart body: {e}")))?;
        let name = field.name().unwrap_or("").to_string();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::bad_request(format!("multipart part {name:?}: {e}")))?;
            total += chunk.len();
            if total > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("request body is larger than server.max_body_bytes = {limit}"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "image" => image = Some(bytes),
            "metadata" => {
                let m: FrameMetadataJson = serde_json::from_slice(&bytes).map_err(|e| {
                    ApiError::bad_request(format!("multipart part \"metadata\" is not the metadata JSON: {e}"))
                })?;
                meta = Some(FrameQuery::from(m));
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unexpected multipart part {other:?} (expected \"image\" and optionally \"metadata\")"
                )))
            }
        }
    }
    let image =
        image.ok_or_else(|| ApiError::bad_request("multipart body has no \"image\" part"))?;
    Ok((image, meta))
}

/// A decode slot, waiting up to `server.decode_wait_ms` for one; then 503 `queue_full`
/// (the frame was refused for load, like a full inspection queue).
async fn decode_slot(state: &AppState) -> Result<OwnedSemaphorePermit, ApiError> {
    let n = state.decode_slot_count;
    let wait = Duration::from_millis(state.config.server.decode_wait_ms);
    match tokio::time::timeout(wait, state.decode_slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        Ok(Err(closed)) => Err(ApiError::internal(format!("decode slots: {closed}"))),
        Err(_) => Err(ApiError::unavailable(
            "queue_full",
            format!(
                "all {n} decode slots are busy (server.max_concurrent_decodes) for {} ms; retry shortly",
                wait.as_millis()
            ),
            1,
        )),
    }
}

async fn post_frame(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Resp {
    let camera = path.into_inner();
    let result = frame(&req, &camera, payload, &state).await;
    if let Err(e) = &result {
        // a store failure is counted by the store thread, once a frame, answered or not
        if e.reject_reason() != "store_failed" {
            state.metrics.reject(e.reject_reason());
        }
        tracing::debug!(camera = %camera, code = e.code, "frame refused");
    }
    result
}

async fn frame(req: &HttpRequest, camera: &str, payload: web::Payload, state: &AppState) -> Resp {
    let arrived = Instant::now();
    match state.auth.role_of(req)? {
        Role::Camera(own) if own == camera => {}
        Role::Camera(own) => {
            known_camera(state, camera)?;
            return Err(ApiError::forbidden(format!(
                "this key belongs to camera {own:?}, not {camera:?}"
            )));
        }
        _ => return Err(ApiError::forbidden("frames are posted with a camera's key")),
    }
    // Fairness first, before the body is read or a decode slot taken: a camera holding its
    // share of frames in flight is refused while the others go on (server/admission.rs).
    let mut ticket = state
        .admission
        .admit(camera)
        .map_err(|r| refusal(r, state))?;
    let limit = state.config.server.max_body_bytes;
    let kind = body_kind(req)?;
    // The whole body within body_timeout_s: a body trickled a byte at a time would otherwise
    // hold its connection (and the bytes so far) forever. actix's client_request_timeout
    // covers the headers only.
    let body_timeout = Duration::from_secs_f64(state.config.server.body_timeout_s);
    let read = async {
        match kind {
            BodyKind::Image => Ok((read_body(req, payload, limit).await?, None)),
            BodyKind::Multipart => read_multipart(req, payload, limit).await,
        }
    };
    let (body, q) = tokio::time::timeout(body_timeout, read)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "the request body did not arrive within server.body_timeout_s = {} s; send the frame in one go",
                    body_timeout.as_secs_f64()
                ),
            )
        })??;
    let (q, source) = match q {
        Some(q) => (q, "metadata field"),
        None => (
            web::Query::<FrameQuery>::from_query(req.query_string())
                .map(|q| q.into_inner())
                .unwrap_or_default(),
            "query parameter",
        ),
    };
    let meta = frame_meta(req, camera, q, source)?;
    if body.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty_body",
            "the request body is empty; post the image bytes",
        ));
    }
    if state.is_draining() {
        return Err(ApiError::unavailable("not_ready", "shutting down", 5));
    }
    if let Some(frame_id) = meta.frame_id.clone() {
        ticket.claim(&frame_id).map_err(|r| refusal(r, state))?;
        if let Some(first) = stored_frame(state, camera, &frame_id).await? {
            return Ok(HttpResponse::Ok()
                .insert_header(("X-Railscope-Replay", "true"))
                .json(views::inspection(&first)));
        }
    }
    // One snapshot: the frame is prepared and scored by the same model even across a reload.
    let model = state.model();
    let preparing = model.clone();
    let entry = state.cameras.get(camera);
    let roi = entry.and_then(|c| c.roi.clone());
    let search = entry.and_then(|c| c.search.clone());
    let id = format!("{camera}/{}", meta.frame_id.as_deref().unwrap_or("-"));
    let slot = decode_slot(state).await?;
    let (prepared, body) = web::block(move || {
        // Held until the decoded frame is prepared (even if the client has gone meanwhile).
        let _slot = slot;
        let input = ImageInput {
            id,
            bytes: &body,
            camera: None,
        };
        let p = match &roi {
            Some(r) => preparing.prepare_with(&input, true, r, search.as_deref()),
            None => preparing.prepare(&input, true),
        };
        (p, body)
    })
    .await
    .map_err(|e| ApiError::internal(format!("worker pool: {e}")))?;
    let prepared = prepared.map_err(|e| ApiError::from_frame_error(&e))?;
    state
        .metrics
        .observe_stage("preprocess", prepared.preprocess_ms / 1e3);

    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = FrameJob {
        meta,
        image_ext: image_ext(&body),
        image: body,
        preprocess_ms: prepared.preprocess_ms,
        prepared,
        model,
        arrived,
        enqueued: Instant::now(),
        reply: tx,
        hold: Box::new(ticket),
    };
    let Some(batcher) = state.batcher() else {
        return Err(ApiError::unavailable("not_ready", "shutting down", 5));
    };
    if let Err(why) = batcher.submit(job) {
        return Err(match why {
            SubmitError::QueueFull => ApiError::unavailable(
                "queue_full",
                format!(
                    "inspection queue is full ({} frames); retry shortly",
                    batcher.capacity()
                ),
                1,
            ),
            SubmitError::ShuttingDown => ApiError::unavailable("not_ready", "shutting down", 5),
        });
    }
    drop(batcher);
    let timeout = Duration::from_millis(state.config.batching.request_timeout_ms);
    match tokio::time::timeout(timeout, rx).await {
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!(
                "no verdict within {} ms; the frame is still inspected and stored",
                timeout.as_millis()
            ),
        )),
        Ok(Err(_)) => Err(ApiError::internal(
            "the inspection worker dropped the frame",
        )),
        Ok(Ok(Err(Failure::Inference(msg)))) => Err(ApiError::internal(msg)),
        Ok(Ok(Err(Failure::Store { message, full }))) => Err(if full {
            ApiError {
                retry_after: Some(60),
                ..ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "insufficient_storage",
                    format!("{message}; the verdict was not stored, retry once space is freed"),
                )
            }
        } else {
            ApiError::unavailable(
                "store_unavailable",
                format!("{message}; the verdict was not stored, retry shortly"),
                5,
            )
        }),
        Ok(Ok(Ok(answer))) => Ok(HttpResponse::Ok().json(views::answer(&answer))),
    }
}

fn refusal(r: Refusal, state: &AppState) -> ApiError {
    match r {
        Refusal::CameraBusy { limit } => ApiError::unavailable(
            "camera_busy",
            format!(
                "this camera already has {limit} frames in flight (batching.max_in_flight_per_camera, \
                 {} configured cameras share the queue); retry shortly",
                state.config.cameras.len()
            ),
            1,
        ),
        Refusal::FrameInFlight => ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::CONFLICT,
                "frame_in_flight",
                "a frame with this X-Frame-Id from this camera is being inspected now; retry shortly for its verdict",
            )
        },
    }
}

/// The verdict already stored for this camera's frame id within `server.frame_id_window_s`.
async fn stored_frame(
    state: &AppState,
    camera: &str,
    frame_id: &str,
) -> Result<Option<crate::store::Inspection>, ApiError> {
    let window = state.config.server.frame_id_window_s;
    if window <= 0.0 {
        return Ok(None);
    }
    let since = chrono::Utc::now().timestamp_millis() - (window * 1e3) as i64;
    let store = state.store.clone();
    let (camera, frame_id) = (camera.to_string(), frame_id.to_string());
    web::block(move || store.find_frame(&camera, &frame_id, since))
        .await
        .map_err(|e| ApiError::internal(format!("worker pool: {e}")))?
        .map_err(|e| ApiError::internal(format!("store: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Inspections and reviews
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct ListQuery {
    camera: Option<String>,
    verdict: Option<String>,
    review: Option<String>,
    since: Option<String>,
    until: Option<String>,
    track_id: Option<String>,
    min_position_m: Option<f64>,
    max_position_m: Option<f64>,
    min_score: Option<String>,
    limit: Option<usize>,
    before_id: Option<i64>,
}

pub(super) fn time_param(name: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    match v.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => parse_time(s)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("{name}: {s:?} is not an RFC 3339 time"))),
    }
}

pub(super) fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .map_err(|e| ApiError::bad_request(format!("query: {e}")))
}

async fn list_inspections(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req)?;
    let q: ListQuery = query(&req)?;
    let verdict =
        match q.verdict.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(v) => Some(Verdict::parse(v).ok_or_else(|| {
                ApiError::bad_request(format!("verdict: {v:?} (normal or defect)"))
            })?),
        };
    let review = match q.review.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(r) => Some(ReviewFilter::parse(r).ok_or_else(|| {
            ApiError::bad_request(format!(
                "review: {r:?} (unreviewed, reviewed, confirmed or false_alarm)"
            ))
        })?),
    };
    let min_score = match q.min_score.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(m) => Some(
            m.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("min_score: {m:?} is not a finite number"))
                })?,
        ),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let filter = InspectionFilter {
        camera: q.camera.filter(|s| !s.is_empty()),
        verdict,
        review,
        since_ms: time_param("since", &q.since)?,
        until_ms: time_param("until", &q.until)?,
        track_id: q.track_id.filter(|s| !s.is_empty()),
        min_position_m: q.min_position_m,
        max_position_m: q.max_position_m,
        min_score,
        before_id: q.before_id,
        limit,
    };
    let store = state.store.clone();
    let items = blocking(move || store.list(&filter)).await?;
    let next = (items.len() == limit)
        .then(|| items.last().map(|i| i.id))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({
        "items": items.iter().map(views::inspection).collect::<Vec<_>>(),
        "next_before_id": next,
    })))
}

pub(super) fn inspection_id(path: &web::Path<String>) -> Result<i64, ApiError> {
    path.parse::<i64>().map_err(|_| {
        ApiError::bad_request(format!("inspection id {:?} is not a number", path.as_str()))
    })
}

async fn get_inspection(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Resp {
    state.auth.reader(&req)?;
    let id = inspection_id(&path)?;
    let store = state.store.clone();
    match blocking(move || store.get(id)).await? {
        Some(i) => Ok(HttpResponse::Ok().json(views::inspection(&i))),
        None => Err(ApiError::not_found(format!("no inspection {id}"))),
    }
}

/// The files an inspection may keep.
#[derive(Debug, Clone, Copy)]
enum MediaKind {
    Image,
    Heatmap,
    Reconstruction,
}

async fn inspection_image(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Resp {
    inspection_media(req, path, state, MediaKind::Image).await
}

async fn inspection_heatmap(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Resp {
    inspection_media(req, path, state, MediaKind::Heatmap).await
}

async fn inspection_reconstruction(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Resp {
    inspection_media(req, path, state, MediaKind::Reconstruction).await
}

async fn inspection_media(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
    kind: MediaKind,
) -> Resp {
    state.auth.reader(&req)?;
    let id = inspection_id(&path)?;
    let store = state.store.clone();
    let found = blocking(move || match kind {
        MediaKind::Image => store.image(id),
        MediaKind::Heatmap => Ok(store.heatmap(id)?.map(|b| (b, "image/png"))),
        MediaKind::Reconstruction => Ok(store.reconstruction(id)?.map(|b| (b, "image/png"))),
    })
    .await?;
    match found {
        // A kept file never changes, so the browser may keep it too.
        Some((bytes, ct)) => Ok(HttpResponse::Ok()
            .content_type(ct)
            .insert_header((header::CACHE_CONTROL, "private, max-age=86400, immutable"))
            .body(bytes)),
        None => Err(ApiError::not_found(match kind {
            MediaKind::Image => format!(
                "inspection {id} has no kept image (normal frames are sampled, see storage.normal_image_interval_s)"
            ),
            MediaKind::Heatmap => format!("inspection {id} has no kept heatmap"),
            MediaKind::Reconstruction => format!("inspection {id} has no kept reconstruction"),
        })),
    }
}

// Reviews, the repair lifecycle and the defect list: server/defects.rs.

// ---------------------------------------------------------------------------------------------
// Cameras and calibration
// ---------------------------------------------------------------------------------------------

async fn cameras(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req)?;
    let now = chrono::Utc::now().timestamp_millis();
    let silent_ms = (state.config.server.silent_after_s * 1e3) as i64;
    let served = state.served();
    let mut out = Vec::new();
    for cam in &state.config.cameras {
        let live = state.board.get(&cam.id);
        let (cal, origin) = served
            .calibration(&cam.id)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        out.push(json!({
            "id": cam.id,
            "name": if cam.name.is_empty() { &cam.id } else { &cam.name },
            "frames": live.frames,
            "defects": live.defects,
            "defect_rate": if live.frames > 0 { live.defects as f64 / live.frames as f64 } else { 0.0 },
            "recent_fps": live.recent_fps(now),
            "last_frame_at": live.last_ms.map(rfc3339),
            "silent": live.last_ms.is_none_or(|t| now - t > silent_ms),
            "last_inspection_id": live.last_id,
            "last_image_inspection_id": live.last_image_id,
            "calibration": views::calibration(&cal, &origin, served.inspector.calibration_dir()),
        }));
    }
    Ok(HttpResponse::Ok().json(json!({ "cameras": out })))
}

fn known_camera(state: &AppState, camera: &str) -> Result<(), ApiError> {
    if state.cameras.contains_key(camera) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_camera",
            format!("camera {camera:?} is not configured"),
        ))
    }
}

#[derive(Debug, Deserialize)]
struct ProposalQuery {
    method: Option<String>,
    target_far: Option<f64>,
}

async fn calibration_proposal(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Resp {
    state.auth.reader(&req)?;
    let camera = path.into_inner();
    known_camera(&state, &camera)?;
    let q: ProposalQuery = query(&req)?;
    let method = match q.method.as_deref().unwrap_or("best_f1") {
        "best_f1" => ProposalMethod::BestF1,
        "false_alarm_rate" => {
            let t = q.target_far.unwrap_or(0.05);
            if !(0.0..1.0).contains(&t) {
                return Err(ApiError::bad_request("target_far must lie in [0, 1)"));
            }
            ProposalMethod::FalseAlarmRate(t)
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "method: {other:?} (best_f1 or false_alarm_rate)"
            )))
        }
    };
    let served = state.served();
    let (current, origin) = served
        .calibration(&camera)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let m = served.inspector.package().manifest.model.clone();
    let store = state.store.clone();
    let (cam, name, version) = (camera.clone(), m.name.clone(), m.version.clone());
    let reviews = blocking(move || store.reviewed_scores(&cam, &name, &version)).await?;
    let raw: Vec<(f64, ReviewState)> = reviews.iter().map(|r| (r.a, r.state)).collect();
    let p = propose(
        &raw,
        &current,
        method,
        state.config.calibration.min_reviews_per_class,
    );
    // The reviewed frames the effects are computed over, A′ under the calibration in force,
    // so that the dashboard's what-if counts exactly what the proposal counts.
    let reviewed: Vec<_> = reviews
        .iter()
        .map(|r| json!({"id": r.id, "A_norm": current.normalize(r.a), "state": r.state}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "camera": camera,
        "current": views::calibration(&current, &origin, served.inspector.calibration_dir()),
        "model": {"name": m.name, "version": m.version},
        "proposed": p.threshold.map(|t| json!({"threshold": t})),
        "method": p.method,
        "reviewed": {"confirmed": p.confirmed, "false_alarm": p.false_alarm},
        "min_reviews_per_class": p.min_reviews_per_class,
        "missed_confirmed": p.missed_confirmed,
        "reason": p.reason,
        "effect": {"current": p.current, "proposed": p.proposed},
        "message": p.message,
        "reviews": reviewed,
    })))
}

#[derive(Debug, Deserialize)]
struct ThresholdBody {
    threshold: f64,
    /// Why, for the audit (e.g. "best F1 proposal from 14 reviews").
    #[serde(default)]
    reason: Option<String>,
}

/// The largest threshold the dashboard may apply. A′ is min-max normalized against the
/// calibration set (0.0 = its minimum, 1.0 = its maximum), so a useful threshold lies near
/// (0, 1]; headroom up to 10 allows a deliberately insensitive camera, anything beyond is a
/// typo. A threshold ≤ 0 would flag every frame (A′ ≥ 0 for anything the calibration saw).
const MAX_APPLIED_THRESHOLD: f64 = 10.0;

/// Longest reason kept with an audit entry.
const MAX_REASON_CHARS: usize = 500;

fn check_applied_threshold(t: f64) -> Result<(), ApiError> {
    if t.is_finite() && t > 0.0 && t <= MAX_APPLIED_THRESHOLD {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "threshold: {t} is out of range; it must be a finite number with 0 < threshold <= {MAX_APPLIED_THRESHOLD} (A' is min-max normalized, 1.0 = the calibration maximum)"
        )))
    }
}

/// A threshold for one camera: it takes effect for the camera's next frame and outranks the
/// calibration files — across reloads and restarts — until it is cleared (DELETE). Stored in
/// SQLite with its audit entry, in one transaction.
async fn apply_calibration(
    req: HttpRequest,
    path: web::Path<String>,
    body: Bytes,
    state: web::Data<AppState>,
) -> Resp {
    let role = state.auth.admin(&req)?;
    let camera = path.into_inner();
    known_camera(&state, &camera)?;
    let b: ThresholdBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "body must be {{\"threshold\": <number>, \"reason\": <optional text>}}: {e}"
        ))
    })?;
    check_applied_threshold(b.threshold)?;
    let reason = b.reason.as_deref().map(str::trim).unwrap_or_default();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::bad_request(format!(
            "reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    let reason = if reason.is_empty() {
        "applied through the API (no reason given)".to_string()
    } else {
        reason.to_string()
    };
    let _one_at_a_time = state.calibration_lock().await;
    let served = state.served();
    let (current, old_origin) = served
        .calibration(&camera)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let norm = Normalization::new(current.min, current.max, b.threshold)
        .map_err(|e| ApiError::bad_request(format!("threshold: {e}")))?;
    let m = served.inspector.package().manifest.model.clone();
    let dir = served.inspector.calibration_dir().to_path_buf();
    let now = chrono::Utc::now().timestamp_millis();
    let by = role.name().to_string();
    let mut origin = CalibrationOrigin::Applied {
        by: by.clone(),
        at_ms: now,
        audit_id: 0,
    };
    let change = CalibrationChange {
        id: 0,
        at_ms: now,
        camera: camera.clone(),
        actor: by.clone(),
        action: "apply".into(),
        old_threshold: Some(current.threshold),
        new_threshold: norm.threshold,
        old_source: Some(old_origin.source(&dir)),
        new_source: origin.source(&dir),
        min: norm.min,
        max: norm.max,
        model_name: m.name.clone(),
        model_version: m.version.clone(),
        model_sha256: m.sha256.clone(),
        reason,
    };
    let applied = AppliedThreshold {
        camera: camera.clone(),
        model_name: m.name.clone(),
        model_sha256: m.sha256.clone(),
        min: norm.min,
        max: norm.max,
        threshold: norm.threshold,
        applied_ms: now,
        applied_by: by,
        audit_id: 0,
    };
    let store = state.store.clone();
    let audit_id =
        blocking(move || store.record_calibration_change(&change, &AppliedUpdate::Set(applied)))
            .await?;
    if let CalibrationOrigin::Applied { audit_id: id, .. } = &mut origin {
        *id = audit_id;
    }
    served
        .set(&camera, norm, origin.clone())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    tracing::info!(camera = %camera, old = current.threshold, threshold = norm.threshold, audit_id, "threshold applied");
    Ok(HttpResponse::Ok().json(views::calibration(&norm, &origin, &dir)))
}

/// Clears the threshold applied to a camera (for the model in service): the calibration files
/// apply again from its next frame. 404 when none is applied.
async fn clear_calibration(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Resp {
    let role = state.auth.admin(&req)?;
    let camera = path.into_inner();
    known_camera(&state, &camera)?;
    let _one_at_a_time = state.calibration_lock().await;
    let served = state.served();
    let (current, old_origin) = served
        .calibration(&camera)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let dir = served.inspector.calibration_dir().to_path_buf();
    if !matches!(old_origin, CalibrationOrigin::Applied { .. }) {
        return Err(ApiError::not_found(format!(
            "no threshold is applied to {camera} for the model in service; its calibration comes from {}",
            old_origin.source(&dir)
        )));
    }
    let (norm, origin) = {
        let served = served.clone();
        let cam = camera.clone();
        blocking(move || served.file_calibration(&cam)).await?
    };
    let m = served.inspector.package().manifest.model.clone();
    let change = CalibrationChange {
        id: 0,
        at_ms: chrono::Utc::now().timestamp_millis(),
        camera: camera.clone(),
        actor: role.name().to_string(),
        action: "clear".into(),
        old_threshold: Some(current.threshold),
        new_threshold: norm.threshold,
        old_source: Some(old_origin.source(&dir)),
        new_source: origin.source(&dir),
        min: norm.min,
        max: norm.max,
        model_name: m.name.clone(),
        model_version: m.version.clone(),
        model_sha256: m.sha256.clone(),
        reason: "applied threshold cleared: the calibration files apply again".into(),
    };
    let store = state.store.clone();
    let audit_id =
        blocking(move || store.record_calibration_change(&change, &AppliedUpdate::Clear)).await?;
    served
        .set(&camera, norm, origin.clone())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    tracing::info!(camera = %camera, old = current.threshold, threshold = norm.threshold, audit_id, "applied threshold cleared");
    Ok(HttpResponse::Ok().json(views::calibration(&norm, &origin, &dir)))
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    camera: Option<String>,
    before_id: Option<i64>,
    limit: Option<usize>,
}

/// The calibration audit, newest first: every threshold change with who, when, camera, old,
/// new, sources and why.
async fn calibration_audit(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req)?;
    let q: AuditQuery = query(&req)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let camera = q.camera.filter(|c| !c.is_empty());
    if let Some(c) = &camera {
        known_camera(&state, c)?;
    }
    let store = state.store.clone();
    let items =
        blocking(move || store.calibration_audit(camera.as_deref(), q.before_id, limit)).await?;
    let next = (items.len() == limit)
        .then(|| items.last().map(|c| c.id))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({
        "items": items.iter().map(views::calibration_change).collect::<Vec<_>>(),
        "next_before_id": next,
    })))
}

// ---------------------------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct StatsQuery {
    camera: Option<String>,
    since: Option<String>,
    bucket_s: Option<i64>,
    bucket_m: Option<f64>,
    bins: Option<usize>,
}

async fn trend(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req)?;
    let q: StatsQuery = query(&req)?;
    let bucket_s = q.bucket_s.unwrap_or(60).clamp(1, 86_400);
    let since = time_param("since", &q.since)?
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis() - 3_600_000);
    let store = state.store.clone();
    let camera = q.camera.filter(|s| !s.is_empty());
    let points = blocking(move || store.trend(camera.as_deref(), since, bucket_s * 1000)).await?;
    let mut series: Vec<serde_json::Value> = Vec::new();
    for p in points {
        let point =
            json!({"t": rfc3339(p.bucket_start_ms), "frames": p.frames, "defects": p.defects});
        match series.last_mut() {
            Some(s) if s["camera"] == p.camera.as_str() => s["points"]
                .as_array_mut()
                .expect("points array")
                .push(point),
            _ => series.push(json!({"camera": p.camera, "points": [point]})),
        }
    }
    Ok(HttpResponse::Ok().json(json!({"bucket_s": bucket_s, "series": series})))
}

async fn positions(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req)?;
    let q: StatsQuery = query(&req)?;
    let bucket_m = q.bucket_m.unwrap_or(100.0);
    if !(bucket_m.is_finite() && bucket_m > 0.0) {
        return Err(ApiError::bad_request("bucket_m must be a positive number"));
    }
    let store = state.store.clone();
    let camera = q.camera.filter(|s| !s.is_empty());
    let buckets = blocking(move || store.positions(camera.as_deref(), bucket_m)).await?;
    Ok(HttpResponse::Ok().json(json!({"bucket_m": bucket_m, "buckets": buckets})))
}

async fn scores(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req)?;
    let q: StatsQuery = query(&req)?;
    let bins = q.bins.unwrap_or(40).clamp(1, 200);
    let camera = q.camera.filter(|s| !s.is_empty());
    let threshold = state
        .model()
        .calibration_for(camera.as_deref())
        .map(|n| n.threshold)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let store = state.store.clone();
    let values = blocking(move || store.recent_scores(camera.as_deref(), 20_000)).await?;
    let hi = values.iter().map(|v| v.0).fold(1.0f64, f64::max).min(10.0);
    let width = hi / bins as f64;
    let mut counts = vec![(0u64, 0u64); bins];
    for (s, v) in &values {
        let k = ((s.max(0.0) / width) as usize).min(bins - 1);
        match v {
            Verdict::Normal => counts[k].0 += 1,
            Verdict::Defect => counts[k].1 += 1,
        }
    }
    let out: Vec<_> = counts
        .iter()
        .enumerate()
        .map(|(k, (n, d))| json!({"lo": k as f64 * width, "hi": (k + 1) as f64 * width, "normal": n, "defect": d}))
        .collect();
    Ok(HttpResponse::Ok()
        .json(json!({"bins": out, "threshold": threshold, "frames": values.len()})))
}

// ---------------------------------------------------------------------------------------------
// Live events
// ---------------------------------------------------------------------------------------------

async fn events(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req)?;
    let rx = state.events.subscribe();
    let stop = state.shutdown.subscribe();
    let keepalive = tokio::time::interval(Duration::from_secs(15));
    let stream = futures_util::stream::unfold(
        (rx, stop, keepalive),
        |(mut rx, mut stop, mut keepalive)| async move {
            loop {
                tokio::select! {
                    m = rx.recv() => match m {
                        Ok(chunk) => return Some((Ok::<_, actix_web::Error>(Bytes::from(chunk.to_string())), (rx, stop, keepalive))),
                        // A slow client skips what it missed rather than holding everyone back.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = stop.changed() => return None,
                    _ = keepalive.tick() => return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), (rx, stop, keepalive))),
                }
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

// ---------------------------------------------------------------------------------------------
// Sessions, admin, probes
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct LoginBody {
    token: String,
}

async fn login(body: Bytes, state: web::Data<AppState>) -> Resp {
    let b: LoginBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("body must be {{\"token\": \"…\"}}: {e}")))?;
    match state.auth.identify(&b.token) {
        Some(role) if role.can_read() => {
            let id = state
                .auth
                .start_session(role.clone())
                .map_err(|e| ApiError::internal(format!("session id: {e}")))?;
            let cookie = Cookie::build(COOKIE, id)
                .path("/")
                .http_only(true)
                .secure(state.config.server.secure_cookies)
                .same_site(actix_web::cookie::SameSite::Strict)
                .finish();
            Ok(HttpResponse::Ok()
                .cookie(cookie)
                .json(json!({"role": role.name()})))
        }
        // A camera key is refused exactly like an unknown token: the answer must not tell a
        // guesser that a string is some camera's key.
        Some(_) | None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "not an inspector or admin token",
        )),
    }
}

/// Ends the dashboard session (the token itself stays valid: it lives in the config).
async fn logout(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(id) = session_id(&req) {
        state.auth.end_session(&id);
    }
    let mut cookie = Cookie::build(COOKIE, "").path("/").finish();
    cookie.make_removal();
    HttpResponse::NoContent().cookie(cookie).finish()
}

async fn me(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    let role = state.auth.role_of(&req)?;
    Ok(HttpResponse::Ok().json(json!({"role": role.name()})))
}

async fn reload(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    let role = state.auth.admin(&req)?;
    let info = super::reload(state.into_inner(), role.name())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "reload_failed", e))?;
    Ok(HttpResponse::Ok().json(info))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AppState>) -> Resp {
    if state.is_draining() {
        return Err(ApiError::unavailable("not_ready", "shutting down", 5));
    }
    if !state.batcher().is_some_and(|b| b.workers_alive()) {
        return Err(ApiError::unavailable(
            "not_ready",
            "an inspection worker thread has stopped (see the service log)",
            5,
        ));
    }
    let store = state.store.clone();
    let writable = web::block(move || store.check_writable()).await;
    match writable {
        Ok(Ok(())) => {
            let m = state.model();
            Ok(HttpResponse::Ok().json(json!({
                "status": "ready",
                "model": {"name": m.package().name(), "version": m.package().manifest.model.version},
                "provider": m.provider(),
                "queue": {"depth": state.batcher().map(|b| b.depth()).unwrap_or(0), "capacity": state.config.batching.queue_capacity},
            })))
        }
        Ok(Err(e)) => Err(ApiError::unavailable(
            "not_ready",
            format!("store is not writable: {e}"),
            5,
        )),
        Err(e) => Err(ApiError::unavailable(
            "not_ready",
            format!("worker pool: {e}"),
            5,
        )),
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Some(b) = state.batcher() {
        state.metrics.queue_depth.set(b.depth() as i64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

//! `POST /v1/cameras/{camera}/frames`: a camera's frame in (raw image, multipart or JSON metadata),
//! admitted per camera, decoded under a bounded number of decode slots, queued for a batch, answered
//! with the stored verdict (an `X-Frame-Id` seen before answers its first verdict again).

use std::time::{Duration, Instant};

use actix_web::http::{header, StatusCode};
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;

use crate::pipeline::inspector::ImageInput;
use crate::service::batching::{Failure, FrameJob, SubmitError};
use crate::service::store::FrameMeta;

use super::calibration::known_camera;
use super::errors::{ApiError, Resp};
use super::params::{read_body, within_body_timeout};
use super::views::{self, parse_time};
use crate::service::admission::Refusal;
use crate::service::auth::Role;
use crate::service::AppState;

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

pub(super) async fn post_frame(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Resp {
    let camera = path.into_inner();
    let result = frame(&req, &camera, payload, &state).await;
    if let Err(e) = &result {
        if let Some(reason) = e.reject_reason() {
            state.metrics.reject(reason);
        }
        tracing::debug!(camera = %camera, code = e.code, "frame refused");
    }
    result
}

async fn frame(req: &HttpRequest, camera: &str, payload: web::Payload, state: &AppState) -> Resp {
    let arrived = Instant::now();
    match state.auth.caller(req).await?.role {
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
    let read = async {
        match kind {
            BodyKind::Image => Ok((
                read_body(req, payload, limit, "server.max_body_bytes").await?,
                None,
            )),
            BodyKind::Multipart => read_multipart(req, payload, limit).await,
        }
    };
    let (body, q) = within_body_timeout(state, read, "send the frame in one go").await?;
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
    // One snapshot: the frame is prepared and scored by its camera's model of this moment, even
    // across a reload.
    let model = state.served().model(camera).clone();
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
) -> Result<Option<crate::service::store::Inspection>, ApiError> {
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

//! `GET /v1/cameras` and a camera's calibration: the threshold proposal from reviews, apply,
//! clear and the audit trail (docs/scoring.md, "Calibration sources").

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::pipeline::scoring::Normalization;
use crate::service::recalibration::{propose, ProposalMethod};
use crate::service::store::{AppliedThreshold, AppliedUpdate, CalibrationChange, ReviewState};

use super::errors::{ApiError, Resp};
use super::params::{blocking, json_body, query};
use super::views::{self, rfc3339};
use crate::service::{AppState, CalibrationOrigin};

pub(super) async fn cameras(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let silent_ms = (state.config.server.silent_after_s * 1e3) as i64;
    let served = state.served();
    let mut out = Vec::new();
    for cam in &state.config.cameras {
        let live = state.board.get(&cam.id);
        let model = served.model(&cam.id);
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
            "calibration": views::calibration(&cal, &origin, model.calibration_dir()),
            "model": views::model_ref(model),
        }));
    }
    Ok(HttpResponse::Ok().json(json!({ "cameras": out })))
}

pub(super) fn known_camera(state: &AppState, camera: &str) -> Result<(), ApiError> {
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

pub(super) async fn calibration_proposal(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Resp {
    state.auth.reader(&req).await?;
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
    // only reviews of frames this camera's current model version judged
    let model = served.model(&camera);
    let m = model.package().manifest.model.clone();
    let store = state.store.clone();
    let (cam, name, version) = (camera.clone(), m.name, m.version);
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
        "current": views::calibration(&current, &origin, model.calibration_dir()),
        "model": views::model_ref(model),
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
pub(super) async fn apply_calibration(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Resp {
    let caller = state.auth.admin(&req).await?;
    let camera = path.into_inner();
    known_camera(&state, &camera)?;
    let b: ThresholdBody = json_body(
        &req,
        payload,
        &state,
        "{\"threshold\": <number>, \"reason\": <optional text>}",
    )
    .await?;
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
    let model = served.model(&camera);
    let m = model.package().manifest.model.clone();
    let dir = model.calibration_dir().to_path_buf();
    let now = chrono::Utc::now().timestamp_millis();
    let by = caller.who.clone();
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

/// Clears the threshold applied to a camera (for its model in service): the calibration files
/// apply again from its next frame. 404 when none is applied.
pub(super) async fn clear_calibration(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Resp {
    let caller = state.auth.admin(&req).await?;
    let camera = path.into_inner();
    known_camera(&state, &camera)?;
    let _one_at_a_time = state.calibration_lock().await;
    let served = state.served();
    let (current, old_origin) = served
        .calibration(&camera)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let model = served.model(&camera);
    let dir = model.calibration_dir().to_path_buf();
    if !matches!(old_origin, CalibrationOrigin::Applied { .. }) {
        return Err(ApiError::not_found(format!(
            "no threshold is applied to {camera} for its model in service; its calibration comes from {}",
            old_origin.source(&dir)
        )));
    }
    let (norm, origin) = {
        let served = served.clone();
        let cam = camera.clone();
        blocking(move || served.file_calibration(&cam)).await?
    };
    let m = &model.package().manifest.model;
    let change = CalibrationChange {
        id: 0,
        at_ms: chrono::Utc::now().timestamp_millis(),
        camera: camera.clone(),
        actor: caller.who.clone(),
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
pub(super) async fn calibration_audit(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req).await?;
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

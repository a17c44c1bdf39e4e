//! `GET /v1/summary?since=…`: the start-of-shift summary — per camera, what arrived since a
//! time (frames, defects, unreviewed, confirmed by severity, the track section seen) and the
//! camera's longer-run defect rate, so the dashboard can show a departure from normal.

use std::collections::BTreeMap;

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::errors::{ApiError, Resp};
use super::params::{blocking, query, time_param};
use super::views::rfc3339;
use crate::service::store::CameraSummary;
use crate::service::AppState;

/// Without `since`: the last 12 hours (a shift).
const DEFAULT_SINCE_MS: i64 = 12 * 3_600_000;
/// The baseline ("normal") rate: the last 7 days.
const BASELINE_MS: i64 = 7 * 86_400_000;

#[derive(Debug, Deserialize)]
struct SummaryQuery {
    since: Option<String>,
}

fn rate(defects: i64, frames: i64) -> f64 {
    if frames > 0 {
        defects as f64 / frames as f64
    } else {
        0.0
    }
}

pub(super) async fn summary(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req).await?;
    let q: SummaryQuery = query(&req)?;
    let now = chrono::Utc::now().timestamp_millis();
    let since = time_param("since", &q.since)?.unwrap_or(now - DEFAULT_SINCE_MS);
    if since > now + 86_400_000 {
        return Err(ApiError::bad_request("since: is in the future"));
    }
    let baseline_since = now - BASELINE_MS;
    let store = state.store.clone();
    let rows = blocking(move || store.summary(since, baseline_since)).await?;
    let mut by_camera: BTreeMap<String, CameraSummary> =
        rows.into_iter().map(|r| (r.camera.clone(), r)).collect();
    // The configured cameras first (in their order, zeros when quiet), then any other.
    let mut ordered: Vec<(String, CameraSummary)> = Vec::new();
    for cam in &state.config.cameras {
        let name = if cam.name.is_empty() {
            &cam.id
        } else {
            &cam.name
        };
        let s = by_camera.remove(&cam.id).unwrap_or_else(|| CameraSummary {
            camera: cam.id.clone(),
            ..Default::default()
        });
        ordered.push((name.clone(), s));
    }
    ordered.extend(by_camera.into_values().map(|s| (s.camera.clone(), s)));

    let mut totals_sev: BTreeMap<String, i64> = BTreeMap::new();
    let (mut frames, mut defects, mut unreviewed, mut unreviewed_since) = (0, 0, 0, 0);
    let cameras: Vec<_> = ordered
        .into_iter()
        .map(|(name, s)| {
            frames += s.frames;
            defects += s.defects;
            unreviewed += s.unreviewed;
            unreviewed_since += s.unreviewed_since;
            let mut sev = serde_json::Map::new();
            for (k, n) in &s.confirmed_by_severity {
                *totals_sev.entry(k.clone()).or_default() += n;
                sev.insert(k.clone(), json!(n));
            }
            json!({
                "camera": s.camera,
                "name": name,
                "frames": s.frames,
                "defects": s.defects,
                "defect_rate": rate(s.defects, s.frames),
                "unreviewed": s.unreviewed,
                "unreviewed_since": s.unreviewed_since,
                "confirmed_by_severity": sev,
                "baseline": {
                    "frames": s.baseline_frames,
                    "defects": s.baseline_defects,
                    "defect_rate": rate(s.baseline_defects, s.baseline_frames),
                },
                "tracks": s.tracks,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "since": rfc3339(since),
        "baseline_since": rfc3339(baseline_since),
        "now": rfc3339(now),
        "totals": {
            "frames": frames,
            "defects": defects,
            "unreviewed": unreviewed,
            "unreviewed_since": unreviewed_since,
            "confirmed_by_severity": totals_sev,
        },
        "cameras": cameras,
    })))
}

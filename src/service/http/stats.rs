//! `GET /v1/stats/{trend,positions,scores}`: verdict trends, defects along the track and the
//! score histogram.

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::pipeline::scoring::Verdict;

use super::errors::{ApiError, Resp};
use super::params::{blocking, query, time_param};
use super::views::rfc3339;
use crate::service::AppState;

#[derive(Debug, Deserialize)]
struct StatsQuery {
    camera: Option<String>,
    since: Option<String>,
    bucket_s: Option<i64>,
    bucket_m: Option<f64>,
    bins: Option<usize>,
}

pub(super) async fn trend(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req).await?;
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

pub(super) async fn positions(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req).await?;
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

pub(super) async fn scores(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req).await?;
    let q: StatsQuery = query(&req)?;
    let bins = q.bins.unwrap_or(40).clamp(1, 200);
    let camera = q.camera.filter(|s| !s.is_empty());
    let served = state.served();
    // a camera's threshold from its model; over all cameras, the service's model's default
    let model = camera
        .as_deref()
        .map_or(served.service_model(), |c| served.model(c));
    let threshold = model
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

//! What several resources share: request bodies read within a size and a time limit,
//! query-string parsing into a clear 400, times and ids from the request, and running blocking
//! work off the event loop.

use std::future::Future;
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::web;
use actix_web::HttpRequest;
use futures_util::StreamExt;

use serde::Deserialize;

use super::errors::ApiError;
use super::views::parse_time;
use crate::pipeline::scoring::Verdict;
use crate::service::store::{InspectionFilter, ReviewFilter};
use crate::service::AppState;

/// The largest body of a JSON endpoint (login, review, lifecycle, calibration).
pub(super) const JSON_BODY_LIMIT: usize = 256 * 1024;

/// A request body of at most `limit` bytes (`setting` names the limit in the 413), refused from
/// its Content-Length when that already says too much.
pub(super) async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    setting: &str,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {setting} = {limit} bytes"),
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
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `read` (a body) within `server.body_timeout_s` of the headers, else 408 `timeout`: a body
/// trickled a byte at a time would otherwise hold its connection, and the bytes so far, forever
/// (actix's client_request_timeout covers the headers only).
pub(super) async fn within_body_timeout<T>(
    state: &AppState,
    read: impl Future<Output = Result<T, ApiError>>,
    advice: &str,
) -> Result<T, ApiError> {
    let limit = Duration::from_secs_f64(state.config.server.body_timeout_s);
    tokio::time::timeout(limit, read).await.map_err(|_| {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the request body did not arrive within server.body_timeout_s = {} s; {advice}",
                limit.as_secs_f64()
            ),
        )
    })?
}

/// The JSON body of a request, parsed: at most [`JSON_BODY_LIMIT`] bytes, within
/// `server.body_timeout_s`, else a 400 that shows the expected `shape`.
pub(super) async fn json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    shape: &str,
) -> Result<T, ApiError> {
    let read = read_body(req, payload, JSON_BODY_LIMIT, "the JSON body limit");
    let body = within_body_timeout(state, read, "send the body in one go").await?;
    // Only JSON: a cross-site form can post text/plain or form data without a preflight, never
    // application/json (CSRF protection beside the Origin check in `service::harden`).
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if media.as_deref() != Some("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "the body must be sent as Content-Type: application/json, not {}",
                media.map_or("none".into(), |m| format!("{m:?}"))
            ),
        ));
    }
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("body must be {shape}: {e}")))
}

/// Runs blocking work (SQLite, files, ONNX loading) off the event loop.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker pool: {e}")))?
        .map_err(|e| ApiError::internal(e.to_string()))
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

pub(super) fn inspection_id(path: &web::Path<String>) -> Result<i64, ApiError> {
    path.parse::<i64>().map_err(|_| {
        ApiError::bad_request(format!("inspection id {:?} is not a number", path.as_str()))
    })
}

/// The conditions of an inspection filter as a client sends them: the list's query string
/// (`GET /v1/inspections`) and, as JSON, a bulk review's `filter` (`POST /v1/review-batches`),
/// where a name it does not know is refused rather than ignored (a misspelt condition would
/// otherwise widen the selection).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FilterFields {
    pub camera: Option<String>,
    pub verdict: Option<String>,
    pub review: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub track_id: Option<String>,
    pub min_position_m: Option<f64>,
    pub max_position_m: Option<f64>,
    pub min_score: Option<f64>,
    pub max_id: Option<i64>,
}

fn finite(name: &str, v: Option<f64>) -> Result<Option<f64>, ApiError> {
    match v {
        Some(x) if !x.is_finite() => Err(ApiError::bad_request(format!(
            "{name}: not a finite number"
        ))),
        other => Ok(other),
    }
}

/// The [`InspectionFilter`] of `f` (no paging, limit 0), each value checked into a clear 400;
/// empty strings are the same as leaving a condition out.
pub(super) fn inspection_filter(f: FilterFields) -> Result<InspectionFilter, ApiError> {
    let given = |v: Option<String>| v.filter(|s| !s.is_empty());
    let verdict =
        match given(f.verdict) {
            None => None,
            Some(v) => Some(Verdict::parse(&v).ok_or_else(|| {
                ApiError::bad_request(format!("verdict: {v:?} (normal or defect)"))
            })?),
        };
    let review = match given(f.review) {
        None => None,
        Some(r) => Some(ReviewFilter::parse(&r).ok_or_else(|| {
            ApiError::bad_request(format!(
                "review: {r:?} (unreviewed, reviewed, confirmed or false_alarm)"
            ))
        })?),
    };
    Ok(InspectionFilter {
        camera: given(f.camera),
        verdict,
        review,
        since_ms: time_param("since", &f.since)?,
        until_ms: time_param("until", &f.until)?,
        track_id: given(f.track_id),
        min_position_m: finite("min_position_m", f.min_position_m)?,
        max_position_m: finite("max_position_m", f.max_position_m)?,
        min_score: finite("min_score", f.min_score)?,
        max_id: f.max_id,
        ..Default::default()
    })
}

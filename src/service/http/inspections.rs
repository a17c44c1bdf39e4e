//! `GET /v1/inspections[/{id}[/image|/heatmap|/reconstruction]]`: stored verdicts and their media.

use actix_web::http::header;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::pipeline::scoring::Verdict;
use crate::service::store::{InspectionFilter, ReviewFilter};

use super::errors::{ApiError, Resp};
use super::params::{blocking, inspection_id, query, time_param};
use super::views;
use crate::service::AppState;

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

pub(super) async fn list_inspections(req: HttpRequest, state: web::Data<AppState>) -> Resp {
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

pub(super) async fn get_inspection(
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

pub(super) async fn inspection_image(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Resp {
    inspection_media(req, path, state, MediaKind::Image).await
}

pub(super) async fn inspection_heatmap(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Resp {
    inspection_media(req, path, state, MediaKind::Heatmap).await
}

pub(super) async fn inspection_reconstruction(
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

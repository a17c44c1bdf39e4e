//! `GET /v1/inspections[/{id}[/image|/heatmap|/reconstruction]]`: stored verdicts and their media.

use actix_web::http::header;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::service::store::{Cursor, InspectionFilter, ListOrder};

use super::errors::{ApiError, Resp};
use super::params::{blocking, inspection_filter, inspection_id, query, FilterFields};
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
    max_id: Option<i64>,
    sort: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
    before_id: Option<i64>,
}

/// A cursor as `next_cursor` writes it: `<id>` newest first; `<A_norm>:<id>` by score
/// (`null:<id>` for an inspection without an A_norm). The score is written exactly (Rust's
/// shortest round-trip form), so the next page starts exactly after the last item.
fn cursor_text(c: Cursor) -> String {
    match c {
        Cursor::Id(id) => id.to_string(),
        Cursor::Score { score: Some(s), id } => format!("{s:?}:{id}"),
        Cursor::Score { score: None, id } => format!("null:{id}"),
    }
}

fn parse_cursor(order: ListOrder, text: &str) -> Result<Cursor, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "cursor: {text:?} is not a cursor of sort={}; pass the previous page's next_cursor",
            match order {
                ListOrder::Newest => "newest",
                ListOrder::Score => "score",
            }
        ))
    };
    match order {
        ListOrder::Newest => text.parse::<i64>().map(Cursor::Id).map_err(|_| bad()),
        ListOrder::Score => {
            let (score, id) = text.split_once(':').ok_or_else(bad)?;
            let id = id.parse::<i64>().map_err(|_| bad())?;
            let score = match score {
                "null" => None,
                s => Some(
                    s.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite())
                        .ok_or_else(bad)?,
                ),
            };
            Ok(Cursor::Score { score, id })
        }
    }
}

/// `GET /v1/inspections`: newest first (`sort=newest`, paged by `before_id` or `cursor`) or
/// highest A′ first (`sort=score`, paged by `cursor`), with `total`, the number of inspections
/// the filter matches (the same conditions a bulk review of this filter selects).
pub(super) async fn list_inspections(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req).await?;
    let q: ListQuery = query(&req)?;
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
    let order = match q.sort.as_deref().filter(|s| !s.is_empty()) {
        None | Some("newest") => ListOrder::Newest,
        Some("score") => ListOrder::Score,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "sort: {other:?} (newest or score)"
            )))
        }
    };
    let after = match q.cursor.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(c) => Some(parse_cursor(order, c)?),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let filter = InspectionFilter {
        before_id: q.before_id,
        after,
        order,
        limit,
        ..inspection_filter(FilterFields {
            camera: q.camera,
            verdict: q.verdict,
            review: q.review,
            since: q.since,
            until: q.until,
            track_id: q.track_id,
            min_position_m: q.min_position_m,
            max_position_m: q.max_position_m,
            min_score,
            max_id: q.max_id,
        })?
    };
    let store = state.store.clone();
    let (items, total) = blocking(move || store.list_counted(&filter)).await?;
    let last = (items.len() == limit).then(|| items.last()).flatten();
    Ok(HttpResponse::Ok().json(json!({
        "items": items.iter().map(views::inspection).collect::<Vec<_>>(),
        "next_before_id": last.filter(|_| order == ListOrder::Newest).map(|i| i.id),
        "next_cursor": last.map(|i| cursor_text(Cursor::after(order, i))),
        "total": total,
    })))
}

pub(super) async fn get_inspection(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Resp {
    state.auth.reader(&req).await?;
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
    state.auth.reader(&req).await?;
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

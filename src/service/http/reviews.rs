//! Reviews: one inspection's review with the defect catalogue (`POST /v1/inspections/{id}/review`),
//! bulk reviews of a selection and their undo (`/v1/review-batches`), the repair lifecycle of a
//! confirmed defect, an inspection's history and the catalogue itself.

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::service::store::{
    BulkOutcome, BulkReview, DefectDetails, HistoryEntry, LifecycleEntry, LifecycleOutcome,
    LifecycleState, RailSide, Review, ReviewState, Selection, UndoOutcome, DEFECT_TYPES,
};

use super::defects::type_label;
use super::errors::{ApiError, Resp};
use super::params::{blocking, inspection_filter, inspection_id, json_body, FilterFields};
use super::views::{self, rfc3339};
use crate::service::AppState;

/// The largest sleeper number accepted (a sleeper every 0.6 m over 600 km).
const MAX_SLEEPER: i64 = 1_000_000;

#[derive(Debug, Deserialize)]
struct ReviewBody {
    state: String,
    #[serde(default)]
    note: String,
    #[serde(default, rename = "type")]
    defect_type: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    rail_side: Option<String>,
    #[serde(default)]
    sleeper: Option<i64>,
}

/// The defect details of a review body, checked against the catalogue and the configured
/// severities; a false alarm has none.
fn defect_details(
    b: &ReviewBody,
    state: ReviewState,
    severities: &[String],
) -> Result<DefectDetails, ApiError> {
    let given = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    let d = DefectDetails {
        defect_type: given(&b.defect_type),
        severity: given(&b.severity),
        rail_side: match given(&b.rail_side) {
            None => None,
            Some(s) => Some(RailSide::parse(&s).ok_or_else(|| {
                ApiError::bad_request(format!("rail_side: {s:?} (left or right)"))
            })?),
        },
        sleeper: b.sleeper,
    };
    if state == ReviewState::FalseAlarm {
        if d != DefectDetails::default() {
            return Err(ApiError::bad_request(
                "type, severity, rail_side and sleeper describe a confirmed defect; a false alarm has none",
            ));
        }
        return Ok(d);
    }
    if let Some(t) = &d.defect_type {
        if !DEFECT_TYPES.contains(&t.as_str()) {
            return Err(ApiError::bad_request(format!(
                "type: {t:?} is not in the defect catalogue ({})",
                DEFECT_TYPES.join(", ")
            )));
        }
    }
    if let Some(s) = &d.severity {
        if !severities.iter().any(|x| x == s) {
            return Err(ApiError::bad_request(format!(
                "severity: {s:?} is not a configured severity ({})",
                severities.join(", ")
            )));
        }
    }
    if let Some(n) = d.sleeper {
        if !(0..=MAX_SLEEPER).contains(&n) {
            return Err(ApiError::bad_request(format!(
                "sleeper: {n} (a sleeper number from 0 to {MAX_SLEEPER})"
            )));
        }
    }
    Ok(d)
}

/// The review a body asks for, by `who`, now: state, note (at most 2000 characters) and the
/// defect details, each checked.
fn review_of(b: ReviewBody, who: &str, severities: &[String]) -> Result<Review, ApiError> {
    let review_state = match b.state.as_str() {
        "confirmed" => ReviewState::Confirmed,
        "false_alarm" => ReviewState::FalseAlarm,
        other => {
            return Err(ApiError::bad_request(format!(
                "state: {other:?} (confirmed or false_alarm)"
            )))
        }
    };
    if b.note.len() > 2000 {
        return Err(ApiError::bad_request("note is longer than 2000 characters"));
    }
    let defect = defect_details(&b, review_state, severities)?;
    Ok(Review {
        state: review_state,
        note: b.note,
        reviewer: who.to_string(),
        reviewed_ms: chrono::Utc::now().timestamp_millis(),
        defect,
        lifecycle: None,
    })
}

/// `POST /v1/inspections/{id}/review`: confirm (with type, severity, rail side, sleeper) or
/// mark a false alarm. Every review is kept in the history; the inspection shows the latest.
pub async fn review(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Resp {
    let caller = state.auth.reader(&req).await?;
    let id = inspection_id(&path)?;
    let b: ReviewBody = json_body(&req, payload, &state, "{\"state\": \"confirmed\"|\"false_alarm\", \"note\": \"…\", \"type\": \"…\", \"severity\": \"…\", \"rail_side\": \"left\"|\"right\", \"sleeper\": 17}").await?;
    let r = review_of(b, &caller.who, &state.config.review.severities)?;
    let review_state = r.state;
    let store = state.store.clone();
    let updated = blocking(move || store.review(id, &r))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no inspection {id}")))?;
    state
        .metrics
        .reviews
        .with_label_values(&[updated.meta.camera.as_str(), review_state.as_str()])
        .inc();
    let v = views::inspection(&updated);
    state.publish("review", &v);
    Ok(HttpResponse::Ok().json(v))
}

// ---------------------------------------------------------------------------------------------
// Bulk review (triage) and its undo
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    #[serde(default)]
    ids: Option<Vec<i64>>,
    #[serde(default)]
    filter: Option<FilterFields>,
    #[serde(default)]
    expected_count: Option<i64>,
    state: String,
    #[serde(default)]
    note: String,
    #[serde(default, rename = "type")]
    defect_type: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    rail_side: Option<String>,
    #[serde(default)]
    sleeper: Option<i64>,
}

fn unprocessable(code: &'static str, message: String) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
        code,
        message,
    )
}

fn conflict(code: &'static str, message: String) -> ApiError {
    ApiError::new(actix_web::http::StatusCode::CONFLICT, code, message)
}

/// `POST /v1/review-batches`: one review (confirmed or false alarm, with a note and, for a
/// confirmation, the defect details) applied to explicit `ids` or to every inspection a
/// `filter` matches (the conditions of `GET /v1/inspections`), at most `review.max_bulk` of
/// them, in one transaction; each review is kept in the history with the batch's id. With
/// `expected_count` (the number the inspector confirmed), a selection of any other size is
/// refused (409 `count_changed`) and nothing is written.
pub async fn create_review_batch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Resp {
    let caller = state.auth.reader(&req).await?;
    let b: BulkBody = json_body(
        &req,
        payload,
        &state,
        "{\"filter\": {\"verdict\": \"defect\", \"review\": \"unreviewed\", …} or \"ids\": [17, 18], \"expected_count\": 2, \"state\": \"confirmed\"|\"false_alarm\", \"note\": \"…\"}",
    )
    .await?;
    let max = state.config.review.max_bulk;
    let too_many = |n: i64| {
        unprocessable(
            "too_many",
            format!(
                "the selection has {n} inspections; a bulk review takes at most {max} \
                 (review.max_bulk): narrow the filter"
            ),
        )
    };
    let (selection, selection_json) = match (b.ids, b.filter) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::bad_request(
                "give either ids (a list of inspection ids) or filter (the conditions of GET /v1/inspections), not both",
            ))
        }
        (Some(ids), None) => {
            if ids.is_empty() {
                return Err(ApiError::bad_request("ids is empty"));
            }
            if ids.len() > max {
                return Err(too_many(ids.len() as i64));
            }
            let described = json!({ "ids": ids });
            (Selection::Ids(ids), described)
        }
        (None, Some(f)) => {
            let described = json!({ "filter": {
                "camera": f.camera, "verdict": f.verdict, "review": f.review, "since": f.since,
                "until": f.until, "track_id": f.track_id, "min_position_m": f.min_position_m,
                "max_position_m": f.max_position_m, "min_score": f.min_score, "max_id": f.max_id,
            }});
            (Selection::Filter(inspection_filter(f)?), described)
        }
    };
    if b.expected_count.is_some_and(|n| n < 1) {
        return Err(ApiError::bad_request("expected_count: at least 1"));
    }
    let review = review_of(
        ReviewBody {
            state: b.state,
            note: b.note,
            defect_type: b.defect_type,
            severity: b.severity,
            rail_side: b.rail_side,
            sleeper: b.sleeper,
        },
        &caller.who,
        &state.config.review.severities,
    )?;
    let bulk = BulkReview {
        selection,
        review,
        expected_count: b.expected_count,
        max,
        selection_json: selection_json.to_string(),
    };
    let store = state.store.clone();
    match blocking(move || store.review_bulk(&bulk)).await? {
        BulkOutcome::Applied(batch) => {
            for item in &batch.items {
                state
                    .metrics
                    .reviews
                    .with_label_values(&[item.camera.as_str(), batch.review.state.as_str()])
                    .inc();
            }
            let v = views::review_batch(&batch);
            state.publish("review_batch", &views::review_batch_event(&batch));
            Ok(HttpResponse::Ok().json(v))
        }
        BulkOutcome::Empty => Err(unprocessable(
            "empty_selection",
            "no inspection matches the selection; nothing was reviewed".into(),
        )),
        BulkOutcome::TooMany { matched } => Err(too_many(matched)),
        BulkOutcome::CountChanged { expected, matched } => Err(conflict(
            "count_changed",
            format!(
                "the selection has {matched} inspections now, not the {expected} expected; \
                 nothing was reviewed: count again and confirm that number"
            ),
        )),
        BulkOutcome::Unknown(ids) => {
            let shown: Vec<String> = ids.iter().take(20).map(i64::to_string).collect();
            Err(ApiError::not_found(format!(
                "no inspection {}{}; nothing was reviewed",
                shown.join(", "),
                if ids.len() > shown.len() { ", …" } else { "" }
            )))
        }
    }
}

fn batch_id(path: &web::Path<String>) -> Result<i64, ApiError> {
    path.parse::<i64>().map_err(|_| {
        ApiError::bad_request(format!(
            "review batch id {:?} is not a number",
            path.as_str()
        ))
    })
}

/// `GET /v1/review-batches/{id}`: a bulk review, its inspections and its undo.
pub async fn get_review_batch(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Resp {
    state.auth.reader(&req).await?;
    let id = batch_id(&path)?;
    let store = state.store.clone();
    match blocking(move || store.review_batch(id)).await? {
        Some(b) => Ok(HttpResponse::Ok().json(views::review_batch(&b))),
        None => Err(ApiError::not_found(format!("no review batch {id}"))),
    }
}

/// `POST /v1/review-batches/{id}/undo`: every inspection of the bulk review back to the review
/// state it had before (a new history entry each, nothing deleted), except those reviewed
/// again since (listed as skipped); once (409 `already_undone` after).
pub async fn undo_review_batch(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Resp {
    let caller = state.auth.reader(&req).await?;
    let id = batch_id(&path)?;
    let by = caller.who.clone();
    let at_ms = chrono::Utc::now().timestamp_millis();
    let store = state.store.clone();
    match blocking(move || store.undo_review_batch(id, &by, at_ms)).await? {
        UndoOutcome::Undone(b) => {
            state.publish("review_batch", &views::review_batch_event(&b));
            Ok(HttpResponse::Ok().json(views::review_batch(&b)))
        }
        UndoOutcome::NoBatch => Err(ApiError::not_found(format!("no review batch {id}"))),
        UndoOutcome::AlreadyUndone(b) => {
            let (by, at) = b.undone.clone().unwrap_or_default();
            Err(conflict(
                "already_undone",
                format!(
                    "review batch {id} was undone by {by} at {}; nothing was changed",
                    rfc3339(at)
                ),
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
struct LifecycleBody {
    state: String,
    #[serde(default)]
    note: String,
}

/// `POST /v1/inspections/{id}/lifecycle`: moves a confirmed defect's repair on (open →
/// repair_ordered → repaired; an order may be cancelled back to open; repaired is final).
pub async fn lifecycle(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Resp {
    let caller = state.auth.reader(&req).await?;
    let id = inspection_id(&path)?;
    let b: LifecycleBody = json_body(
        &req,
        payload,
        &state,
        "{\"state\": \"open\"|\"repair_ordered\"|\"repaired\", \"note\": \"…\"}",
    )
    .await?;
    let to = LifecycleState::parse(&b.state).ok_or_else(|| {
        ApiError::bad_request(format!(
            "state: {:?} (open, repair_ordered or repaired)",
            b.state
        ))
    })?;
    if b.note.len() > 2000 {
        return Err(ApiError::bad_request("note is longer than 2000 characters"));
    }
    let entry = LifecycleEntry {
        state: to,
        by: caller.who.clone(),
        at_ms: chrono::Utc::now().timestamp_millis(),
        note: b.note,
    };
    let store = state.store.clone();
    match blocking(move || store.set_lifecycle(id, &entry)).await? {
        LifecycleOutcome::Changed(i) => {
            let v = views::inspection(&i);
            state.publish("review", &v);
            Ok(HttpResponse::Ok().json(v))
        }
        LifecycleOutcome::NoInspection => Err(ApiError::not_found(format!("no inspection {id}"))),
        LifecycleOutcome::NotConfirmed => Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "not_confirmed",
            format!(
                "inspection {id} is not a confirmed defect: confirm it before ordering its repair"
            ),
        )),
        LifecycleOutcome::Refused(from) => Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "invalid_transition",
            format!(
                "inspection {id} is {}; it cannot become {} (allowed: {})",
                from.as_str(),
                to.as_str(),
                allowed_moves(from)
            ),
        )),
    }
}

fn allowed_moves(from: LifecycleState) -> String {
    let next: Vec<&str> = LifecycleState::ALL
        .into_iter()
        .filter(|t| from.can_become(*t))
        .map(LifecycleState::as_str)
        .collect();
    if next.is_empty() {
        "none, it is final".into()
    } else {
        next.join(", ")
    }
}

/// `GET /v1/inspections/{id}/history`: every review and lifecycle change, oldest first.
pub async fn history(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Resp {
    state.auth.reader(&req).await?;
    let id = inspection_id(&path)?;
    let store = state.store.clone();
    let entries = blocking(move || store.history(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no inspection {id}")))?;
    let items: Vec<Value> = entries
        .iter()
        .map(|e| match e {
            HistoryEntry::Review(r) => {
                let mut v = views::review(r);
                v["kind"] = json!("review");
                v["at"] = json!(rfc3339(r.reviewed_ms));
                v
            }
            HistoryEntry::BatchReview { batch_id, review } => {
                let mut v = views::review(review);
                v["kind"] = json!("review");
                v["at"] = json!(rfc3339(review.reviewed_ms));
                v["batch_id"] = json!(batch_id);
                v
            }
            HistoryEntry::Undo {
                batch_id,
                by,
                at_ms,
                restored,
            } => {
                let mut v = match restored {
                    Some(r) => views::review(r),
                    None => json!({"state": "unreviewed"}),
                };
                v["kind"] = json!("undo");
                v["at"] = json!(rfc3339(*at_ms));
                v["by"] = json!(by);
                v["batch_id"] = json!(batch_id);
                v
            }
            HistoryEntry::Lifecycle { from, entry } => json!({
                "kind": "lifecycle",
                "at": rfc3339(entry.at_ms),
                "from": from.map(LifecycleState::as_str),
                "state": entry.state.as_str(),
                "by": entry.by,
                "note": entry.note,
            }),
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"inspection_id": id, "items": items})))
}

/// `GET /v1/defects/catalogue`: what a confirmation may record.
pub async fn catalogue(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req).await?;
    Ok(HttpResponse::Ok().json(json!({
        "types": DEFECT_TYPES.iter().map(|t| json!({"id": t, "label": type_label(t)})).collect::<Vec<_>>(),
        "severities": state.config.review.severities,
        "rail_sides": ["left", "right"],
        "lifecycle_states": LifecycleState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "max_bulk": state.config.review.max_bulk,
    })))
}

//! The JSON shapes of the API (docs/api.yaml): one function an object, so the REST answers and
//! the live events can never disagree.

use std::path::Path;

use serde_json::{json, Value};

use crate::pipeline::inspector::Inspector;
use crate::pipeline::scoring::Normalization;
use crate::service::batching::Answer;
use crate::service::store::{CalibrationChange, Inspection, Review, ReviewBatch, UndoResult};

use crate::service::{CalibrationOrigin, Served};

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

pub fn inspection(i: &Inspection) -> Value {
    let crops: Value = serde_json::from_str(&i.crops_json).unwrap_or(Value::Array(vec![]));
    let partial_slots: Value =
        serde_json::from_str(&i.partial_slots_json).unwrap_or(Value::Array(vec![]));
    json!({
        "id": i.id,
        "camera": i.meta.camera,
        "frame_id": i.meta.frame_id,
        "capture_time": i.meta.capture_ms.map(rfc3339),
        "received_at": rfc3339(i.meta.received_ms),
        "track_id": i.meta.track_id,
        "position_m": i.meta.position_m,
        "speed_kmh": i.meta.speed_kmh,
        "R": i.r,
        "L": i.l,
        "A": i.a,
        "A_norm": i.a_norm,
        "threshold": i.threshold,
        "verdict": i.verdict,
        "model": {"name": i.model_name, "version": i.model_version},
        "provider": i.provider,
        "crops": crops,
        "partial_slots": partial_slots,
        "note": i.note,
        "image_url": i.has_image.then(|| format!("/v1/inspections/{}/image", i.id)),
        "heatmap_url": i.has_heatmap.then(|| format!("/v1/inspections/{}/heatmap", i.id)),
        "reconstruction_url": i
            .has_reconstruction
            .then(|| format!("/v1/inspections/{}/reconstruction", i.id)),
        "review": i.review.as_ref().map(review),
    })
}

/// A review: the decision, the confirmed defect's type, severity, rail side and sleeper, and
/// where its repair stands (`lifecycle`, null for a false alarm).
pub fn review(r: &Review) -> Value {
    json!({
        "state": r.state,
        "note": r.note,
        "reviewer": r.reviewer,
        "reviewed_at": rfc3339(r.reviewed_ms),
        "type": r.defect.defect_type,
        "severity": r.defect.severity,
        "rail_side": r.defect.rail_side.map(|s| s.as_str()),
        "sleeper": r.defect.sleeper,
        "lifecycle": r.lifecycle.as_ref().map(|l| json!({
            "state": l.state.as_str(),
            "by": l.by,
            "at": rfc3339(l.at_ms),
            "note": l.note,
        })),
    })
}

/// A bulk review (`ReviewBatch` in docs/api.yaml): the review it wrote, what was asked
/// (`selection`), each inspection with the review state it had before, and its undo (who, when,
/// which inspections were restored and which were skipped, with why).
pub fn review_batch(b: &ReviewBatch) -> Value {
    let r = &b.review;
    let undone = b.undone.as_ref().map(|(by, at)| {
        let with = |want: UndoResult| {
            b.items
                .iter()
                .filter(move |i| i.undo == Some(want))
                .map(|i| i.inspection_id)
        };
        json!({
            "by": by,
            "at": rfc3339(*at),
            "restored": with(UndoResult::Restored).collect::<Vec<_>>(),
            "skipped": with(UndoResult::Skipped)
                .map(|id| json!({"id": id, "reason": "reviewed again since the bulk review"}))
                .collect::<Vec<_>>(),
        })
    });
    json!({
        "id": b.id,
        "at": rfc3339(r.reviewed_ms),
        "reviewer": r.reviewer,
        "state": r.state,
        "note": r.note,
        "type": r.defect.defect_type,
        "severity": r.defect.severity,
        "rail_side": r.defect.rail_side.map(|s| s.as_str()),
        "sleeper": r.defect.sleeper,
        "selection": serde_json::from_str::<Value>(&b.selection_json).unwrap_or(Value::Null),
        "count": b.items.len(),
        "items": b.items.iter().map(|i| json!({
            "id": i.inspection_id,
            "camera": i.camera,
            "previous": i.previous.map(|s| s.as_str()).unwrap_or("unreviewed"),
            "undo": i.undo.map(UndoResult::as_str),
        })).collect::<Vec<_>>(),
        "undone": undone,
    })
}

/// The live event of a bulk review or its undo (`event: review_batch`): small, whatever the
/// batch's size; dashboards read the lists and counts again.
pub fn review_batch_event(b: &ReviewBatch) -> Value {
    json!({
        "id": b.id,
        "state": b.review.state,
        "count": b.items.len(),
        "undone": b.undone.is_some(),
    })
}

/// A model package as the answers name it (`ModelRef`): name and version.
pub fn model_ref(m: &Inspector) -> Value {
    json!({"name": m.package().name(), "version": m.package().manifest.model.version})
}

/// Every model in service (`ServedModel`), the service's own first: name, version, execution
/// provider and the cameras it judges.
pub fn served_models(s: &Served) -> Value {
    s.models()
        .into_iter()
        .map(|(m, cameras)| {
            let mut v = model_ref(m);
            v["provider"] = json!(m.provider());
            v["cameras"] = json!(cameras);
            v
        })
        .collect()
}

/// The answer to a posted frame: the stored inspection plus where the time went.
pub fn answer(a: &Answer) -> Value {
    let mut v = inspection(&a.inspection);
    v["timings_ms"] = json!(a.timings);
    v
}

/// A camera's calibration in force: bounds, threshold, and where it comes from (`origin`:
/// `applied`, `config`, `camera_file` or `default`; `source` in words or as a file; `applied`:
/// who applied it, when, and its audit entry, for an applied threshold).
pub fn calibration(n: &Normalization, origin: &CalibrationOrigin, calibration_dir: &Path) -> Value {
    let applied = match origin {
        CalibrationOrigin::Applied {
            by,
            at_ms,
            audit_id,
        } => json!({"by": by, "at": rfc3339(*at_ms), "audit_id": audit_id}),
        _ => Value::Null,
    };
    json!({
        "min": n.min,
        "max": n.max,
        "threshold": n.threshold,
        "source": origin.source(calibration_dir),
        "origin": origin.kind(),
        "applied": applied,
    })
}

/// One calibration audit entry.
pub fn calibration_change(c: &CalibrationChange) -> Value {
    json!({
        "id": c.id,
        "at": rfc3339(c.at_ms),
        "camera": c.camera,
        "actor": c.actor,
        "action": c.action,
        "old_threshold": c.old_threshold,
        "new_threshold": c.new_threshold,
        "old_source": c.old_source,
        "new_source": c.new_source,
        "min": c.min,
        "max": c.max,
        "model": {"name": c.model_name, "version": c.model_version, "sha256": c.model_sha256},
        "reason": c.reason,
    })
}

//! The JSON shapes of the API (docs/api.yaml): one function an object, so the REST answers and
//! the live events can never disagree.

use serde_json::{json, Value};

use crate::batching::Answer;
use crate::scoring::Normalization;
use crate::store::Inspection;

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
        "review": i.review.as_ref().map(|r| json!({
            "state": r.state,
            "note": r.note,
            "reviewer": r.reviewer,
            "reviewed_at": rfc3339(r.reviewed_ms),
        })),
    })
}

/// The answer to a posted frame: the stored inspection plus where the time went.
pub fn answer(a: &Answer) -> Value {
    let mut v = inspection(&a.inspection);
    v["timings_ms"] = json!(a.timings);
    v
}

pub fn calibration(n: &Normalization, source: &str) -> Value {
    json!({"min": n.min, "max": n.max, "threshold": n.threshold, "source": source})
}

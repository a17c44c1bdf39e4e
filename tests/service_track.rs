//! Why a verdict stands, through the real service and a real SQLite file: a `roi = "track"`
//! camera that posts a frame without track gets a `defect` with the reason in `note` (no crops,
//! so without the note an inspector would see a defect and no reason), kept in the store across
//! a restart; an ordinary whole-frame inspection has no note and no partial slots.

mod common;
#[path = "service/harness.rs"]
mod harness;

use common::root;
use harness::*;
use serde_json::Value;

fn inspection(s: &Service, id: i64) -> Value {
    let r = get(&s.url(&format!("/v1/inspections/{id}")), Some(INSPECTOR));
    assert_eq!(r.status, 200, "{}", r.json);
    r.json
}

#[test]
fn a_frame_without_track_is_a_defect_that_says_why_and_the_store_keeps_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = track_camera_config(tmp.path(), "cam-01");
    let mut s = Service::start_with_config(&tmp.path().join("store"), Some(&cfg), &[]);

    let blank = blank_png();
    let r = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &blank, &[]);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["verdict"], "defect", "{}", r.json);
    let note = r.json["note"].as_str().unwrap_or_default().to_string();
    assert!(note.starts_with("no track found"), "{}", r.json);
    assert!(
        note.len() > "no track found: ".len(),
        "the reason follows: {note:?}"
    );
    assert_eq!(r.json["crops"], Value::Array(vec![]), "{}", r.json);
    assert_eq!(r.json["partial_slots"], Value::Array(vec![]), "{}", r.json);
    for k in ["R", "L", "A", "A_norm"] {
        assert!(r.json[k].is_null(), "{k}: {}", r.json);
    }
    let id = r.json["id"].as_i64().unwrap();

    // The same note read back after the write, on the item and in the review queue.
    let back = inspection(&s, id);
    assert_eq!(back["note"], note.as_str());
    assert_eq!(back["verdict"], "defect");
    assert_eq!(back["partial_slots"], Value::Array(vec![]));
    let queue = get(
        &s.url("/v1/inspections?verdict=defect&review=unreviewed&camera=cam-01"),
        Some(INSPECTOR),
    );
    assert_eq!(queue.status, 200);
    let listed = queue.json["items"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{}", queue.json);
    assert_eq!(listed[0]["note"], note.as_str());

    // An ordinary whole-frame camera: no note, no partial slots.
    let fixture =
        std::fs::read(root().join("tests/fixtures/fasteners/frames/frame_000.png")).unwrap();
    let plain = post_frame(
        &s,
        "cam-02",
        Some("demo-key-cam-02"),
        "image/png",
        &fixture,
        &[],
    );
    assert_eq!(plain.status, 200, "{}", plain.json);
    assert_eq!(plain.json["crops"].as_array().unwrap().len(), 1);
    assert!(
        plain.json.get("note").is_some_and(Value::is_null),
        "{}",
        plain.json
    );
    assert_eq!(plain.json["partial_slots"], Value::Array(vec![]));
    let plain_id = plain.json["id"].as_i64().unwrap();
    let plain_back = inspection(&s, plain_id);
    assert!(plain_back.get("note").is_some_and(Value::is_null));
    assert_eq!(plain_back["partial_slots"], Value::Array(vec![]));

    // Reviewing the flagged frame keeps its note (the review's own note is separate).
    let reviewed = post_json(
        &s.url(&format!("/v1/inspections/{id}/review")),
        Some(INSPECTOR),
        &serde_json::json!({"state": "confirmed", "note": "camera fouled"}),
    );
    assert_eq!(reviewed.status, 200, "{}", reviewed.json);
    assert_eq!(reviewed.json["note"], note.as_str());
    assert_eq!(reviewed.json["review"]["note"], "camera fouled");

    // Durable: a killed and restarted service reads both back from the SQLite file.
    s.restart();
    let after = inspection(&s, id);
    assert_eq!(after["note"], note.as_str());
    assert_eq!(after["verdict"], "defect");
    assert_eq!(after["partial_slots"], Value::Array(vec![]));
    let plain_after = inspection(&s, plain_id);
    assert!(plain_after.get("note").is_some_and(Value::is_null));
    assert_eq!(plain_after["partial_slots"], Value::Array(vec![]));
}

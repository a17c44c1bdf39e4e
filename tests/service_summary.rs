//! The start-of-shift summary (issue 12, item 3) against the real binary on 127.0.0.1 with the
//! shipped model and a real SQLite file: per camera, what arrived since a time (frames,
//! defects, unreviewed, confirmed by severity, the track section) and the longer-run rate.

mod common;
#[path = "service/harness.rs"]
mod harness;

use harness::*;
use serde_json::{json, Value};

fn post(s: &Service, camera: &str, bytes: &[u8], frame: &str, track: &str, pos: f64) -> Value {
    let key = format!("demo-key-{camera}");
    let pos = pos.to_string();
    let r = post_frame(
        s,
        camera,
        Some(&key),
        "image/png",
        bytes,
        &[
            ("X-Frame-Id", frame),
            ("X-Track-Id", track),
            ("X-Track-Position-M", pos.as_str()),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.json);
    r.json
}

fn summary(s: &Service, since: &str) -> Value {
    let r = get(
        &s.url(&format!("/v1/summary?since={}", since.replace('+', "%2B"))),
        Some(INSPECTOR),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    r.json
}

fn camera<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["camera"] == id)
        .unwrap_or_else(|| panic!("no {id} in {v}"))
}

#[test]
fn the_summary_counts_what_happened_since_a_time_per_camera() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    let fx = reference_frames();
    let defects: Vec<&Vec<u8>> = fx
        .iter()
        .filter(|f| f.1 == "defect")
        .map(|f| &f.0)
        .collect();
    let normals: Vec<&Vec<u8>> = fx
        .iter()
        .filter(|f| f.1 == "normal")
        .map(|f| &f.0)
        .collect();

    // Before the shift: cam-01 sees 2 defects and 2 normal frames on track L1.
    let mut before = Vec::new();
    for k in 0..2 {
        before.push(post(
            &s,
            "cam-01",
            defects[k],
            &format!("b-d{k}"),
            "L1",
            10.0 + k as f64,
        ));
        post(
            &s,
            "cam-01",
            normals[k],
            &format!("b-n{k}"),
            "L1",
            20.0 + k as f64,
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::thread::sleep(std::time::Duration::from_millis(50));

    // The shift: cam-01 4 defects + 1 normal on L2 at 1000..1400 m; cam-02 1 normal on L1.
    let mut during = Vec::new();
    for k in 0..4 {
        during.push(post(
            &s,
            "cam-01",
            defects[2 + k],
            &format!("s-d{k}"),
            "L2",
            1000.0 + 100.0 * k as f64,
        ));
    }
    post(&s, "cam-01", normals[2], "s-n0", "L2", 1400.0);
    post(&s, "cam-02", normals[3], "s-n1", "L1", 5.0);
    for i in before.iter().chain(&during) {
        assert_eq!(i["verdict"], "defect", "{i}");
    }
    // Reviews: one earlier defect dismissed; two of the shift's confirmed (one immediate, one
    // without a severity), one dismissed.
    let review = |i: &Value, body: Value| {
        let r = post_json(
            &s.url(&format!("/v1/inspections/{}/review", i["id"])),
            Some(INSPECTOR),
            &body,
        );
        assert_eq!(r.status, 200, "{}", r.json);
    };
    review(&before[0], json!({"state": "false_alarm"}));
    review(
        &during[0],
        json!({"state": "confirmed", "type": "missing_clip", "severity": "immediate"}),
    );
    review(&during[1], json!({"state": "confirmed"}));
    review(&during[2], json!({"state": "false_alarm"}));

    let v = summary(&s, &since);
    assert_eq!(v["since"].as_str().unwrap(), since);
    let c1 = camera(&v, "cam-01");
    assert_eq!(c1["frames"], 5, "{c1}");
    assert_eq!(c1["defects"], 4, "{c1}");
    assert_eq!(c1["unreviewed"], 2, "before[1] and during[3]: {c1}");
    assert_eq!(c1["unreviewed_since"], 1, "{c1}");
    assert_eq!(
        c1["confirmed_by_severity"],
        json!({"immediate": 1, "unspecified": 1}),
        "{c1}"
    );
    assert!(
        (c1["defect_rate"].as_f64().unwrap() - 0.8).abs() < 1e-9,
        "{c1}"
    );
    assert_eq!(c1["baseline"]["frames"], 9, "{c1}");
    assert_eq!(c1["baseline"]["defects"], 6, "{c1}");
    assert_eq!(
        c1["tracks"],
        json!([{"track_id": "L2", "frames": 5, "min_position_m": 1000.0, "max_position_m": 1400.0}]),
        "only the shift's section: {c1}"
    );
    assert!(c1["name"].as_str().is_some_and(|n| !n.is_empty()));
    let c2 = camera(&v, "cam-02");
    assert_eq!(
        (
            c2["frames"].as_i64(),
            c2["defects"].as_i64(),
            c2["unreviewed"].as_i64()
        ),
        (Some(1), Some(0), Some(0))
    );
    // Configured cameras that sent nothing are listed with zeros.
    let c4 = camera(&v, "cam-04");
    assert_eq!(
        (c4["frames"].as_i64(), c4["tracks"].as_array().map(Vec::len)),
        (Some(0), Some(0))
    );
    assert_eq!(v["totals"]["frames"], 6);
    assert_eq!(v["totals"]["defects"], 4);
    assert_eq!(v["totals"]["unreviewed"], 2);
    assert_eq!(
        v["totals"]["confirmed_by_severity"],
        json!({"immediate": 1, "unspecified": 1})
    );

    // An earlier `since` takes in everything.
    let all = summary(&s, "2000-01-01T00:00:00Z");
    let a1 = camera(&all, "cam-01");
    assert_eq!(
        (
            a1["frames"].as_i64(),
            a1["defects"].as_i64(),
            a1["unreviewed_since"].as_i64()
        ),
        (Some(9), Some(6), Some(2))
    );
    assert_eq!(a1["tracks"].as_array().unwrap().len(), 2, "{a1}");

    // Bad input and no session.
    for bad in ["yesterday", "2026-13-40T00:00:00Z", "9999-01-01T00:00:00Z"] {
        let r = get(&s.url(&format!("/v1/summary?since={bad}")), Some(INSPECTOR));
        assert_eq!(r.status, 400, "{bad}: {}", r.json);
        assert!(r.json["error"]["code"].is_string(), "{}", r.json);
    }
    assert_eq!(get(&s.url("/v1/summary"), None).status, 401);
    assert_eq!(get(&s.url("/v1/summary"), Some("wrong-token")).status, 401);
    // Without `since`: the last 12 hours.
    let r = get(&s.url("/v1/summary"), Some(INSPECTOR));
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(camera(&r.json, "cam-01")["frames"], 9);
}

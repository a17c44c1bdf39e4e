//! The defect catalogue on review, the review and repair history, and the maintenance handover
//! (`GET /v1/defects` as JSON, CSV, GeoJSON and a printable work order) against the real
//! binary on 127.0.0.1 with the shipped model and a real SQLite file.

mod common;
#[path = "service/harness.rs"]
mod harness;

use std::io::Read;

use common::root;
use harness::*;
use serde_json::{json, Value};

/// The first `n` fixtures the shipped model flags as defects.
fn defect_fixtures(n: usize) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(root().join("tests/fixtures/expected_scores.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let out: Vec<Vec<u8>> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["verdict"] == "defect")
        .take(n)
        .map(|i| std::fs::read(root().join(i["path"].as_str().unwrap())).unwrap())
        .collect();
    assert_eq!(out.len(), n, "enough flagged fixtures");
    out
}

/// GET with an `Accept` header: status, content type, headers, body text.
fn get_accept(url: &str, token: &str, accept: &str) -> (u16, String, Option<String>, String) {
    let r = match agent()
        .get(url)
        .set("Authorization", &format!("Bearer {token}"))
        .set("Accept", accept)
        .call()
    {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = r.status();
    let ct = r.header("Content-Type").unwrap_or("").to_string();
    let cd = r.header("Content-Disposition").map(str::to_string);
    let mut body = String::new();
    r.into_reader().read_to_string(&mut body).unwrap();
    (status, ct, cd, body)
}

/// RFC 4180: quoted fields with doubled quotes, commas and line breaks inside quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            c => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quote");
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn ids(v: &Value) -> Vec<i64> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {v}"))
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn confirmed_defects_carry_type_severity_and_place_and_are_handed_over() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    // Four flagged frames: (track, position, capture time).
    let places = [
        ("L1", "1200.0", "2026-11-23T10:00:00Z"),
        ("L1", "2500.5", "2026-11-23T11:00:00Z"),
        ("L1", "1800.0", "2026-11-23T12:00:00Z"),
        ("L2", "100.0", "2026-11-23T13:00:00Z"),
    ];
    let mut d = Vec::new();
    for (k, bytes) in defect_fixtures(4).iter().enumerate() {
        let (track, pos, at) = places[k];
        let fid = format!("d-{k}");
        let r = post_frame(
            &s,
            "cam-01",
            Some(CAM1_KEY),
            "image/png",
            bytes,
            &[
                ("X-Frame-Id", fid.as_str()),
                ("X-Track-Id", track),
                ("X-Track-Position-M", pos),
                ("X-Capture-Time", at),
            ],
        );
        assert_eq!(r.status, 200, "{}", r.json);
        assert_eq!(r.json["verdict"], "defect");
        d.push(r.json["id"].as_i64().unwrap());
    }
    let review_url = |id: i64| s.url(&format!("/v1/inspections/{id}/review"));
    let history = |id: i64| {
        get(
            &s.url(&format!("/v1/inspections/{id}/history")),
            Some(INSPECTOR),
        )
    };

    // The catalogue the dashboard offers.
    let cat = get(&s.url("/v1/defects/catalogue"), Some(INSPECTOR));
    assert_eq!(cat.status, 200);
    assert_eq!(cat.json["types"].as_array().unwrap().len(), 10);
    assert_eq!(
        cat.json["types"][0],
        json!({"id": "missing_clip", "label": "missing clip"})
    );
    assert_eq!(
        cat.json["severities"],
        json!(["immediate", "plan", "monitor"])
    );

    // Values outside the catalogue are refused with a clear error, and nothing is written.
    for (body, says) in [
        (
            json!({"state": "confirmed", "type": "banana"}),
            "defect catalogue",
        ),
        (
            json!({"state": "confirmed", "type": "missing_clip", "severity": "whenever"}),
            "configured severity",
        ),
        (
            json!({"state": "confirmed", "rail_side": "middle"}),
            "left or right",
        ),
        (json!({"state": "confirmed", "sleeper": -1}), "sleeper"),
        (
            json!({"state": "false_alarm", "type": "missing_clip"}),
            "false alarm",
        ),
    ] {
        let r = post_json(&review_url(d[1]), Some(INSPECTOR), &body);
        assert_eq!(r.status, 400, "{body}: {}", r.json);
        assert_eq!(r.json["error"]["code"], "bad_request");
        let msg = r.json["error"]["message"].as_str().unwrap();
        assert!(msg.contains(says), "{body}: {msg}");
    }
    let banana = post_json(
        &review_url(d[1]),
        Some(INSPECTOR),
        &json!({"state": "confirmed", "type": "banana"}),
    );
    assert!(
        banana.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing_clip"),
        "the message lists the catalogue"
    );
    assert!(get(
        &s.url(&format!("/v1/inspections/{}", d[1])),
        Some(INSPECTOR)
    )
    .json["review"]
        .is_null());
    assert_eq!(history(d[1]).json["items"], json!([]));

    // d0: confirmed with type, severity, rail side and sleeper (a note a spreadsheet must not split).
    let note0 = "clip gone, \"urgent\"\nsecond line";
    let r = post_json(
        &review_url(d[0]),
        Some(INSPECTOR),
        &json!({"state": "confirmed", "note": note0, "type": "missing_clip", "severity": "immediate",
                "rail_side": "left", "sleeper": 12}),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let rv = &r.json["review"];
    assert_eq!(
        (rv["type"].as_str(), rv["severity"].as_str()),
        (Some("missing_clip"), Some("immediate"))
    );
    assert_eq!(
        (rv["rail_side"].as_str(), rv["sleeper"].as_i64()),
        (Some("left"), Some(12))
    );
    assert_eq!(rv["lifecycle"]["state"], "open");
    assert_eq!(rv["lifecycle"]["by"], "inspector");

    // d1: confirmed, then re-classified: the inspection shows the latest, the history both.
    let first = post_json(
        &review_url(d[1]),
        Some(INSPECTOR),
        &json!({"state": "confirmed", "type": "fractured_clip", "severity": "plan", "rail_side": "right"}),
    );
    assert_eq!(first.status, 200, "{}", first.json);
    let second = post_json(
        &review_url(d[1]),
        Some(ADMIN),
        &json!({"state": "confirmed", "type": "deformed_clip", "severity": "monitor", "rail_side": "right", "note": "bent"}),
    );
    assert_eq!(second.status, 200);
    let shown = get(
        &s.url(&format!("/v1/inspections/{}", d[1])),
        Some(INSPECTOR),
    )
    .json;
    assert_eq!(shown["review"]["type"], "deformed_clip");
    assert_eq!(shown["review"]["reviewer"], "admin");
    let h = history(d[1]).json;
    let kinds: Vec<(String, String)> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["type"]
                    .as_str()
                    .or(e["state"].as_str())
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("review".to_string(), "fractured_clip".to_string()),
            ("lifecycle".to_string(), "open".to_string()),
            ("review".to_string(), "deformed_clip".to_string()),
        ]
    );
    assert_eq!(h["items"][0]["severity"], "plan");
    assert_eq!(h["items"][2]["reviewer"], "admin");

    // d2: a false alarm (no lifecycle, not a defect to repair); d3: confirmed.
    let fa = post_json(
        &review_url(d[2]),
        Some(INSPECTOR),
        &json!({"state": "false_alarm", "note": "shadow"}),
    );
    assert_eq!(fa.status, 200);
    assert!(fa.json["review"]["lifecycle"].is_null() && fa.json["review"]["type"].is_null());
    assert_eq!(
        post_json(&review_url(d[3]), Some(INSPECTOR),
            &json!({"state": "confirmed", "type": "foreign_object", "severity": "monitor", "sleeper": 3})).status,
        200
    );

    // The repair lifecycle: open → repair_ordered → repaired, with who and when; wrong moves refused.
    let lc = |id: i64| s.url(&format!("/v1/inspections/{id}/lifecycle"));
    let r = post_json(
        &lc(d[2]),
        Some(INSPECTOR),
        &json!({"state": "repair_ordered"}),
    );
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (409, Some("not_confirmed")),
        "{}",
        r.json
    );
    assert_eq!(
        post_json(
            &lc(d[0]),
            Some(CAM1_KEY),
            &json!({"state": "repair_ordered"})
        )
        .status,
        403
    );
    assert_eq!(
        post_json(
            &lc(999_999),
            Some(INSPECTOR),
            &json!({"state": "repair_ordered"})
        )
        .status,
        404
    );
    let r = post_json(&lc(d[0]), Some(INSPECTOR), &json!({"state": "fixed"}));
    assert_eq!(r.status, 400);
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("repair_ordered"));
    let r = post_json(
        &lc(d[0]),
        Some(INSPECTOR),
        &json!({"state": "repair_ordered", "note": "WO-17"}),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["review"]["lifecycle"]["state"], "repair_ordered");
    assert_eq!(r.json["review"]["lifecycle"]["note"], "WO-17");
    let again = post_json(
        &lc(d[0]),
        Some(INSPECTOR),
        &json!({"state": "repair_ordered"}),
    );
    assert_eq!(
        (again.status, again.json["error"]["code"].as_str()),
        (409, Some("invalid_transition"))
    );
    let r = post_json(
        &lc(d[0]),
        Some(ADMIN),
        &json!({"state": "repaired", "note": "new clip fitted"}),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let l = &r.json["review"]["lifecycle"];
    assert_eq!(
        (l["state"].as_str(), l["by"].as_str()),
        (Some("repaired"), Some("admin"))
    );
    assert!(l["at"].as_str().unwrap().ends_with('Z'));
    let back = post_json(&lc(d[0]), Some(ADMIN), &json!({"state": "open"}));
    assert_eq!(back.status, 409, "a repaired defect stays repaired");
    assert!(
        back.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("final"),
        "{}",
        back.json
    );
    // Re-confirming a repaired defect does not reopen it.
    let re = post_json(
        &review_url(d[0]),
        Some(INSPECTOR),
        &json!({"state": "confirmed", "note": note0, "type": "missing_clip", "severity": "immediate", "rail_side": "left", "sleeper": 12}),
    );
    assert_eq!(re.json["review"]["lifecycle"]["state"], "repaired");
    let h0: Vec<String> = history(d[0]).json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["kind"].as_str().unwrap(),
                e["state"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        h0,
        [
            "review:confirmed",
            "lifecycle:open",
            "lifecycle:repair_ordered",
            "lifecycle:repaired",
            "review:confirmed"
        ]
    );

    // The defect list (JSON by default): confirmed only, by track then position.
    let list = |q: &str| {
        let r = get(&s.url(&format!("/v1/defects{q}")), Some(INSPECTOR));
        assert_eq!(r.status, 200, "{q}: {}", r.json);
        ids(&r.json)
    };
    assert_eq!(get(&s.url("/v1/defects"), None).status, 401);
    assert_eq!(get(&s.url("/v1/defects"), Some(CAM1_KEY)).status, 403);
    assert_eq!(list(""), vec![d[0], d[1], d[3]]);
    assert_eq!(list("?track_id=L2"), vec![d[3]]);
    assert_eq!(list("?min_position_m=1000&max_position_m=2000"), vec![d[0]]);
    assert_eq!(list("?track_id=L1&min_position_m=2000"), vec![d[1]]);
    assert_eq!(list("?severity=monitor"), vec![d[1], d[3]]);
    assert_eq!(list("?severity=monitor,immediate"), vec![d[0], d[1], d[3]]);
    assert_eq!(list("?state=open"), vec![d[1], d[3]]);
    assert_eq!(list("?state=repaired"), vec![d[0]]);
    assert_eq!(list("?state=repair_ordered"), Vec::<i64>::new());
    assert_eq!(list("?type=foreign_object"), vec![d[3]]);
    assert_eq!(list("?since=2026-11-23T10:30:00Z"), vec![d[1], d[3]]);
    assert_eq!(list("?until=2026-11-23T11:30:00Z"), vec![d[0], d[1]]);
    assert_eq!(list("?camera=cam-02"), Vec::<i64>::new());
    for bad in [
        "?severity=soon",
        "?state=closed",
        "?type=banana",
        "?format=xml",
        "?since=yesterday",
    ] {
        let r = get(&s.url(&format!("/v1/defects{bad}")), Some(INSPECTOR));
        assert_eq!(
            (r.status, r.json["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}"
        );
    }
    let all = get(&s.url("/v1/defects"), Some(INSPECTOR)).json;
    assert_eq!(
        (all["count"].as_u64(), all["truncated"].as_bool()),
        (Some(3), Some(false))
    );
    let first = &all["items"][0];
    assert_eq!(first["km"], "1+200.0");
    assert_eq!(first["position_m"], 1200.0);
    assert_eq!(first["track_id"], "L1");
    assert_eq!(
        (first["rail_side"].as_str(), first["sleeper"].as_i64()),
        (Some("left"), Some(12))
    );
    assert_eq!(
        (first["type"].as_str(), first["severity"].as_str()),
        (Some("missing_clip"), Some("immediate"))
    );
    assert_eq!(
        (first["state"].as_str(), first["state_by"].as_str()),
        (Some("repaired"), Some("admin"))
    );
    assert_eq!(first["camera"], "cam-01");
    assert_eq!(first["time"], "2026-11-23T10:00:00.000Z");
    assert_eq!(first["note"], note0);
    assert_eq!(first["reviewer"], "inspector");
    let image_url = first["image_url"].as_str().unwrap().to_string();
    assert_eq!(image_url, s.url(&format!("/v1/inspections/{}/image", d[0])));
    let img = get(&image_url, Some(INSPECTOR));
    assert!(
        img.status == 200 && img.bytes.starts_with(b"\x89PNG"),
        "the link opens the image"
    );
    let limited = get(&s.url("/v1/defects?limit=2"), Some(INSPECTOR));
    assert_eq!(
        (
            ids(&limited.json).len(),
            limited.json["truncated"].as_bool()
        ),
        (2, Some(true))
    );
    assert_eq!(limited.header("x-railscope-truncated"), Some("true"));

    // CSV, by format= and by Accept; parsed back.
    let (st, ct, cd, text) = get_accept(
        &s.url("/v1/defects?format=csv&track_id=L1"),
        INSPECTOR,
        "*/*",
    );
    assert_eq!(st, 200, "{text}");
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert!(cd
        .unwrap_or_default()
        .starts_with("attachment; filename=\"railscope-defects-"));
    let rows = parse_csv(&text);
    assert_eq!(
        rows[0],
        [
            "id",
            "track_id",
            "km",
            "position_m",
            "rail_side",
            "sleeper",
            "camera",
            "time",
            "type",
            "severity",
            "state",
            "state_by",
            "state_at",
            "note",
            "reviewer",
            "reviewed_at",
            "image_url"
        ]
    );
    assert_eq!(rows.len(), 3, "header + the two L1 defects: {rows:?}");
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    assert_eq!(rows[1][col("id")], d[0].to_string());
    assert_eq!(rows[1][col("km")], "1+200.0");
    assert_eq!(rows[1][col("position_m")].parse::<f64>().unwrap(), 1200.0);
    assert_eq!(
        rows[1][col("note")],
        note0,
        "quotes, comma and line break survive"
    );
    assert_eq!(rows[1][col("state")], "repaired");
    assert_eq!(rows[1][col("image_url")], image_url);
    assert_eq!(
        (
            rows[2][col("type")].as_str(),
            rows[2][col("severity")].as_str()
        ),
        ("deformed_clip", "monitor")
    );
    assert_eq!(rows[2][col("rail_side")], "right");
    let (st, ct, _, by_accept) =
        get_accept(&s.url("/v1/defects?track_id=L1"), INSPECTOR, "text/csv");
    assert_eq!((st, ct.starts_with("text/csv")), (200, true));
    assert_eq!(parse_csv(&by_accept)[1..], rows[1..]);

    // GeoJSON: valid FeatureCollection, no invented coordinates, the linear reference in properties.
    for (url, accept) in [
        (s.url("/v1/defects?format=geojson"), "*/*"),
        (s.url("/v1/defects"), "application/geo+json"),
    ] {
        let (st, ct, _, text) = get_accept(&url, INSPECTOR, accept);
        assert_eq!((st, ct.as_str()), (200, "application/geo+json"), "{text}");
        let g: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(g["type"], "FeatureCollection");
        let f = g["features"].as_array().unwrap();
        assert_eq!(f.len(), 3);
        for feat in f {
            assert_eq!(feat["type"], "Feature");
            assert!(feat["geometry"].is_null());
            assert!(feat["properties"]["km"].is_string());
        }
        assert_eq!(f[2]["id"], d[3]);
        let p = &f[2]["properties"];
        assert_eq!(
            (p["track_id"].as_str(), p["km"].as_str()),
            (Some("L2"), Some("0+100.0"))
        );
        assert_eq!(p["linear_ref"], json!({"route": "L2", "measure_m": 100.0}));
        assert_eq!(
            (
                p["type"].as_str(),
                p["severity"].as_str(),
                p["sleeper"].as_i64()
            ),
            (Some("foreign_object"), Some("monitor"), Some(3))
        );
    }

    // The printable work order.
    let (st, ct, _, html) = get_accept(
        &s.url("/v1/defects?format=html&severity=immediate,monitor"),
        INSPECTOR,
        "*/*",
    );
    assert_eq!(st, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(html.contains("Work order") && html.contains("@media print"));
    for km in ["1+200.0", "2+500.5", "0+100.0"] {
        assert!(html.contains(km), "{km} in the work order");
    }
    assert!(html.contains("missing clip") && html.contains("foreign object"));
    assert!(
        html.contains("clip gone, &quot;urgent&quot;"),
        "the note is escaped"
    );
    assert!(!html.contains("1+800.0"), "the false alarm is not on it");
}

#[test]
fn severities_come_from_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(
        &tmp.path().join("store"),
        &[("RAILSCOPE__REVIEW__SEVERITIES", "urgent,next_visit")],
    );
    let cat = get(&s.url("/v1/defects/catalogue"), Some(INSPECTOR));
    assert_eq!(cat.json["severities"], json!(["urgent", "next_visit"]));
    let bytes = defect_fixtures(1).remove(0);
    let r = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &bytes, &[]);
    let id = r.json["id"].as_i64().unwrap();
    let url = s.url(&format!("/v1/inspections/{id}/review"));
    let refused = post_json(
        &url,
        Some(INSPECTOR),
        &json!({"state": "confirmed", "type": "loose_bolt", "severity": "immediate"}),
    );
    assert_eq!(refused.status, 400);
    assert!(refused.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("urgent, next_visit"));
    let ok = post_json(
        &url,
        Some(INSPECTOR),
        &json!({"state": "confirmed", "type": "loose_bolt", "severity": "next_visit"}),
    );
    assert_eq!(
        (ok.status, ok.json["review"]["severity"].as_str()),
        (200, Some("next_visit"))
    );
    assert_eq!(
        ids(&get(&s.url("/v1/defects?severity=next_visit"), Some(INSPECTOR)).json),
        vec![id]
    );
}

//! The HTTP service end to end: the real binary on 127.0.0.1, the shipped model through real
//! ONNX Runtime, a real SQLite file. Verdicts, bad input, auth, reviews, calibration, events.

mod common;
#[path = "service/harness.rs"]
mod harness;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use common::root;
use harness::*;
use serde_json::{json, Value};

#[test]
fn frames_get_the_reference_verdicts_and_are_stored_with_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    let mut ids = Vec::new();
    let mut verdicts = std::collections::BTreeSet::new();
    for (k, img) in reference_scores().iter().enumerate() {
        let rel = img["path"].as_str().unwrap();
        let bytes = std::fs::read(root().join(rel)).unwrap();
        let frame_id = format!("f-{k}");
        let r = post_frame(
            &s,
            "cam-01",
            Some(CAM1_KEY),
            "image/png",
            &bytes,
            &[
                ("X-Frame-Id", &frame_id),
                ("X-Capture-Time", "2026-11-23T10:00:00Z"),
                ("X-Track-Id", "L1"),
                ("X-Track-Position-M", "1234.5"),
                ("X-Speed-Kmh", "80"),
            ],
        );
        assert_eq!(r.status, 200, "{rel}: {}", r.json);
        // Same score as the Python reference on the same image (docs/scoring.md).
        let a = r.json["A"].as_f64().unwrap();
        let want = img["A"].as_f64().unwrap();
        assert!((a - want).abs() < 1e-4, "{rel}: A {a} vs reference {want}");
        assert_eq!(r.json["verdict"], img["verdict"], "{rel}");
        assert_eq!(r.json["frame_id"], frame_id.as_str());
        assert_eq!(r.json["position_m"], 1234.5);
        assert_eq!(r.json["capture_time"], "2026-11-23T10:00:00.000Z");
        assert_eq!(r.json["model"]["name"], "nested-edgan");
        assert_eq!(r.json["provider"], "cpu");
        // The stages add up: intake holds preprocess, and the request's total holds intake,
        // queue, infer, score and store.
        let t = |k: &str| r.json["timings_ms"][k].as_f64().unwrap();
        assert!(
            t("intake") >= t("preprocess") && t("preprocess") > 0.0,
            "{}",
            r.json["timings_ms"]
        );
        let parts = t("intake") + t("queue") + t("infer") + t("score") + t("store");
        assert!(t("total") >= parts - 1e-6, "{}", r.json["timings_ms"]);
        verdicts.insert(r.json["verdict"].as_str().unwrap().to_string());
        ids.push((r.json["id"].as_i64().unwrap(), r.json.clone()));
    }
    assert_eq!(
        verdicts.len(),
        2,
        "the fixtures hold both normal and defect verdicts"
    );

    // Every answer is readable back, identical, with its kept image and heatmap for defects.
    for (id, answered) in &ids {
        let r = get(&s.url(&format!("/v1/inspections/{id}")), Some(INSPECTOR));
        assert_eq!(r.status, 200);
        assert_eq!(r.json["A"], answered["A"]);
        assert_eq!(r.json["verdict"], answered["verdict"]);
        if answered["verdict"] == "defect" {
            let img = get(
                &s.url(&format!("/v1/inspections/{id}/image")),
                Some(INSPECTOR),
            );
            assert_eq!((img.status, img.content_type.as_str()), (200, "image/png"));
            assert!(img.bytes.starts_with(b"\x89PNG"));
            let heat = get(
                &s.url(&format!("/v1/inspections/{id}/heatmap")),
                Some(INSPECTOR),
            );
            assert_eq!(heat.status, 200);
            assert!(heat.bytes.starts_with(b"\x89PNG"));
        }
    }

    // Filters and paging.
    let defects = get(
        &s.url("/v1/inspections?verdict=defect&review=unreviewed&camera=cam-01"),
        Some(INSPECTOR),
    );
    let n_defects = ids.iter().filter(|(_, a)| a["verdict"] == "defect").count();
    assert_eq!(defects.json["items"].as_array().unwrap().len(), n_defects);
    let page1 = get(&s.url("/v1/inspections?limit=3"), Some(INSPECTOR));
    let items = page1.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(
        items[0]["id"].as_i64() > items[1]["id"].as_i64(),
        "newest first"
    );
    let next = page1.json["next_before_id"].as_i64().unwrap();
    let page2 = get(
        &s.url(&format!("/v1/inspections?limit=3&before_id={next}")),
        Some(INSPECTOR),
    );
    assert!(page2.json["items"][0]["id"].as_i64().unwrap() < next);
    let none = get(
        &s.url("/v1/inspections?min_position_m=5000"),
        Some(INSPECTOR),
    );
    assert!(none.json["items"].as_array().unwrap().is_empty());

    // Camera totals.
    let cams = get(&s.url("/v1/cameras"), Some(INSPECTOR));
    let c1 = cams.json["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "cam-01")
        .unwrap()
        .clone();
    assert_eq!(c1["frames"].as_u64().unwrap() as usize, ids.len());
    assert_eq!(c1["defects"].as_u64().unwrap() as usize, n_defects);
    assert_eq!(c1["silent"], false);
    assert!(c1["calibration"]["threshold"].as_f64().unwrap() > 0.0);
    let c2 = cams.json["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "cam-02")
        .unwrap()
        .clone();
    assert_eq!(
        (c2["frames"].as_u64(), c2["silent"].as_bool()),
        (Some(0), Some(true))
    );

    // Stats.
    let pos = get(&s.url("/v1/stats/positions?bucket_m=100"), Some(INSPECTOR));
    assert_eq!(pos.json["buckets"][0]["position_m"], 1200.0);
    let trend = get(&s.url("/v1/stats/trend?bucket_s=60"), Some(INSPECTOR));
    assert_eq!(trend.json["series"][0]["camera"], "cam-01");
    let hist = get(&s.url("/v1/stats/scores?bins=10"), Some(INSPECTOR));
    let total: u64 = hist.json["bins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["normal"].as_u64().unwrap() + b["defect"].as_u64().unwrap())
        .sum();
    assert_eq!(total as usize, ids.len());
}

#[test]
fn a_defects_reconstruction_is_a_frame_sized_png_unlike_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    let scores = reference_scores();
    let pick = |verdict: &str| {
        let img = scores
            .iter()
            .find(|i| i["verdict"] == verdict)
            .unwrap_or_else(|| panic!("no {verdict} fixture"));
        std::fs::read(root().join(img["path"].as_str().unwrap())).unwrap()
    };
    let defect = pick("defect");
    let r = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &defect, &[]);
    assert_eq!(
        (r.status, r.json["verdict"].as_str()),
        (200, Some("defect"))
    );
    let id = r.json["id"].as_i64().unwrap();
    let url = format!("/v1/inspections/{id}/reconstruction");
    assert_eq!(r.json["reconstruction_url"], url.as_str());
    assert_eq!(
        get(&s.url(&format!("/v1/inspections/{id}")), Some(INSPECTOR)).json["reconstruction_url"],
        url.as_str()
    );

    let rec = get(&s.url(&url), Some(INSPECTOR));
    assert_eq!((rec.status, rec.content_type.as_str()), (200, "image/png"));
    let original = image::load_from_memory(&defect).unwrap().to_luma8();
    let recon = image::load_from_memory(&rec.bytes).unwrap().to_luma8();
    assert_eq!(
        recon.dimensions(),
        original.dimensions(),
        "the frame's size"
    );
    // The model's picture of the frame: close to it (back in pixels, not in model space) but
    // not the frame itself.
    let mad = original
        .as_raw()
        .iter()
        .zip(recon.as_raw())
        .map(|(&a, &b)| (a as f64 - b as f64).abs())
        .sum::<f64>()
        / original.as_raw().len() as f64;
    assert!(
        mad > 1.0 && mad < 40.0,
        "mean |original − reconstruction| = {mad:.2} grey levels"
    );
    let heat = get(
        &s.url(&format!("/v1/inspections/{id}/heatmap")),
        Some(INSPECTOR),
    );
    let heat = image::load_from_memory(&heat.bytes).unwrap();
    assert_eq!(
        (heat.width(), heat.height()),
        original.dimensions(),
        "the heatmap is frame-sized too"
    );

    // A normal frame right after a kept one is not kept: no reconstruction, 404.
    let normal = pick("normal");
    let first = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &normal, &[]);
    let second = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &normal, &[]);
    assert_eq!(first.json["verdict"], "normal");
    assert!(
        first.json["reconstruction_url"].is_string(),
        "the first normal is sampled"
    );
    assert!(second.json["image_url"].is_null() && second.json["reconstruction_url"].is_null());
    let gone = get(
        &s.url(&format!(
            "/v1/inspections/{}/reconstruction",
            second.json["id"]
        )),
        Some(INSPECTOR),
    );
    assert_eq!(
        (gone.status, gone.json["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    // Same errors and auth as the image and the heatmap.
    let missing = get(
        &s.url("/v1/inspections/999999/reconstruction"),
        Some(INSPECTOR),
    );
    assert_eq!(missing.status, 404);
    let bad = get(
        &s.url("/v1/inspections/abc/reconstruction"),
        Some(INSPECTOR),
    );
    assert_eq!(
        (bad.status, bad.json["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    assert_eq!(get(&s.url(&url), None).status, 401);
    assert_eq!(get(&s.url(&url), Some(CAM1_KEY)).status, 403);
}

#[test]
fn every_bad_input_gets_its_json_4xx_and_the_service_keeps_answering() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(
        &tmp.path().join("store"),
        &[("RAILSCOPE__SERVER__MAX_BODY_BYTES", "200000")],
    );
    let good = fixture("test/good/000000.png");
    // A PNG header that claims 100 000 × 100 000 pixels: refused from the header, never allocated.
    let bomb = bomb_png();
    let oversized = vec![0u8; 300_000];
    /// what, camera, key, content type, body, headers, status, code
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        &'a str,
        Vec<u8>,
        &'a [(&'a str, &'a str)],
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "empty body",
            "cam-01",
            Some(CAM1_KEY),
            "image/png",
            vec![],
            &[],
            400,
            "empty_body",
        ),
        (
            "truncated png",
            "cam-01",
            Some(CAM1_KEY),
            "image/png",
            good[..good.len() / 2].to_vec(),
            &[],
            422,
            "bad_image",
        ),
        (
            "not an image",
            "cam-01",
            Some(CAM1_KEY),
            "application/octet-stream",
            b"hello, world".to_vec(),
            &[],
            422,
            "bad_image",
        ),
        (
            "wrong content type",
            "cam-01",
            Some(CAM1_KEY),
            "application/json",
            b"{}".to_vec(),
            &[],
            415,
            "unsupported_media_type",
        ),
        (
            "png bomb",
            "cam-01",
            Some(CAM1_KEY),
            "image/png",
            bomb,
            &[],
            413,
            "image_too_large",
        ),
        (
            "oversized body",
            "cam-01",
            Some(CAM1_KEY),
            "image/png",
            oversized,
            &[],
            413,
            "payload_too_large",
        ),
        (
            "unknown camera",
            "cam-99",
            Some(CAM1_KEY),
            "image/png",
            good.clone(),
            &[],
            404,
            "unknown_camera",
        ),
        (
            "no key",
            "cam-01",
            None,
            "image/png",
            good.clone(),
            &[],
            401,
            "unauthorized",
        ),
        (
            "wrong key",
            "cam-01",
            Some("not-a-key-at-all"),
            "image/png",
            good.clone(),
            &[],
            401,
            "unauthorized",
        ),
        (
            "another camera's key",
            "cam-02",
            Some(CAM1_KEY),
            "image/png",
            good.clone(),
            &[],
            403,
            "forbidden",
        ),
        (
            "inspector posting",
            "cam-01",
            Some(INSPECTOR),
            "image/png",
            good.clone(),
            &[],
            403,
            "forbidden",
        ),
        (
            "bad position",
            "cam-01",
            Some(CAM1_KEY),
            "image/png",
            good.clone(),
            &[("X-Track-Position-M", "km12")],
            400,
            "bad_request",
        ),
        (
            "position out of range (once poisoned the position statistics)",
            "cam-01",
            Some(CAM1_KEY),
            "image/png",
            good.clone(),
            &[("X-Track-Position-M", "-1e308")],
            400,
            "bad_request",
        ),
        (
            "capture time in the far future",
            "cam-01",
            Some(CAM1_KEY),
            "image/png",
            good.clone(),
            &[("X-Capture-Time", "9999-01-01T00:00:00Z")],
            400,
            "bad_request",
        ),
        (
            "negative speed",
            "cam-01",
            Some(CAM1_KEY),
            "image/png",
            good.clone(),
            &[("X-Speed-Kmh", "-5")],
            400,
            "bad_request",
        ),
        (
            "bad time",
            "cam-01",
            Some(CAM1_KEY),
            "image/png",
            good.clone(),
            &[("X-Capture-Time", "yesterday")],
            400,
            "bad_request",
        ),
    ];
    for (what, cam, key, ct, body, headers, status, code) in cases {
        let r = post_frame(&s, cam, key, ct, &body, headers);
        assert_eq!(r.status, status, "{what}: {}", r.json);
        assert_eq!(r.json["error"]["code"], code, "{what}: {}", r.json);
        assert!(
            !r.json["error"]["message"].as_str().unwrap().is_empty(),
            "{what}"
        );
        // Still alive and answering after each.
        let ok = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &good, &[]);
        assert_eq!(ok.status, 200, "after {what}: {}", ok.json);
    }
    // Reads need a person's token; bad query values are 400s.
    assert_eq!(get(&s.url("/v1/inspections"), None).status, 401);
    assert_eq!(get(&s.url("/v1/inspections"), Some(CAM1_KEY)).status, 403);
    assert_eq!(
        get(&s.url("/v1/inspections?verdict=maybe"), Some(INSPECTOR)).json["error"]["code"],
        "bad_request"
    );
    assert_eq!(
        get(&s.url("/v1/inspections?since=noon"), Some(INSPECTOR)).status,
        400
    );
    assert_eq!(
        get(&s.url("/v1/inspections/abc"), Some(INSPECTOR)).status,
        400
    );
    assert_eq!(
        get(&s.url("/v1/inspections/999999"), Some(INSPECTOR)).json["error"]["code"],
        "not_found"
    );
    let metrics = get(&s.url("/metrics"), None);
    let text = String::from_utf8(metrics.bytes).unwrap();
    assert!(
        metric(
            &text,
            "railscope_rejected_frames_total{reason=\"bad_image\"}"
        ) >= 3.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "railscope_rejected_frames_total{reason=\"too_large\"}"
        ) >= 2.0
    );
    assert!(
        metric(
            &text,
            "railscope_rejected_frames_total{reason=\"unauthorized\"}"
        ) >= 4.0
    );
    assert!(!s.log_text().contains("panicked"));
    assert!(!s.log_text().contains(CAM1_KEY), "keys never reach the log");
}

#[test]
fn reviews_feed_a_calibration_proposal_that_an_admin_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let cal = calibration_copy(tmp.path()).display().to_string();
    // Three reviews of each kind are enough here (the shipped config asks for 10).
    let s = Service::start(
        &tmp.path().join("store"),
        &[
            ("RAILSCOPE__ENGINE__CALIBRATION_DIR", cal.as_str()),
            ("RAILSCOPE__CALIBRATION__MIN_REVIEWS_PER_CLASS", "3"),
        ],
    );
    let mut defects = Vec::new();
    for img in reference_scores() {
        let bytes = std::fs::read(root().join(img["path"].as_str().unwrap())).unwrap();
        let r = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &bytes, &[]);
        if r.json["verdict"] == "defect" {
            defects.push((
                r.json["id"].as_i64().unwrap(),
                r.json["A_norm"].as_f64().unwrap(),
                (),
            ));
        }
    }
    assert!(
        defects.len() >= 6,
        "enough flagged fixtures to review: {defects:?}"
    );
    let proposal_url = s.url("/v1/cameras/cam-01/calibration/proposal");
    assert!(get(&proposal_url, Some(INSPECTOR)).json["proposed"].is_null());

    // Camera keys cannot review; inspectors can. The inspector finds the three weakest alarms
    // false, as happens when a threshold sits too low for a camera.
    defects.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (first, _, _) = defects[0];
    let review_url = |id: i64| s.url(&format!("/v1/inspections/{id}/review"));
    assert_eq!(
        post_json(
            &review_url(first),
            Some(CAM1_KEY),
            &json!({"state": "confirmed"})
        )
        .status,
        403
    );
    assert_eq!(
        post_json(
            &review_url(first),
            Some(INSPECTOR),
            &json!({"state": "maybe"})
        )
        .status,
        400
    );
    for (k, (id, _, _)) in defects.iter().enumerate() {
        let state = if k < 3 { "false_alarm" } else { "confirmed" };
        let r = post_json(
            &review_url(*id),
            Some(INSPECTOR),
            &json!({"state": state, "note": "checked on site"}),
        );
        assert_eq!(r.status, 200, "{}", r.json);
        assert_eq!(r.json["review"]["state"], state);
        assert_eq!(r.json["review"]["reviewer"], "inspector");
    }
    let queue = get(
        &s.url("/v1/inspections?verdict=defect&review=unreviewed"),
        Some(INSPECTOR),
    );
    assert!(
        queue.json["items"].as_array().unwrap().is_empty(),
        "every defect reviewed"
    );

    let p = get(&proposal_url, Some(INSPECTOR));
    assert_eq!(p.status, 200);
    let proposed = p.json["proposed"]["threshold"]
        .as_f64()
        .expect("a proposal after reviews");
    let current = p.json["current"]["threshold"].as_f64().unwrap();
    assert!(
        proposed > current,
        "false alarms above the threshold push it up: {}",
        p.json
    );
    let eff = &p.json["effect"];
    assert!(
        eff["proposed"]["fp"].as_u64() < eff["current"]["fp"].as_u64(),
        "{eff}"
    );
    let far = get(
        &s.url("/v1/cameras/cam-01/calibration/proposal?method=false_alarm_rate&target_far=0"),
        Some(INSPECTOR),
    );
    assert_eq!(far.json["method"], "false_alarm_rate");
    assert_eq!(far.json["effect"]["proposed"]["fp"], 0);
    assert_eq!(
        far.json["effect"]["proposed"]["tp"].as_u64().unwrap() as usize,
        defects.len() - 3
    );

    // Applying needs the admin token; then the next frame is judged with the new threshold.
    let put_url = s.url("/v1/cameras/cam-01/calibration");
    assert_eq!(
        put_json(&put_url, Some(INSPECTOR), &json!({"threshold": proposed})).status,
        403
    );
    assert_eq!(
        put_json(&put_url, Some(ADMIN), &json!({"threshold": "high"})).status,
        400
    );
    let r = put_json(&put_url, Some(ADMIN), &json!({"threshold": proposed}));
    assert_eq!(r.status, 200, "{}", r.json);
    // Kept in the database with its audit entry (tests/service_calibration.rs), not as a file.
    assert!(!std::path::Path::new(&cal)
        .join("nested-edgan.cam-01.json")
        .exists());
    let good = fixture("test/good/000000.png");
    let after = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &good, &[]);
    assert_eq!(after.json["threshold"].as_f64(), Some(proposed));
    let other = post_frame(
        &s,
        "cam-02",
        Some("demo-key-cam-02"),
        "image/png",
        &good,
        &[],
    );
    assert_eq!(
        other.json["threshold"].as_f64(),
        Some(current),
        "other cameras keep theirs"
    );
    let cams = get(&s.url("/v1/cameras"), Some(INSPECTOR));
    let c1 = &cams.json["cameras"][0];
    assert_eq!(c1["calibration"]["threshold"].as_f64(), Some(proposed));
    // The answer says the threshold was applied, and by whom; cam-02 names its file relative
    // to the calibration folder (outside the working directory), never the absolute path.
    assert_eq!(c1["calibration"]["origin"], "applied", "{c1}");
    assert!(
        c1["calibration"]["source"]
            .as_str()
            .unwrap()
            .starts_with("applied by admin at "),
        "{c1}"
    );
    let c2 = &cams.json["cameras"][1];
    assert_eq!(
        (&c2["calibration"]["origin"], &c2["calibration"]["source"]),
        (&json!("default"), &json!("nested-edgan.json")),
        "{c2}"
    );
    assert!(!cams.bytes.windows(cal.len()).any(|w| w == cal.as_bytes()));
}

#[test]
fn dashboard_login_cookie_authorizes_reads_and_events_stream_new_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    // A camera key and an unknown token get the same answer: nothing to tell them apart.
    let unknown = post_json(&s.url("/v1/login"), None, &json!({"token": "wrong-token"}));
    let camera = post_json(&s.url("/v1/login"), None, &json!({"token": CAM1_KEY}));
    assert_eq!(unknown.status, 401);
    assert_eq!(
        (camera.status, &camera.bytes),
        (unknown.status, &unknown.bytes)
    );
    let login = agent()
        .post(&s.url("/v1/login"))
        .set("Content-Type", "application/json")
        .send_string(&json!({"token": INSPECTOR}).to_string())
        .unwrap();
    let cookie = login.header("Set-Cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    assert!(
        !cookie.contains(INSPECTOR),
        "the cookie holds a session id, not the token"
    );
    let me = agent()
        .get(&s.url("/v1/me"))
        .set("Cookie", &pair)
        .call()
        .unwrap();
    let me: Value = serde_json::from_str(&me.into_string().unwrap()).unwrap();
    assert_eq!(me["role"], "inspector");

    // The dashboard's live stream, authorized by the cookie alone.
    let events = ureq::AgentBuilder::new()
        .timeout_read(Duration::from_secs(20))
        .build()
        .get(&s.url("/v1/events"))
        .set("Cookie", &pair)
        .call()
        .unwrap();
    assert_eq!(events.content_type(), "text/event-stream");
    let mut lines = BufReader::new(events.into_reader()).lines();
    let posted = post_frame(
        &s,
        "cam-01",
        Some(CAM1_KEY),
        "image/png",
        &fixture("test/good/000001.png"),
        &[("X-Frame-Id", "live-1")],
    );
    assert_eq!(posted.status, 200);
    let mut got = None;
    while let Some(Ok(line)) = lines.next() {
        if let Some(data) = line.strip_prefix("data: ") {
            got = Some(serde_json::from_str::<Value>(data).unwrap());
            break;
        }
    }
    let ev = got.expect("an inspection event");
    assert_eq!(ev["id"], posted.json["id"]);
    assert_eq!(ev["frame_id"], "live-1");

    // Logging out ends the session: the old cookie no longer authorizes anything.
    let out = agent()
        .post(&s.url("/v1/logout"))
        .set("Cookie", &pair)
        .call()
        .unwrap();
    assert_eq!(out.status(), 204);
    let after = match agent().get(&s.url("/v1/me")).set("Cookie", &pair).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(after, 401);

    // The dashboard itself is served.
    if root().join("web/index.html").is_file() {
        let page = get(&s.url("/"), None);
        assert_eq!(page.status, 200);
        assert!(page.content_type.starts_with("text/html"));
        assert_eq!(
            get(&s.url("/tests/"), None).status,
            404,
            "test files are not served"
        );
    }
}

fn multipart(parts: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "railscope-test-boundary-7d3f";
    let mut body = Vec::new();
    for (name, ct, bytes) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: {ct}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn multipart_frames_carry_their_metadata_part() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    let img = fixture("test/good/000005.png");
    let meta = br#"{"frame_id": "mp-1", "capture_time": "2026-11-23T09:30:00Z", "track_id": "L2", "position_m": 88.2, "speed_kmh": 60}"#;
    let (ct, body) = multipart(&[
        ("metadata", "application/json", meta),
        ("image", "image/png", &img),
    ]);
    let r = post_frame(&s, "cam-01", Some(CAM1_KEY), &ct, &body, &[]);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        (r.json["frame_id"].as_str(), r.json["track_id"].as_str()),
        (Some("mp-1"), Some("L2"))
    );
    assert_eq!(
        (r.json["position_m"].as_f64(), r.json["speed_kmh"].as_f64()),
        (Some(88.2), Some(60.0))
    );
    assert_eq!(r.json["capture_time"], "2026-11-23T09:30:00.000Z");
    // Same score as the raw-body post of the same image.
    let raw = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &img, &[]);
    assert_eq!(raw.json["A"], r.json["A"]);

    for (what, parts, code) in [
        (
            "no image part",
            vec![("metadata", "application/json", &meta[..])],
            "bad_request",
        ),
        (
            "metadata not JSON",
            vec![
                ("metadata", "application/json", &b"frame=1"[..]),
                ("image", "image/png", &img[..]),
            ],
            "bad_request",
        ),
        (
            "unknown part",
            vec![("picture", "image/png", &img[..])],
            "bad_request",
        ),
        (
            "image part not an image",
            vec![("image", "image/png", &b"GIF89a"[..])],
            "bad_image",
        ),
    ] {
        let (ct, body) = multipart(&parts);
        let r = post_frame(&s, "cam-01", Some(CAM1_KEY), &ct, &body, &[]);
        assert_eq!(r.json["error"]["code"], code, "{what}: {}", r.json);
    }
}

#[test]
fn a_camera_with_its_own_roi_and_templates_scores_every_fastener_of_a_track_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(root().join("config/railscope.toml")).unwrap();
    let cfg = base.replace(
        "api_key = \"demo-key-cam-01\"",
        "api_key = \"demo-key-cam-01\"\nroi = \"search\"\ntemplates_dir = \"tests/fixtures/fasteners/train/good\"",
    );
    assert_ne!(cfg, base);
    let cfg_path = tmp.path().join("railscope.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let s = Service::start_with_config(&tmp.path().join("store"), Some(&cfg_path), &[]);
    let frame =
        std::fs::read(root().join("tests/fixtures/fasteners/frames/frame_000.png")).unwrap();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/fasteners/frames/boxes.json"))
            .unwrap(),
    )
    .unwrap();
    let r = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &frame, &[]);
    assert_eq!(r.status, 200, "{}", r.json);
    let crops = r.json["crops"].as_array().unwrap();
    let truth = expected["frame_000.png"].as_array().unwrap();
    assert_eq!(
        crops.len(),
        truth.len(),
        "one crop per fastener of the frame: {}",
        r.json
    );
    // Every true fastener has a crop on it (IoU ≥ 0.5).
    let iou = |a: &Value, b: &Value| {
        let f = |v: &Value, k: usize| v[k].as_f64().unwrap();
        let (ax, ay, aw, ah) = (f(a, 0), f(a, 1), f(a, 2), f(a, 3));
        let (bx, by, bw, bh) = (f(b, 0), f(b, 1), f(b, 2), f(b, 3));
        let w = ((ax + aw).min(bx + bw) - ax.max(bx)).max(0.0);
        let h = ((ay + ah).min(by + bh) - ay.max(by)).max(0.0);
        w * h / (aw * ah + bw * bh - w * h)
    };
    for t in truth {
        assert!(
            crops.iter().any(|c| iou(&c["box"], &t["box"]) >= 0.5),
            "no crop on {t}: {}",
            r.json
        );
    }
    // The other cameras keep the model's whole-frame ROI: one crop.
    let other = post_frame(
        &s,
        "cam-02",
        Some("demo-key-cam-02"),
        "image/png",
        &frame,
        &[],
    );
    assert_eq!(other.json["crops"].as_array().unwrap().len(), 1);
}

/// Routes the service does not have, methods a route does not answer, bodies over an extractor's
/// limit: all in the JSON error format; security headers on every response; metadata errors
/// name the value where it came from; rejection reasons have their own labels.
#[test]
fn contract_errors_security_headers_and_metadata_sources() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    let err = |r: &Resp, status: u16, code: &str, what: &str| {
        assert_eq!(
            r.status,
            status,
            "{what}: {:?}",
            String::from_utf8_lossy(&r.bytes)
        );
        assert_eq!(r.content_type, "application/json", "{what}");
        assert_eq!(r.json["error"]["code"], code, "{what}: {}", r.json);
        assert!(r.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    };
    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/v1/nope"),
        ("POST", "/v1/nope"),
        ("DELETE", "/admin"),
    ] {
        err(
            &request(method, &s.url(path), None, b""),
            404,
            "not_found",
            path,
        );
    }
    for (method, path, allow) in [
        ("GET", "/v1/login", "POST"),
        ("DELETE", "/v1/inspections", "GET"),
        ("GET", "/v1/cameras/cam-01/frames", "POST"),
        ("POST", "/healthz", "GET"),
        ("POST", "/index.html", "GET, HEAD"),
    ] {
        let r = request(method, &s.url(path), Some(INSPECTOR), b"{}");
        err(&r, 405, "method_not_allowed", path);
        assert_eq!(r.header("allow"), Some(allow), "{path}");
    }
    // Over the JSON endpoints' body limit: 413 as JSON, not actix's plain text.
    let big = vec![b' '; 300_000];
    err(
        &request("POST", &s.url("/v1/login"), None, &big),
        413,
        "payload_too_large",
        "login",
    );
    err(
        &request(
            "POST",
            &s.url("/v1/inspections/1/review"),
            Some(INSPECTOR),
            &big,
        ),
        413,
        "payload_too_large",
        "review",
    );
    // Security headers on every kind of response: API, error, probe, dashboard.
    for (path, token) in [
        ("/v1/cameras", Some(INSPECTOR)),
        ("/v1/cameras", None),
        ("/nope", None),
        ("/healthz", None),
        ("/metrics", None),
        ("/", None),
        ("/app.js", None),
    ] {
        let r = get(&s.url(path), token);
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        let csp = r.header("content-security-policy").unwrap_or("");
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
    }
    // Metadata errors name the value where it came from.
    let good = fixture("test/good/000000.png");
    let r = agent()
        .post(&s.url("/v1/cameras/cam-01/frames?position_m=abc"))
        .set("Authorization", &format!("Bearer {CAM1_KEY}"))
        .set("Content-Type", "image/png")
        .send_bytes(&good);
    let r = match r {
        Err(ureq::Error::Status(_, r)) => r.into_string().unwrap(),
        other => panic!("expected a 400, got {other:?}"),
    };
    assert!(
        r.contains("query parameter position_m") && !r.contains("X-Track-Position-M"),
        "{r}"
    );
    let r = post_frame(
        &s,
        "cam-01",
        Some(CAM1_KEY),
        "image/png",
        &good,
        &[("X-Track-Position-M", "abc")],
    );
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("header X-Track-Position-M"),
        "{}",
        r.json
    );
    // Each rejection reason is its own series from the first scrape.
    let text = String::from_utf8(get(&s.url("/metrics"), None).bytes).unwrap();
    for reason in ["queue_full", "not_ready", "internal", "bad_request"] {
        assert!(
            text.contains(&format!(
                "railscope_rejected_frames_total{{reason=\"{reason}\"}}"
            )),
            "{reason}"
        );
    }
    assert_eq!(
        metric(
            &text,
            "railscope_rejected_frames_total{reason=\"bad_request\"}"
        ),
        2.0
    );
}

/// Issue 12: a threshold outside 0 < t <= 10 (or not a finite number) is refused with the
/// JSON 400 and nothing is written; a sane one is applied.
#[test]
fn an_applied_threshold_outside_the_sane_range_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let cal = calibration_copy(tmp.path()).display().to_string();
    let s = Service::start(
        &tmp.path().join("store"),
        &[("RAILSCOPE__ENGINE__CALIBRATION_DIR", cal.as_str())],
    );
    let written = std::path::Path::new(&cal).join("nested-edgan.cam-01.json");
    let before_file = std::fs::read(&written).ok();
    let threshold_now = || {
        listed_camera(&s, "cam-01")["calibration"]["threshold"]
            .as_f64()
            .unwrap()
    };
    let old = threshold_now();
    let put_url = s.url("/v1/cameras/cam-01/calibration");
    for bad in [-1.0, 0.0, 1e308, 10.5, -1e-9] {
        let r = put_json(&put_url, Some(ADMIN), &json!({ "threshold": bad }));
        assert_eq!(r.status, 400, "threshold {bad}: {}", r.json);
        assert_eq!(r.json["error"]["code"], "bad_request", "{}", r.json);
        let msg = r.json["error"]["message"].as_str().unwrap();
        assert!(msg.contains("threshold"), "{msg}");
        assert!(msg.contains("10"), "names the range: {msg}");
        assert_eq!(
            threshold_now(),
            old,
            "threshold {bad} left the calibration alone"
        );
    }
    // Not finite: JSON cannot carry NaN or infinity, so they arrive as out-of-range literals.
    for raw in [
        &br#"{"threshold": 1e999}"#[..],
        br#"{"threshold": NaN}"#,
        br#"{"threshold": -Infinity}"#,
    ] {
        let r = agent()
            .put(&put_url)
            .set("Authorization", &format!("Bearer {ADMIN}"))
            .set("Content-Type", "application/json")
            .send_bytes(raw);
        let r = finish(r);
        assert_eq!(
            r.status,
            400,
            "{}: {}",
            String::from_utf8_lossy(raw),
            r.json
        );
        assert_eq!(r.json["error"]["code"], "bad_request");
        assert_eq!(threshold_now(), old);
    }
    assert_eq!(
        std::fs::read(&written).ok(),
        before_file,
        "no calibration file written for a refused threshold"
    );
    let audit = get(&s.url("/v1/calibration/audit"), Some(INSPECTOR));
    assert_eq!(
        audit.json["items"],
        json!([]),
        "a refused threshold is not a change"
    );

    let good = 0.2;
    let r = put_json(&put_url, Some(ADMIN), &json!({ "threshold": good }));
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["threshold"].as_f64(), Some(good));
    assert_eq!(threshold_now(), good);
    let audit = get(&s.url("/v1/calibration/audit"), Some(INSPECTOR));
    assert_eq!(audit.json["items"][0]["new_threshold"].as_f64(), Some(good));
    let top = put_json(&put_url, Some(ADMIN), &json!({ "threshold": 10.0 }));
    assert_eq!(
        top.status, 200,
        "10 is the inclusive upper bound: {}",
        top.json
    );
}

/// Issue 12: `min_score` keeps the inspections with A_norm >= min_score and drops those
/// without an A_norm; a non-number is a 400.
#[test]
fn min_score_lists_only_inspections_at_or_above_it() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    let mut scores = Vec::new();
    for img in reference_scores().iter().take(6) {
        let bytes = std::fs::read(root().join(img["path"].as_str().unwrap())).unwrap();
        let r = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &bytes, &[]);
        assert!(r.status == 200 || r.status == 201, "{}", r.json);
        scores.push((
            r.json["id"].as_i64().unwrap(),
            r.json["A_norm"].as_f64().expect("scored"),
        ));
    }
    let mut sorted: Vec<f64> = scores.iter().map(|s| s.1).collect();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    assert!(sorted.len() >= 3, "distinct scores to split: {sorted:?}");
    // Exactly one of the scores as the bound (inclusive), and one between two scores.
    for min in [sorted[sorted.len() / 2], (sorted[0] + sorted[1]) / 2.0] {
        let r = get(
            &s.url(&format!("/v1/inspections?min_score={min}&limit=500")),
            Some(INSPECTOR),
        );
        assert_eq!(r.status, 200, "{}", r.json);
        let mut got: Vec<i64> = r.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                assert!(i["A_norm"].as_f64().unwrap() >= min, "{i}");
                i["id"].as_i64().unwrap()
            })
            .collect();
        got.sort();
        let mut want: Vec<i64> = scores.iter().filter(|s| s.1 >= min).map(|s| s.0).collect();
        want.sort();
        assert_eq!(got, want, "min_score={min} over {scores:?}");
        assert!(want.len() < scores.len() && !want.is_empty());
    }
    let all = get(&s.url("/v1/inspections?limit=500"), Some(INSPECTOR));
    assert_eq!(all.json["items"].as_array().unwrap().len(), scores.len());
    for bad in ["abc", "NaN", "inf", "-inf", "1e999"] {
        let r = get(
            &s.url(&format!("/v1/inspections?min_score={bad}")),
            Some(INSPECTOR),
        );
        assert_eq!(r.status, 400, "min_score={bad:?}: {}", r.json);
        assert_eq!(r.json["error"]["code"], "bad_request");
        assert!(
            r.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("min_score"),
            "{}",
            r.json
        );
    }
}

/// `railscope simulate` says what it sent against what came back (the demo's "flagged 9.4 % of
/// frames, 8.8 % were sent defective"): its truth counts add up to the answered frames and to the
/// verdicts, and agree with what the service stored and with each fixture's reference verdict.
#[test]
fn the_simulator_reports_what_it_flagged_against_what_it_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    let mut c = common::bin();
    c.args([
        "simulate",
        "--url",
        &s.url(""),
        "--cameras",
        "2",
        "--fps",
        "0",
    ])
    .args([
        "--frames",
        "60",
        "--synthetic",
        "--defect-rate",
        "0.5",
        "--json",
    ]);
    let (code, stdout, stderr) = common::run(c);
    assert_eq!(code, 0, "{stderr}");
    let report: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let n = |k: &str| report["truth"][k].as_u64().unwrap_or(0);
    let (df, dp, nf, np) = (
        n("defect_flagged"),
        n("defect_passed"),
        n("normal_flagged"),
        n("normal_passed"),
    );
    assert_eq!(report["answered"].as_u64(), Some(60), "{report}");
    assert_eq!(df + dp + nf + np, 60, "{report}");
    assert_eq!(
        Some(df + nf),
        report["verdicts"]["defect"].as_u64(),
        "{report}"
    );
    assert!(
        df + dp > 10 && nf + np > 10,
        "both kinds sent at --defect-rate 0.5: {report}"
    );
    // The shipped model flags most fixture defects and few fixture normals (reference verdicts).
    let refs = reference_scores();
    let share = |good: bool| {
        let k: Vec<_> = refs
            .iter()
            .filter(|i| i["path"].as_str().unwrap().contains("/good/") == good)
            .collect();
        k.iter().filter(|i| i["verdict"] == "defect").count() as f64 / k.len() as f64
    };
    assert!(
        df as f64 / (df + dp) as f64 > share(false) - 0.35,
        "{report}"
    );
    assert!(
        (nf as f64 / (nf + np) as f64) < share(true) + 0.35,
        "{report}"
    );
    let stored = get(
        &s.url("/v1/inspections?verdict=defect&limit=500"),
        Some(INSPECTOR),
    );
    assert_eq!(
        stored.json["items"].as_array().unwrap().len() as u64,
        df + nf
    );
    // A second run sends new frames (its frame ids are its own), not repeats the service would
    // answer from the store: every frame of both runs is stored.
    let mut again = common::bin();
    again
        .args([
            "simulate",
            "--url",
            &s.url(""),
            "--cameras",
            "2",
            "--fps",
            "0",
        ])
        .args(["--frames", "20", "--synthetic", "--json"]);
    let (code, _, stderr) = common::run(again);
    assert_eq!(code, 0, "{stderr}");
    let all = get(&s.url("/v1/inspections?limit=1"), Some(INSPECTOR));
    assert_eq!(all.json["total"].as_u64(), Some(80), "{}", all.json);
}

/// CSRF protection beyond SameSite (issue 12 item 5): a state-changing request a browser sends
/// from another origin is refused with 403 `forbidden_origin` before anything happens, the same
/// request from the service's own origin or without an Origin (a program) goes through, and the
/// JSON endpoints take only `Content-Type: application/json` (415 otherwise: a cross-site form
/// can send text/plain or form data without a preflight, never JSON).
#[test]
fn foreign_origins_and_non_json_bodies_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    let r = post_frame(
        &s,
        "cam-01",
        Some(CAM1_KEY),
        "image/png",
        &fixture("test/good/000001.png"),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let id = r.json["id"].as_i64().unwrap();
    let review_url = s.url(&format!("/v1/inspections/{id}/review"));
    let review = |origin: Option<&str>, content_type: &str| {
        let mut q = agent()
            .post(&review_url)
            .set("Authorization", &format!("Bearer {INSPECTOR}"))
            .set("Content-Type", content_type);
        if let Some(o) = origin {
            q = q.set("Origin", o);
        }
        finish(q.send_string(r#"{"state": "false_alarm", "note": "csrf test"}"#))
    };
    for origin in [
        "http://evil.example",
        "null",
        &format!("http://127.0.0.1:{}0", s.port),
    ] {
        let r = review(Some(origin), "application/json");
        assert_eq!(r.status, 403, "{origin}: {}", r.json);
        assert_eq!(r.json["error"]["code"], "forbidden_origin", "{origin}");
    }
    let login = finish(
        agent()
            .post(&s.url("/v1/login"))
            .set("Origin", "http://evil.example")
            .set("Content-Type", "application/json")
            .send_string(&json!({"token": INSPECTOR}).to_string()),
    );
    assert_eq!(login.status, 403, "{}", login.json);
    assert!(login.header("set-cookie").is_none());
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = review(None, ct);
        assert_eq!(r.status, 415, "{ct}: {}", r.json);
        assert_eq!(r.json["error"]["code"], "unsupported_media_type");
    }
    // Nothing of the refused requests was recorded.
    let i = get(&s.url(&format!("/v1/inspections/{id}")), Some(INSPECTOR));
    assert!(i.json["review"].is_null(), "{}", i.json);
    // Same origin (the dashboard) and no origin (a program) go through.
    let own = review(
        Some(&format!("http://127.0.0.1:{}", s.port)),
        "application/json; charset=utf-8",
    );
    assert_eq!(own.status, 200, "{}", own.json);
    let program = review(None, "application/json");
    assert_eq!(program.status, 200, "{}", program.json);
    // Reads are not affected by a foreign Origin (CORS governs what a page may read).
    let read = finish(
        agent()
            .get(&s.url("/v1/cameras"))
            .set("Authorization", &format!("Bearer {INSPECTOR}"))
            .set("Origin", "http://evil.example")
            .call(),
    );
    assert_eq!(read.status, 200);
}

//! Issue 12, "calibration that cannot mislead", against the real binary and a real SQLite file:
//! one precedence of calibration sources that holds across reload and restart (an applied
//! threshold outranks the files until it is cleared, and `/v1/cameras` names the true source),
//! an audit entry for every threshold change, proposals only from reviews of the model version
//! in service and only from `calibration.min_reviews_per_class` reviews of each kind, and a
//! proposed threshold that is applied exactly as proposed.

mod common;
#[path = "service/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

use common::root;
use harness::*;
use serde_json::{json, Value};

fn camera(s: &Service, id: &str) -> Value {
    listed_camera(s, id)["calibration"].clone()
}

fn audit(s: &Service, camera: &str) -> Vec<Value> {
    let r = get(
        &s.url(&format!("/v1/calibration/audit?camera={camera}")),
        Some(INSPECTOR),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    r.json["items"].as_array().unwrap().clone()
}

/// The threshold a frame of `camera` is judged with now.
fn judged_threshold(s: &Service, camera: &str) -> f64 {
    post_good_frame(s, camera)["threshold"].as_f64().unwrap()
}

fn reload(s: &Service) {
    let r = post_json(&s.url("/admin/reload"), Some(ADMIN), &json!({}));
    assert_eq!(r.status, 200, "{}", r.json);
}

/// The repo's config with cam-01 naming its own calibration file.
fn config_with_camera_file(dir: &Path, cam01_file: &Path) -> PathBuf {
    let base = std::fs::read_to_string(root().join("config/railscope.toml")).unwrap();
    let cfg = base.replacen(
        "api_key = \"demo-key-cam-01\"",
        &format!(
            "api_key = \"demo-key-cam-01\"\ncalibration = \"{}\"",
            cam01_file.display()
        ),
        1,
    );
    assert_ne!(cfg, base, "cam-01's entry is in config/railscope.toml");
    let path = dir.join("railscope.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// The documented order (docs/scoring.md): an applied threshold, then the camera's config
/// file, then `<model>.<camera>.json`, then `<model>.json` — across reloads, SIGHUP and
/// restarts, until the applied threshold is cleared; every change is in the audit.
#[test]
fn an_applied_threshold_outranks_the_calibration_files_across_reload_and_restart_until_cleared() {
    let tmp = tempfile::tempdir().unwrap();
    let cal = calibration_copy(tmp.path());
    let cam01_file = cal.join("cam-01-site-survey.json");
    write_calibration("nested-edgan", &cam01_file, 0.31);
    let cam02_file = cal.join("nested-edgan.cam-02.json");
    write_calibration("nested-edgan", &cam02_file, 0.29);
    let cfg = config_with_camera_file(tmp.path(), &cam01_file);
    let cal_env = cal.display().to_string();
    let mut s = Service::start_with_config(
        &tmp.path().join("store"),
        Some(&cfg),
        &[("RAILSCOPE__ENGINE__CALIBRATION_DIR", cal_env.as_str())],
    );
    // the shipped calibration's threshold, read rather than repeated (it changes with the model)
    let shipped: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("calibration/nested-edgan.json")).unwrap(),
    )
    .unwrap();
    let default_threshold = shipped["threshold"].as_f64().unwrap();

    // Each camera names where its calibration comes from.
    let c1 = camera(&s, "cam-01");
    assert_eq!(
        (&c1["origin"], &c1["source"], c1["threshold"].as_f64()),
        (
            &json!("config"),
            &json!("cam-01-site-survey.json"),
            Some(0.31)
        ),
        "{c1}"
    );
    let c2 = camera(&s, "cam-02");
    assert_eq!(
        (&c2["origin"], &c2["source"], c2["threshold"].as_f64()),
        (
            &json!("camera_file"),
            &json!("nested-edgan.cam-02.json"),
            Some(0.29)
        ),
        "{c2}"
    );
    let c3 = camera(&s, "cam-03");
    assert_eq!(
        (&c3["origin"], &c3["source"], c3["threshold"].as_f64()),
        (
            &json!("default"),
            &json!("nested-edgan.json"),
            Some(default_threshold)
        ),
        "{c3}"
    );
    assert!(c1["applied"].is_null());
    assert!(audit(&s, "cam-01").is_empty(), "nothing changed yet");
    assert_eq!(judged_threshold(&s, "cam-01"), 0.31);

    // Out of range: refused, nothing applied, nothing audited.
    let put_url = s.url("/v1/cameras/cam-01/calibration");
    for bad in [0.0, -0.1, 10.5] {
        let r = put_json(&put_url, Some(ADMIN), &json!({ "threshold": bad }));
        assert_eq!(r.status, 400, "{bad}: {}", r.json);
    }
    assert_eq!(camera(&s, "cam-01")["threshold"].as_f64(), Some(0.31));
    assert!(audit(&s, "cam-01").is_empty());
    // Inspectors read the audit but change nothing.
    let r = put_json(&put_url, Some(INSPECTOR), &json!({ "threshold": 0.2 }));
    assert_eq!(r.status, 403, "{}", r.json);
    assert_eq!(
        request("DELETE", &put_url, Some(INSPECTOR), b"").status,
        403
    );

    // An admin applies 0.2: it wins over the camera's config file.
    let r = put_json(
        &put_url,
        Some(ADMIN),
        &json!({ "threshold": 0.2, "reason": "best F1 proposal from site reviews" }),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["origin"], "applied", "{}", r.json);
    let applied_source = r.json["source"].as_str().unwrap().to_string();
    assert!(
        applied_source.starts_with("applied by admin at "),
        "{applied_source}"
    );
    assert_eq!(r.json["applied"]["by"], "admin");
    let applied_id = r.json["applied"]["audit_id"].as_i64().unwrap();
    assert_eq!(camera(&s, "cam-01"), r.json);
    assert_eq!(judged_threshold(&s, "cam-01"), 0.2);
    assert!(
        !cal.join("nested-edgan.cam-01.json").exists(),
        "an applied threshold lives in the database, not in a calibration file"
    );
    let entries = audit(&s, "cam-01");
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e["id"].as_i64(), Some(applied_id));
    assert_eq!(
        (
            &e["actor"],
            &e["action"],
            e["old_threshold"].as_f64(),
            e["new_threshold"].as_f64()
        ),
        (&json!("admin"), &json!("apply"), Some(0.31), Some(0.2)),
        "{e}"
    );
    assert_eq!(e["old_source"], "cam-01-site-survey.json");
    assert_eq!(e["new_source"], applied_source.as_str());
    assert_eq!(e["reason"], "best F1 proposal from site reviews");
    assert_eq!(e["model"]["name"], "nested-edgan");
    assert!(e["at"].as_str().unwrap().ends_with('Z'));

    // The config file changes on disk and the model is reloaded: the applied threshold stays
    // (and nothing changed for cam-01, so nothing is audited for it); cam-02's own file is
    // edited too, and that change is applied and audited.
    write_calibration("nested-edgan", &cam01_file, 0.33);
    write_calibration("nested-edgan", &cam02_file, 0.27);
    reload(&s);
    assert_eq!(camera(&s, "cam-01")["source"], applied_source.as_str());
    assert_eq!(camera(&s, "cam-01")["threshold"].as_f64(), Some(0.2));
    assert_eq!(judged_threshold(&s, "cam-01"), 0.2);
    assert_eq!(audit(&s, "cam-01").len(), 1);
    assert_eq!(camera(&s, "cam-02")["threshold"].as_f64(), Some(0.27));
    let e = &audit(&s, "cam-02")[0];
    assert_eq!(
        (
            &e["actor"],
            &e["action"],
            e["old_threshold"].as_f64(),
            e["new_threshold"].as_f64()
        ),
        (&json!("admin"), &json!("reload"), Some(0.29), Some(0.27)),
        "{e}"
    );
    assert_eq!(e["new_source"], "nested-edgan.cam-02.json");

    // SIGHUP and a restart (kill -9, a new process on the same database) keep it too.
    let reloads = |s: &Service| s.log_text().matches("model reloaded").count();
    let before = reloads(&s);
    s.signal("HUP");
    let t = std::time::Instant::now();
    while reloads(&s) == before {
        assert!(t.elapsed().as_secs() < 60, "no reload after SIGHUP");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(camera(&s, "cam-01")["source"], applied_source.as_str());
    s.kill9();
    write_calibration("nested-edgan", &cam02_file, 0.26); // changed while the service is down
    s.restart();
    let c1 = camera(&s, "cam-01");
    assert_eq!(
        (&c1["origin"], &c1["source"], c1["threshold"].as_f64()),
        (&json!("applied"), &json!(applied_source), Some(0.2)),
        "{c1}"
    );
    assert_eq!(c1["applied"]["audit_id"].as_i64(), Some(applied_id));
    assert_eq!(judged_threshold(&s, "cam-01"), 0.2);
    assert_eq!(audit(&s, "cam-01").len(), 1, "a restart changed nothing");
    let e = &audit(&s, "cam-02")[0];
    assert_eq!(
        (
            &e["actor"],
            &e["action"],
            e["old_threshold"].as_f64(),
            e["new_threshold"].as_f64()
        ),
        (&json!("service"), &json!("start"), Some(0.27), Some(0.26)),
        "a change made while the service was down is audited at start: {e}"
    );

    // Cleared: the config file (as edited meanwhile) is in force again, and that is audited.
    let r = request("DELETE", &put_url, Some(ADMIN), b"");
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        (
            &r.json["origin"],
            &r.json["source"],
            r.json["threshold"].as_f64()
        ),
        (
            &json!("config"),
            &json!("cam-01-site-survey.json"),
            Some(0.33)
        ),
        "{}",
        r.json
    );
    assert_eq!(judged_threshold(&s, "cam-01"), 0.33);
    let e = &audit(&s, "cam-01")[0];
    assert_eq!(
        (
            &e["actor"],
            &e["action"],
            e["old_threshold"].as_f64(),
            e["new_threshold"].as_f64()
        ),
        (&json!("admin"), &json!("clear"), Some(0.2), Some(0.33)),
        "{e}"
    );
    assert_eq!(e["old_source"], applied_source.as_str());
    assert_eq!(e["new_source"], "cam-01-site-survey.json");
    let again = request("DELETE", &put_url, Some(ADMIN), b"");
    assert_eq!(again.status, 404, "{}", again.json);
    assert!(again.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("cam-01-site-survey.json"));
    // And it stays cleared across a reload and a restart.
    reload(&s);
    assert_eq!(camera(&s, "cam-01")["origin"], "config");
    s.restart();
    assert_eq!(camera(&s, "cam-01")["threshold"].as_f64(), Some(0.33));
    assert_eq!(audit(&s, "cam-01").len(), 2);
    // The whole audit, newest first, across cameras.
    let all = get(&s.url("/v1/calibration/audit"), Some(INSPECTOR));
    let ids: Vec<i64> = all.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 4, "{}", all.json);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert_eq!(
        get(
            &s.url("/v1/calibration/audit?camera=cam-99"),
            Some(INSPECTOR)
        )
        .status,
        404
    );
    assert!(!s.log_text().contains("panicked"));
}

/// Posts every fixture image to cam-01 (the good ones `goods` times); returns `(id, A_norm,
/// is_good)`.
fn post_fixtures(s: &Service, goods: usize) -> Vec<(i64, f64, bool)> {
    let mut out = Vec::new();
    for img in reference_scores() {
        let good = img["label"] == 0;
        let bytes = std::fs::read(root().join(img["path"].as_str().unwrap())).unwrap();
        for _ in 0..if good { goods } else { 1 } {
            let r = post_frame(s, "cam-01", Some(CAM1_KEY), "image/png", &bytes, &[]);
            assert_eq!(r.status, 200, "{}", r.json);
            out.push((
                r.json["id"].as_i64().unwrap(),
                r.json["A_norm"].as_f64().unwrap(),
                good,
            ));
        }
    }
    out
}

fn review(s: &Service, id: i64, state: &str) {
    let r = post_json(
        &s.url(&format!("/v1/inspections/{id}/review")),
        Some(INSPECTOR),
        &json!({ "state": state }),
    );
    assert_eq!(r.status, 200, "{}", r.json);
}

fn proposal(s: &Service) -> Value {
    let r = get(
        &s.url("/v1/cameras/cam-01/calibration/proposal"),
        Some(INSPECTOR),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    r.json
}

/// With the shipped `min_reviews_per_class = 10`: nine reviews of a kind give no proposal and
/// say why; the tenth gives one, and applying it applies exactly that value, with no confirmed
/// defect at or below it unless the answer says how many.
#[test]
fn a_proposal_needs_the_minimum_reviews_per_class_and_is_applied_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let cal = calibration_copy(tmp.path()).display().to_string();
    let s = Service::start(
        &tmp.path().join("store"),
        &[("RAILSCOPE__ENGINE__CALIBRATION_DIR", cal.as_str())],
    );
    let frames = post_fixtures(&s, 2);
    let goods: Vec<_> = frames.iter().filter(|f| f.2).collect();
    let defects: Vec<_> = frames.iter().filter(|f| !f.2).collect();
    assert!(goods.len() >= 10 && defects.len() >= 10);
    for g in &goods[..9] {
        review(&s, g.0, "false_alarm");
    }
    for d in &defects[..10] {
        review(&s, d.0, "confirmed");
    }
    let p = proposal(&s);
    assert!(p["proposed"].is_null(), "{p}");
    assert!(p["effect"]["proposed"].is_null(), "{p}");
    assert_eq!(p["reason"], "too_few_reviews");
    assert_eq!(p["min_reviews_per_class"], 10);
    assert_eq!(p["reviewed"], json!({"confirmed": 10, "false_alarm": 9}));
    let msg = p["message"].as_str().unwrap();
    assert!(
        msg.contains("at least 10 confirmed defects and 10 false alarms")
            && msg.contains("have 10 confirmed, 9 false alarms"),
        "{msg}"
    );
    // The current threshold's effect is still shown, over the same reviewed frames.
    assert_eq!(
        p["effect"]["current"]["tp"].as_u64().unwrap()
            + p["effect"]["current"]["fn"].as_u64().unwrap(),
        10
    );
    assert_eq!(p["reviews"].as_array().unwrap().len(), 19);

    review(&s, goods[9].0, "false_alarm");
    let p = proposal(&s);
    assert!(p["reason"].is_null(), "{p}");
    let t = p["proposed"]["threshold"].as_f64().expect("a proposal");
    // The reviewed frames the proposal counted are listed, A′ under the calibration in force.
    let reviews = p["reviews"].as_array().unwrap();
    assert_eq!(reviews.len(), 20);
    let confirmed: Vec<f64> = reviews
        .iter()
        .filter(|r| r["state"] == "confirmed")
        .map(|r| r["A_norm"].as_f64().unwrap())
        .collect();
    let missed = confirmed.iter().filter(|&&a| a <= t).count();
    assert_eq!(p["missed_confirmed"].as_u64(), Some(missed as u64), "{p}");
    assert_eq!(p["effect"]["proposed"]["fn"].as_u64(), Some(missed as u64));
    if missed > 0 {
        assert!(
            p["message"]
                .as_str()
                .unwrap()
                .contains(&format!("would miss {missed} of 10 confirmed")),
            "{p}"
        );
    }
    // Each listed A′ is the stored frame's (one calibration throughout).
    for r in reviews {
        let f = frames
            .iter()
            .find(|f| f.0 == r["id"].as_i64().unwrap())
            .unwrap();
        assert!((f.1 - r["A_norm"].as_f64().unwrap()).abs() < 1e-12);
    }

    // Apply the value exactly as the answer carries it: that exact number is in force.
    let r = put_json(
        &s.url("/v1/cameras/cam-01/calibration"),
        Some(ADMIN),
        &json!({ "threshold": p["proposed"]["threshold"], "reason": "proposal" }),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["threshold"].as_f64().unwrap().to_bits(), t.to_bits());
    let now = camera(&s, "cam-01");
    assert_eq!(now["threshold"].as_f64().unwrap().to_bits(), t.to_bits());
    let after = proposal(&s);
    for k in ["tp", "fp", "fn", "tn"] {
        assert_eq!(
            after["effect"]["current"][k], p["effect"]["proposed"][k],
            "the applied threshold has the proposed effect ({k})"
        );
    }
    assert_eq!(audit(&s, "cam-01")[0]["new_threshold"].as_f64(), Some(t));
}

/// Reviews made while model version A was served are not used once version B is served (and
/// are used again when A is back): proposals count only the version in service.
#[test]
fn proposals_count_only_reviews_of_the_model_version_in_service() {
    let shipped = common::require_model();
    let tmp = tempfile::tempdir().unwrap();
    let cal = calibration_copy(tmp.path()).display().to_string();
    let package = |version: &str| {
        let pkg = tmp.path().join(format!("models-{version}/nested-edgan"));
        common::copy_package(&shipped, &pkg);
        let manifest = std::fs::read_to_string(pkg.join("manifest.toml")).unwrap();
        let marked = manifest.replacen(
            &common::shipped_version().0,
            &format!("version = \"{version}\""),
            1,
        );
        assert_ne!(marked, manifest);
        std::fs::write(pkg.join("manifest.toml"), marked).unwrap();
        pkg
    };
    let (pkg_a, pkg_b) = (package("1.0.0-a"), package("1.0.0-b"));
    let base = std::fs::read_to_string(root().join("config/railscope.toml")).unwrap();
    assert!(base.contains("model = \"models/nested-edgan\""));
    let cfg = tmp.path().join("railscope.toml");
    let serve = |pkg: &Path| {
        std::fs::write(
            &cfg,
            base.replacen(
                "model = \"models/nested-edgan\"",
                &format!("model = \"{}\"", pkg.display()),
                1,
            ),
        )
        .unwrap();
    };
    serve(&pkg_a);
    let s = Service::start_with_config(
        &tmp.path().join("store"),
        Some(&cfg),
        &[
            ("RAILSCOPE__ENGINE__CALIBRATION_DIR", cal.as_str()),
            ("RAILSCOPE__CALIBRATION__MIN_REVIEWS_PER_CLASS", "2"),
        ],
    );
    let ids = |p: &Value| -> Vec<i64> {
        let mut v: Vec<i64> = p["reviews"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        v.sort();
        v
    };

    // Under A: two false alarms and two confirmed defects give a proposal.
    let under_a = post_fixtures(&s, 1);
    let (goods, defects): (Vec<&(i64, f64, bool)>, Vec<_>) = under_a.iter().partition(|f| f.2);
    let reviewed_a = [goods[0].0, goods[1].0, defects[0].0, defects[1].0];
    review(&s, goods[0].0, "false_alarm");
    review(&s, goods[1].0, "false_alarm");
    review(&s, defects[0].0, "confirmed");
    review(&s, defects[1].0, "confirmed");
    let p = proposal(&s);
    assert_eq!(p["model"]["version"], "1.0.0-a");
    assert_eq!(p["reviewed"], json!({"confirmed": 2, "false_alarm": 2}));
    assert!(p["proposed"]["threshold"].is_f64(), "{p}");
    let mut want_a = reviewed_a.to_vec();
    want_a.sort();
    assert_eq!(ids(&p), want_a);

    // B is served: A's reviews no longer count.
    serve(&pkg_b);
    reload(&s);
    let p = proposal(&s);
    assert_eq!(p["model"]["version"], "1.0.0-b", "{p}");
    assert_eq!(
        p["reviewed"],
        json!({"confirmed": 0, "false_alarm": 0}),
        "{p}"
    );
    assert!(
        p["proposed"].is_null() && p["effect"]["current"].is_null(),
        "{p}"
    );
    assert_eq!(p["reason"], "too_few_reviews");
    assert!(p["reviews"].as_array().unwrap().is_empty());

    // Frames judged by B and reviewed: one of each is below the minimum of 2 …
    let under_b = post_fixtures(&s, 1);
    let (goods_b, defects_b): (Vec<&(i64, f64, bool)>, Vec<_>) = under_b.iter().partition(|f| f.2);
    review(&s, goods_b[0].0, "false_alarm");
    review(&s, defects_b[0].0, "confirmed");
    // … and a review of an A frame made now still belongs to A.
    review(&s, goods[2].0, "false_alarm");
    let p = proposal(&s);
    assert_eq!(
        p["reviewed"],
        json!({"confirmed": 1, "false_alarm": 1}),
        "{p}"
    );
    assert!(p["proposed"].is_null(), "{p}");
    assert!(p["message"].as_str().unwrap().contains("at least 2"), "{p}");
    let mut want_b = vec![goods_b[0].0, defects_b[0].0];
    want_b.sort();
    assert_eq!(ids(&p), want_b);
    let cur = &p["effect"]["current"];
    assert_eq!(
        ["tp", "fp", "fn", "tn"]
            .iter()
            .map(|k| cur[*k].as_u64().unwrap())
            .sum::<u64>(),
        2,
        "the current effect counts B's two reviews only: {cur}"
    );
    review(&s, goods_b[1].0, "false_alarm");
    review(&s, defects_b[1].0, "confirmed");
    let p = proposal(&s);
    assert_eq!(
        p["reviewed"],
        json!({"confirmed": 2, "false_alarm": 2}),
        "{p}"
    );
    assert!(p["proposed"]["threshold"].is_f64(), "{p}");
    assert!(ids(&p).iter().all(|id| under_b.iter().any(|f| f.0 == *id)));

    // A again: its own reviews (three false alarms now) and none of B's.
    serve(&pkg_a);
    reload(&s);
    let p = proposal(&s);
    assert_eq!(p["model"]["version"], "1.0.0-a");
    assert_eq!(
        p["reviewed"],
        json!({"confirmed": 2, "false_alarm": 3}),
        "{p}"
    );
    assert!(ids(&p).iter().all(|id| under_a.iter().any(|f| f.0 == *id)));
}

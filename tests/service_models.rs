//! Issue 11, "bring your own line", against the real binary and a real SQLite file: cameras on
//! different model packages in one process. Each camera's frames are judged, stored and answered
//! with its own model and that model's calibration; every package folder is loaded once; a
//! reload keeps the mapping or applies a changed one; a package that cannot be loaded refuses
//! the reload (the old models keep serving) or the start (naming the camera).

mod common;
#[path = "service/harness.rs"]
mod harness;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::root;
use harness::*;
use serde_json::{json, Value};

const TRACK: &str = "models/track-across-2mp";

/// The repo's config with `model = …` added to the cameras named in `models`.
fn config_with_models(path: &Path, models: &[(&str, &str)]) {
    let mut cfg = std::fs::read_to_string(root().join("config/railscope.toml")).unwrap();
    for (camera, model) in models {
        let key = format!("api_key = \"demo-key-{camera}\"");
        assert!(
            cfg.contains(&key),
            "{camera}'s entry is in config/railscope.toml"
        );
        cfg = cfg.replacen(&key, &format!("{key}\nmodel = \"{model}\""), 1);
    }
    std::fs::write(path, cfg).unwrap();
}

/// The models in service as `/readyz` lists them: (name, cameras), the service's first.
fn served(s: &Service) -> Vec<(String, Vec<String>)> {
    let r = get(&s.url("/readyz"), None);
    assert_eq!(r.status, 200, "{}", r.json);
    r.json["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let cameras = m["cameras"].as_array().unwrap();
            (
                m["name"].as_str().unwrap().to_string(),
                cameras
                    .iter()
                    .map(|c| c.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

fn names(models: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    models
        .iter()
        .map(|(m, cams)| (m.to_string(), cams.iter().map(|c| c.to_string()).collect()))
        .collect()
}

fn shipped_threshold(model: &str) -> f64 {
    let text = std::fs::read_to_string(root().join(format!("calibration/{model}.json"))).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["threshold"]
        .as_f64()
        .unwrap()
}

fn reload(s: &Service) -> Value {
    let r = post_json(&s.url("/admin/reload"), Some(ADMIN), &json!({}));
    assert_eq!(r.status, 200, "{}", r.json);
    r.json
}

/// Two cameras on the track package (one folder spelt two ways), two on the service's: answers,
/// stored inspections, `/v1/cameras`, `/readyz` and the metrics name each camera's model, its
/// verdicts use that model's calibration chain; reloads keep the mapping, apply a changed one,
/// or are refused as a whole.
#[test]
fn each_camera_is_judged_stored_and_calibrated_with_its_own_model_across_reloads() {
    let (_, nested_version) = common::shipped_version();
    let tmp = tempfile::tempdir().unwrap();
    let cal = calibration_copy(tmp.path());
    let cfg = tmp.path().join("railscope.toml");
    // cam-02 and cam-03 name one folder two ways: one package, loaded once.
    let track_abs = root().join(TRACK).display().to_string();
    config_with_models(&cfg, &[("cam-02", TRACK), ("cam-03", &track_abs)]);
    let s = Service::start_with_config(
        &tmp.path().join("store"),
        Some(&cfg),
        &[(
            "RAILSCOPE__ENGINE__CALIBRATION_DIR",
            &cal.display().to_string(),
        )],
    );
    let mapping = names(&[
        ("nested-edgan", &["cam-01", "cam-04"]),
        ("track-across-2mp", &["cam-02", "cam-03"]),
    ]);
    assert_eq!(served(&s), mapping);
    let ready = get(&s.url("/readyz"), None).json;
    assert_eq!(
        ready["model"]["name"], "nested-edgan",
        "the service's model: {ready}"
    );
    assert_eq!(ready["models"][1]["version"], "1.0.0", "{ready}");

    // Answers, stored inspections, the camera list and the metrics name each camera's model;
    // each verdict is reached with that model's calibration.
    for (camera, model, version) in [
        ("cam-01", "nested-edgan", nested_version.as_str()),
        ("cam-02", "track-across-2mp", "1.0.0"),
        ("cam-03", "track-across-2mp", "1.0.0"),
    ] {
        let want = json!({"name": model, "version": version});
        let answer = post_good_frame(&s, camera);
        assert_eq!(answer["model"], want, "{camera}: {answer}");
        assert_eq!(answer["threshold"].as_f64(), Some(shipped_threshold(model)));
        let id = answer["id"].as_i64().unwrap();
        let stored = get(&s.url(&format!("/v1/inspections/{id}")), Some(INSPECTOR));
        assert_eq!(stored.json["model"], want, "{camera}: {}", stored.json);
        let entry = listed_camera(&s, camera);
        assert_eq!(entry["model"], want, "{entry}");
        assert_eq!(
            entry["calibration"]["source"],
            format!("{model}.json"),
            "{entry}"
        );
        let text = String::from_utf8(get(&s.url("/metrics"), None).bytes).unwrap();
        let info = format!(
            "railscope_model_info{{camera=\"{camera}\",model=\"{model}\",provider=\"cpu\",version=\"{version}\"}}"
        );
        assert_eq!(metric(&text, &info), 1.0, "{info} in\n{text}");
    }
    let p = get(
        &s.url("/v1/cameras/cam-02/calibration/proposal"),
        Some(INSPECTOR),
    );
    assert_eq!(p.json["model"]["name"], "track-across-2mp", "{}", p.json);

    // Per-camera calibration files belong to a model: cam-02's file for its model applies, a
    // file for cam-03 under the service's model does not (cam-03 is judged by the track model).
    write_calibration(
        "track-across-2mp",
        &cal.join("track-across-2mp.cam-02.json"),
        0.61,
    );
    write_calibration("nested-edgan", &cal.join("nested-edgan.cam-03.json"), 0.37);
    let answer = reload(&s);
    assert_eq!(answer["not_applied"], json!([]), "{answer}");
    assert_eq!(answer["model"]["name"], "nested-edgan", "{answer}");
    assert_eq!(served(&s), mapping, "a reload keeps the mapping");
    let cam02 = listed_camera(&s, "cam-02")["calibration"].clone();
    assert_eq!(cam02["origin"], "camera_file", "{cam02}");
    assert_eq!(cam02["source"], "track-across-2mp.cam-02.json", "{cam02}");
    assert_eq!(
        post_good_frame(&s, "cam-02")["threshold"].as_f64(),
        Some(0.61)
    );
    assert_eq!(
        listed_camera(&s, "cam-03")["calibration"]["origin"],
        "default"
    );
    assert_eq!(
        post_good_frame(&s, "cam-03")["threshold"].as_f64(),
        Some(shipped_threshold("track-across-2mp"))
    );
    let audit = get(
        &s.url("/v1/calibration/audit?camera=cam-02"),
        Some(INSPECTOR),
    );
    let last = &audit.json["items"][0];
    assert_eq!(last["action"], "reload", "{last}");
    assert_eq!(last["model"]["name"], "track-across-2mp", "{last}");

    // A threshold applied to cam-02 is kept for cam-02 on its model only.
    let r = put_json(
        &s.url("/v1/cameras/cam-02/calibration"),
        Some(ADMIN),
        &json!({"threshold": 0.63}),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        post_good_frame(&s, "cam-02")["threshold"].as_f64(),
        Some(0.63)
    );
    assert_eq!(
        listed_camera(&s, "cam-03")["calibration"]["origin"],
        "default"
    );

    // The mapping changes on disk: a reload applies it (no restart), and cam-02's threshold
    // applied on the track model does not follow it to another model.
    config_with_models(
        &cfg,
        &[("cam-02", "models/skip-ganomaly"), ("cam-03", &track_abs)],
    );
    let answer = reload(&s);
    assert_eq!(answer["not_applied"], json!([]), "{answer}");
    let remapped = names(&[
        ("nested-edgan", &["cam-01", "cam-04"]),
        ("skip-ganomaly", &["cam-02"]),
        ("track-across-2mp", &["cam-03"]),
    ]);
    assert_eq!(served(&s), remapped);
    let answer = post_good_frame(&s, "cam-02");
    assert_eq!(answer["model"]["name"], "skip-ganomaly", "{answer}");
    assert_eq!(
        answer["threshold"].as_f64(),
        Some(shipped_threshold("skip-ganomaly"))
    );
    assert_eq!(
        post_good_frame(&s, "cam-03")["model"]["name"],
        "track-across-2mp"
    );
    assert_eq!(
        post_good_frame(&s, "cam-01")["model"]["name"],
        "nested-edgan"
    );

    // A package that cannot be loaded refuses the reload; the models in service go on.
    config_with_models(&cfg, &[("cam-02", "models/no-such-package")]);
    let r = post_json(&s.url("/admin/reload"), Some(ADMIN), &json!({}));
    assert_eq!(r.status, 500, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "reload_failed", "{}", r.json);
    let message = r.json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("cam-02") && message.contains("models/no-such-package"),
        "{message}"
    );
    assert_eq!(served(&s), remapped);
    assert_eq!(
        post_good_frame(&s, "cam-02")["model"]["name"],
        "skip-ganomaly"
    );
    assert_eq!(
        post_good_frame(&s, "cam-03")["model"]["name"],
        "track-across-2mp"
    );
}

/// A camera's own package that cannot be loaded is a start-up error naming the camera and the
/// folder, not a service running without it.
#[test]
fn a_camera_whose_package_cannot_be_loaded_stops_the_start_naming_the_camera() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("railscope.toml");
    config_with_models(&cfg, &[("cam-03", "models/no-such-package")]);
    let mut c = common::bin();
    c.arg("--config")
        .arg(&cfg)
        .arg("serve")
        .env("RAILSCOPE__STORAGE__PATH", tmp.path().join("store"))
        .env(
            "RAILSCOPE__SERVER__BIND",
            format!("127.0.0.1:{}", free_port()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn railscope serve");
    let t = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("railscope serve started with a camera whose model package is missing");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("\"cam-03\"") && err.contains("models/no-such-package"),
        "{err}"
    );
}

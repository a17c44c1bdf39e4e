//! `railscope infer` as a user runs it: one JSON line per image with every documented field,
//! consistent with the calibration file.

mod common;
use common::*;

#[test]
fn infer_a_folder_prints_one_consistent_line_per_image() {
    let model = require_model();
    let pkg = railscope::pipeline::package::ModelPackage::load(&model).unwrap();
    let cal_path = pkg
        .default_calibration_dir()
        .join(format!("{}.json", pkg.name()));
    let cal = railscope::pipeline::package::Calibration::load(&cal_path).unwrap();
    let folder = fixtures().join("test/good");
    let n = railscope::offline::dataset::images_in(&folder)
        .unwrap()
        .len();
    let mut c = bin();
    c.arg("infer")
        .arg("--model")
        .arg(&model)
        .arg("--batch")
        .arg("4")
        .arg(&folder);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), n);
    for v in &lines {
        for key in [
            "image",
            "A",
            "R",
            "L",
            "A_norm",
            "threshold",
            "verdict",
            "provider",
            "latency_ms",
            "crops",
        ] {
            assert!(v.get(key).is_some(), "missing {key}: {v}");
        }
        let (a, r, l) = (
            v["A"].as_f64().unwrap(),
            v["R"].as_f64().unwrap(),
            v["L"].as_f64().unwrap(),
        );
        let lambda = pkg.manifest.score.lambda;
        assert!((a - (lambda * r + (1.0 - lambda) * l)).abs() < 1e-12, "{v}");
        let a_norm = v["A_norm"].as_f64().unwrap();
        assert!(
            (a_norm - (a - cal.min) / (cal.max - cal.min)).abs() < 1e-12,
            "{v}"
        );
        assert_eq!(v["threshold"].as_f64().unwrap(), cal.threshold);
        assert_eq!(v["verdict"] == "defect", a_norm > cal.threshold, "{v}");
        assert_eq!(v["provider"], "cpu");
        assert_eq!(v["crops"].as_array().unwrap().len(), 1);
    }
}

/// Without `--model`, `infer --camera` judges with the model the service would give that camera:
/// its own `model` in [[cameras]], else `server.model`; `--model` still wins. Each line names it.
#[test]
fn infer_for_a_camera_uses_that_cameras_model() {
    require_model();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("railscope.toml");
    std::fs::write(
        &config,
        r#"
[server]
model = "models/nested-edgan"

[[cameras]]
id = "cam-own"
api_key = "key-own-camera"
model = "models/ganomaly"

[[cameras]]
id = "cam-shared"
api_key = "key-shared-camera"
"#,
    )
    .unwrap();
    let image = fixtures()
        .join("test/good")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let threshold = |name: &str| {
        railscope::pipeline::package::Calibration::load(
            &root().join(format!("calibration/{name}.json")),
        )
        .unwrap()
        .threshold
    };
    for (camera, model, expected) in [
        ("cam-own", None, "ganomaly"),
        ("cam-shared", None, "nested-edgan"),
        ("cam-own", Some("models/skip-ganomaly"), "skip-ganomaly"),
    ] {
        let mut c = bin();
        c.arg("--config")
            .arg(&config)
            .args(["infer", "--roi", "whole", "--camera", camera]);
        if let Some(m) = model {
            c.args(["--model", m]);
        }
        c.arg(&image);
        let (code, out, err) = run(c);
        assert_eq!(code, 0, "{camera}: {err}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["model"]["name"], expected, "{camera} {model:?}: {v}");
        assert_eq!(v["threshold"].as_f64().unwrap(), threshold(expected), "{v}");
        assert_eq!(v["camera"], camera, "{v}");
    }
}

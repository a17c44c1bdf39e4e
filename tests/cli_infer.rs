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

//! Parity with the Python reference: tests/fixtures/expected_scores.json holds the scores that
//! `railscope_train.parity` computed for the shipped model on the fixture images; Rust must agree
//! within 1e-4 (R, L, A, A') and on every verdict.

mod common;
use common::*;

use railscope::scoring::{judge, Normalization};
use railscope::{ImageInput, Inspector, LoadOptions};

#[test]
fn rust_scores_equal_python_reference_scores() {
    let model = require_model();
    let path = root().join("tests/fixtures/expected_scores.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Either {"images": [...], "calibration": {...}} or a bare list.
    let images = doc
        .get("images")
        .unwrap_or(&doc)
        .as_array()
        .expect("list of images")
        .clone();
    assert!(
        images.len() >= 10,
        "too few reference images: {}",
        images.len()
    );
    let tol = doc
        .get("tolerance")
        .and_then(|v| v.as_f64())
        .unwrap_or(1e-4)
        .min(1e-4);

    let insp = Inspector::load(&model, &cpu_config(), &LoadOptions::default()).unwrap();
    if let Some(sha) = doc.get("model_sha256").and_then(|v| v.as_str()) {
        assert_eq!(
            sha,
            insp.package().manifest.model.sha256,
            "expected_scores.json was made for another model.onnx; regenerate it (python -m railscope_train.parity)"
        );
    }
    let norm = match doc.get("calibration") {
        Some(c) => Normalization::new(
            c["min"].as_f64().unwrap(),
            c["max"].as_f64().unwrap(),
            c["threshold"].as_f64().unwrap(),
        )
        .unwrap(),
        None => *insp.default_calibration().unwrap(),
    };

    let bytes: Vec<Vec<u8>> = images
        .iter()
        .map(|i| {
            let p = root().join(i["path"].as_str().unwrap());
            std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect();
    let inputs: Vec<ImageInput<'_>> = images
        .iter()
        .zip(&bytes)
        .map(|(i, b)| ImageInput {
            id: i["path"].as_str().unwrap().to_string(),
            bytes: b,
            camera: None,
        })
        .collect();
    let results = insp.score_batch(&inputs, false);
    let mut worst: f64 = 0.0;
    let mut defects = 0;
    for (img, r) in images.iter().zip(results) {
        let fs = r.unwrap();
        assert_eq!(fs.crops.len(), 1);
        let j = judge(fs.crops[0].score, &norm);
        let name = img["path"].as_str().unwrap();
        for (key, ours) in [
            ("R", j.score.r),
            ("L", j.score.l),
            ("A", j.score.a),
            ("A_norm", j.a_norm),
        ] {
            let theirs = img[key].as_f64().unwrap();
            let d = (ours - theirs).abs();
            worst = worst.max(d);
            assert!(
                d <= tol,
                "{name} {key}: rust {ours} vs python {theirs} (|Δ| = {d:e})"
            );
        }
        assert_eq!(
            j.verdict.as_str(),
            img["verdict"].as_str().unwrap(),
            "{name}"
        );
        defects += (j.verdict.as_str() == "defect") as usize;
    }
    eprintln!(
        "parity: {} images, max |Δ| = {worst:e}, {defects} judged defective",
        images.len()
    );
}

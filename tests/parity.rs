//! Parity with the Python reference: tests/fixtures/expected_scores.json holds the scores that
//! `railscope_train.parity` computed for the shipped model on the fixture images; Rust must agree
//! within 1e-4 (R, L, A, A') and on every verdict.

mod common;
use common::*;

use railscope::pipeline::scoring::{judge, Normalization};
use railscope::{ImageInput, Inspector, LoadOptions};

/// Asserts every (key, ours) within `tol` of the fixture image's value; returns the largest |Δ|.
fn assert_matches(what: &str, img: &serde_json::Value, values: &[(&str, f64)], tol: f64) -> f64 {
    let mut worst: f64 = 0.0;
    for &(key, ours) in values {
        let theirs = img[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{what}: the fixture has no {key}"));
        let d = (ours - theirs).abs();
        worst = worst.max(d);
        assert!(
            d <= tol,
            "{what} {key}: rust {ours} vs python {theirs} (|Δ| = {d:e})"
        );
    }
    worst
}

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

    let mut worst: f64 = 0.0;
    let mut defects = 0;
    for (img, s) in images.iter().zip(crop_scores(&insp, &images)) {
        let j = judge(s, &norm);
        let name = img["path"].as_str().unwrap();
        let values = [
            ("R", j.score.r),
            ("L", j.score.l),
            ("A", j.score.a),
            ("A_norm", j.a_norm),
        ];
        worst = worst.max(assert_matches(name, img, &values, tol));
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

/// A JSON override value as the TOML value the manifest holds (numbers as floats: every numeric
/// field a variant sets — spread, smooth_sigma, top_fraction, lambda — is a float).
fn toml_value(v: &serde_json::Value) -> toml::Value {
    match v {
        serde_json::Value::String(s) => toml::Value::String(s.clone()),
        serde_json::Value::Number(n) => toml::Value::Float(n.as_f64().unwrap()),
        serde_json::Value::Bool(b) => toml::Value::Boolean(*b),
        other => panic!("unexpected override value {other}"),
    }
}

/// The shipped package with a variant's `[input]` / `[score]` fields, as
/// `railscope_train.parity.with_override` builds it: the variant fields it does not name are
/// absent (defaults), the rest of the manifest and the graph unchanged.
fn package_with_override(model: &std::path::Path, dir: &std::path::Path, ov: &serde_json::Value) {
    let text = std::fs::read_to_string(model.join("manifest.toml")).unwrap();
    let mut m: toml::Table = toml::from_str(&text).unwrap();
    for (section, keys) in [
        ("input", &["photometric", "spread"][..]),
        ("score", &["pooling", "smooth_sigma", "top_fraction"][..]),
    ] {
        let t = m[section].as_table_mut().unwrap();
        for k in keys {
            t.remove(*k);
        }
        if let Some(fields) = ov.get(section) {
            for (k, v) in fields.as_object().expect("override section is a table") {
                t.insert(k.clone(), toml_value(v));
            }
        }
    }
    for section in ov.as_object().unwrap().keys() {
        assert!(
            section == "input" || section == "score",
            "override of [{section}] is not a score variant"
        );
    }
    std::fs::copy(model.join("model.onnx"), dir.join("model.onnx")).unwrap();
    std::fs::write(dir.join("manifest.toml"), toml::to_string(&m).unwrap()).unwrap();
}

/// Every score variant of docs/scoring.md and docs/model-package.md (photometric none /
/// standardize × pooling mean / topk), applied to the shipped graph through a manifest override:
/// Rust's R, L and A must equal the Python reference's within 1e-4 on every fixture image.
#[test]
fn every_score_variant_equals_python() {
    let model = require_model();
    let path = root().join("tests/fixtures/expected_scores.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let variants = doc["variants"]
        .as_object()
        .expect("expected_scores.json has no \"variants\"; regenerate it (python -m railscope_train.parity)");
    assert!(
        variants.len() >= 4,
        "too few variants: {:?}",
        variants.keys()
    );
    let tol = doc
        .get("tolerance")
        .and_then(|v| v.as_f64())
        .unwrap_or(1e-4)
        .min(1e-4);
    if let Some(sha) = doc.get("model_sha256").and_then(|v| v.as_str()) {
        let pkg = railscope::pipeline::package::ModelPackage::load(&model).unwrap();
        assert_eq!(
            sha, pkg.manifest.model.sha256,
            "expected_scores.json was made for another model.onnx; regenerate it"
        );
    }
    let opts = LoadOptions {
        without_calibration: true,
        roi: Some(railscope::pipeline::preprocess::RoiMode::Whole),
        ..Default::default()
    };
    let mut seen = std::collections::BTreeSet::new();
    for (name, variant) in variants {
        let ov = &variant["override"];
        let tmp = tempfile::tempdir().unwrap();
        package_with_override(&model, tmp.path(), ov);
        let insp = Inspector::load(tmp.path(), &cpu_config(), &opts)
            .unwrap_or_else(|e| panic!("variant {name}: {e}"));
        // The override took effect: the package declares what the variant names.
        let m = &insp.package().manifest;
        let want_photometric = ov["input"]["photometric"].as_str().unwrap_or("none");
        let want_pooling = ov["score"]["pooling"].as_str().unwrap_or("mean");
        assert_eq!(m.input.photometric.as_str(), want_photometric, "{name}");
        assert_eq!(insp.pooling().as_str(), want_pooling, "{name}");
        if let Some(l) = ov["score"]["lambda"].as_f64() {
            assert_eq!(m.score.lambda, l, "{name}");
        }
        seen.insert((want_photometric.to_string(), want_pooling.to_string()));

        let images = variant["images"].as_array().expect("variant images");
        assert!(images.len() >= 10, "{name}: too few images");
        let mut worst: f64 = 0.0;
        for (img, s) in images.iter().zip(crop_scores(&insp, images)) {
            let what = format!("variant {name}, {}", img["path"]);
            let values = [("R", s.r), ("L", s.l), ("A", s.a)];
            worst = worst.max(assert_matches(&what, img, &values, tol));
        }
        eprintln!(
            "parity variant {name:<18} {} images, max |Δ| = {worst:e}",
            images.len()
        );
    }
    // Both photometric steps and both poolings are held to the reference.
    for p in ["none", "standardize"] {
        for q in ["mean", "topk"] {
            assert!(
                seen.contains(&(p.to_string(), q.to_string())),
                "no variant with photometric {p} and pooling {q}"
            );
        }
    }
}

/// Each fixture image's crop score through `insp` (whole-frame ROI: one crop per image).
fn crop_scores(
    insp: &Inspector,
    images: &[serde_json::Value],
) -> Vec<railscope::pipeline::scoring::Score> {
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
    insp.score_batch(&inputs, false)
        .into_iter()
        .map(|r| {
            let fs = r.unwrap();
            assert_eq!(fs.crops.len(), 1);
            fs.crops[0].score
        })
        .collect()
}

/// The `ade-gan` score kind (docs/scoring.md) on the tiny untrained ADe-GAN package
/// tests/fixtures/ade-gan-tiny (four outputs, pattern logits included): R, L, M, P, A, A' and
/// every verdict equal the Python reference's (tests/fixtures/expected_scores_ade_gan.json,
/// `python -m railscope_train.parity --ade-gan-fixture`) within 1e-4, with the package's own
/// manifest and with each variant of λ, pooling and photometric step.
#[test]
fn ade_gan_scores_equal_python() {
    let path = root().join("tests/fixtures/expected_scores_ade_gan.json");
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap();
    let model = root().join(doc["model_dir"].as_str().unwrap());
    let tol = doc["tolerance"].as_f64().unwrap_or(1e-4).min(1e-4);
    let opts = LoadOptions {
        without_calibration: true,
        roi: Some(railscope::pipeline::preprocess::RoiMode::Whole),
        ..Default::default()
    };
    let insp = Inspector::load(&model, &cpu_config(), &opts).unwrap();
    assert_eq!(
        doc["model_sha256"].as_str().unwrap(),
        insp.package().manifest.model.sha256,
        "expected_scores_ade_gan.json was made for another model.onnx; regenerate it (python -m railscope_train.parity --ade-gan-fixture)"
    );
    assert!(matches!(
        insp.score_rule().kind,
        railscope::pipeline::scoring::ScoreKind::AdeGan(_)
    ));
    assert_eq!(insp.engine().pattern_dim(), Some(10));
    let c = &doc["calibration"];
    let norm = Normalization::new(
        c["min"].as_f64().unwrap(),
        c["max"].as_f64().unwrap(),
        c["threshold"].as_f64().unwrap(),
    )
    .unwrap();

    let images = doc["images"].as_array().expect("list of images");
    assert!(images.len() >= 10, "too few reference images");
    let mut worst: f64 = 0.0;
    let mut verdicts = std::collections::BTreeSet::new();
    for (img, s) in images.iter().zip(crop_scores(&insp, images)) {
        let j = judge(s, &norm);
        let name = img["path"].as_str().unwrap();
        let values = [
            ("R", s.r),
            ("L", s.l),
            ("M", s.m.expect("ade-gan scores carry M")),
            ("P", s.p.expect("ade-gan scores carry P")),
            ("A", s.a),
            ("A_norm", j.a_norm),
        ];
        worst = worst.max(assert_matches(name, img, &values, tol));
        assert_eq!(
            j.verdict.as_str(),
            img["verdict"].as_str().unwrap(),
            "{name}"
        );
        verdicts.insert(j.verdict.as_str());
    }
    assert_eq!(verdicts.len(), 2, "the fixture exercises both verdicts");
    eprintln!(
        "parity ade-gan: {} images, max |Δ| = {worst:e}",
        images.len()
    );

    let variants = doc["variants"].as_object().expect("variants");
    assert!(variants.len() >= 2);
    for (name, variant) in variants {
        let ov = &variant["override"];
        let tmp = tempfile::tempdir().unwrap();
        package_with_override(&model, tmp.path(), ov);
        let insp = Inspector::load(tmp.path(), &cpu_config(), &opts)
            .unwrap_or_else(|e| panic!("variant {name}: {e}"));
        if let Some(l) = ov["score"]["lambda"].as_f64() {
            assert_eq!(insp.score_rule().lambda, l, "{name}");
        }
        let images = variant["images"].as_array().unwrap();
        let mut worst: f64 = 0.0;
        for (img, s) in images.iter().zip(crop_scores(&insp, images)) {
            let values = [
                ("R", s.r),
                ("L", s.l),
                ("M", s.m.unwrap()),
                ("P", s.p.unwrap()),
                ("A", s.a),
            ];
            let what = format!("variant {name}, {}", img["path"]);
            worst = worst.max(assert_matches(&what, img, &values, tol));
        }
        eprintln!("parity ade-gan variant {name:<18} max |Δ| = {worst:e}");
    }
}

/// A package whose score kind needs an output its graph lacks is refused at load, naming both.
#[test]
fn ade_gan_kind_on_a_graph_without_pattern_logits_is_refused() {
    let model = require_model();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(model.join("model.onnx"), tmp.path().join("model.onnx")).unwrap();
    let text = std::fs::read_to_string(model.join("manifest.toml")).unwrap();
    let mut m: toml::Table = toml::from_str(&text).unwrap();
    let out = m["output"].as_table_mut().unwrap();
    out.insert("pattern_logits".into(), "pattern_logits".into());
    out.insert("pattern_dim".into(), 10.into());
    let score = m["score"].as_table_mut().unwrap();
    score.insert("kind".into(), "ade-gan".into());
    score.insert("kind_version".into(), 1.into());
    score.insert("recon_mean".into(), 0.1.into());
    score.insert("recon_std".into(), 0.01.into());
    std::fs::write(
        tmp.path().join("manifest.toml"),
        toml::to_string(&m).unwrap(),
    )
    .unwrap();
    let opts = LoadOptions {
        without_calibration: true,
        ..Default::default()
    };
    let err = Inspector::load(tmp.path(), &cpu_config(), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no output \"pattern_logits\"") && err.contains("kind \"ade-gan\" needs"),
        "{err}"
    );
    // An unknown kind is refused before the graph is even opened.
    let score = m["score"].as_table_mut().unwrap();
    score.insert("kind".into(), "ade-gan-v2".into());
    std::fs::write(
        tmp.path().join("manifest.toml"),
        toml::to_string(&m).unwrap(),
    )
    .unwrap();
    let err = Inspector::load(tmp.path(), &cpu_config(), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("kind \"ade-gan-v2\" is not supported"),
        "{err}"
    );
}

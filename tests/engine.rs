//! The shipped model through real ONNX Runtime: provider fallback, manifest ↔ graph checks,
//! batching.

mod common;
use common::*;

use railscope::config::Provider;
use railscope::pipeline::engine::Engine;
use railscope::pipeline::package::ModelPackage;
use railscope::{ImageInput, Inspector, LoadOptions};

fn fixture_bytes(n: usize) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for dir in ["test/good", "test/missing_clip", "test/broken_clip"] {
        let d = fixtures().join(dir);
        for p in railscope::offline::dataset::images_in(&d).unwrap() {
            v.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    v.truncate(n);
    assert!(
        v.len() >= n.min(4),
        "fixture images missing under {}",
        fixtures().display()
    );
    v
}

/// Camera-less inputs borrowing `imgs`.
fn image_inputs(imgs: &[(String, Vec<u8>)]) -> Vec<ImageInput<'_>> {
    imgs.iter()
        .map(|(id, b)| ImageInput {
            id: id.clone(),
            bytes: b,
            camera: None,
        })
        .collect()
}

#[test]
fn default_provider_chain_falls_back_and_reports() {
    let pkg = ModelPackage::load(&require_model()).unwrap();
    // Default chain tensorrt → cuda → cpu. The GPU wheel ships the CUDA provider library
    // beside libonnxruntime; the CPU wheel does not, and then only cpu can win.
    let engine = Engine::load(&pkg, &railscope::config::EngineConfig::default()).unwrap();
    let gpu_wheel = engine
        .library()
        .parent()
        .is_some_and(|d| d.join("libonnxruntime_providers_cuda.so").is_file());
    match std::env::var("RAILSCOPE_EXPECT_GPU") {
        // RAILSCOPE_EXPECT_GPU=tensorrt|cuda names the provider that must win; any other
        // value (e.g. 1) accepts either GPU provider, never the CPU.
        Ok(expected) => {
            assert!(
                gpu_wheel,
                "RAILSCOPE_EXPECT_GPU is set but {} has no libonnxruntime_providers_cuda.so beside it (the CPU wheel?)",
                engine.library().display()
            );
            match Provider::parse(&expected) {
                Some(p) => assert_eq!(
                    engine.provider(),
                    p,
                    "RAILSCOPE_EXPECT_GPU={expected}: the session runs on {}",
                    engine.provider().as_str()
                ),
                None => assert_ne!(
                    engine.provider(),
                    Provider::Cpu,
                    "RAILSCOPE_EXPECT_GPU is set but the session fell back to the CPU"
                ),
            }
        }
        Err(_) if !gpu_wheel => assert_eq!(engine.provider(), Provider::Cpu),
        Err(_) => {}
    }
    let m = &pkg.manifest;
    assert_eq!(
        engine.shape(),
        [m.input.channels, m.input.height, m.input.width]
    );
    assert_eq!(engine.feature_dim(), m.output.feature_dim);
}

#[test]
fn runs_batches_and_checks_sizes() {
    let pkg = ModelPackage::load(&require_model()).unwrap();
    let mut cfg = cpu_config().engine;
    cfg.max_batch = 3;
    let engine = Engine::load(&pkg, &cfg).unwrap();
    let chw = engine.chw();
    let x: Vec<f32> = (0..7 * chw)
        .map(|i| ((i % 97) as f32 / 48.0) - 1.0)
        .collect();
    let out = engine.run(&x, 7).unwrap();
    assert_eq!(out.reconstruction.len(), 7 * chw);
    assert_eq!(out.features_real.len(), 7 * engine.feature_dim());
    assert!(out.reconstruction.iter().all(|v| v.is_finite()));
    // Wrong input length is an error, not a crash.
    let e = engine
        .run_view(&x[..chw + 1], 1, |_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected 1 ×"), "{e}");
}

#[test]
fn a_frame_scores_the_same_alone_and_in_a_batch() {
    require_model();
    let insp = Inspector::load(&model_dir(), &cpu_config(), &LoadOptions::default()).unwrap();
    let imgs = fixture_bytes(6);
    let inputs = image_inputs(&imgs);
    let batch: Vec<f64> = insp
        .score_batch(&inputs, false)
        .into_iter()
        .map(|r| r.unwrap().crops[0].score.a)
        .collect();
    for (k, input) in inputs.iter().enumerate() {
        let alone = insp
            .score_batch(std::slice::from_ref(input), false)
            .remove(0)
            .unwrap()
            .crops[0]
            .score
            .a;
        assert!(
            (alone - batch[k]).abs() < 1e-5,
            "image {k}: alone {alone} vs batch {}",
            batch[k]
        );
    }
    // A bad frame in the middle fails alone; the others still get results.
    let mut mixed = inputs.clone();
    mixed.insert(
        2,
        ImageInput {
            id: "junk".into(),
            bytes: b"junk",
            camera: None,
        },
    );
    let res = insp.inspect_batch(&mixed, false);
    assert!(res[2].is_err());
    let ok: Vec<_> = res.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok.len(), inputs.len());
    assert!(ok.iter().all(|r| r.provider == "cpu" && r.crops.len() == 1));
}

/// `engine.intra_op_spinning = false` (threads sleep between runs; docs/performance.md) builds a
/// working session that scores exactly as the default does.
#[test]
fn sleeping_intra_op_threads_score_the_same() {
    require_model();
    let mut quiet = cpu_config();
    quiet.engine.intra_op_spinning = false;
    let imgs = fixture_bytes(4);
    let inputs = image_inputs(&imgs);
    let scores = |cfg| {
        Inspector::load(&model_dir(), &cfg, &LoadOptions::default())
            .unwrap()
            .score_batch(&inputs, false)
            .into_iter()
            .map(|r| r.unwrap().crops[0].score.a)
            .collect::<Vec<f64>>()
    };
    let (spin, sleep) = (scores(cpu_config()), scores(quiet));
    assert_eq!(spin.len(), 4);
    for (a, b) in spin.iter().zip(&sleep) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }
}

fn broken_package(edit: impl Fn(String) -> String) -> (tempfile::TempDir, String) {
    let d = tempfile::tempdir().unwrap();
    copy_package(&require_model(), d.path());
    let m = d.path().join("manifest.toml");
    let text = std::fs::read_to_string(&m).unwrap();
    let edited = edit(text.clone());
    assert_ne!(text, edited, "edit did not change the manifest");
    std::fs::write(&m, edited).unwrap();
    let pkg = ModelPackage::load(d.path()).unwrap();
    let err = Engine::load(&pkg, &cpu_config().engine)
        .unwrap_err()
        .to_string();
    (d, err)
}

fn replace_line(text: &str, key: &str, value: &str) -> String {
    let mut in_section = false;
    let mut done = false;
    text.lines()
        .map(|l| {
            if l.starts_with('[') {
                in_section = l.trim() == "[input]" || l.trim() == "[output]";
            }
            if in_section && !done && l.split('=').next().map(str::trim) == Some(key) {
                done = true;
                format!("{key} = {value}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn manifest_that_disagrees_with_the_graph_is_refused() {
    let (_d, e) = broken_package(|t| {
        let t = replace_line(&t, "channels", "3");
        let t = replace_line(&t, "mean", "[0.5, 0.5, 0.5]");
        replace_line(&t, "std", "[0.5, 0.5, 0.5]")
    });
    assert!(e.contains("channels") && e.contains("says 3"), "{e}");

    let (_d, e) = broken_package(|t| replace_line(&t, "reconstruction", "\"recon\""));
    assert!(e.contains("no output \"recon\""), "{e}");

    let (_d, e) = broken_package(|t| replace_line(&t, "feature_dim", "7"));
    assert!(e.contains("feature_dim") && e.contains("says 7"), "{e}");

    let (_d, e) = broken_package(|t| replace_line(&t, "height", "17"));
    assert!(e.contains("height") && e.contains("says 17"), "{e}");

    let (_d, e) = broken_package(|t| replace_line(&t, "name", "\"pixels\""));
    assert!(e.contains("no input \"pixels\""), "{e}");
}

#[test]
fn calibration_for_another_model_is_refused() {
    let pkg = ModelPackage::load(&require_model()).unwrap();
    let d = tempfile::tempdir().unwrap();
    let cal = d.path().join("cal.json");
    let zeros = "0".repeat(64);
    std::fs::write(
        &cal,
        format!(r#"{{"model":"{}","model_sha256":"{zeros}","min":0.1,"max":0.5,"threshold":0.2,"method":"fixed"}}"#, pkg.name()),
    )
    .unwrap();
    let opts = LoadOptions {
        calibration: Some(cal.clone()),
        ..Default::default()
    };
    let e = Inspector::load(&pkg.dir, &cpu_config(), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("recalibrate"), "{e}");
    std::fs::write(
        &cal,
        r#"{"model":"someone-else","min":0.1,"max":0.5,"threshold":0.2,"method":"fixed"}"#,
    )
    .unwrap();
    let e = Inspector::load(&pkg.dir, &cpu_config(), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("is for model \"someone-else\""), "{e}");
}

#[test]
fn per_camera_calibration_overrides_the_default() {
    let model = require_model();
    let pkg = ModelPackage::load(&model).unwrap();
    let d = tempfile::tempdir().unwrap();
    let cal = |thr: f64, cam: &str| {
        format!(
            r#"{{"model":"{}","model_sha256":"{}","min":0.0,"max":1.0,"threshold":{thr},"method":"fixed","camera":{cam}}}"#,
            pkg.name(),
            pkg.manifest.model.sha256
        )
    };
    std::fs::write(
        d.path().join(format!("{}.json", pkg.name())),
        cal(0.25, "null"),
    )
    .unwrap();
    std::fs::write(
        d.path().join(format!("{}.cam7.json", pkg.name())),
        cal(-5.0, "\"cam7\""),
    )
    .unwrap();
    let mut cfg = cpu_config();
    cfg.engine.calibration_dir = Some(d.path().to_path_buf());
    let insp = Inspector::load(&model, &cfg, &LoadOptions::default()).unwrap();
    let (id, bytes) = fixture_bytes(1).remove(0);
    let mk = |cam: Option<&str>| ImageInput {
        id: id.clone(),
        bytes: &bytes,
        camera: cam.map(str::to_string),
    };
    let default = insp.inspect_batch(&[mk(None)], false).remove(0).unwrap();
    let other = insp
        .inspect_batch(&[mk(Some("cam3"))], false)
        .remove(0)
        .unwrap();
    let cam7 = insp
        .inspect_batch(&[mk(Some("cam7"))], false)
        .remove(0)
        .unwrap();
    assert_eq!(default.threshold, 0.25);
    assert_eq!(
        other.threshold, 0.25,
        "a camera without its own file uses the default"
    );
    assert_eq!(cam7.threshold, -5.0);
    assert_eq!(
        cam7.verdict.as_str(),
        "defect",
        "A' ≥ 0 > −5 must be a defect"
    );
    assert_eq!(default.a, cam7.a, "raw scores do not depend on the camera");
    let bad = insp
        .inspect_batch(&[mk(Some("../../etc/passwd"))], false)
        .remove(0)
        .unwrap_err()
        .to_string();
    assert!(bad.contains("invalid camera id"), "{bad}");
}

#[test]
fn a_model_file_that_is_not_onnx_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    copy_package(&require_model(), d.path());
    let junk = b"this is not an ONNX graph";
    std::fs::write(d.path().join("model.onnx"), junk).unwrap();
    // Keep the package self-consistent (hash matches) so the runtime itself must refuse it.
    let sha = railscope::pipeline::package::sha256_file(&d.path().join("model.onnx")).unwrap();
    let m = d.path().join("manifest.toml");
    let text = std::fs::read_to_string(&m).unwrap();
    let old = ModelPackage::load(&require_model())
        .unwrap()
        .manifest
        .model
        .sha256;
    std::fs::write(&m, text.replace(&old, &sha)).unwrap();
    let pkg = ModelPackage::load(d.path()).unwrap();
    let e = Engine::load(&pkg, &cpu_config().engine)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no execution provider could load") && e.contains("model.onnx"),
        "{e}"
    );
}

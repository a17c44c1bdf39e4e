//! `railscope evaluate` on a freshly generated held-out synthetic set reproduces the Python
//! evaluation (`railscope_train.evaluate`) — AUROC within 0.005, and in fact every image's raw
//! score within 1e-4.
//!
//! Needs the project venv (`make venv`); without it the test fails and says so.

mod common;
use common::*;

use std::process::Command;

#[test]
fn rust_evaluation_reproduces_python_auroc() {
    let model = require_model();
    let py = root().join(".venv/bin/python");
    let train_dir = root().join("models/train");
    require_venv(&py, &train_dir, "the evaluate parity test");
    let pkg = railscope::pipeline::package::ModelPackage::load(&model).unwrap();
    let calibration = pkg
        .default_calibration_dir()
        .join(format!("{}.json", pkg.name()));
    assert!(calibration.is_file(), "{} missing", calibration.display());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("heldout");
    // A seed used by neither training (1), calibration (2) nor the shipped test set (3).
    let st = Command::new(&py)
        .current_dir(&train_dir)
        .args(["-m", "railscope_train.synth", "--out"])
        .arg(&data)
        .args([
            "--seed",
            "4242",
            "--size",
            "128",
            "--train",
            "0",
            "--test-good",
            "200",
            "--test-defect",
            "25",
        ])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "generator failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );

    let py_json = tmp.path().join("python.json");
    let st = Command::new(&py)
        .current_dir(&train_dir)
        .args(["-m", "railscope_train.evaluate", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--calibration")
        .arg(&calibration)
        .arg("--json")
        .arg(&py_json)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "python evaluation failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let py_report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&py_json).unwrap()).unwrap();

    let out_dir = tmp.path().join("rust");
    let mut c = bin();
    c.arg("evaluate")
        .arg("--model")
        .arg(&model)
        .arg("--calibration")
        .arg(&calibration);
    c.arg("--data").arg(&data).arg("--out").arg(&out_dir);
    let (code, stdout, err) = run(c);
    assert_eq!(code, 0, "railscope evaluate failed: {err}");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let rs_report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("evaluation.json")).unwrap())
            .unwrap();
    for f in ["evaluation.json", "report.md", "roc.png", "pr.png"] {
        assert!(out_dir.join(f).is_file(), "{f} not written");
    }

    let (a_py, a_rs) = (
        py_report["auroc"].as_f64().unwrap(),
        summary["auroc"].as_f64().unwrap(),
    );
    eprintln!(
        "AUROC python {a_py:.4} rust {a_rs:.4}; AUPRC python {:.4} rust {:.4}",
        py_report["auprc"], summary["auprc"]
    );
    assert!(
        (a_py - a_rs).abs() <= 0.005,
        "AUROC python {a_py} vs rust {a_rs}"
    );
    assert!(
        (py_report["auprc"].as_f64().unwrap() - summary["auprc"].as_f64().unwrap()).abs() <= 0.005
    );
    assert_eq!(py_report["n"], summary["n"]);

    // Per image: same files in the same order, same raw score.
    let ps = py_report["scores"].as_array().unwrap();
    let rs = rs_report["scores"].as_array().unwrap();
    assert_eq!(ps.len(), rs.len());
    for (p, r) in ps.iter().zip(rs) {
        assert_eq!(p["path"], r["path"]);
        let d = (p["A"].as_f64().unwrap() - r["A"].as_f64().unwrap()).abs();
        assert!(d <= 1e-4, "{}: A differs by {d}", p["path"]);
    }
    // Same threshold metrics, as both use the same calibration file.
    for k in ["f1", "precision", "recall"] {
        assert!(
            (py_report[k].as_f64().unwrap() - summary[k].as_f64().unwrap()).abs() < 1e-9,
            "{k}"
        );
    }

    // Calibration on the same set: same bounds, threshold and data hash from both sides.
    for method in ["normals", "best-f1", "false-alarm-rate"] {
        let py_cal = tmp.path().join(format!("py-{method}.json"));
        let st = Command::new(&py)
            .current_dir(&train_dir)
            .args(["-m", "railscope_train.calibration", "--model"])
            .arg(&model)
            .arg("--data")
            .arg(&data)
            .args(["--method", method, "--target", "0.01", "--out"])
            .arg(&py_cal)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "python calibration failed: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let rs_cal = tmp.path().join(format!("rs-{method}.json"));
        let mut c = bin();
        c.arg("calibrate")
            .arg("--model")
            .arg(&model)
            .arg("--data")
            .arg(&data);
        c.args(["--method", method, "--target", "0.01", "--out"])
            .arg(&rs_cal);
        let (code, _o, err) = run(c);
        assert_eq!(code, 0, "railscope calibrate failed: {err}");
        let p: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&py_cal).unwrap()).unwrap();
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&rs_cal).unwrap()).unwrap();
        for k in ["min", "max", "threshold"] {
            let (a, b) = (p[k].as_f64().unwrap(), r[k].as_f64().unwrap());
            assert!(
                (a - b).abs() <= 1e-4,
                "{method} {k}: python {a} vs rust {b}"
            );
        }
        for k in [
            "model",
            "model_sha256",
            "method",
            "n",
            "n_normal",
            "n_defect",
            "data_sha256",
            "target",
        ] {
            assert_eq!(p[k], r[k], "{method} {k}");
        }
        // The Rust file must load as a calibration for this model.
        railscope::pipeline::package::Calibration::load(&rs_cal).unwrap();
    }
}

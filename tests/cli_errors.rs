//! Startup and input errors of the real binary: each must be one clear `error:` line (or a JSON
//! error line per image) and a non-zero exit, never a panic.

mod common;
use common::*;

fn assert_clean_failure(code: i32, stderr: &str) {
    assert_ne!(code, 0, "expected failure; stderr: {stderr}");
    assert!(
        !stderr.contains("panicked"),
        "panic instead of an error: {stderr}"
    );
}

#[test]
fn missing_runtime_library_names_the_fix() {
    let mut c = bin();
    c.env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.31.1");
    c.args([
        "infer",
        "--model",
        "models/nested-edgan",
        "tests/fixtures/fasteners/test/good/000000.png",
    ]);
    let (code, _out, err) = run(c);
    assert_clean_failure(code, &err);
    assert!(err.contains("ORT_DYLIB_PATH=/nonexistent"), "{err}");
    assert!(
        err.contains("make venv") && err.contains("onnxruntime==1.31.1"),
        "{err}"
    );
}

/// `railscope bench` with `ORT_DYLIB_PATH` pointing at a fake library file; its stderr.
fn bench_with_fake_library(file_name: &str, contents: &[u8]) -> String {
    let d = tempfile::tempdir().unwrap();
    let lib = d.path().join(file_name);
    std::fs::write(&lib, contents).unwrap();
    let mut c = bin();
    c.env("ORT_DYLIB_PATH", &lib)
        .args(["bench", "--seconds", "0.1"]);
    let (code, _out, err) = run(c);
    assert_clean_failure(code, &err);
    err
}

#[test]
fn wrong_runtime_version_is_refused_by_name() {
    let err = bench_with_fake_library("libonnxruntime.so.1.20.0", b"not a library");
    assert!(
        err.contains("1.20.0") && err.contains("needs 1.31.x"),
        "{err}"
    );
}

#[test]
fn unloadable_runtime_library_is_an_error_not_a_panic() {
    let err = bench_with_fake_library("libonnxruntime.so", b"garbage, not ELF");
    assert!(
        err.contains("cannot load") && err.contains("make venv"),
        "{err}"
    );
}

#[test]
fn missing_model_folder_and_file() {
    let (code, _o, err) = run({
        let mut c = bin();
        c.args(["infer", "--model", "models/does-not-exist", "x.png"]);
        c
    });
    assert_clean_failure(code, &err);
    assert!(
        err.contains("models/does-not-exist") && err.contains("does not exist"),
        "{err}"
    );

    let d = tempfile::tempdir().unwrap();
    copy_package(&require_model(), d.path());
    std::fs::remove_file(d.path().join("model.onnx")).unwrap();
    let (code, _o, err) = run({
        let mut c = bin();
        c.arg("infer").arg("--model").arg(d.path()).arg("x.png");
        c
    });
    assert_clean_failure(code, &err);
    assert!(
        err.contains("model.onnx") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn config_from_environment_is_validated() {
    let mut c = bin();
    c.env("RAILSCOPE__ENGINE__PROVIDERS", "quantum")
        .args(["bench"]);
    let (code, _o, err) = run(c);
    assert_clean_failure(code, &err);
    assert!(err.contains("unknown provider \"quantum\""), "{err}");
}

#[test]
fn bad_images_give_one_error_line_each() {
    require_model();
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let text = d.path().join("notes.png");
    std::fs::write(&text, b"this is not an image").unwrap();
    let good = fixtures().join("test/good/000000.png");
    let truncated = d.path().join("truncated.png");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let mut c = bin();
    c.arg("infer")
        .arg("--model")
        .arg(model_dir())
        .arg(&empty)
        .arg(&text)
        .arg(&good)
        .arg(&truncated)
        .arg(d.path().join("absent.png"));
    let (code, out, err) = run(c);
    assert_clean_failure(code, &err);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(
        lines[0]["error"].as_str().unwrap().contains("empty input"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("not a supported image format"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].get("error").is_none() && lines[2]["verdict"].is_string(),
        "{}",
        lines[2]
    );
    let t = lines[3]["error"].as_str().unwrap();
    assert!(t.contains("truncated") || t.contains("corrupt"), "{t}");
    assert!(
        lines[4]["error"].as_str().unwrap().contains("cannot read"),
        "{}",
        lines[4]
    );
}

#[test]
fn usage_errors_exit_2() {
    let (code, _o, err) = run({
        let mut c = bin();
        c.args(["calibrate", "--method", "magic"]);
        c
    });
    assert_eq!(code, 2, "{err}");
}

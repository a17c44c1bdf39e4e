//! Shared helpers for the integration tests: repository paths and the shipped model package.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped default package; `RAILSCOPE_TEST_MODEL` points the tests at another one.
pub fn model_dir() -> PathBuf {
    std::env::var_os("RAILSCOPE_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models/nested-edgan"))
}

/// The fastener fixtures; `RAILSCOPE_FIXTURES` points the search test at another generated set.
pub fn fixtures() -> PathBuf {
    std::env::var_os("RAILSCOPE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("tests/fixtures/fasteners"))
}

/// The shipped model package must be present: a missing one is a failure, not a skip.
pub fn require_model() -> PathBuf {
    let m = model_dir();
    assert!(
        m.join("manifest.toml").is_file() && m.join("model.onnx").is_file(),
        "the shipped model package {} is missing (models/nested-edgan/{{model.onnx,manifest.toml}})",
        m.display()
    );
    m
}

/// The shipped package's `version = "…"` line of its [model] section, and the version in it.
pub fn shipped_version() -> (String, String) {
    let manifest = std::fs::read_to_string(require_model().join("manifest.toml")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.starts_with("version = "))
        .expect("the manifest has a version")
        .to_string();
    let version = line
        .trim_start_matches("version = ")
        .trim_matches('"')
        .to_string();
    (line, version)
}

/// `RAILSCOPE__*` variables of the developer's shell are not passed on: a spawned binary sees
/// only what its test sets.
pub fn isolate(c: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("RAILSCOPE__") {
            c.env_remove(k);
        }
    }
}

/// The repo's config file alone (no `RAILSCOPE__*` from the process environment).
pub fn repo_config() -> railscope::config::Config {
    railscope::config::Config::load_with_env(None, Some(Default::default())).unwrap()
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_railscope"));
    c.current_dir(root());
    isolate(&mut c);
    // The tests exercise the CPU path deterministically.
    c.env("RAILSCOPE__ENGINE__PROVIDERS", "cpu");
    c
}

pub fn run(mut c: Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().expect("spawn railscope");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// A CPU-only config for in-process tests.
pub fn cpu_config() -> railscope::config::Config {
    let mut c = railscope::config::Config::default();
    c.engine.providers = vec!["cpu".into()];
    c
}

/// The project venv (`make venv`) and the Python sources must be present: a test that needs
/// them fails, loudly, rather than passing without having run.
pub fn require_venv(py: &Path, train_dir: &Path, what: &str) {
    assert!(
        py.is_file()
            && train_dir
                .join("railscope_train/synth/__init__.py")
                .is_file(),
        "{what} needs the project venv: {} or {}/railscope_train missing; run `make venv`",
        py.display(),
        train_dir.display()
    );
}

/// Copies a model package folder so a test can break it.
pub fn copy_package(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

//! A real `railscope serve` process on 127.0.0.1 with its own storage folder, and a small
//! blocking HTTP client for talking to it.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::root;

pub const INSPECTOR: &str = "demo-inspector-token";
pub const ADMIN: &str = "demo-admin-token";
pub const CAM1_KEY: &str = "demo-key-cam-01";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Service {
    pub child: Option<Child>,
    pub port: u16,
    pub storage: PathBuf,
    pub log: PathBuf,
    env: Vec<(String, String)>,
    config: Option<PathBuf>,
}

impl Service {
    /// Starts the binary with the repo's config plus `env` overrides, storage in `storage`.
    pub fn start(storage: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_with_config(storage, None, env)
    }

    /// As [`Service::start`], with `--config <file>` instead of the repo's config.
    pub fn start_with_config(storage: &Path, config: Option<&Path>, env: &[(&str, &str)]) -> Self {
        let mut s = Service {
            child: None,
            port: free_port(),
            storage: storage.to_path_buf(),
            log: storage.with_extension("log"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            config: config.map(Path::to_path_buf),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(&self.log).unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_railscope"));
        c.current_dir(root());
        // Only what the test sets: not the developer's RAILSCOPE__* variables.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("RAILSCOPE__") {
                c.env_remove(k);
            }
        }
        if let Some(cfg) = &self.config {
            c.arg("--config").arg(cfg);
        }
        c.arg("serve")
            .env("RAILSCOPE__ENGINE__PROVIDERS", "cpu")
            .env(
                "RAILSCOPE__SERVER__BIND",
                format!("127.0.0.1:{}", self.port),
            )
            .env("RAILSCOPE__STORAGE__PATH", &self.storage)
            .env("RAILSCOPE__STORAGE__SYNCHRONOUS", "normal")
            .env("RAILSCOPE__SERVER__WORKERS", "2")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        self.child = Some(c.spawn().expect("spawn railscope serve"));
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let t = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "railscope serve exited with {status} before it was ready:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            // The port opens only after the model is loaded and warm; a 404 means the probes
            // live on server.metrics_bind instead.
            match ureq::get(&self.url("/readyz")).call() {
                Ok(r) if r.status() == 200 => return,
                Err(ureq::Error::Status(404, _)) => return,
                _ => {}
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "service not ready in 60 s:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and wait for the process to exit (graceful drain).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        unsafe_kill(c.id(), "TERM");
        let t = Instant::now();
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(40),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn signal(&self, sig: &str) {
        unsafe_kill(self.child.as_ref().unwrap().id(), sig);
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn unsafe_kill(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Status, JSON body (or `Null`), and headers of interest.
pub struct Resp {
    pub status: u16,
    pub json: Value,
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub retry_after: Option<String>,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn into_resp(r: ureq::Response) -> Resp {
    let status = r.status();
    let content_type = r.content_type().to_string();
    let retry_after = r.header("Retry-After").map(str::to_string);
    let headers = r
        .headers_names()
        .into_iter()
        .map(|k| {
            let v = r.header(&k).unwrap_or("").to_string();
            (k.to_ascii_lowercase(), v)
        })
        .collect();
    let mut bytes = Vec::new();
    r.into_reader()
        .take(64 << 20)
        .read_to_end(&mut bytes)
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        json,
        bytes,
        content_type,
        retry_after,
        headers,
    }
}

pub fn finish(r: Result<ureq::Response, ureq::Error>) -> Resp {
    match r {
        Ok(r) => into_resp(r),
        Err(ureq::Error::Status(_, r)) => into_resp(r),
        Err(e) => panic!("transport error: {e}"),
    }
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

pub fn get(url: &str, token: Option<&str>) -> Resp {
    let mut r = agent().get(url);
    if let Some(t) = token {
        r = r.set("Authorization", &format!("Bearer {t}"));
    }
    finish(r.call())
}

/// Any method, optional token and body.
pub fn request(method: &str, url: &str, token: Option<&str>, body: &[u8]) -> Resp {
    let mut r = agent().request(method, url);
    if let Some(t) = token {
        r = r.set("Authorization", &format!("Bearer {t}"));
    }
    finish(if body.is_empty() {
        r.call()
    } else {
        r.send_bytes(body)
    })
}

pub fn post_json(url: &str, token: Option<&str>, body: &Value) -> Resp {
    let mut r = agent().post(url).set("Content-Type", "application/json");
    if let Some(t) = token {
        r = r.set("Authorization", &format!("Bearer {t}"));
    }
    finish(r.send_bytes(body.to_string().as_bytes()))
}

pub fn put_json(url: &str, token: Option<&str>, body: &Value) -> Resp {
    let mut r = agent().put(url).set("Content-Type", "application/json");
    if let Some(t) = token {
        r = r.set("Authorization", &format!("Bearer {t}"));
    }
    finish(r.send_bytes(body.to_string().as_bytes()))
}

/// Posts image bytes as camera `camera` with `key` and extra headers.
pub fn post_frame(
    s: &Service,
    camera: &str,
    key: Option<&str>,
    content_type: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Resp {
    let mut r = agent()
        .post(&s.url(&format!("/v1/cameras/{camera}/frames")))
        .set("Content-Type", content_type);
    if let Some(k) = key {
        r = r.set("Authorization", &format!("Bearer {k}"));
    }
    for (h, v) in headers {
        r = r.set(h, v);
    }
    finish(r.send_bytes(body))
}

/// The good fixture frame `test/good/000000.png` posted by `camera` with its demo key
/// (`demo-key-<camera>`): the answer, which must be 200.
pub fn post_good_frame(s: &Service, camera: &str) -> Value {
    let r = post_frame(
        s,
        camera,
        Some(&format!("demo-key-{camera}")),
        "image/png",
        &fixture("test/good/000000.png"),
        &[],
    );
    assert_eq!(r.status, 200, "{camera}: {}", r.json);
    r.json
}

/// `camera`'s entry in `GET /v1/cameras` as an inspector sees it; the camera must be listed.
pub fn listed_camera(s: &Service, camera: &str) -> Value {
    let r = get(&s.url("/v1/cameras"), Some(INSPECTOR));
    assert_eq!(r.status, 200, "{}", r.json);
    r.json["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == camera)
        .unwrap_or_else(|| panic!("{camera} listed"))
        .clone()
}

pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/fasteners").join(rel)).unwrap()
}

/// One sample value of a metric line `name{labels} value` in the exposition text.
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A PNG whose header claims 100000×100000 pixels (10 GB gray), with valid CRCs.
pub fn bomb_png() -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in data {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc_in = kind.to_vec();
        crc_in.extend_from_slice(data);
        out.extend_from_slice(&crc_in);
        out.extend_from_slice(&crc32(&crc_in).to_be_bytes());
    }
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(&mut v, b"IHDR", &ihdr);
    chunk(
        &mut v,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut v, b"IEND", &[]);
    v
}

/// The reference images of tests/fixtures/expected_scores.json (path, label, R, L, A, A_norm,
/// verdict as the Python reference computed them for the shipped model).
pub fn reference_scores() -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("tests/fixtures/expected_scores.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["images"].as_array().unwrap().clone()
}

/// Every reference image as (bytes, expected verdict).
pub fn reference_frames() -> Vec<(Vec<u8>, String)> {
    reference_scores()
        .iter()
        .map(|i| {
            (
                std::fs::read(root().join(i["path"].as_str().unwrap())).unwrap(),
                i["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The repo's config with `camera` looking at whole track frames (`roi = "track"`), written
/// into `dir`.
pub fn track_camera_config(dir: &Path, camera: &str) -> PathBuf {
    let base = std::fs::read_to_string(root().join("config/railscope.toml")).unwrap();
    let key = format!("api_key = \"demo-key-{camera}\"");
    let cfg = base.replace(
        &key,
        &format!(
            "{key}\nroi = \"track\"\n\
             geometry = {{ orientation = \"across\", px_per_m = 200.0, rails = 1 }}"
        ),
    );
    assert_ne!(cfg, base, "{camera}'s entry is in config/railscope.toml");
    let path = dir.join("railscope.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

/// A copy of calibration/ in `dir`: nothing the service does (applying a threshold, a test
/// writing a camera's file) may touch the committed files.
pub fn calibration_copy(dir: &Path) -> PathBuf {
    let cal = dir.join("calibration");
    std::fs::create_dir_all(&cal).unwrap();
    for e in std::fs::read_dir(root().join("calibration")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, cal.join(p.file_name().unwrap())).unwrap();
    }
    cal
}

/// The shipped calibration of `model` (`calibration/<model>.json`) with another threshold,
/// written to `path`.
pub fn write_calibration(model: &str, path: &Path, threshold: f64) {
    let shipped = root().join(format!("calibration/{model}.json"));
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(shipped).unwrap()).unwrap();
    c["threshold"] = serde_json::json!(threshold);
    std::fs::write(path, serde_json::to_string_pretty(&c).unwrap()).unwrap();
}

/// A blank mid-gray 512×512 PNG: no rail, no sleeper.
pub fn blank_png() -> Vec<u8> {
    let img = image::GrayImage::from_pixel(512, 512, image::Luma([128u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

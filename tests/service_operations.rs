//! Operating the service: durability across kill -9, backpressure, reload under load, graceful
//! shutdown, and metrics as a real Prometheus sees them. Every load here is bounded in count
//! and time and targets 127.0.0.1 only.

mod common;
#[path = "service/harness.rs"]
mod harness;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::root;
use harness::*;
use serde_json::{json, Value};

#[test]
fn answered_verdicts_survive_kill_9_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    // synchronous = full, as in production.
    let mut s = Service::start(
        &tmp.path().join("store"),
        &[("RAILSCOPE__STORAGE__SYNCHRONOUS", "full")],
    );
    let imgs = [
        "test/good/000000.png",
        "test/missing_bolt/000000.png",
        "test/good/000002.png",
    ];
    let mut answered: Vec<Value> = Vec::new();
    for k in 0..30 {
        let r = post_frame(
            &s,
            "cam-01",
            Some(CAM1_KEY),
            "image/png",
            &fixture(imgs[k % 3]),
            &[],
        );
        assert_eq!(r.status, 200);
        answered.push(r.json);
    }
    // No graceful anything: the process dies right after the last answer.
    s.kill9();
    s.restart();
    for a in &answered {
        let r = get(
            &s.url(&format!("/v1/inspections/{}", a["id"])),
            Some(INSPECTOR),
        );
        assert_eq!(r.status, 200, "inspection {} lost", a["id"]);
        assert_eq!(r.json["A"], a["A"]);
        assert_eq!(r.json["verdict"], a["verdict"]);
    }
    let cams = get(&s.url("/v1/cameras"), Some(INSPECTOR));
    assert_eq!(
        cams.json["cameras"][0]["frames"], 30,
        "totals are rebuilt from the store"
    );
    // New ids continue after the old ones.
    let r = post_frame(
        &s,
        "cam-01",
        Some(CAM1_KEY),
        "image/png",
        &fixture(imgs[0]),
        &[],
    );
    assert!(r.json["id"].as_i64() > answered.last().unwrap()["id"].as_i64());
}

#[test]
fn a_full_queue_answers_503_with_retry_after_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(
        &tmp.path().join("store"),
        &[
            ("RAILSCOPE__BATCHING__QUEUE_CAPACITY", "1"),
            // one camera may fill the whole queue here: this is the queue's own limit, not
            // the per-camera share (tests/service_admission.rs)
            ("RAILSCOPE__BATCHING__MAX_IN_FLIGHT_PER_CAMERA", "64"),
            ("RAILSCOPE__BATCHING__MAX_BATCH", "1"),
            ("RAILSCOPE__BATCHING__MAX_DELAY_MS", "0"),
            ("RAILSCOPE__SERVER__WORKERS", "4"),
        ],
    );
    let img = Arc::new(fixture("test/missing_clip/000001.png"));
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let stop_at = Instant::now() + Duration::from_secs(20);
    std::thread::scope(|sc| {
        for _ in 0..24 {
            let (img, statuses, s) = (img.clone(), statuses.clone(), &s);
            sc.spawn(move || {
                for _ in 0..10 {
                    if Instant::now() > stop_at {
                        break;
                    }
                    let r = post_frame(s, "cam-01", Some(CAM1_KEY), "image/png", &img, &[]);
                    statuses.lock().unwrap().push((
                        r.status,
                        r.json["error"]["code"].clone(),
                        r.retry_after,
                    ));
                }
            });
        }
    });
    let st = statuses.lock().unwrap();
    let full: Vec<_> = st.iter().filter(|(c, _, _)| *c == 503).collect();
    assert!(
        !full.is_empty(),
        "24 concurrent cameras against a queue of 1 must overflow"
    );
    for (_, code, retry) in &full {
        assert_eq!(code, "queue_full");
        assert_eq!(retry.as_deref(), Some("1"));
    }
    assert!(
        st.iter().all(|(c, _, _)| *c == 200 || *c == 503),
        "only verdicts or 503s"
    );
    let ok = st.iter().filter(|(c, _, _)| *c == 200).count();
    // Every 200 was stored.
    let cams = get(&s.url("/v1/cameras"), Some(INSPECTOR));
    assert_eq!(
        cams.json["cameras"][0]["frames"].as_u64().unwrap() as usize,
        ok
    );
    let text = String::from_utf8(get(&s.url("/metrics"), None).bytes).unwrap();
    assert_eq!(
        metric(
            &text,
            "railscope_rejected_frames_total{reason=\"queue_full\"}"
        ) as usize,
        full.len()
    );
    let after = post_frame(&s, "cam-01", Some(CAM1_KEY), "image/png", &img, &[]);
    assert_eq!(after.status, 200, "recovers once the burst is over");
}

#[test]
fn reload_under_load_fails_no_request() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    let stop = AtomicBool::new(false);
    let results = Mutex::new(Vec::new());
    let img = fixture("test/good/000003.png");
    std::thread::scope(|sc| {
        for cam in ["cam-01", "cam-02", "cam-03"] {
            let key = format!("demo-key-{cam}");
            let (s, stop, results, img) = (&s, &stop, &results, &img);
            sc.spawn(move || {
                let t = Instant::now();
                while !stop.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(60) {
                    let r = post_frame(s, cam, Some(&key), "image/png", img, &[]);
                    results.lock().unwrap().push(r.status);
                }
            });
        }
        std::thread::sleep(Duration::from_millis(500));
        // Two reloads through the API and one through SIGHUP, all while frames flow.
        for _ in 0..2 {
            let r = post_json(&s.url("/admin/reload"), Some(ADMIN), &json!({}));
            assert_eq!(r.status, 200, "{}", r.json);
            assert_eq!(r.json["model"]["name"], "nested-edgan");
        }
        assert_eq!(
            post_json(&s.url("/admin/reload"), Some(INSPECTOR), &json!({})).status,
            403
        );
        s.signal("HUP");
        let t = Instant::now();
        loop {
            let text = String::from_utf8(get(&s.url("/metrics"), None).bytes).unwrap();
            if metric(&text, "railscope_model_reloads_total{result=\"ok\"}") >= 3.0 {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "SIGHUP reload did not happen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::SeqCst);
    });
    let r = results.lock().unwrap();
    assert!(
        r.len() > 20,
        "enough traffic during the reloads: {}",
        r.len()
    );
    assert!(
        r.iter().all(|&c| c == 200),
        "every request answered 200 across reloads: {:?}",
        r.iter().filter(|&&c| c != 200).collect::<Vec<_>>()
    );
}

/// One frame posted over a raw connection, with the moment each phase ended, so the test can
/// tell a request that was in flight when SIGTERM landed from one started after it.
struct Attempt {
    started: Instant,
    /// Whole request written (headers and body).
    sent: Option<Instant>,
    answered: Option<Instant>,
    status: Option<u16>,
    body: Value,
    /// Set when no HTTP answer came back.
    error: Option<(&'static str, String)>,
}

fn post_frame_raw(port: u16, img: &[u8]) -> Attempt {
    use std::io::{Read, Write};
    let started = Instant::now();
    let mut a = Attempt {
        started,
        sent: None,
        answered: None,
        status: None,
        body: Value::Null,
        error: None,
    };
    let mut conn = match std::net::TcpStream::connect(("127.0.0.1", port)) {
        Ok(c) => c,
        Err(e) => {
            a.error = Some(("connect", e.to_string()));
            return a;
        }
    };
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    conn.set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let head = format!(
        "POST /v1/cameras/cam-01/frames HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Authorization: Bearer {CAM1_KEY}\r\nContent-Type: image/png\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        img.len()
    );
    if let Err(e) = conn
        .write_all(head.as_bytes())
        .and_then(|_| conn.write_all(img))
        .and_then(|_| conn.flush())
    {
        a.error = Some(("send", e.to_string()));
        return a;
    }
    a.sent = Some(Instant::now());
    let mut raw = Vec::new();
    let read = conn.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse::<u16>().ok());
    match (status, text.split_once("\r\n\r\n")) {
        (Some(code), Some((_, body))) if read.is_ok() => {
            a.answered = Some(Instant::now());
            a.status = Some(code);
            a.body = serde_json::from_str(body).unwrap_or(Value::Null);
        }
        _ => {
            let why = match read {
                Err(e) => e.to_string(),
                Ok(n) => format!("{n} bytes, no complete HTTP answer: {text:?}"),
            };
            a.error = Some(("answer", why));
        }
    }
    a
}

#[test]
fn sigterm_drains_in_flight_frames_and_exits_cleanly() {
    const SHUTDOWN_TIMEOUT_S: u64 = 10;
    const THREADS: usize = 8;
    const FRAMES_PER_THREAD: usize = 6;
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Service::start(
        &tmp.path().join("store"),
        &[
            // One frame per batch: while one is scored the other threads' frames wait in the
            // queue, so answers come one by one and several frames are queued at any moment.
            ("RAILSCOPE__BATCHING__MAX_BATCH", "1"),
            ("RAILSCOPE__BATCHING__MAX_DELAY_MS", "0"),
            (
                "RAILSCOPE__SERVER__SHUTDOWN_TIMEOUT_S",
                &SHUTDOWN_TIMEOUT_S.to_string(),
            ),
        ],
    );
    let port = s.port;
    let img = fixture("test/good/000004.png");
    let attempts: Mutex<Vec<Attempt>> = Mutex::new(Vec::new());
    let answered_200 = std::sync::atomic::AtomicUsize::new(0);
    let mut signal_window = None;
    let mut exited = None;
    std::thread::scope(|sc| {
        for _ in 0..THREADS {
            let (img, attempts, answered_200) = (&img, &attempts, &answered_200);
            sc.spawn(move || {
                // Back to back: while one answer is read the other threads' frames are queued.
                for _ in 0..FRAMES_PER_THREAD {
                    let a = post_frame_raw(port, img);
                    if a.status == Some(200) {
                        answered_200.fetch_add(1, Ordering::SeqCst);
                    }
                    let refused = a
                        .error
                        .as_ref()
                        .is_some_and(|(phase, _)| *phase == "connect");
                    attempts.lock().unwrap().push(a);
                    if refused {
                        break; // the listener is closed: nothing more to send
                    }
                }
            });
        }
        // SIGTERM once traffic flows (one frame answered) but long before the threads are done.
        let t = Instant::now();
        while answered_200.load(Ordering::SeqCst) < 1 {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "no frame answered in 20 s:\n{}",
                s.log_text()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let before = Instant::now();
        s.signal("TERM");
        let after = Instant::now();
        signal_window = Some((before, after));
        // Wait for the exit here, while the clients are still posting.
        let mut child = s.child.take().expect("running");
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(
                before.elapsed() < Duration::from_secs(SHUTDOWN_TIMEOUT_S + 10),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        exited = Some((status, before.elapsed()));
    });
    let (sig_before, sig_after) = signal_window.unwrap();
    let (status, took) = exited.unwrap();
    let log = s.log_text();
    assert!(
        status.success(),
        "clean exit after SIGTERM: {status}\n{log}"
    );
    assert!(
        took < Duration::from_secs(SHUTDOWN_TIMEOUT_S),
        "exit took {took:?}, past the {SHUTDOWN_TIMEOUT_S} s shutdown timeout\n{log}"
    );
    assert!(log.contains("every queued frame was answered or stored"));

    let attempts = attempts.into_inner().unwrap();
    let mut ids = Vec::new();
    // How close before the signal a request may be and still race the listener's close.
    const RACE_MARGIN: Duration = Duration::from_millis(50);
    let (mut in_flight_200, mut refused_after, mut dropped_after, mut draining_503) = (0, 0, 0, 0);
    let mut raced_close = 0;
    for a in &attempts {
        let sent_before_signal = a.sent.is_some_and(|t| t < sig_before);
        match (a.status, &a.error) {
            (Some(200), _) => {
                let id = a.body["id"].as_i64();
                assert!(id.is_some(), "200 without an id: {}", a.body);
                ids.push(id.unwrap());
                if sent_before_signal && a.answered.unwrap() > sig_after {
                    in_flight_200 += 1;
                }
            }
            (Some(503), _) => {
                // A frame that reached the handler once draining had begun.
                assert_eq!(a.body["error"]["code"], "not_ready", "{}", a.body);
                assert!(
                    a.answered.unwrap() > sig_before,
                    "503 before SIGTERM: {}",
                    a.body
                );
                draining_503 += 1;
            }
            (Some(code), _) => panic!("unexpected {code}: {}\n{log}", a.body),
            (None, Some((phase, why))) => {
                // No HTTP answer is acceptable only for a request that raced the listener's
                // close: begun after the signal, or just before it (a connection still in the
                // kernel's accept backlog when the listener closes is reset, not drained).
                // A request fully sent well before SIGTERM was accepted and must be answered:
                // a server that quit at once would cut exactly these.
                let long_before = a.sent.is_some_and(|t| t + RACE_MARGIN < sig_before);
                assert!(
                    !long_before,
                    "a request sent {:?} before SIGTERM got no answer ({phase}: {why}); \
                     the drain dropped an in-flight request\n{log}",
                    sig_before - a.sent.unwrap()
                );
                if a.started < sig_before {
                    raced_close += 1;
                } else if *phase == "connect" {
                    refused_after += 1;
                } else {
                    dropped_after += 1;
                }
            }
            (None, None) => unreachable!(),
        }
    }
    eprintln!(
        "{} requests: {} answered 200 ({in_flight_200} sent before SIGTERM and answered after), \
         {draining_503} answered 503 while draining, {refused_after} refused and \
         {dropped_after} cut after SIGTERM, {raced_close} begun just before it and cut",
        attempts.len(),
        ids.len()
    );
    assert!(
        in_flight_200 >= 1,
        "no request was in flight across SIGTERM (sent before, answered 200 after); \
         the test did not exercise the drain"
    );
    // Every 200 is in the store, and nothing else is.
    let mut s2 = Service::start(&s.storage, &[]);
    for id in &ids {
        assert_eq!(
            get(&s2.url(&format!("/v1/inspections/{id}")), Some(INSPECTOR)).status,
            200,
            "inspection {id} answered 200 before shutdown but not stored"
        );
    }
    let cams = get(&s2.url("/v1/cameras"), Some(INSPECTOR));
    assert_eq!(
        cams.json["cameras"][0]["frames"].as_u64().unwrap() as usize,
        ids.len(),
        "stored frames = frames answered 200"
    );
    s2.kill9();
}

fn promtool() -> String {
    let p = "/usr/bin/promtool";
    assert!(
        std::path::Path::new(p).is_file(),
        "promtool is missing: `make rust-deps` installs Debian's prometheus package"
    );
    p.into()
}

#[test]
fn metrics_move_with_frames_and_pass_promtool() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(
        &tmp.path().join("store"),
        &[("RAILSCOPE__SERVER__METRICS_BIND", "")],
    );
    let before = String::from_utf8(get(&s.url("/metrics"), None).bytes).unwrap();
    assert_eq!(
        metric(
            &before,
            "railscope_frames_total{camera=\"cam-01\",verdict=\"normal\"}"
        ),
        0.0
    );
    assert_eq!(metric(&before, "railscope_queue_capacity"), 256.0);
    let (_, version) = common::shipped_version();
    assert!(
        before.contains(&format!(
            "railscope_model_info{{camera=\"cam-01\",model=\"nested-edgan\",provider=\"cpu\",version=\"{version}\"}} 1"
        )),
        "{before}"
    );
    for k in 0..5 {
        let r = post_frame(
            &s,
            "cam-01",
            Some(CAM1_KEY),
            "image/png",
            &fixture(&format!("test/good/00000{k}.png")),
            &[],
        );
        assert_eq!(r.status, 200);
    }
    let after = String::from_utf8(get(&s.url("/metrics"), None).bytes).unwrap();
    let frames = metric(
        &after,
        "railscope_frames_total{camera=\"cam-01\",verdict=\"normal\"}",
    ) + metric(
        &after,
        "railscope_frames_total{camera=\"cam-01\",verdict=\"defect\"}",
    );
    assert_eq!(frames, 5.0);
    assert_eq!(
        metric(&after, "railscope_anomaly_score_count{camera=\"cam-01\"}"),
        5.0
    );
    assert_eq!(
        metric(
            &after,
            "railscope_stage_duration_seconds_count{stage=\"infer\"}"
        ),
        5.0
    );
    assert!(metric(&after, "railscope_batch_size_count") >= 1.0);
    assert!(
        metric(
            &after,
            "railscope_camera_last_frame_timestamp_seconds{camera=\"cam-01\"}"
        ) > 1.7e9
    );

    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(after.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && msg.trim().is_empty(),
        "promtool check metrics: {msg}"
    );
}

#[test]
fn metrics_can_live_on_a_separate_address() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let s = Service::start(
        &tmp.path().join("store"),
        &[("RAILSCOPE__SERVER__METRICS_BIND", bind.as_str())],
    );
    assert_eq!(
        get(&s.url("/metrics"), None).status,
        404,
        "not on the public address"
    );
    let r = get(&format!("http://{bind}/metrics"), None);
    assert_eq!(r.status, 200);
    assert!(String::from_utf8(r.bytes)
        .unwrap()
        .contains("railscope_frames_total"));
    assert_eq!(get(&format!("http://{bind}/readyz"), None).status, 200);
    // The probe address answers like the main one: JSON errors and the security headers.
    let r = get(&format!("http://{bind}/v1/cameras"), None);
    assert_eq!(
        (r.status, &r.json["error"]["code"]),
        (404, &"not_found".into())
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

/// A real Prometheus scrapes the running service with the shipped alert rules loaded.
#[test]
fn a_real_prometheus_scrapes_the_service_and_loads_the_alert_rules() {
    let prometheus = "/usr/bin/prometheus";
    assert!(
        std::path::Path::new(prometheus).is_file(),
        "prometheus is missing: `make rust-deps`"
    );
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    let prom_port = free_port();
    let cfg = tmp.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: railscope\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            root().join("docker/prometheus/alerts.yml").display(),
            s.port
        ),
    )
    .unwrap();
    let log = std::fs::File::create(tmp.path().join("prometheus.log")).unwrap();
    let _prometheus = KillOnDrop(
        Command::new(prometheus)
            .args([
                format!("--config.file={}", cfg.display()),
                format!("--storage.tsdb.path={}", tmp.path().join("tsdb").display()),
                format!("--web.listen-address=127.0.0.1:{prom_port}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    for k in 0..4 {
        post_frame(
            &s,
            "cam-01",
            Some(CAM1_KEY),
            "image/png",
            &fixture(&format!("test/good/00000{k}.png")),
            &[],
        );
    }
    let query = |q: &str| -> Value {
        let url = format!(
            "http://127.0.0.1:{prom_port}/api/v1/query?query={}",
            urlencode(q)
        );
        match ureq::get(&url).call() {
            Ok(r) => serde_json::from_str(&r.into_string().unwrap()).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    };
    let t = Instant::now();
    let value = loop {
        let v = query("sum(railscope_frames_total{camera=\"cam-01\"})");
        if let Some(x) = v["data"]["result"][0]["value"][1].as_str() {
            break x.parse::<f64>().unwrap();
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "Prometheus never scraped railscope: {v}\n{}",
            std::fs::read_to_string(tmp.path().join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(value, 4.0);
    let up = query("up{job=\"railscope\"}");
    assert_eq!(up["data"]["result"][0]["value"][1], "1");
    let rules = get(&format!("http://127.0.0.1:{prom_port}/api/v1/rules"), None).json;
    let loaded: Vec<&Value> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    let names: Vec<&str> = loaded.iter().map(|r| r["name"].as_str().unwrap()).collect();
    for alert in [
        "RailscopeCameraDefectRateHigh",
        "RailscopeCameraSilent",
        "RailscopeScoreDrift",
        "RailscopeQueueSaturated",
    ] {
        assert!(names.contains(&alert), "{alert} not loaded: {names:?}");
    }
    assert!(
        loaded.iter().all(|r| r["health"] != "err"),
        "a rule failed to evaluate: {rules}"
    );
}

/// Prometheus is stopped however the test ends.
struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_frame_past_the_request_timeout_gets_504_and_is_still_stored() {
    let tmp = tempfile::tempdir().unwrap();
    // 1 ms: no frame can be judged and committed in time.
    let s = Service::start(
        &tmp.path().join("store"),
        &[("RAILSCOPE__BATCHING__REQUEST_TIMEOUT_MS", "1")],
    );
    let r = post_frame(
        &s,
        "cam-01",
        Some(CAM1_KEY),
        "image/png",
        &fixture("test/good/000000.png"),
        &[("X-Frame-Id", "late-1")],
    );
    assert_eq!(r.status, 504, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "timeout");
    let t = Instant::now();
    loop {
        let list = get(&s.url("/v1/inspections?camera=cam-01"), Some(INSPECTOR));
        if list.json["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i["frame_id"] == "late-1"))
        {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the late frame was not stored"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = String::from_utf8(get(&s.url("/metrics"), None).bytes).unwrap();
    assert_eq!(
        metric(&text, "railscope_rejected_frames_total{reason=\"timeout\"}"),
        1.0
    );
}

/// `serve --model` outranks the config's `server.model` on every reload too, and a reload says
/// which changed config sections it did not apply.
#[test]
fn reload_keeps_the_cli_model_and_lists_config_changes_it_does_not_apply() {
    let shipped = common::require_model();
    let tmp = tempfile::tempdir().unwrap();
    // A copy of the shipped package, told apart by its version.
    let pkg = tmp.path().join("pkg/nested-edgan");
    common::copy_package(&shipped, &pkg);
    let manifest = std::fs::read_to_string(pkg.join("manifest.toml")).unwrap();
    let marked = manifest.replacen(&common::shipped_version().0, "version = \"1.0.0-cli\"", 1);
    assert_ne!(marked, manifest);
    std::fs::write(pkg.join("manifest.toml"), marked).unwrap();
    let base = std::fs::read_to_string(root().join("config/railscope.toml")).unwrap();
    assert!(base.contains("model = \"models/nested-edgan\""));
    let cfg_path = tmp.path().join("railscope.toml");
    std::fs::write(&cfg_path, &base).unwrap();

    let port = free_port();
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let log = tmp.path().join("serve.log");
    let mut c = Command::new(env!("CARGO_BIN_EXE_railscope"));
    c.current_dir(root());
    common::isolate(&mut c);
    c.arg("--config")
        .arg(&cfg_path)
        .arg("serve")
        .arg("--model")
        .arg(&pkg)
        .env("RAILSCOPE__ENGINE__PROVIDERS", "cpu")
        .env("RAILSCOPE__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("RAILSCOPE__STORAGE__PATH", tmp.path().join("store"))
        .env("RAILSCOPE__STORAGE__SYNCHRONOUS", "normal")
        .env("RAILSCOPE__SERVER__WORKERS", "2")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = KillOnDrop(c.spawn().expect("spawn railscope serve"));
    let t = Instant::now();
    while !matches!(ureq::get(&url("/readyz")).call(), Ok(r) if r.status() == 200) {
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "serve exited early:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "service not ready in 60 s:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let info =
        "railscope_model_info{camera=\"cam-01\",model=\"nested-edgan\",provider=\"cpu\",version=\"1.0.0-cli\"}";
    let text = String::from_utf8(get(&url("/metrics"), None).bytes).unwrap();
    assert_eq!(metric(&text, info), 1.0, "{text}");

    // Nothing changed on disk: the CLI model stays and nothing is left unapplied.
    let r = post_json(&url("/admin/reload"), Some(ADMIN), &json!({}));
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["model"]["version"], "1.0.0-cli", "{}", r.json);
    assert_eq!(r.json["not_applied"], json!([]), "{}", r.json);
    let text = String::from_utf8(get(&url("/metrics"), None).bytes).unwrap();
    assert_eq!(metric(&text, info), 1.0, "{text}");

    // New tokens on disk: not applied by a reload, and the answer says so.
    let edited = base.replace(
        "inspector_tokens = [\"demo-inspector-token\"]",
        "inspector_tokens = [\"rotated-inspector-token\"]",
    );
    assert_ne!(edited, base);
    std::fs::write(&cfg_path, edited).unwrap();
    let r = post_json(&url("/admin/reload"), Some(ADMIN), &json!({}));
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["model"]["version"], "1.0.0-cli", "{}", r.json);
    assert_eq!(r.json["not_applied"], json!(["auth"]), "{}", r.json);
    assert!(
        r.json["message"].as_str().unwrap_or("").contains("restart"),
        "{}",
        r.json
    );
    // The running tokens are still the old ones.
    assert_eq!(get(&url("/v1/cameras"), Some(INSPECTOR)).status, 200);
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("not applied by a reload"));
}

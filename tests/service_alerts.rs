//! `GET /v1/alerts` (issue 12, item 3: the firing Prometheus alerts in the start-of-shift view)
//! against the real binary on 127.0.0.1: not connected without `[alerts] prometheus_url`; a
//! Prometheus with nothing listening, or one that never answers, is a 502 `alerts_unavailable`
//! within the timeout while the service goes on inspecting frames; a Prometheus stand-in on a
//! local socket gives the railscope alerts that fire or are pending. The real Prometheus is
//! checked by docker/grafana/check_alerts.py (`make prometheus-test`).

mod common;
#[path = "service/harness.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use harness::*;
use serde_json::{json, Value};

/// The frame path still works: one fixture posted to cam-01 is answered.
fn inspects_frames(s: &Service) {
    let png = fixture("test/good/000000.png");
    let r = post_frame(s, "cam-01", Some(CAM1_KEY), "image/png", &png, &[]);
    assert_eq!(r.status, 200, "{}", r.json);
}

#[test]
fn without_a_prometheus_url_alerts_are_not_connected() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(&tmp.path().join("store"), &[]);
    let r = get(&s.url("/v1/alerts"), Some(INSPECTOR));
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["connected"], false);
    assert_eq!(r.json["alerts"], json!([]));
    assert!(r.json["message"]
        .as_str()
        .unwrap()
        .contains("not connected"));
    assert_eq!(get(&s.url("/v1/alerts"), Some(ADMIN)).status, 200);
    assert_eq!(get(&s.url("/v1/alerts"), None).status, 401);
    assert_eq!(
        get(&s.url("/v1/alerts"), Some(CAM1_KEY)).status,
        403,
        "a camera key reads nothing"
    );
    let post = request("POST", &s.url("/v1/alerts"), Some(INSPECTOR), b"");
    assert_eq!(post.status, 405);
}

#[test]
fn a_prometheus_that_is_down_or_silent_is_a_502_and_nothing_else_fails() {
    // Nothing listens on this port.
    let dead = free_port();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{dead}");
    let s = Service::start(
        &tmp.path().join("store"),
        &[
            ("RAILSCOPE__ALERTS__PROMETHEUS_URL", url.as_str()),
            ("RAILSCOPE__ALERTS__TIMEOUT_MS", "800"),
        ],
    );
    assert_eq!(
        get(&s.url("/readyz"), None).status,
        200,
        "ready without Prometheus"
    );
    let t = Instant::now();
    let r = get(&s.url("/v1/alerts"), Some(INSPECTOR));
    assert_eq!(r.status, 502, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "alerts_unavailable");
    let msg = r.json["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("alerts unavailable: Prometheus cannot be reached"),
        "{msg}"
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(r.content_type.starts_with("application/json"));
    inspects_frames(&s);
    assert_eq!(get(&s.url("/v1/summary"), Some(INSPECTOR)).status, 200);
    drop(s);

    // A Prometheus that accepts the connection and never answers: the same, within the timeout.
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", hung.local_addr().unwrap());
    let tmp2 = tempfile::tempdir().unwrap();
    let s = Service::start(
        &tmp2.path().join("store"),
        &[
            ("RAILSCOPE__ALERTS__PROMETHEUS_URL", url.as_str()),
            ("RAILSCOPE__ALERTS__TIMEOUT_MS", "800"),
        ],
    );
    let t = Instant::now();
    let r = get(&s.url("/v1/alerts"), Some(INSPECTOR));
    assert_eq!(r.status, 502, "{}", r.json);
    assert_eq!(r.json["error"]["code"], "alerts_unavailable");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "answered within the timeout: {:?}",
        t.elapsed()
    );
    inspects_frames(&s);
    drop(hung);
}

/// A one-connection-at-a-time stand-in for Prometheus' `/api/v1/alerts`, answering `body`.
fn fake_prometheus(body: Value) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let text = body.to_string();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 4096];
            let n = c.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            let reply = if head.starts_with("GET /api/v1/alerts ") {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
            };
            let _ = c.write_all(reply.as_bytes());
        }
    });
    format!("http://{addr}/")
}

#[test]
fn the_railscope_alerts_that_fire_or_are_pending() {
    let url = fake_prometheus(json!({"status": "success", "data": {"alerts": [
        {"labels": {"alertname": "RailscopeCameraSilent", "camera": "cam-03", "severity": "warning", "job": "railscope"},
         "annotations": {"summary": "Camera cam-03 sent no frame for 6m"}, "state": "firing",
         "activeAt": "2026-12-03T09:00:00Z", "value": "360"},
        {"labels": {"alertname": "RailscopeLatencyHigh", "instance": "127.0.0.1:8080", "severity": "warning"},
         "annotations": {"summary": "p99 0.7 s"}, "state": "pending", "activeAt": "2026-12-03T09:30:00Z", "value": "0.7"},
        {"labels": {"alertname": "NodeDiskFull", "severity": "critical"}, "annotations": {}, "state": "firing",
         "activeAt": "2026-12-03T08:00:00Z", "value": "1"}
    ]}}));
    let tmp = tempfile::tempdir().unwrap();
    let s = Service::start(
        &tmp.path().join("store"),
        &[("RAILSCOPE__ALERTS__PROMETHEUS_URL", url.as_str())],
    );
    let r = get(&s.url("/v1/alerts"), Some(INSPECTOR));
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["connected"], true);
    assert_eq!(
        r.json["alerts"],
        json!([
            {"name": "RailscopeCameraSilent", "state": "firing", "severity": "warning", "camera": "cam-03",
             "instance": null, "since": "2026-12-03T09:00:00.000Z", "summary": "Camera cam-03 sent no frame for 6m"},
            {"name": "RailscopeLatencyHigh", "state": "pending", "severity": "warning", "camera": null,
             "instance": "127.0.0.1:8080", "since": "2026-12-03T09:30:00.000Z", "summary": "p99 0.7 s"}
        ]),
        "only railscope's, firing first; another service's alert is left out"
    );
}

#[test]
fn a_prometheus_url_that_is_not_plain_http_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let out = common::bin()
        .args(["serve"])
        .env(
            "RAILSCOPE__ALERTS__PROMETHEUS_URL",
            "https://prometheus.example:9090",
        )
        .env("RAILSCOPE__STORAGE__PATH", tmp.path().join("store"))
        .env(
            "RAILSCOPE__SERVER__BIND",
            format!("127.0.0.1:{}", free_port()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("alerts.prometheus_url"), "{err}");
}

//! `GET /v1/alerts`: the railscope alerts that the configured Prometheus has firing or pending
//! (`[alerts] prometheus_url`), for the dashboard's start-of-shift panel.
//!
//! Prometheus is optional and never in a frame's path: without a URL the answer says alerts are
//! not connected (200, not an error); a Prometheus that is down, slow or answers nonsense gives
//! 502 `alerts_unavailable` for this request only. The question runs on the blocking pool with
//! `alerts.timeout_ms` for connect and answer, so the event loop never waits on it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::errors::{ApiError, Resp};
use super::views::{parse_time, rfc3339};
use crate::service::AppState;

/// The largest Prometheus answer read (a few thousand alerts); more is refused as unavailable.
const MAX_ANSWER_BYTES: u64 = 4 * 1024 * 1024;

/// One railscope alert as the dashboard shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub name: String,
    /// `firing` or `pending`.
    pub state: String,
    pub severity: Option<String>,
    /// The `camera` label, for the alerts of one camera.
    pub camera: Option<String>,
    pub instance: Option<String>,
    /// When the alert became active (Prometheus' `activeAt`), epoch ms.
    pub since_ms: Option<i64>,
    pub summary: Option<String>,
}

impl Alert {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "state": self.state,
            "severity": self.severity,
            "camera": self.camera,
            "instance": self.instance,
            "since": self.since_ms.map(rfc3339),
            "summary": self.summary,
        })
    }
}

/// The railscope alerts (alertname starting with `prefix`) that are firing or pending in a
/// Prometheus `/api/v1/alerts` answer: firing first, then the longest active, then by name.
pub fn railscope_alerts(answer: &Value, prefix: &str) -> Result<Vec<Alert>, String> {
    if answer["status"] != "success" {
        let why = answer["error"].as_str().unwrap_or("no status \"success\"");
        return Err(format!("Prometheus answered an error: {why}"));
    }
    let list = answer["data"]["alerts"]
        .as_array()
        .ok_or("Prometheus' answer has no data.alerts list")?;
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let mut out: Vec<Alert> = list
        .iter()
        .filter_map(|a| {
            let name = a["labels"]["alertname"].as_str()?;
            let state = a["state"].as_str()?;
            if !name.starts_with(prefix) || !matches!(state, "firing" | "pending") {
                return None;
            }
            Some(Alert {
                name: name.to_string(),
                state: state.to_string(),
                severity: text(&a["labels"]["severity"]),
                camera: text(&a["labels"]["camera"]),
                instance: text(&a["labels"]["instance"]),
                since_ms: a["activeAt"].as_str().and_then(parse_time),
                summary: text(&a["annotations"]["summary"]),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (a.state != "firing")
            .cmp(&(b.state != "firing"))
            .then(
                a.since_ms
                    .unwrap_or(i64::MAX)
                    .cmp(&b.since_ms.unwrap_or(i64::MAX)),
            )
            .then(a.name.cmp(&b.name))
            .then(a.camera.cmp(&b.camera))
    });
    Ok(out)
}

/// Asks `base`/api/v1/alerts within `timeout`. Blocking: call it on the blocking pool.
pub fn fetch_alerts(base: &str, timeout: Duration, prefix: &str) -> Result<Vec<Alert>, String> {
    let url = format!("{}/api/v1/alerts", base.trim().trim_end_matches('/'));
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout(timeout)
        .redirects(0)
        .build();
    let resp = match agent.get(&url).set("Accept", "application/json").call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => {
            return Err(format!("Prometheus answered HTTP {code}"));
        }
        Err(ureq::Error::Transport(t)) => {
            return Err(format!("Prometheus cannot be reached ({})", t.kind()));
        }
    };
    let mut body = String::new();
    use std::io::Read;
    resp.into_reader()
        .take(MAX_ANSWER_BYTES + 1)
        .read_to_string(&mut body)
        .map_err(|e| format!("reading Prometheus' answer: {e}"))?;
    if body.len() as u64 > MAX_ANSWER_BYTES {
        return Err(format!(
            "Prometheus' answer is larger than {MAX_ANSWER_BYTES} bytes"
        ));
    }
    let answer: Value =
        serde_json::from_str(&body).map_err(|e| format!("Prometheus' answer is not JSON: {e}"))?;
    railscope_alerts(&answer, prefix)
}

/// When the service last logged that Prometheus failed (epoch s): at most once a minute, since
/// every open dashboard asks every few seconds.
static LAST_WARNED_S: AtomicI64 = AtomicI64::new(0);

pub(super) async fn alerts(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req).await?;
    let cfg = state.config.alerts.clone();
    let now = chrono::Utc::now().timestamp_millis();
    if cfg.prometheus_url.trim().is_empty() {
        return Ok(HttpResponse::Ok().json(json!({
            "connected": false,
            "message": "alerts are not connected: no [alerts] prometheus_url is configured",
            "checked_at": rfc3339(now),
            "alerts": [],
        })));
    }
    let timeout = Duration::from_millis(cfg.timeout_ms);
    let (url, prefix) = (cfg.prometheus_url.clone(), cfg.name_prefix.clone());
    let got = web::block(move || fetch_alerts(&url, timeout, &prefix))
        .await
        .map_err(|e| ApiError::internal(format!("worker pool: {e}")))?;
    match got {
        Ok(list) => Ok(HttpResponse::Ok().json(json!({
            "connected": true,
            "checked_at": rfc3339(now),
            "alerts": list.iter().map(Alert::to_json).collect::<Vec<_>>(),
        }))),
        Err(why) => {
            let s = now / 1000;
            let last = LAST_WARNED_S.load(Ordering::Relaxed);
            if s - last >= 60
                && LAST_WARNED_S
                    .compare_exchange(last, s, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::warn!(prometheus = %cfg.prometheus_url, error = %why, "alerts unavailable");
            }
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "alerts_unavailable",
                format!("alerts unavailable: {why}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> Value {
        json!({"status": "success", "data": {"alerts": [
            {"labels": {"alertname": "RailscopeCameraSilent", "camera": "cam-02", "severity": "warning"},
             "annotations": {"summary": "Camera cam-02 sent no frame for 6m"},
             "state": "firing", "activeAt": "2026-12-03T10:00:00.5+01:00", "value": "360"},
            {"labels": {"alertname": "RailscopeLatencyHigh", "instance": "127.0.0.1:8080", "severity": "warning"},
             "annotations": {}, "state": "pending", "activeAt": "2026-12-03T08:00:00Z", "value": "0.7"},
            {"labels": {"alertname": "RailscopeQueueSaturated", "severity": "critical"},
             "annotations": {"summary": "queue full"}, "state": "firing", "activeAt": "2026-12-03T08:30:00Z"},
            {"labels": {"alertname": "RailscopeDown"}, "state": "inactive", "activeAt": "2026-12-03T08:00:00Z"},
            {"labels": {"alertname": "NodeDiskFull"}, "state": "firing", "activeAt": "2026-12-03T07:00:00Z"},
            {"labels": {}, "state": "firing"}
        ]}})
    }

    #[test]
    fn only_railscope_alerts_firing_or_pending_firing_first() {
        let got = railscope_alerts(&answer(), "Railscope").unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|a| (a.name.as_str(), a.state.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("RailscopeQueueSaturated", "firing"),
                ("RailscopeCameraSilent", "firing"),
                ("RailscopeLatencyHigh", "pending"),
            ]
        );
        let silent = &got[1];
        assert_eq!(silent.camera.as_deref(), Some("cam-02"));
        assert_eq!(silent.severity.as_deref(), Some("warning"));
        assert_eq!(
            silent.summary.as_deref(),
            Some("Camera cam-02 sent no frame for 6m")
        );
        assert_eq!(
            silent.to_json()["since"],
            "2026-12-03T09:00:00.500Z",
            "activeAt in UTC"
        );
        assert_eq!(got[2].summary, None, "no summary annotation: null");
        assert_eq!(got[2].camera, None);
    }

    #[test]
    fn an_error_answer_or_another_shape_is_unavailable() {
        let err = json!({"status": "error", "errorType": "bad_data", "error": "boom"});
        assert!(railscope_alerts(&err, "Railscope")
            .unwrap_err()
            .contains("boom"));
        assert!(railscope_alerts(&json!({"status": "success", "data": {}}), "Railscope").is_err());
        assert!(railscope_alerts(&json!([1, 2]), "Railscope").is_err());
    }

    #[test]
    fn nothing_listening_is_unavailable_within_the_timeout() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let t = std::time::Instant::now();
        let err = fetch_alerts(
            &format!("http://127.0.0.1:{port}"),
            Duration::from_millis(500),
            "Railscope",
        )
        .unwrap_err();
        assert!(err.contains("cannot be reached"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(3));
    }
}

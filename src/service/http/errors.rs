//! Every error the API returns: a stable `code` for programs, a `message` for people, and the
//! HTTP status that says whose fault it was. Handlers never panic on client input.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::error::{DecodeError, Error};

/// What a handler answers: a response, or an error in the JSON error format.
pub type Resp = Result<HttpResponse, ApiError>;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (503s).
    pub retry_after: Option<u32>,
    /// Methods for `Allow` (405s).
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            allow: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or unknown token: send `Authorization: Bearer <token>` or log in",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// Our fault. The detail (SQL, paths) goes to the log, not to the client, which gets a
    /// reference to quote instead.
    pub fn internal(detail: impl Into<String>) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let reference = format!(
            "{:x}-{}",
            chrono::Utc::now().timestamp(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        tracing::error!(reference = %reference, detail = %detail.into(), "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error (reference {reference}); the service log has the details"),
        )
    }
    /// A path the service does not have.
    pub fn no_route(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route {method} {path}; see docs/api.yaml"),
        )
    }
    /// A known path asked with a method it does not answer; `allow` lists those it does.
    pub fn method_not_allowed(method: &str, path: &str, allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{path} does not answer {method}; allowed: {allow}"),
            )
        }
    }
    /// An error actix-web raised itself (an extractor's payload limit, a malformed query or
    /// path), in the service's JSON format with a code from its status.
    pub fn from_framework(status: StatusCode, message: String) -> Self {
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::REQUEST_TIMEOUT => "timeout",
            s if s.is_server_error() => "internal",
            _ => "bad_request",
        };
        let message = match status {
            StatusCode::PAYLOAD_TOO_LARGE => format!("request body is too large: {message}"),
            _ => message,
        };
        Self::new(status, code, message)
    }
    pub fn unavailable(code: &'static str, message: impl Into<String>, retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// The `railscope_rejected_frames_total{reason}` label for a refused frame; `None` for a
    /// store failure, which the store thread counts (`store_failed`) once a frame, answered or not.
    pub fn reject_reason(&self) -> Option<&'static str> {
        Some(match self.code {
            "queue_full" => "queue_full",
            "camera_busy" => "camera_busy",
            "insufficient_storage" | "store_unavailable" => return None,
            "frame_in_flight" => "frame_in_flight",
            "not_ready" => "not_ready",
            "internal" => "internal",
            "bad_image" | "empty_body" | "unsupported_media_type" => "bad_image",
            "image_too_large" | "payload_too_large" => "too_large",
            "unauthorized" | "forbidden" | "forbidden_origin" => "unauthorized",
            "unknown_camera" => "unknown_camera",
            "timeout" => "timeout",
            _ => "bad_request",
        })
    }

    /// A frame the library could not turn into a verdict: the client's fault unless it is ours.
    pub fn from_frame_error(e: &Error) -> Self {
        match e {
            Error::Decode { kind, .. } => match kind {
                DecodeError::Empty => {
                    Self::new(StatusCode::BAD_REQUEST, "empty_body", e.to_string())
                }
                DecodeError::TooLarge(_) => Self::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "image_too_large",
                    e.to_string(),
                ),
                DecodeError::UnknownFormat
                | DecodeError::Corrupt(_)
                | DecodeError::UnsupportedPixel(_)
                | DecodeError::Implausible(_) => {
                    Self::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_image", e.to_string())
                }
            },
            Error::Preprocess(_) | Error::Search(_) | Error::OpenCv(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_image", e.to_string())
            }
            other => Self::internal(other.to_string()),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        if let Some(s) = self.retry_after {
            r.insert_header((header::RETRY_AFTER, s.to_string()));
        }
        if let Some(a) = self.allow {
            r.insert_header((header::ALLOW, a));
        }
        r.json(json!({"error": {"code": self.code, "message": self.message}}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_own_reason() {
        let reason =
            |code: &'static str| ApiError::new(StatusCode::BAD_REQUEST, code, "").reject_reason();
        assert_eq!(reason("queue_full"), Some("queue_full"));
        assert_eq!(reason("not_ready"), Some("not_ready"));
        assert_eq!(
            ApiError::internal("disk full").reject_reason(),
            Some("internal")
        );
        assert_eq!(reason("bad_request"), Some("bad_request"));
        assert_eq!(reason("payload_too_large"), Some("too_large"));
        assert_eq!(reason("insufficient_storage"), None); // the store thread counts it
    }

    #[test]
    fn framework_errors_get_a_code_from_their_status() {
        let e = ApiError::from_framework(StatusCode::PAYLOAD_TOO_LARGE, "limit".into());
        assert_eq!(e.code, "payload_too_large");
        assert_eq!(
            ApiError::from_framework(StatusCode::BAD_REQUEST, "x".into()).code,
            "bad_request"
        );
        let e = ApiError::method_not_allowed("GET", "/v1/login", "POST");
        assert_eq!((e.status.as_u16(), e.allow), (405, Some("POST")));
    }
}

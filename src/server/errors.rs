//! Every error the API returns: a stable `code` for programs, a `message` for people, and the
//! HTTP status that says whose fault it was. Handlers never panic on client input.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::error::{DecodeError, Error};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (503s).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
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
    pub fn unavailable(code: &'static str, message: impl Into<String>, retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// The `railscope_rejected_frames_total{reason}` label for a refused frame.
    pub fn reject_reason(&self) -> &'static str {
        match self.code {
            "queue_full" | "not_ready" => "queue_full",
            "bad_image" | "empty_body" | "unsupported_media_type" => "bad_image",
            "image_too_large" | "payload_too_large" => "too_large",
            "unauthorized" | "forbidden" => "unauthorized",
            "unknown_camera" => "unknown_camera",
            "timeout" => "timeout",
            _ => "bad_request",
        }
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
                | DecodeError::UnsupportedPixel(_) => {
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
        r.json(json!({"error": {"code": self.code, "message": self.message}}))
    }
}

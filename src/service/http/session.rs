//! Dashboard sessions: `POST /v1/login`, `POST /v1/logout`, `GET /v1/me`.

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{cookie::Cookie, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::errors::{ApiError, Resp};
use super::params::json_body;
use crate::service::auth::{session_id, COOKIE};
use crate::service::AppState;

#[derive(Debug, Deserialize)]
struct LoginBody {
    token: String,
}

pub(super) async fn login(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Resp {
    let b: LoginBody = json_body(&req, payload, &state, "{\"token\": \"…\"}").await?;
    match state.auth.identify(&b.token) {
        Some(role) if role.can_read() => {
            let id = state
                .auth
                .start_session(role.clone())
                .map_err(|e| ApiError::internal(format!("session id: {e}")))?;
            let cookie = Cookie::build(COOKIE, id)
                .path("/")
                .http_only(true)
                .secure(state.config.server.secure_cookies)
                .same_site(actix_web::cookie::SameSite::Strict)
                .finish();
            Ok(HttpResponse::Ok()
                .cookie(cookie)
                .json(json!({"role": role.name()})))
        }
        // A camera key is refused exactly like an unknown token: the answer must not tell a
        // guesser that a string is some camera's key.
        Some(_) | None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "not an inspector or admin token",
        )),
    }
}

/// Ends the dashboard session (the token itself stays valid: it lives in the config).
pub(super) async fn logout(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(id) = session_id(&req) {
        state.auth.end_session(&id);
    }
    let mut cookie = Cookie::build(COOKIE, "").path("/").finish();
    cookie.make_removal();
    HttpResponse::NoContent().cookie(cookie).finish()
}

pub(super) async fn me(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    let role = state.auth.role_of(&req)?;
    Ok(HttpResponse::Ok().json(json!({"role": role.name()})))
}

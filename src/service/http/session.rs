//! Dashboard sessions: `POST /v1/login` (an account's name and password, or a config token),
//! `POST /v1/logout`, `GET /v1/me`. Failed logins are throttled per name and per client address
//! (429 `too_many_attempts` with `Retry-After`, even for the right password).

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{cookie::Cookie, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::errors::{ApiError, Resp};
use super::params::json_body;
use crate::service::auth::{session_id, Caller, COOKIE};
use crate::service::AppState;

#[derive(Debug, Deserialize)]
struct LoginBody {
    username: Option<String>,
    password: Option<String>,
    token: Option<String>,
}

const LOGIN_SHAPE: &str = "{\"username\": \"…\", \"password\": \"…\"} or {\"token\": \"…\"}";

fn refused(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

pub(super) async fn login(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Resp {
    let b: LoginBody = json_body(&req, payload, &state, LOGIN_SHAPE).await?;
    // The peer's address (a proxy in front counts as one client: X-Forwarded-For is not
    // trusted, anyone can send it).
    let ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let throttle = &state.auth.throttle;
    let too_many = |wait: std::time::Duration| {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u32;
        ApiError {
            retry_after: Some(secs),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!("too many failed logins; try again in {secs} s"),
            )
        }
    };
    let (caller, name) = match (b.username, b.password, b.token) {
        (Some(user), Some(password), None) => {
            let name = user.trim().to_ascii_lowercase();
            if name.is_empty() || name.len() > 64 || password.len() > 1024 {
                return Err(refused("unknown account name or wrong password"));
            }
            throttle.attempt(Some(&name), &ip).map_err(too_many)?;
            match state.auth.login_password(&name, &password).await? {
                Some(c) => (c, Some(name)),
                None => {
                    tracing::info!(account = %name, client = %ip, "login refused");
                    return Err(refused("unknown account name or wrong password"));
                }
            }
        }
        (None, None, Some(token)) => {
            throttle.attempt(None, &ip).map_err(too_many)?;
            match state.auth.identify(&token) {
                Some(c) if c.role.can_read() => (c, None),
                // A camera key is refused exactly like an unknown token: the answer must not
                // tell a guesser that a string is some camera's key.
                _ => {
                    tracing::info!(client = %ip, "token login refused");
                    return Err(refused("not an inspector or admin token"));
                }
            }
        }
        _ => {
            return Err(ApiError::bad_request(format!(
                "body must be {LOGIN_SHAPE}: a username with its password, or a token"
            )))
        }
    };
    throttle.succeeded(name.as_deref(), &ip);
    start(&state, caller).await
}

async fn start(state: &AppState, caller: Caller) -> Resp {
    let id = state.auth.start_session(&caller).await?;
    let cookie = Cookie::build(COOKIE, id)
        .path("/")
        .http_only(true)
        .secure(state.config.server.secure_cookies)
        .same_site(actix_web::cookie::SameSite::Strict)
        .finish();
    tracing::info!(who = %caller.who, role = caller.role.name(), "dashboard session started");
    Ok(HttpResponse::Ok()
        .cookie(cookie)
        .json(json!({"role": caller.role.name(), "who": caller.who})))
}

/// Ends the dashboard session (a token itself stays valid: it lives in the config).
pub(super) async fn logout(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    if let Some(id) = session_id(&req) {
        state.auth.end_session(&id).await?;
    }
    let mut cookie = Cookie::build(COOKIE, "").path("/").finish();
    cookie.make_removal();
    Ok(HttpResponse::NoContent().cookie(cookie).finish())
}

pub(super) async fn me(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    let caller = state.auth.caller(&req).await?;
    Ok(HttpResponse::Ok().json(json!({"role": caller.role.name(), "who": caller.who})))
}

//! Operations: `POST /admin/reload`, `/healthz`, `/readyz`, `/metrics`.

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::errors::{ApiError, Resp};
use super::views;
use crate::service::AppState;

pub(super) async fn reload(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    let caller = state.auth.admin(&req).await?;
    let info = crate::service::reload(state.into_inner(), &caller.who)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "reload_failed", e))?;
    Ok(HttpResponse::Ok().json(info))
}

pub(super) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub(super) async fn readyz(state: web::Data<AppState>) -> Resp {
    if state.is_draining() {
        return Err(ApiError::unavailable("not_ready", "shutting down", 5));
    }
    if !state.batcher().is_some_and(|b| b.workers_alive()) {
        return Err(ApiError::unavailable(
            "not_ready",
            "an inspection worker thread has stopped (see the service log)",
            5,
        ));
    }
    let store = state.store.clone();
    let writable = web::block(move || store.check_writable()).await;
    match writable {
        Ok(Ok(())) => {
            let served = state.served();
            let m = served.service_model();
            Ok(HttpResponse::Ok().json(json!({
                "status": "ready",
                "model": views::model_ref(m),
                "provider": m.provider(),
                "models": views::served_models(&served),
                "queue": {"depth": state.batcher().map(|b| b.depth()).unwrap_or(0), "capacity": state.config.batching.queue_capacity},
            })))
        }
        Ok(Err(e)) => Err(ApiError::unavailable(
            "not_ready",
            format!("store is not writable: {e}"),
            5,
        )),
        Err(e) => Err(ApiError::unavailable(
            "not_ready",
            format!("worker pool: {e}"),
            5,
        )),
    }
}

pub(super) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Some(b) = state.batcher() {
        state.metrics.queue_depth.set(b.depth() as i64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

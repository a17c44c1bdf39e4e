//! `GET /v1/events`: server-sent events of new inspections and reviews for the dashboard.

use std::time::Duration;

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};

use super::errors::Resp;
use crate::service::AppState;

pub(super) async fn events(req: HttpRequest, state: web::Data<AppState>) -> Resp {
    state.auth.reader(&req).await?;
    let rx = state.events.subscribe();
    let stop = state.shutdown.subscribe();
    let keepalive = tokio::time::interval(Duration::from_secs(15));
    let stream = futures_util::stream::unfold(
        (rx, stop, keepalive),
        |(mut rx, mut stop, mut keepalive)| async move {
            loop {
                tokio::select! {
                    m = rx.recv() => match m {
                        Ok(chunk) => return Some((Ok::<_, actix_web::Error>(Bytes::from(chunk.to_string())), (rx, stop, keepalive))),
                        // A slow client skips what it missed rather than holding everyone back.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = stop.changed() => return None,
                    _ = keepalive.tick() => return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), (rx, stop, keepalive))),
                }
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

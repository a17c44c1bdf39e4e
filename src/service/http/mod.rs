//! The HTTP API, one file a resource. Each handler checks who is calling, validates its input
//! into a clear 4xx in the JSON error format ([`errors`]), and hands heavy work (decoding, SQLite)
//! to the blocking pool ([`params::blocking`]) so the event loop stays free.

pub mod alerts;
pub mod calibration;
pub mod defects;
pub mod errors;
pub mod events;
pub mod frames;
pub mod inspections;
pub mod operations;
pub mod params;
pub mod reviews;
pub mod session;
pub mod stats;
pub mod summary;
pub mod views;

use actix_web::{web, HttpRequest, HttpResponse};

use calibration::{
    apply_calibration, calibration_audit, calibration_proposal, cameras, clear_calibration,
};
use errors::{ApiError, Resp};
use events::events;
use frames::post_frame;
use inspections::{
    get_inspection, inspection_heatmap, inspection_image, inspection_reconstruction,
    list_inspections,
};
use operations::{healthz, metrics, readyz, reload};
use session::{login, logout, me};
use stats::{positions, scores, trend};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1")
            .service(resource("/login", "POST").route(web::post().to(login)))
            .service(resource("/logout", "POST").route(web::post().to(logout)))
            .service(resource("/me", "GET").route(web::get().to(me)))
            .service(resource("/cameras", "GET").route(web::get().to(cameras)))
            .service(resource("/cameras/{camera}/frames", "POST").route(web::post().to(post_frame)))
            .service(
                resource("/cameras/{camera}/calibration/proposal", "GET")
                    .route(web::get().to(calibration_proposal)),
            )
            .service(
                resource("/cameras/{camera}/calibration", "PUT, DELETE")
                    .route(web::put().to(apply_calibration))
                    .route(web::delete().to(clear_calibration)),
            )
            .service(resource("/calibration/audit", "GET").route(web::get().to(calibration_audit)))
            .service(resource("/inspections", "GET").route(web::get().to(list_inspections)))
            .service(resource("/inspections/{id}", "GET").route(web::get().to(get_inspection)))
            .service(
                resource("/inspections/{id}/image", "GET").route(web::get().to(inspection_image)),
            )
            .service(
                resource("/inspections/{id}/heatmap", "GET")
                    .route(web::get().to(inspection_heatmap)),
            )
            .service(
                resource("/inspections/{id}/reconstruction", "GET")
                    .route(web::get().to(inspection_reconstruction)),
            )
            .service(
                resource("/inspections/{id}/review", "POST").route(web::post().to(reviews::review)),
            )
            .service(
                resource("/inspections/{id}/lifecycle", "POST")
                    .route(web::post().to(reviews::lifecycle)),
            )
            .service(
                resource("/inspections/{id}/history", "GET").route(web::get().to(reviews::history)),
            )
            .service(
                resource("/review-batches", "POST")
                    .route(web::post().to(reviews::create_review_batch)),
            )
            .service(
                resource("/review-batches/{id}", "GET")
                    .route(web::get().to(reviews::get_review_batch)),
            )
            .service(
                resource("/review-batches/{id}/undo", "POST")
                    .route(web::post().to(reviews::undo_review_batch)),
            )
            .service(resource("/defects", "GET").route(web::get().to(defects::list_defects)))
            .service(resource("/defects/catalogue", "GET").route(web::get().to(reviews::catalogue)))
            .service(resource("/events", "GET").route(web::get().to(events)))
            .service(resource("/stats/trend", "GET").route(web::get().to(trend)))
            .service(resource("/stats/positions", "GET").route(web::get().to(positions)))
            .service(resource("/stats/scores", "GET").route(web::get().to(scores)))
            .service(resource("/summary", "GET").route(web::get().to(summary::summary)))
            .service(resource("/alerts", "GET").route(web::get().to(alerts::alerts))),
    )
    .service(resource("/admin/reload", "POST").route(web::post().to(reload)));
}

/// `/healthz`, `/readyz`, `/metrics`: open, on the main or the separate metrics address.
pub fn configure_probes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/healthz", "GET").route(web::get().to(healthz)))
        .service(resource("/readyz", "GET").route(web::get().to(readyz)))
        .service(resource("/metrics", "GET").route(web::get().to(metrics)));
}

/// A path of the API: a method it does not answer gets 405 with `Allow: <allow>` (not the
/// 404 a path the service does not have gets).
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        Err::<HttpResponse, _>(ApiError::method_not_allowed(
            req.method().as_str(),
            req.path(),
            allow,
        ))
    }))
}

/// Anything no route matched: 404 in the JSON error format.
pub async fn no_route(req: HttpRequest) -> Resp {
    Err(ApiError::no_route(req.method().as_str(), req.path()))
}

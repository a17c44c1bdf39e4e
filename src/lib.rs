//! railscope: visual inspection of railway track fasteners.
//!
//! Three rooms, each importing only from the ones below it, and two leaves everyone uses
//! ([`config`], [`error`]):
//!
//! - [`pipeline`]: bytes → verdict, no HTTP and no SQL. [`pipeline::preprocess`] (decode, ROI,
//!   [`pipeline::track`] slots or [`pipeline::fastener_search`], resize, normalize) →
//!   [`pipeline::engine`] (ONNX Runtime) → [`pipeline::scoring`] (R, L, A, A′, verdict) →
//!   [`pipeline::heatmap`]; [`pipeline::inspector::Inspector`] ties them together around a
//!   [`pipeline::package`].
//! - [`service`]: `railscope serve`. [`service::http`] (one file a resource) →
//!   [`service::admission`] / [`service::batching`] → the inspector → [`service::store`] (SQLite
//!   and media) and [`service::telemetry`] (Prometheus); [`service::auth`],
//!   [`service::recalibration`] (threshold proposals from reviews).
//! - [`offline`]: the other commands: calibrate, evaluate, bench, simulate, harvest, slots.

pub mod config;
pub mod error;
pub mod offline;
pub mod pipeline;
pub mod service;

pub use error::{Error, Result};
pub use pipeline::inspector::{FrameResult, ImageInput, Inspector, LoadOptions};

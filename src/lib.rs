//! railscope: visual inspection of railway track fasteners.
//!
//! Frame path: [`preprocess`] (decode, channels, ROI / [`fastener_search`], resize, normalize)
//! → [`engine`] (ONNX Runtime, one run per batch) → [`scoring`] (R, L, A, A', verdict)
//! → [`heatmap`] for inspectors. [`inspector::Inspector`] ties them together for the CLI and
//! the HTTP service; [`calibrate`], [`evaluate`] and [`bench`] are the offline tools.
//!
//! Service path: [`server`] (actix-web routes, auth) → [`batching`] (bounded queue, dynamic
//! batches) → the inspector → [`store`] (SQLite) and [`telemetry`] (Prometheus);
//! [`recalibration`] turns inspectors' reviews into threshold proposals; [`simulate`] plays
//! line cameras against a running service.

pub mod batching;
pub mod bench;
pub mod calibrate;
pub mod config;
pub mod dataset;
pub mod engine;
pub mod error;
pub mod evaluate;
pub mod fastener_search;
pub mod harvest;
pub mod heatmap;
pub mod inspector;
pub mod metrics;
pub mod package;
pub mod plots;
pub mod preprocess;
pub mod recalibration;
pub mod scoring;
pub mod server;
pub mod simulate;
pub mod slot_eval;
pub mod store;
pub mod telemetry;
pub mod track;

pub use error::{Error, Result};
pub use inspector::{FrameResult, ImageInput, Inspector, LoadOptions};

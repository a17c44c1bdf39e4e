//! A frame's bytes to a verdict, with no HTTP and no SQL in it: what the service, the CLI and
//! the benchmarks share. [`inspector::Inspector`] is the entry point; the modules below it are
//! the stages of one frame's path in order.

pub mod engine;
pub mod fastener_search;
pub mod heatmap;
pub mod inspector;
pub mod metrics;
pub mod package;
pub mod preprocess;
pub mod scoring;
pub mod track;

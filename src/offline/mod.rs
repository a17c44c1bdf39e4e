//! The commands beside the service: [`calibrate`] and [`evaluate`] a model package on labelled
//! folders ([`dataset`], [`plots`]), [`bench`] the pipeline, [`simulate`] line cameras against a
//! running service, [`harvest`] training crops from track frames and score slot finding
//! ([`slot_eval`]).

pub mod bench;
pub mod calibrate;
pub mod dataset;
pub mod evaluate;
pub mod harvest;
pub mod plots;
pub mod simulate;
pub mod slot_eval;

//! Prometheus metrics of the service. Names follow the Prometheus conventions (`_total`
//! counters, `_seconds` durations, base units) and are what `docker/prometheus/alerts.yml`
//! alerts on: rename one there too.

use std::sync::Arc;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};

use crate::pipeline::inspector::Inspector;

/// Stages a frame passes through, for `railscope_stage_duration_seconds{stage}`: `intake` from
/// arrival to the inference queue (it holds `preprocess`), then `queue`, `infer`, `score`
/// (judging, heatmaps) and `store` (the commit); `total` from arrival to the answer.
pub const STAGES: [&str; 7] = [
    "intake",
    "preprocess",
    "queue",
    "infer",
    "score",
    "store",
    "total",
];

pub struct Metrics {
    registry: Registry,
    pub frames: IntCounterVec,
    pub anomaly_score: HistogramVec,
    pub stage_duration: HistogramVec,
    pub batch_size: Histogram,
    pub queue_depth: IntGauge,
    pub queue_capacity: IntGauge,
    pub rejected: IntCounterVec,
    pub camera_last_frame: GaugeVec,
    pub model_info: GaugeVec,
    pub reviews: IntCounterVec,
    pub reloads: IntCounterVec,
    pub http_requests: IntCounterVec,
    pub up_since: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let frames = IntCounterVec::new(
            Opts::new(
                "railscope_frames_total",
                "Frames inspected, by camera and verdict.",
            ),
            &["camera", "verdict"],
        )
        .expect("metric");
        let mut score_buckets: Vec<f64> = (1..=20).map(|k| k as f64 * 0.05).collect();
        score_buckets.extend([1.5, 2.0, 5.0]);
        let anomaly_score = HistogramVec::new(
            HistogramOpts::new(
                "railscope_anomaly_score",
                "Normalized anomaly score A' of each frame (the verdict threshold is per camera).",
            )
            .buckets(score_buckets),
            &["camera"],
        )
        .expect("metric");
        let stage_duration = HistogramVec::new(
            HistogramOpts::new(
                "railscope_stage_duration_seconds",
                "Time a frame spends in each stage; `total` is from request to answer.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
            ]),
            &["stage"],
        )
        .expect("metric");
        // Every stage's series exists from the start, so a dashboard shows each one at 0 rather
        // than missing until its first frame.
        for stage in STAGES {
            stage_duration.with_label_values(&[stage]);
        }
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("railscope_batch_size", "Frames per engine batch.")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
        )
        .expect("metric");
        let queue_depth = IntGauge::new("railscope_queue_depth", "Frames waiting for the engine.")
            .expect("metric");
        let queue_capacity = IntGauge::new(
            "railscope_queue_capacity",
            "Frames the queue holds before answering 503.",
        )
        .expect("metric");
        let rejected = IntCounterVec::new(
            Opts::new(
                "railscope_rejected_frames_total",
                "Frames refused, by reason (queue_full, camera_busy, frame_in_flight, not_ready, bad_image, too_large, unauthorized, unknown_camera, timeout, bad_request, internal).",
            ),
            &["reason"],
        )
        .expect("metric");
        let camera_last_frame = GaugeVec::new(
            Opts::new(
                "railscope_camera_last_frame_timestamp_seconds",
                "Unix time of the last frame inspected per camera.",
            ),
            &["camera"],
        )
        .expect("metric");
        let model_info = GaugeVec::new(
            Opts::new(
                "railscope_model_info",
                "The model each camera is judged with (value 1).",
            ),
            &["camera", "model", "version", "provider"],
        )
        .expect("metric");
        let reviews = IntCounterVec::new(
            Opts::new(
                "railscope_reviews_total",
                "Inspector reviews, by camera and state.",
            ),
            &["camera", "state"],
        )
        .expect("metric");
        let reloads = IntCounterVec::new(
            Opts::new("railscope_model_reloads_total", "Model reloads, by result."),
            &["result"],
        )
        .expect("metric");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "railscope_http_requests_total",
                "HTTP requests, by route and status.",
            ),
            &["route", "status"],
        )
        .expect("metric");
        let up_since = Gauge::new(
            "railscope_start_time_seconds",
            "Unix time the service started.",
        )
        .expect("metric");
        for c in [
            Box::new(frames.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(anomaly_score.clone()),
            Box::new(stage_duration.clone()),
            Box::new(batch_size.clone()),
            Box::new(queue_depth.clone()),
            Box::new(queue_capacity.clone()),
            Box::new(rejected.clone()),
            Box::new(camera_last_frame.clone()),
            Box::new(model_info.clone()),
            Box::new(reviews.clone()),
            Box::new(reloads.clone()),
            Box::new(http_requests.clone()),
            Box::new(up_since.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        up_since.set(chrono::Utc::now().timestamp_millis() as f64 / 1e3);
        Self {
            registry,
            frames,
            anomaly_score,
            stage_duration,
            batch_size,
            queue_depth,
            queue_capacity,
            rejected,
            camera_last_frame,
            model_info,
            reviews,
            reloads,
            http_requests,
            up_since,
        }
    }

    /// Zero series for every configured camera and reason, so rates and absent-series alerts
    /// work from the first scrape rather than from the first event.
    pub fn preset(&self, cameras: &[String]) {
        for cam in cameras {
            for v in ["normal", "defect"] {
                self.frames.with_label_values(&[cam.as_str(), v]);
            }
        }
        for r in [
            "queue_full",
            "camera_busy",
            "frame_in_flight",
            "not_ready",
            "bad_image",
            "too_large",
            "unauthorized",
            "unknown_camera",
            "timeout",
            "bad_request",
            "internal",
            "store_failed",
        ] {
            self.rejected.with_label_values(&[r]);
        }
        for r in ["ok", "error"] {
            self.reloads.with_label_values(&[r]);
        }
    }

    /// One `railscope_model_info` series for each camera, naming its model (replacing what a
    /// reload made stale).
    pub fn set_models<'a>(&self, cameras: impl IntoIterator<Item = (&'a str, &'a Arc<Inspector>)>) {
        self.model_info.reset();
        for (camera, model) in cameras {
            let m = &model.package().manifest.model;
            self.model_info
                .with_label_values(&[camera, &m.name, &m.version, model.provider()])
                .set(1.0);
        }
    }

    pub fn observe_stage(&self, stage: &str, seconds: f64) {
        self.stage_duration
            .with_label_values(&[stage])
            .observe(seconds);
    }

    pub fn reject(&self, reason: &str) {
        self.rejected.with_label_values(&[reason]).inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding of gathered metrics");
        String::from_utf8(buf).expect("exposition format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

//! `railscope simulate`: line cameras posting frames to a running service, as real ones would —
//! each with its key, frame ids, capture times and a position that advances along the track —
//! and a report of throughput, verdicts and latency percentiles.
//!
//! Every run is bounded (`--duration` and/or `--frames`) and stops by itself. Pacing is
//! open-loop per camera (frame k is due at k / fps, whether or not earlier ones were answered),
//! so an overloaded service shows up as latency and 503s rather than as a slower client;
//! `--fps 0` sends as fast as `--concurrency` allows (saturation).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::offline::dataset::{images_in, split_samples};

/// Where fasteners sit along the track (sleeper spacing).
const SLEEPER_SPACING_M: f64 = 0.6;

#[derive(Debug, Clone)]
pub struct SimCamera {
    pub id: String,
    pub key: String,
}

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub url: String,
    pub cameras: Vec<SimCamera>,
    /// Frames per second per camera; 0 = as fast as possible.
    pub fps: f64,
    /// Requests in flight per camera.
    pub concurrency: usize,
    pub duration: Option<Duration>,
    /// Total frames over all cameras.
    pub frames: Option<u64>,
    /// Share of frames drawn from the defect images.
    pub defect_rate: f64,
    pub seed: u64,
    pub track_id: String,
    pub speed_kmh: f64,
    pub timeout: Duration,
}

/// The images a simulated camera sends: normal ones and defective ones.
#[derive(Debug, Clone, Default)]
pub struct FrameSource {
    pub normal: Vec<Arc<Vec<u8>>>,
    pub defect: Vec<Arc<Vec<u8>>>,
}

impl FrameSource {
    /// An MVTec-layout folder (`test/good`, `test/<defect>`, `train/good`) or any folder of
    /// images (all treated as normal).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let mut src = FrameSource::default();
        let mut any_split = false;
        for split in ["train", "test"] {
            if dir.join(split).is_dir() {
                // a split folder without images (a test set's empty train/good) adds nothing
                let samples = split_samples(dir, split)?;
                any_split |= !samples.is_empty();
                for s in samples {
                    let bytes = Arc::new(
                        std::fs::read(&s.path)
                            .map_err(|e| Error::io(s.path.display().to_string(), e))?,
                    );
                    if s.defect_type == "good" {
                        src.normal.push(bytes);
                    } else {
                        src.defect.push(bytes);
                    }
                }
            }
        }
        if !any_split {
            for p in images_in(dir)? {
                src.normal.push(Arc::new(
                    std::fs::read(&p).map_err(|e| Error::io(p.display().to_string(), e))?,
                ));
            }
        }
        if src.normal.is_empty() && src.defect.is_empty() {
            return Err(Error::Dataset {
                path: dir.to_path_buf(),
                message: "no images to send".into(),
            });
        }
        Ok(src)
    }

    /// The committed synthetic fastener set (`tests/fixtures/fasteners`, made by our
    /// generator), looked up from the working directory, then above the executable.
    pub fn synthetic() -> Result<Self> {
        let rel = Path::new("tests/fixtures/fasteners");
        let exe = std::env::current_exe().unwrap_or_default();
        let found = std::iter::once(PathBuf::from("."))
            .chain(exe.ancestors().skip(1).map(Path::to_path_buf))
            .map(|d| d.join(rel))
            .find(|p| p.is_dir())
            .ok_or_else(|| Error::Dataset {
                path: rel.to_path_buf(),
                message: "not found here or above the executable; use --dir".into(),
            })?;
        Self::from_dir(&found)
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct SimReport {
    pub sent: u64,
    pub answered: u64,
    /// Error code (or `connection`) → count.
    pub failed: BTreeMap<String, u64>,
    pub verdicts: BTreeMap<String, u64>,
    /// Answered frames by what was sent and what came back: `defect_flagged`, `defect_passed`,
    /// `normal_flagged`, `normal_passed` (the source's folders are the truth).
    pub truth: BTreeMap<String, u64>,
    pub throughput_fps: f64,
    pub latency_ms: Percentiles,
    pub duration_s: f64,
    pub cameras: usize,
    pub target_fps_per_camera: f64,
}

#[derive(Default)]
struct Tally {
    latencies: Vec<f64>,
    failed: BTreeMap<String, u64>,
    verdicts: BTreeMap<String, u64>,
    truth: BTreeMap<String, u64>,
    sent: u64,
}

/// xorshift64*: reproducible frame choice without a dependency.
fn next_rand(state: &mut u64) -> f64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

pub fn percentiles(mut v: Vec<f64>) -> Percentiles {
    if v.is_empty() {
        return Percentiles::default();
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    Percentiles {
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: v[v.len() - 1],
        mean: v.iter().sum::<f64>() / v.len() as f64,
    }
}

pub fn run(opts: &SimOptions, source: &FrameSource) -> Result<SimReport> {
    if opts.cameras.is_empty() {
        return Err(Error::Config("simulate: no cameras".into()));
    }
    if opts.duration.is_none() && opts.frames.is_none() {
        return Err(Error::Config(
            "simulate: give --duration or --frames so the run stops by itself".into(),
        ));
    }
    if source.normal.is_empty() && (source.defect.is_empty() || opts.defect_rate < 1.0) {
        return Err(Error::Config("simulate: no normal images to send".into()));
    }
    let agent = ureq::AgentBuilder::new()
        .timeout(opts.timeout)
        .max_idle_connections_per_host(opts.cameras.len() * opts.concurrency.max(1) + 4)
        .build();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = opts.duration.map(|d| start + d);
    // Frame ids unique across runs, as a real camera's are: the service answers an id it has seen
    // within `server.frame_id_window_s` with the stored verdict, so a second run reusing ids
    // would measure that lookup, not an inspection.
    let run = chrono::Utc::now().timestamp_millis();
    let url = opts.url.trim_end_matches('/').to_string();
    std::thread::scope(|s| {
        for (ci, cam) in opts.cameras.iter().enumerate() {
            let next_frame = Arc::new(AtomicU64::new(0));
            for worker in 0..opts.concurrency.max(1) {
                let (agent, tally, issued, next_frame) = (
                    agent.clone(),
                    tally.clone(),
                    issued.clone(),
                    next_frame.clone(),
                );
                let url = format!("{url}/v1/cameras/{}/frames", cam.id);
                let mut rng = opts.seed ^ ((ci as u64 + 1) << 32) ^ ((worker as u64 + 1) * 0x9E37);
                // Cameras are phase-shifted so that paced frames do not arrive in bursts.
                let phase = ci as f64 / opts.cameras.len() as f64;
                s.spawn(move || loop {
                    let k = next_frame.fetch_add(1, Ordering::SeqCst);
                    let mut due = None;
                    if opts.fps > 0.0 {
                        let at = start + Duration::from_secs_f64((k as f64 + phase) / opts.fps);
                        if deadline.is_some_and(|d| at >= d) {
                            return;
                        }
                        std::thread::sleep(at.saturating_duration_since(Instant::now()));
                        due = Some(at);
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return;
                    }
                    if let Some(max) = opts.frames {
                        if issued.fetch_add(1, Ordering::SeqCst) >= max {
                            return;
                        }
                    }
                    let defect = !source.defect.is_empty()
                        && (source.normal.is_empty() || next_rand(&mut rng) < opts.defect_rate);
                    let pool = if defect {
                        &source.defect
                    } else {
                        &source.normal
                    };
                    let img =
                        &pool[(next_rand(&mut rng) * pool.len() as f64) as usize % pool.len()];
                    let position = 1000.0 * (ci as f64 + 1.0) + k as f64 * SLEEPER_SPACING_M;
                    // Paced: latency counts from when the frame was due, so a service that falls
                    // behind shows it (no coordinated omission).
                    let t0 = due.unwrap_or_else(Instant::now);
                    let res = agent
                        .post(&url)
                        .set("Authorization", &format!("Bearer {}", cam.key))
                        .set("Content-Type", content_type(img))
                        .set("X-Frame-Id", &format!("{}-{run}-{k:07}", cam.id))
                        .set(
                            "X-Capture-Time",
                            &chrono::Utc::now()
                                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        )
                        .set("X-Track-Id", &opts.track_id)
                        .set("X-Track-Position-M", &format!("{position:.2}"))
                        .set("X-Speed-Kmh", &format!("{}", opts.speed_kmh))
                        .send_bytes(img);
                    let ms = t0.elapsed().as_secs_f64() * 1e3;
                    let outcome = match res {
                        Ok(r) => {
                            let body = r.into_string().unwrap_or_default();
                            let v: serde_json::Value =
                                serde_json::from_str(&body).unwrap_or_default();
                            Ok(v["verdict"].as_str().unwrap_or("unknown").to_string())
                        }
                        Err(ureq::Error::Status(code, r)) => {
                            let body = r.into_string().unwrap_or_default();
                            let v: serde_json::Value =
                                serde_json::from_str(&body).unwrap_or_default();
                            Err(v["error"]["code"]
                                .as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| format!("http_{code}")))
                        }
                        Err(ureq::Error::Transport(_)) => Err("connection".to_string()),
                    };
                    let refused = outcome.as_ref().err().is_some_and(|c| c == "connection");
                    {
                        let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                        t.sent += 1;
                        match outcome {
                            Ok(v) => {
                                t.latencies.push(ms);
                                let sent = if defect { "defect" } else { "normal" };
                                let got = if v == "defect" { "flagged" } else { "passed" };
                                *t.truth.entry(format!("{sent}_{got}")).or_default() += 1;
                                *t.verdicts.entry(v).or_default() += 1;
                            }
                            Err(code) => *t.failed.entry(code).or_default() += 1,
                        }
                    }
                    if refused {
                        // The service is down or unreachable: back off instead of spinning.
                        std::thread::sleep(Duration::from_millis(200));
                    }
                });
            }
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let t = Arc::try_unwrap(tally)
        .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
        .unwrap_or_default();
    let answered = t.latencies.len() as u64;
    Ok(SimReport {
        sent: t.sent,
        answered,
        failed: t.failed,
        verdicts: t.verdicts,
        truth: t.truth,
        throughput_fps: answered as f64 / elapsed.max(1e-9),
        latency_ms: percentiles(t.latencies),
        duration_s: elapsed,
        cameras: opts.cameras.len(),
        target_fps_per_camera: opts.fps,
    })
}

fn content_type(b: &[u8]) -> &'static str {
    if b.starts_with(b"\x89PNG") {
        "image/png"
    } else if b.starts_with(&[0xFF, 0xD8]) {
        "image/jpeg"
    } else {
        "application/octet-stream"
    }
}

impl SimReport {
    pub fn summary(&self) -> String {
        let failed: u64 = self.failed.values().sum();
        let n = |k: &str| self.truth.get(k).copied().unwrap_or(0);
        let pct = |a: u64, b: u64| 100.0 * a as f64 / b.max(1) as f64;
        let defective = n("defect_flagged") + n("defect_passed");
        let normal = n("normal_flagged") + n("normal_passed");
        let flagged = n("defect_flagged") + n("normal_flagged");
        format!(
            "{} cameras, {:.1} s: sent {}, answered {} ({:.1} frames/s), failed {} {:?}\nverdicts {:?}\n\
             flagged {:.1} % of answered frames, {:.1} % were sent defective: {} of {} defective frames \
             flagged, {} of {} normal ones ({:.1} % false alarms)\n\
             latency ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
            self.cameras,
            self.duration_s,
            self.sent,
            self.answered,
            self.throughput_fps,
            failed,
            self.failed,
            self.verdicts,
            pct(flagged, self.answered),
            pct(defective, self.answered),
            n("defect_flagged"),
            defective,
            n("normal_flagged"),
            normal,
            pct(n("normal_flagged"), normal),
            self.latency_ms.p50,
            self.latency_ms.p90,
            self.latency_ms.p99,
            self.latency_ms.max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_list() {
        let p = percentiles((1..=100).map(f64::from).collect());
        assert_eq!((p.p50, p.p90, p.p99, p.max), (51.0, 90.0, 99.0, 100.0));
        assert_eq!(percentiles(vec![]).max, 0.0);
    }

    #[test]
    fn random_draws_are_reproducible_and_in_range() {
        let (mut a, mut b) = (42u64, 42u64);
        for _ in 0..1000 {
            let x = next_rand(&mut a);
            assert!((0.0..1.0).contains(&x));
            assert_eq!(x, next_rand(&mut b));
        }
    }
}

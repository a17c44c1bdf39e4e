//! Dynamic batching between the HTTP handlers and the engine, Triton style.
//!
//! ```text
//! handlers ──try_send──▶ [bounded queue] ──▶ inference thread ──▶ [small queue] ──▶ store thread ──▶ answers
//!  (decode, ROI,          full → 503        what is queued,          (pipelined: the    judge, heatmaps,
//!   normalize)                              ≤ max_batch, waiting     next batch runs    one transaction
//!                                           ≤ max_delay for more;    while this one is  per batch, then
//!                                           one session run          judged and stored) reply + metrics
//! ```
//! Handlers prepare frames on the blocking pool and the store thread judges, so the inference
//! thread only runs the session. A frame is answered only after its row is committed: an answered verdict is
//! never lost. Each job carries the model it was prepared with — its camera's, at the moment it
//! arrived — so cameras with different models share the queue (a batch runs one session run per
//! model) and a reload swaps models between jobs without failing one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::oneshot;

use crate::config::{BatchingConfig, StorageConfig};
use crate::pipeline::inspector::{FrameResult, FrameScores, Inspector, PreparedFrame};

use crate::pipeline::scoring::Verdict;
use crate::service::store::{FrameMeta, Inspection, Media, Store};

/// Milliseconds spent in each stage, returned with the verdict.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timings {
    /// From the request's arrival to the queue: authentication, admission, reading the body,
    /// the frame-id check, waiting for a decode slot and a pool thread, and `preprocess`.
    pub intake: f64,
    pub preprocess: f64,
    pub queue: f64,
    pub infer: f64,
    pub score: f64,
    pub store: f64,
    pub total: f64,
}

/// A stored verdict.
#[derive(Debug, Clone)]
pub struct Answer {
    pub inspection: Inspection,
    pub timings: Timings,
}

pub type Reply = oneshot::Sender<Result<Answer, Failure>>;

/// Why a frame got no verdict after it was queued.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The engine or the scoring failed (ours: 500).
    Inference(String),
    /// The verdict could not be committed; `full`: the disk is full (507), else the store is
    /// unavailable for now (503). Either way nothing of the frame is kept.
    Store { message: String, full: bool },
}

pub struct FrameJob {
    pub meta: FrameMeta,
    /// The encoded frame and its extension, kept when the frame's image is stored.
    pub image: Vec<u8>,
    pub image_ext: &'static str,
    pub prepared: PreparedFrame,
    pub model: Arc<Inspector>,
    /// When the request arrived (for `total`) and when it was queued (for `queue`).
    pub arrived: Instant,
    pub enqueued: Instant,
    pub preprocess_ms: f64,
    pub reply: Reply,
    /// Held until the frame is stored (or has failed), then dropped: the service's admission
    /// ticket, so a camera's share and a frame id stay taken while the frame is still being
    /// inspected after its request gave up (504).
    pub hold: Hold,
}

pub type Hold = Box<dyn std::any::Any + Send>;

/// What happens to a stored batch: metrics, live events. Implemented by the server.
pub trait Observer: Send + Sync + 'static {
    fn batch_formed(&self, frames: usize, queue_depth: usize);
    fn stored(&self, answer: &Answer);
    /// One frame's verdict could not be stored.
    fn store_failed(&self);
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    QueueFull,
    ShuttingDown,
}

/// The handlers' end of the queue. Dropping every `Batcher` clone (and so every sender) lets
/// the threads drain what is queued and stop.
#[derive(Clone)]
pub struct Batcher {
    tx: SyncSender<FrameJob>,
    depth: Arc<AtomicUsize>,
    capacity: usize,
    /// Worker threads still running; a thread that died (a panic) makes the service unready.
    running: Arc<AtomicUsize>,
}

/// Starts a worker thread that is counted in `running` until it ends.
fn spawn_worker(
    name: &str,
    running: &Arc<AtomicUsize>,
    work: impl FnOnce() + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let guard = Running(running.clone());
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _running = guard;
            work()
        })
}

/// Counts a worker thread out when it ends, by return or by panic.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        if std::thread::panicking() {
            tracing::error!(thread = ?std::thread::current().name(), "worker thread panicked; the service is no longer ready");
        }
    }
}

impl Batcher {
    /// Queues a frame without waiting; a refused job is dropped (its request answers the error).
    pub fn submit(&self, job: FrameJob) -> Result<(), SubmitError> {
        // Counted before sending so the worker's decrement can never run first.
        self.depth.fetch_add(1, Ordering::SeqCst);
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.depth.fetch_sub(1, Ordering::SeqCst);
                match e {
                    TrySendError::Full(_) => Err(SubmitError::QueueFull),
                    TrySendError::Disconnected(_) => Err(SubmitError::ShuttingDown),
                }
            }
        }
    }

    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::SeqCst)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Both worker threads are alive (for `/readyz`).
    pub fn workers_alive(&self) -> bool {
        self.running.load(Ordering::SeqCst) == 2
    }
}

/// The two worker threads; join them after the last [`Batcher`] is dropped.
pub struct Workers {
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    pub fn join(self) {
        for h in self.handles {
            let _ = h.join();
        }
    }
}

/// Starts the inference and store threads.
pub fn start(
    cfg: &BatchingConfig,
    storage: &StorageConfig,
    store: Arc<dyn Store>,
    observer: Arc<dyn Observer>,
) -> std::io::Result<(Batcher, Workers)> {
    let (tx, rx) = mpsc::sync_channel::<FrameJob>(cfg.queue_capacity);
    // Two batches in flight to the store keep the engine busy while one is judged and committed.
    let (store_tx, store_rx) = mpsc::sync_channel::<Vec<Scored>>(2);
    let depth = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicUsize::new(2));
    let infer = {
        let (depth, observer, cfg) = (depth.clone(), observer.clone(), cfg.clone());
        spawn_worker("railscope-infer", &running, move || {
            inference_loop(rx, store_tx, &cfg, &depth, observer.as_ref())
        })?
    };
    let storing = {
        let storage = storage.clone();
        spawn_worker("railscope-store", &running, move || {
            store_loop(store_rx, store.as_ref(), &storage, observer.as_ref())
        })?
    };
    Ok((
        Batcher {
            tx,
            depth,
            capacity: cfg.queue_capacity,
            running,
        },
        Workers {
            handles: vec![infer, storing],
        },
    ))
}

/// A frame whose session run is done, on its way to judging and the store.
struct Scored {
    job: FrameJob,
    scores: crate::Result<FrameScores>,
    queue_ms: f64,
    infer_ms: f64,
}

fn inference_loop(
    rx: Receiver<FrameJob>,
    store_tx: SyncSender<Vec<Scored>>,
    cfg: &BatchingConfig,
    depth: &AtomicUsize,
    observer: &dyn Observer,
) {
    let max_delay = Duration::from_millis(cfg.max_delay_ms);
    // `recv` fails only when every sender is gone and the queue is empty: the drain is done.
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        // Whatever queued up while the engine was busy joins at once; only then is it worth
        // waiting (up to max_delay) for more.
        while batch.len() < cfg.max_batch {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let until = Instant::now() + max_delay;
        while batch.len() < cfg.max_batch {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(left) {
                Ok(j) => batch.push(j),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        let left = depth.fetch_sub(batch.len(), Ordering::SeqCst) - batch.len();
        observer.batch_formed(batch.len(), left);
        let started = Instant::now();

        let mut out = Vec::new();
        for group in group_by_model(batch, |job| &job.model) {
            let model = group[0].model.clone();
            let (jobs, prepared): (Vec<_>, Vec<_>) = group
                .into_iter()
                .map(|mut j| {
                    let p = std::mem::take(&mut j.prepared);
                    (j, Ok(p))
                })
                .unzip();
            let t_infer = Instant::now();
            let scored = model.score_prepared(prepared, true);
            let infer_ms = t_infer.elapsed().as_secs_f64() * 1e3;
            for (job, scores) in jobs.into_iter().zip(scored) {
                let queue_ms = started.duration_since(job.enqueued).as_secs_f64() * 1e3;
                out.push(Scored {
                    job,
                    scores,
                    queue_ms,
                    infer_ms,
                });
            }
        }
        if store_tx.send(out).is_err() {
            tracing::error!("store thread is gone; stopping inference");
            break;
        }
    }
}

/// `items` in groups of one model each (the same `Arc`), groups in the order their model first
/// appears and items in their queue order: a session run takes one model's frames, and the
/// frames of cameras with their own model, or prepared before a reload, run apart.
fn group_by_model<T, M: ?Sized>(items: Vec<T>, model: impl Fn(&T) -> &Arc<M>) -> Vec<Vec<T>> {
    let mut groups: Vec<Vec<T>> = Vec::new();
    for item in items {
        match groups
            .iter_mut()
            .find(|g| Arc::ptr_eq(model(&g[0]), model(&item)))
        {
            Some(g) => g.push(item),
            None => groups.push(vec![item]),
        }
    }
    groups
}

/// One judged frame, ready to be stored.
struct Judged {
    inspection: Inspection,
    media: Media,
    timings: Timings,
    arrived: Instant,
    reply: Reply,
    hold: Hold,
}

/// Calibration, verdict, the image-keeping decision, the heatmap and the reconstruction: done
/// here, beside the store, so the inference thread goes straight on to the next session run.
fn judge(
    s: Scored,
    storage: &StorageConfig,
    last_kept_normal: &mut HashMap<String, i64>,
) -> Option<Judged> {
    let t = Instant::now();
    let Scored {
        job,
        scores,
        queue_ms,
        infer_ms,
    } = s;
    let model = job.model.clone();
    let judged = scores.and_then(|fs| {
        // One calibration for the verdict and the heatmap's colours.
        let norm = model.calibration_for(Some(&job.meta.camera))?;
        let res = model.judge_with(
            job.meta.frame_id.as_deref().unwrap_or(""),
            Some(&job.meta.camera),
            &fs,
            &norm,
        );
        let keep = keep_image(&res, &job.meta, storage, last_kept_normal);
        let (heat, recon) = if keep {
            (
                model.heatmap_png(&fs, &norm)?,
                model.reconstruction_png(&fs)?,
            )
        } else {
            (None, None)
        };
        Ok((res, keep, heat, recon))
    });
    match judged {
        Ok((res, keep, heat, recon)) => Some(Judged {
            inspection: to_inspection(&job.meta, &res, &model),
            media: Media {
                image: keep.then_some((job.image, job.image_ext)),
                heatmap_png: heat,
                reconstruction_png: recon,
            },
            timings: Timings {
                intake: job.enqueued.duration_since(job.arrived).as_secs_f64() * 1e3,
                preprocess: job.preprocess_ms,
                queue: queue_ms,
                infer: infer_ms,
                score: t.elapsed().as_secs_f64() * 1e3,
                ..Default::default()
            },
            arrived: job.arrived,
            reply: job.reply,
            hold: job.hold,
        }),
        Err(e) => {
            tracing::error!(camera = %job.meta.camera, error = %e, "inference failed");
            drop(job.hold);
            let _ = job
                .reply
                .send(Err(Failure::Inference(format!("inference failed: {e}"))));
            None
        }
    }
}

/// Defects always keep their image, heatmap and reconstruction; a normal frame only when the
/// camera's last kept normal image is older than `normal_image_interval_s` (the live wall and
/// the score history need some normal frames, not all of them).
fn keep_image(
    res: &FrameResult,
    meta: &FrameMeta,
    storage: &StorageConfig,
    last_kept_normal: &mut HashMap<String, i64>,
) -> bool {
    if res.verdict == Verdict::Defect {
        return true;
    }
    let interval_ms = (storage.normal_image_interval_s * 1e3) as i64;
    let last = last_kept_normal.get(&meta.camera).copied();
    if last.is_none_or(|t| meta.received_ms - t >= interval_ms) {
        last_kept_normal.insert(meta.camera.clone(), meta.received_ms);
        true
    } else {
        false
    }
}

fn to_inspection(meta: &FrameMeta, res: &FrameResult, model: &Inspector) -> Inspection {
    let m = &model.package().manifest.model;
    Inspection {
        id: 0,
        meta: meta.clone(),
        r: res.r,
        l: res.l,
        a: res.a,
        a_norm: res.a_norm,
        threshold: res.threshold,
        verdict: res.verdict,
        model_name: m.name.clone(),
        model_version: m.version.clone(),
        provider: res.provider.to_string(),
        crops_json: serde_json::to_string(&res.crops).unwrap_or_else(|_| "[]".into()),
        note: res.note.clone(),
        partial_slots_json: serde_json::to_string(&res.partial_slots)
            .unwrap_or_else(|_| "[]".into()),
        has_image: false,
        has_heatmap: false,
        has_reconstruction: false,
        review: None,
    }
}

fn store_loop(
    rx: Receiver<Vec<Scored>>,
    store: &dyn Store,
    storage: &StorageConfig,
    observer: &dyn Observer,
) {
    let mut last_expiry = Instant::now();
    let mut last_kept_normal: HashMap<String, i64> = HashMap::new();
    while let Ok(mut scored) = rx.recv() {
        // Whatever else is waiting joins the same transaction.
        while let Ok(more) = rx.try_recv() {
            scored.extend(more);
        }
        let batch: Vec<Judged> = scored
            .into_iter()
            .filter_map(|s| judge(s, storage, &mut last_kept_normal))
            .collect();
        if batch.is_empty() {
            continue;
        }
        let t = Instant::now();
        type Waiting = (Timings, Instant, Reply, Hold);
        let (mut rows, waiting): (Vec<(Inspection, Media)>, Vec<Waiting>) = batch
            .into_iter()
            .map(|s| {
                (
                    (s.inspection, s.media),
                    (s.timings, s.arrived, s.reply, s.hold),
                )
            })
            .unzip();
        match store.insert_batch(&mut rows) {
            Ok(_) => {
                let store_ms = t.elapsed().as_secs_f64() * 1e3;
                for ((inspection, _), (mut timings, arrived, reply, hold)) in
                    rows.into_iter().zip(waiting)
                {
                    timings.store = store_ms;
                    timings.total = arrived.elapsed().as_secs_f64() * 1e3;
                    let answer = Answer {
                        inspection,
                        timings,
                    };
                    observer.stored(&answer);
                    // Committed: the frame leaves flight before its answer, so a retry the
                    // client sends on receiving it finds the stored row, not a frame in flight.
                    drop(hold);
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(e) => {
                let failure = Failure::Store {
                    message: format!("could not store the verdict: {e}"),
                    full: matches!(e, crate::Error::StorageFull(_)),
                };
                tracing::error!(error = %e, frames = waiting.len(), "store failed");
                for (_, _, reply, hold) in waiting {
                    // counted here, once a frame, whether or not its client is still waiting
                    observer.store_failed();
                    drop(hold);
                    let _ = reply.send(Err(failure.clone()));
                }
            }
        }
        if storage.normal_image_retention_h > 0.0 && last_expiry.elapsed() > Duration::from_secs(60)
        {
            last_expiry = Instant::now();
            let before = chrono::Utc::now().timestamp_millis()
                - (storage.normal_image_retention_h * 3.6e6) as i64;
            match store.expire_normal_images(before) {
                Ok(0) => {}
                Ok(n) => tracing::info!(images = n, "expired normal images"),
                Err(e) => tracing::warn!(error = %e, "expiring normal images failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(verdict: Verdict) -> FrameResult {
        FrameResult {
            image: String::new(),
            camera: None,
            a: Some(0.1),
            r: None,
            l: None,
            a_norm: Some(0.1),
            threshold: 0.2,
            verdict,
            provider: "cpu",
            latency_ms: 0.0,
            preprocess_ms: 0.0,
            roi: "whole",
            crops: vec![],
            partial_slots: vec![],
            note: None,
            heatmap_png: None,
        }
    }

    #[test]
    fn a_batch_runs_as_one_group_per_model_in_queue_order() {
        let (a, b) = (Arc::new("model a"), Arc::new("model a"));
        // equal contents, two loads: two models (a reload, or two cameras' packages)
        let queued = vec![(1, &a), (2, &b), (3, &a), (4, &a), (5, &b)];
        let groups = group_by_model(queued, |(_, m)| *m);
        let ids: Vec<Vec<i32>> = groups
            .iter()
            .map(|g| g.iter().map(|(id, _)| *id).collect())
            .collect();
        assert_eq!(ids, [vec![1, 3, 4], vec![2, 5]]);
        assert!(group_by_model(Vec::<(i32, &Arc<&str>)>::new(), |(_, m)| *m).is_empty());
    }

    #[test]
    fn a_worker_that_panics_is_counted_out() {
        let running = Arc::new(AtomicUsize::new(2));
        let h = spawn_worker("test-worker", &running, || {
            panic!("simulated worker failure")
        })
        .unwrap();
        assert!(h.join().is_err());
        assert_eq!(running.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn defects_always_keep_their_image_normals_once_per_interval_per_camera() {
        let storage = StorageConfig {
            normal_image_interval_s: 5.0,
            ..Default::default()
        };
        let mut last = HashMap::new();
        let meta = |camera: &str, ms: i64| FrameMeta {
            camera: camera.into(),
            received_ms: ms,
            ..Default::default()
        };
        let normal = result(Verdict::Normal);
        let defect = result(Verdict::Defect);
        let kept: Vec<bool> = [
            (&normal, meta("a", 0)),
            (&normal, meta("a", 1_000)),
            (&defect, meta("a", 2_000)),
            (&normal, meta("b", 2_000)),
            (&normal, meta("a", 5_000)),
            (&normal, meta("a", 6_000)),
        ]
        .iter()
        .map(|(r, m)| keep_image(r, m, &storage, &mut last))
        .collect();
        assert_eq!(kept, [true, false, true, true, true, false]);
    }
}

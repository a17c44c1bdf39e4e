//! `railscope bench`: the ceiling every serving figure is compared with — raw session throughput
//! and latency per batch size, preprocessing cost per frame, end-to-end cost per image, and the
//! process's memory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::offline::dataset::images_in;
use crate::pipeline::fastener_search::FastenerSearch;
use crate::pipeline::inspector::{ImageInput, Inspector};
use crate::pipeline::preprocess::{crop, to_gray};
use crate::pipeline::track::{Orientation, TrackLocator};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub batch_sizes: Vec<usize>,
    /// Measuring time per batch size.
    pub seconds: f64,
    /// Crops (one fastener per image) for preprocessing and end-to-end figures.
    pub crops_dir: Option<PathBuf>,
    /// A multi-fastener frame for the search figure.
    pub frame: Option<PathBuf>,
    /// Generated track sets (`railscope_train.track`: `camera.toml` + `frames/`) for the
    /// whole-frame figures of `roi = "track"`.
    pub track_sets: Vec<PathBuf>,
    pub progress: bool,
}

/// One camera's whole track frames: where the time goes and what train speed that allows.
#[derive(Debug, Clone, Serialize)]
pub struct TrackFigure {
    pub camera: String,
    pub frame: String,
    pub frames: usize,
    pub crops_per_frame: f64,
    pub decode_ms: f64,
    pub locate_ms: f64,
    /// decode → slots → crops → model → raw scores, one frame at a time.
    pub frame_ms: f64,
    /// Track length one frame covers (frame length along the rails / px_per_m).
    pub metres_per_frame: f64,
    /// The speed at which one process inspects every frame: metres_per_frame / frame_ms.
    pub max_speed_kmh: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionFigure {
    pub batch: usize,
    pub runs: usize,
    pub images_per_s: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    pub latency_ms_per_image: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageFigure {
    pub what: String,
    pub ms_per_frame: f64,
    pub frames: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub model: String,
    pub provider: String,
    pub library: String,
    pub input: [usize; 3],
    pub cpu: String,
    pub cores: usize,
    pub session: Vec<SessionFigure>,
    pub preprocessing: Vec<StageFigure>,
    pub end_to_end: Vec<StageFigure>,
    pub track: Vec<TrackFigure>,
    pub rss_mib: f64,
    pub peak_rss_mib: f64,
    /// 1-minute load average before the run: other work on the machine skews every figure.
    pub load_before: f64,
    pub created_at: String,
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// (VmRSS, VmHWM) of this process in MiB, from /proc (0 where unavailable).
pub fn rss_mib() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx]
}

/// Deterministic pseudo-random input in the model's [-1, 1] range.
fn synthetic_input(len: usize) -> Vec<f32> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn time_per_frame(
    frames: usize,
    budget: Duration,
    mut f: impl FnMut(usize) -> Result<()>,
) -> Result<(f64, usize)> {
    let t = Instant::now();
    let mut n = 0;
    while n < frames.max(1) * 50 && (n < frames.max(1) || t.elapsed() < budget) {
        f(n % frames.max(1))?;
        n += 1;
    }
    Ok((t.elapsed().as_secs_f64() * 1e3 / n as f64, n))
}

pub fn run(inspector: &Inspector, config: &Config, opts: &BenchOptions) -> Result<BenchReport> {
    let load_before = load_average();
    let chw = inspector.engine().chw();
    let budget = Duration::from_secs_f64(opts.seconds.max(0.1));
    let mut session = Vec::new();
    let max_b = opts.batch_sizes.iter().copied().max().unwrap_or(1);
    let input = synthetic_input(max_b * chw);
    for &b in &opts.batch_sizes {
        if b == 0 {
            continue;
        }
        let x = &input[..b * chw];
        let engine = inspector.engine();
        // One unmeasured run per size: ONNX Runtime plans memory per new shape.
        engine.run_view(x, b, |_| ())?;
        let mut lat = Vec::new();
        let t = Instant::now();
        while lat.len() < 3 || t.elapsed() < budget {
            let r = Instant::now();
            engine.run_view(x, b, |_| ())?;
            lat.push(r.elapsed().as_secs_f64() * 1e3);
        }
        let total = t.elapsed().as_secs_f64();
        let mut sorted = lat.clone();
        sorted.sort_by(f64::total_cmp);
        let fig = SessionFigure {
            batch: b,
            runs: lat.len(),
            images_per_s: (b * lat.len()) as f64 / total,
            latency_ms_p50: percentile(&sorted, 0.5),
            latency_ms_p95: percentile(&sorted, 0.95),
            latency_ms_per_image: percentile(&sorted, 0.5) / b as f64,
        };
        if opts.progress {
            eprintln!(
                "batch {:>3}: {:>8.1} images/s, p50 {:.2} ms, p95 {:.2} ms",
                b, fig.images_per_s, fig.latency_ms_p50, fig.latency_ms_p95
            );
        }
        session.push(fig);
    }

    let mut preprocessing = Vec::new();
    let mut end_to_end = Vec::new();
    let stage_budget = Duration::from_secs_f64((opts.seconds / 2.0).clamp(0.2, 5.0));
    if let Some(dir) = &opts.crops_dir {
        let files: Vec<PathBuf> = images_in(dir)?.into_iter().take(64).collect();
        if !files.is_empty() {
            let bytes: Vec<Vec<u8>> = files
                .iter()
                .map(|p| {
                    std::fs::read(p).map_err(|e| Error::io(format!("read {}", p.display()), e))
                })
                .collect::<Result<_>>()?;
            let (w, h) = {
                let f = inspector.preprocessor().frame(&bytes[0], "bench")?;
                (
                    opencv::prelude::MatTraitConst::cols(&f),
                    opencv::prelude::MatTraitConst::rows(&f),
                )
            };
            let pre = inspector.preprocessor().clone();
            let mut slot = vec![0f32; chw];
            let (ms, n) = time_per_frame(bytes.len(), stage_budget, |i| {
                let f = pre.frame(&bytes[i], "bench")?;
                pre.write_tensor(&f, &mut slot)
            })?;
            preprocessing.push(StageFigure {
                what: format!("{w}×{h} PNG crop: decode, gray, resize, normalize"),
                ms_per_frame: ms,
                frames: n,
            });
            for &b in &[1usize, 16, 64] {
                // Few fixture files: cycle through them to fill the batch.
                let inputs: Vec<ImageInput<'_>> = (0..b)
                    .map(|i| ImageInput {
                        id: format!("{i}"),
                        bytes: &bytes[i % bytes.len()],
                        camera: None,
                    })
                    .collect();
                let t = Instant::now();
                let mut frames = 0;
                while frames < b * 3 || t.elapsed() < stage_budget {
                    for r in inspector.score_batch(&inputs, false) {
                        r?;
                    }
                    frames += b;
                }
                end_to_end.push(StageFigure {
                    what: format!(
                        "crops, {b} per call (session runs of ≤ {}): bytes → R, L, A",
                        inspector.engine().max_batch()
                    ),
                    ms_per_frame: t.elapsed().as_secs_f64() * 1e3 / frames as f64,
                    frames,
                });
            }
        }
    }
    if let Some(frame_path) = &opts.frame {
        let bytes = std::fs::read(frame_path)
            .map_err(|e| Error::io(format!("read {}", frame_path.display()), e))?;
        let pre = inspector.preprocessor().clone();
        let f = pre.frame(&bytes, "bench")?;
        let (w, h) = (
            opencv::prelude::MatTraitConst::cols(&f),
            opencv::prelude::MatTraitConst::rows(&f),
        );
        let (ms, n) = time_per_frame(1, stage_budget, |_| pre.frame(&bytes, "bench").map(|_| ()))?;
        preprocessing.push(StageFigure {
            what: format!("{w}×{h} frame: decode + gray"),
            ms_per_frame: ms,
            frames: n,
        });
        if let Some(tdir) = templates_dir(config, &inspector.package().dir) {
            let search = FastenerSearch::from_dir(&tdir, &config.search)?;
            let gray = to_gray(&f)?;
            let mut found = 0;
            let (ms, n) = time_per_frame(1, stage_budget, |_| {
                found = search.find(&gray)?.len();
                Ok(())
            })?;
            preprocessing.push(StageFigure {
                what: format!(
                    "{w}×{h} frame: fastener search ({} templates×scales, {found} found)",
                    search.template_count()
                ),
                ms_per_frame: ms,
                frames: n,
            });
            let dets = search.find(&gray)?;
            let mut tensor = vec![0f32; chw * dets.len().max(1)];
            let (ms, n) = time_per_frame(1, stage_budget, |_| {
                for (k, d) in dets.iter().enumerate() {
                    let roi = crop(&f, d.rect())?;
                    pre.write_tensor(&roi, &mut tensor[k * chw..(k + 1) * chw])?;
                }
                Ok(())
            })?;
            preprocessing.push(StageFigure {
                what: format!(
                    "{w}×{h} frame: crop + resize + normalize {} fasteners",
                    dets.len()
                ),
                ms_per_frame: ms,
                frames: n,
            });
            // The whole search-mode path, as `infer --roi search` runs it.
            let mut frame_inspector_cfg = config.clone();
            frame_inspector_cfg.search.templates_dir = Some(tdir.clone());
            let search_opts = crate::pipeline::inspector::LoadOptions {
                without_calibration: true,
                roi: Some(crate::pipeline::preprocess::RoiMode::Search),
                ..Default::default()
            };
            let si = Inspector::load(&inspector.package().dir, &frame_inspector_cfg, &search_opts)?;
            let input = [ImageInput {
                id: "frame".into(),
                bytes: &bytes,
                camera: None,
            }];
            let (ms, n) = time_per_frame(1, stage_budget, |_| {
                si.score_batch(&input, false).remove(0).map(|_| ())
            })?;
            end_to_end.push(StageFigure {
                what: format!("{w}×{h} frame, fastener search, {} crops in one batch: bytes → R, L, A per crop", dets.len()),
                ms_per_frame: ms,
                frames: n,
            });
        }
    }
    let mut track = Vec::new();
    for set in &opts.track_sets {
        track.push(track_figure(inspector, config, set, stage_budget)?);
    }
    let (rss, peak) = rss_mib();
    Ok(BenchReport {
        model: inspector.package().name().to_string(),
        provider: inspector.provider().to_string(),
        library: inspector.engine().library().display().to_string(),
        input: inspector.engine().shape(),
        cpu: cpu_name(),
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        session,
        preprocessing,
        end_to_end,
        track,
        rss_mib: rss,
        peak_rss_mib: peak,
        load_before,
        created_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    })
}

/// The search's reference crops: `search.templates_dir`, else the package's `templates/`.
fn templates_dir(config: &Config, package_dir: &Path) -> Option<PathBuf> {
    config
        .search
        .templates_dir
        .clone()
        .filter(|p| p.is_dir())
        .or_else(|| Some(package_dir.join("templates")).filter(|p| p.is_dir()))
}

/// Up to 8 track frames of a generated set, each timed alone: decode, localisation, and the
/// whole `roi = "track"` path to raw scores.
fn track_figure(
    inspector: &Inspector,
    config: &Config,
    set: &Path,
    budget: Duration,
) -> Result<TrackFigure> {
    let geometry = crate::offline::slot_eval::load_geometry(&set.join("camera.toml"))?;
    let locator = TrackLocator::from_config(&geometry)?;
    let frames: Vec<Vec<u8>> = images_in(&set.join("frames"))?
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("frame_"))
        })
        .take(8)
        .map(|p| std::fs::read(&p).map_err(|e| Error::io(format!("read {}", p.display()), e)))
        .collect::<Result<_>>()?;
    if frames.is_empty() {
        return Err(Error::Config(format!("{}: no frame_*.png", set.display())));
    }
    let pre = inspector.preprocessor().clone();
    let grays: Vec<opencv::core::Mat> = frames
        .iter()
        .map(|b| to_gray(&pre.frame(b, "bench")?))
        .collect::<Result<_>>()?;
    let (w, h) = (
        opencv::prelude::MatTraitConst::cols(&grays[0]),
        opencv::prelude::MatTraitConst::rows(&grays[0]),
    );
    let n = frames.len();
    let (decode_ms, _) = time_per_frame(n, budget, |i| pre.frame(&frames[i], "bench").map(|_| ()))?;
    let (locate_ms, _) = time_per_frame(n, budget, |i| locator.locate(&grays[i]).map(|_| ()))?;
    let opts = crate::pipeline::inspector::LoadOptions {
        without_calibration: true,
        roi: Some(crate::pipeline::preprocess::RoiMode::Track(locator.clone())),
        ..Default::default()
    };
    let ti = Inspector::load(&inspector.package().dir, config, &opts)?;
    let mut crops = 0usize;
    let (frame_ms, runs) = time_per_frame(n, budget, |i| {
        let input = [ImageInput {
            id: "frame".into(),
            bytes: &frames[i],
            camera: None,
        }];
        crops += ti.score_batch(&input, false).remove(0)?.crops.len();
        Ok(())
    })?;
    let along = if locator.orientation == Orientation::Down {
        h
    } else {
        w
    };
    let metres_per_frame = along as f64 / geometry.px_per_m;
    Ok(TrackFigure {
        camera: set
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        frame: format!("{w}×{h}"),
        frames: n,
        crops_per_frame: crops as f64 / runs as f64,
        decode_ms,
        locate_ms,
        frame_ms,
        metres_per_frame,
        max_speed_kmh: metres_per_frame / (frame_ms / 1e3) * 3.6,
    })
}

pub fn markdown(r: &BenchReport) -> String {
    let mut s = String::new();
    s.push_str("# Performance\n\n");
    s.push_str(
        "Written by `railscope bench` (`make bench`). These are the **limits** of one process on this\n\
         machine: every later serving figure (HTTP, dynamic batching) is compared with them.\n\n",
    );
    s.push_str(&format!(
        "- model `{}`, input {}×{}×{} (C×H×W), provider **{}**\n- ONNX Runtime `{}`\n- CPU: {} ({} cores available)\n- measured {}; 1-minute load average before the run: {:.2}{}\n\n",
        r.model,
        r.input[0],
        r.input[1],
        r.input[2],
        r.provider,
        // only the file name: the docs must not carry this machine's paths
        std::path::Path::new(&r.library).file_name().map_or(r.library.as_str(), |n| n.to_str().unwrap_or_default()),
        r.cpu,
        r.cores,
        r.created_at,
        r.load_before,
        if r.load_before > 0.5 { " (**the machine was busy: figures are pessimistic**)" } else { "" }
    ));
    s.push_str("## Session (one `run` per batch, synthetic input, no preprocessing)\n\n");
    s.push_str("| batch | images/s | latency p50 (ms) | latency p95 (ms) | ms per image | runs |\n|---:|---:|---:|---:|---:|---:|\n");
    for f in &r.session {
        s.push_str(&format!(
            "| {} | {:.1} | {:.2} | {:.2} | {:.3} | {} |\n",
            f.batch,
            f.images_per_s,
            f.latency_ms_p50,
            f.latency_ms_p95,
            f.latency_ms_per_image,
            f.runs
        ));
    }
    s.push_str(
        "\n## Preprocessing per frame (single thread)\n\n| stage | ms per frame |\n|---|---:|\n",
    );
    for f in &r.preprocessing {
        s.push_str(&format!("| {} | {:.3} |\n", f.what, f.ms_per_frame));
    }
    s.push_str("\n## End to end per image (encoded bytes → raw score, through `Inspector::score_batch`)\n\n| case | ms per image | images/s |\n|---|---:|---:|\n");
    for f in &r.end_to_end {
        s.push_str(&format!(
            "| {} | {:.3} | {:.1} |\n",
            f.what,
            f.ms_per_frame,
            1e3 / f.ms_per_frame
        ));
    }
    if !r.track.is_empty() {
        s.push_str(
            "\n## Whole track frames (`roi = \"track\"`, one frame at a time)\n\n\
             Generated frames (`make data-track`); *frame* is decode → slots from the track's geometry →\n\
             crops → one session run → R, L, A per slot. One process keeps up with a train up to\n\
             *max speed* = metres of track per frame / frame time.\n\n\
             | camera | frame | slots scored | decode (ms) | localisation (ms) | frame (ms) | m per frame | max speed (km/h) |\n\
             |---|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for t in &r.track {
            s.push_str(&format!(
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.0} |\n",
                t.camera,
                t.frame,
                t.crops_per_frame,
                t.decode_ms,
                t.locate_ms,
                t.frame_ms,
                t.metres_per_frame,
                t.max_speed_kmh
            ));
        }
    }
    s.push_str(&format!(
        "\n## Memory\n\nResident set size after the run: {:.0} MiB (peak {:.0} MiB), ONNX Runtime and OpenCV included.\n",
        r.rss_mib, r.peak_rss_mib
    ));
    s.push_str(
        "\n## Reading the figures\n\n\
         - *Session* is the ceiling: nothing that goes through the inspector or the HTTP service can\n  \
         beat the best images/s row. On CPU, ONNX Runtime already spreads one image over every core,\n  \
         so batching gains little, and large batches can lose once their activations no longer fit\n  \
         in cache: set `engine.max_batch` (config/railscope.toml) at the best row. GPU providers\n  \
         gain from larger batches.\n\
         - *Preprocessing* runs on the caller's thread; `Inspector::prepare` can run it on other\n  \
         threads while the session works. For whole-frame crops it is negligible next to inference;\n  \
         for line-scan frames fastener search dominates the frame's cost.\n\
         - *End to end* is what `railscope infer` and `evaluate` pay per image: decode + preprocess +\n  \
         one session run per batch + scoring.\n\
         - Regenerate with `make bench` (or `railscope bench --write docs/performance.md`) on an idle\n  \
         machine; the load average above says how idle it was.\n",
    );
    s
}

const BEGIN: &str = "<!-- BEGIN engine benchmark: written by `railscope bench --write` -->";
const END: &str = "<!-- END engine benchmark -->";

/// Writes the report between its markers in `path`, keeping what else the file holds (the
/// service load benchmark's section); a file without the markers is replaced.
pub fn write_markdown(r: &BenchReport, path: &Path) -> Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    std::fs::write(path, replace_section(&old, &markdown(r)))
        .map_err(|e| Error::io(format!("write {}", path.display()), e))
}

fn replace_section(old: &str, body: &str) -> String {
    let section = format!("{BEGIN}\n{body}{END}\n");
    match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if e > b => format!(
            "{}{section}{}",
            &old[..b],
            &old[e + END.len()..].trim_start_matches('\n')
        ),
        _ => section,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_section_is_replaced_and_the_rest_kept() {
        let first = replace_section("", "engine v1\n");
        let with_service = format!("{first}\n<!-- service -->\nservice figures\n");
        let second = replace_section(&with_service, "engine v2\n");
        assert!(
            second.contains("engine v2") && !second.contains("engine v1"),
            "{second}"
        );
        assert!(
            second.ends_with("<!-- service -->\nservice figures\n"),
            "{second}"
        );
        assert_eq!(
            replace_section("no markers", "x\n"),
            format!("{BEGIN}\nx\n{END}\n")
        );
    }

    #[test]
    fn percentiles_and_rss() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 0.5), 3.0);
        assert_eq!(percentile(&v, 0.95), 5.0);
        let (rss, peak) = rss_mib();
        assert!(rss > 0.0 && peak >= rss, "{rss} {peak}");
        let x = synthetic_input(1000);
        assert!(x.iter().all(|v| (-1.0..=1.0).contains(v)));
        assert!(x.iter().any(|&v| v < -0.5) && x.iter().any(|&v| v > 0.5));
    }
}

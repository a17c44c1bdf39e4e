//! `railscope evaluate`: the model package on the `test` split of an MVTec-layout folder. The
//! JSON has the same keys as the Python evaluation (`railscope_train.evaluate`) so the two can be
//! diffed; a markdown report and ROC / PR curve PNGs go beside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::offline::dataset::list_split;
use crate::offline::plots;
use crate::pipeline::inspector::{ImageInput, Inspector};
use crate::pipeline::metrics::{self, AtThreshold, Confusion};
use crate::pipeline::scoring::PAPER_THRESHOLD;
use crate::pipeline::scoring::{Normalization, Score};

pub fn progress_bar(len: usize, what: &str, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Raw scores of image files (whole-frame ROI per the inspector's mode; every file must yield
/// exactly one crop), in batches of the engine's `max_batch`.
pub fn score_paths(inspector: &Inspector, paths: &[PathBuf], progress: bool) -> Result<Vec<Score>> {
    let pb = progress_bar(paths.len(), "scoring", progress);
    let batch = inspector.engine().max_batch();
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(batch) {
        let bytes: Vec<Vec<u8>> = chunk
            .iter()
            .map(|p| std::fs::read(p).map_err(|e| Error::io(format!("read {}", p.display()), e)))
            .collect::<Result<_>>()?;
        let inputs: Vec<ImageInput<'_>> = chunk
            .iter()
            .zip(&bytes)
            .map(|(p, b)| ImageInput {
                id: p.display().to_string(),
                bytes: b,
                camera: None,
            })
            .collect();
        for (p, r) in chunk.iter().zip(inspector.score_batch(&inputs, false)) {
            let fs = r?;
            if fs.crops.len() != 1 {
                return Err(Error::Dataset {
                    path: p.clone(),
                    message: format!(
                        "expected one fastener per image, got {} crops (use --roi whole)",
                        fs.crops.len()
                    ),
                });
            }
            out.push(fs.crops[0].score);
        }
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct ScoredSample {
    pub path: String,
    pub label: u8,
    pub defect_type: String,
    #[serde(flatten)]
    pub score: Score,
    #[serde(rename = "A_norm")]
    pub a_norm: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub model: String,
    pub data: String,
    pub provider: String,
    pub n: usize,
    pub n_normal: usize,
    pub n_defect: usize,
    pub auroc: f64,
    pub auprc: f64,
    pub threshold: f64,
    #[serde(flatten)]
    pub at_threshold: AtThreshold,
    pub confusion: ConfusionJson,
    pub per_defect_recall: BTreeMap<String, f64>,
    pub paper_protocol: AtThreshold,
    #[serde(rename = "auroc_R_only")]
    pub auroc_r_only: f64,
    #[serde(rename = "auroc_L_only")]
    pub auroc_l_only: f64,
    pub throughput_images_per_s: f64,
    pub scores: Vec<ScoredSample>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ConfusionJson {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl From<Confusion> for ConfusionJson {
    fn from(c: Confusion) -> Self {
        Self {
            tp: c.tp,
            fp: c.fp,
            tn: c.tn,
            fn_: c.fn_,
        }
    }
}

/// Metrics of scored samples against a calibration (pure; no model needed).
pub fn build_report(
    model: &str,
    data: &str,
    provider: &str,
    samples: &[(String, String, bool, Score)],
    norm: &Normalization,
    seconds: f64,
) -> Result<Report> {
    let labels: Vec<bool> = samples.iter().map(|s| s.2).collect();
    let a: Vec<f64> = samples.iter().map(|s| s.3.a).collect();
    let r: Vec<f64> = samples.iter().map(|s| s.3.r).collect();
    let l: Vec<f64> = samples.iter().map(|s| s.3.l).collect();
    let a_norm: Vec<f64> = a.iter().map(|&v| norm.normalize(v)).collect();
    let thr = norm.threshold;
    let mut per_type: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (s, &an) in samples.iter().zip(&a_norm) {
        if s.2 {
            let e = per_type.entry(s.1.clone()).or_default();
            e.1 += 1;
            if an > thr {
                e.0 += 1;
            }
        }
    }
    let lo = a.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let paper = if hi > lo {
        let p: Vec<f64> = a.iter().map(|&v| (v - lo) / (hi - lo)).collect();
        metrics::at_threshold(&p, &labels, PAPER_THRESHOLD)
    } else {
        metrics::at_threshold(&vec![0.0; a.len()], &labels, PAPER_THRESHOLD)
    };
    let e = Error::Other;
    Ok(Report {
        model: model.to_string(),
        data: data.to_string(),
        provider: provider.to_string(),
        n: labels.len(),
        n_normal: labels.iter().filter(|&&x| !x).count(),
        n_defect: labels.iter().filter(|&&x| x).count(),
        auroc: metrics::auroc(&a, &labels).map_err(e)?,
        auprc: metrics::average_precision(&a, &labels).map_err(e)?,
        threshold: thr,
        at_threshold: metrics::at_threshold(&a_norm, &labels, thr),
        confusion: metrics::confusion(&a_norm, &labels, thr).into(),
        per_defect_recall: per_type
            .into_iter()
            .map(|(k, (hit, n))| (k, hit as f64 / n as f64))
            .collect(),
        paper_protocol: paper,
        auroc_r_only: metrics::auroc(&r, &labels).map_err(e)?,
        auroc_l_only: metrics::auroc(&l, &labels).map_err(e)?,
        throughput_images_per_s: if seconds > 0.0 {
            labels.len() as f64 / seconds
        } else {
            0.0
        },
        scores: samples
            .iter()
            .zip(&a_norm)
            .map(|(s, &an)| ScoredSample {
                path: s.0.clone(),
                label: s.2 as u8,
                defect_type: s.1.clone(),
                score: s.3,
                a_norm: an,
            })
            .collect(),
    })
}

/// Runs the evaluation (scores every test image through the inspector).
pub fn evaluate(inspector: &Inspector, data: &Path, progress: bool) -> Result<Report> {
    let norm = *inspector.default_calibration().ok_or_else(|| {
        Error::Other("evaluation needs a calibration (run `railscope calibrate`)".into())
    })?;
    let samples = list_split(data, "test")?;
    let paths: Vec<PathBuf> = samples.iter().map(|s| s.path.clone()).collect();
    let t = Instant::now();
    let scores = score_paths(inspector, &paths, progress)?;
    let seconds = t.elapsed().as_secs_f64();
    let scored: Vec<(String, String, bool, Score)> = samples
        .iter()
        .zip(scores)
        .map(|(s, sc)| {
            (
                s.path.display().to_string(),
                s.defect_type.clone(),
                s.is_defect,
                sc,
            )
        })
        .collect();
    build_report(
        inspector.package().name(),
        &data.display().to_string(),
        inspector.provider(),
        &scored,
        &norm,
        seconds,
    )
}

pub fn markdown(r: &Report) -> String {
    let c = &r.confusion;
    let p = &r.paper_protocol;
    let mut s = format!(
        "# Evaluation of `{}`\n\nData: `{}` — {} normal, {} defective images. Provider: {}.\n\n\
         | AUROC | AUPRC | F1 | Precision | Recall | False-alarm rate | threshold |\n|---|---|---|---|---|---|---|\n\
         | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n\n\
         Confusion matrix at the threshold (rows: truth, columns: verdict):\n\n\
         | | normal | defect |\n|---|---|---|\n| normal | {} | {} |\n| defect | {} | {} |\n\n\
         Paper protocol (min-max over the test set, threshold 0.2): F1 {:.3}, P {:.3}, R {:.3}. \
         AUROC of R alone {:.3}, of L alone {:.3}. Throughput {:.1} images/s (decode + preprocess + inference).\n\n\
         ![ROC](roc.png) ![PR](pr.png)\n\n| defect type | recall |\n|---|---|\n",
        r.model, r.data, r.n_normal, r.n_defect, r.provider, r.auroc, r.auprc, r.at_threshold.f1, r.at_threshold.precision,
        r.at_threshold.recall, r.at_threshold.false_alarm_rate, r.threshold, c.tn, c.fp, c.fn_, c.tp, p.f1, p.precision,
        p.recall, r.auroc_r_only, r.auroc_l_only, r.throughput_images_per_s
    );
    for (t, rec) in &r.per_defect_recall {
        s.push_str(&format!("| {t} | {rec:.3} |\n"));
    }
    s
}

/// Writes `evaluation.json`, `report.md`, `roc.png` and `pr.png` into `dir`.
pub fn write_outputs(r: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    let labels: Vec<bool> = r.scores.iter().map(|s| s.label == 1).collect();
    let a: Vec<f64> = r.scores.iter().map(|s| s.score.a).collect();
    let roc = metrics::roc_curve(&a, &labels).map_err(Error::Other)?;
    let pr = metrics::pr_curve(&a, &labels).map_err(Error::Other)?;
    let files = [
        dir.join("evaluation.json"),
        dir.join("report.md"),
        dir.join("roc.png"),
        dir.join("pr.png"),
    ];
    let json = serde_json::to_string_pretty(r).map_err(|e| Error::Other(e.to_string()))? + "\n";
    std::fs::write(&files[0], json).map_err(|e| Error::io("write evaluation.json", e))?;
    std::fs::write(&files[1], markdown(r)).map_err(|e| Error::io("write report.md", e))?;
    plots::roc_png(&files[2], &roc, r.auroc)?;
    plots::pr_png(&files[3], &pr, r.auprc)?;
    Ok(files.to_vec())
}

/// The report without the per-image scores (what `evaluate` prints on stdout).
pub fn summary(r: &Report) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or(json!({}));
    if let Some(o) = v.as_object_mut() {
        o.remove("scores");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_counts_and_per_type_recall() {
        let s = |a: f64| Score::new(a, a, a);
        let samples = vec![
            ("g1".to_string(), "good".to_string(), false, s(0.1)),
            ("g2".to_string(), "good".to_string(), false, s(0.2)),
            ("c1".to_string(), "crack".to_string(), true, s(0.9)),
            ("c2".to_string(), "crack".to_string(), true, s(0.15)),
            ("m1".to_string(), "missing".to_string(), true, s(0.8)),
        ];
        let norm = Normalization::new(0.1, 0.9, 0.5).unwrap();
        let r = build_report("m", "d", "cpu", &samples, &norm, 2.0).unwrap();
        assert_eq!((r.n, r.n_normal, r.n_defect), (5, 2, 3));
        assert_eq!(r.per_defect_recall["crack"], 0.5);
        assert_eq!(r.per_defect_recall["missing"], 1.0);
        assert_eq!(
            (
                r.confusion.tp,
                r.confusion.fn_,
                r.confusion.tn,
                r.confusion.fp
            ),
            (2, 1, 2, 0)
        );
        // pairs (defect > normal): 0.9>both, 0.8>both, 0.15>0.1 only → 5/6
        assert!((r.auroc - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(r.throughput_images_per_s, 2.5);
        let md = markdown(&r);
        assert!(md.contains("| crack | 0.500 |"));
        let v = summary(&r);
        assert!(v.get("scores").is_none() && v["confusion"]["fn"] == 1);
        let d = tempfile::tempdir().unwrap();
        let files = write_outputs(&r, d.path()).unwrap();
        assert!(files.iter().all(|f| f.is_file()));
    }
}

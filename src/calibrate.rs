//! `railscope calibrate`: min/max of the raw score over a labelled calibration set and a threshold
//! by one of three methods (docs/scoring.md), written as `calibration/<model>[.<camera>].json`
//! with provenance. Mirrors `railscope_train.calibration` so both sides produce the same file.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::dataset::{data_sha256, list_split};
use crate::error::{Error, Result};
use crate::evaluate::score_paths;
use crate::inspector::Inspector;
use crate::metrics;
use crate::package::Calibration;
use crate::scoring::Normalization;

/// The paper's fixed threshold (seed 004, section 2.2.2).
pub const PAPER_THRESHOLD: f64 = 0.2;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    Fixed(f64),
    BestF1,
    FalseAlarmRate(f64),
}

impl Method {
    pub fn name(&self) -> &'static str {
        match self {
            Method::Fixed(_) => "fixed",
            Method::BestF1 => "best-f1",
            Method::FalseAlarmRate(_) => "false-alarm-rate",
        }
    }

    pub fn parse(name: &str, threshold: f64, target: f64) -> Result<Self> {
        match name {
            "fixed" => Ok(Method::Fixed(threshold)),
            "best-f1" => Ok(Method::BestF1),
            "false-alarm-rate" => Ok(Method::FalseAlarmRate(target)),
            other => Err(Error::Config(format!(
                "unknown calibration method {other:?} (fixed, best-f1, false-alarm-rate)"
            ))),
        }
    }
}

/// Bounds, threshold and metrics from raw scores A and labels (true = defect).
#[derive(Debug, Clone, PartialEq)]
pub struct Calibrated {
    pub min: f64,
    pub max: f64,
    pub threshold: f64,
    pub metrics: serde_json::Map<String, serde_json::Value>,
}

pub fn calibrate_scores(a: &[f64], labels: &[bool], method: Method) -> Result<Calibrated> {
    if a.is_empty() {
        return Err(Error::Other("no scores to calibrate on".into()));
    }
    let min = a.iter().copied().fold(f64::INFINITY, f64::min);
    let max = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let norm = Normalization::new(min, max, 0.0).map_err(Error::Other)?;
    let a_norm: Vec<f64> = a.iter().map(|&v| norm.normalize(v)).collect();
    let threshold = match method {
        Method::Fixed(t) => t,
        Method::BestF1 => metrics::best_f1_threshold(&a_norm, labels).map_err(Error::Other)?,
        Method::FalseAlarmRate(t) => {
            metrics::false_alarm_threshold(&a_norm, labels, t).map_err(Error::Other)?
        }
    };
    let mut m = serde_json::Map::new();
    let n_def = labels.iter().filter(|&&l| l).count();
    if n_def > 0 && n_def < labels.len() {
        m.insert(
            "auroc".into(),
            json!(metrics::auroc(&a_norm, labels).map_err(Error::Other)?),
        );
        let r = metrics::at_threshold(&a_norm, labels, threshold);
        m.insert("precision".into(), json!(r.precision));
        m.insert("recall".into(), json!(r.recall));
        m.insert("f1".into(), json!(r.f1));
        m.insert("false_alarm_rate".into(), json!(r.false_alarm_rate));
    }
    Ok(Calibrated {
        min,
        max,
        threshold,
        metrics: m,
    })
}

/// Scores the `test` split of `data` and builds the calibration file's content.
pub fn calibrate(
    inspector: &Inspector,
    data: &Path,
    method: Method,
    camera: Option<&str>,
    progress: bool,
) -> Result<Calibration> {
    let samples = list_split(data, "test")?;
    let paths: Vec<PathBuf> = samples.iter().map(|s| s.path.clone()).collect();
    let labels: Vec<bool> = samples.iter().map(|s| s.is_defect).collect();
    let scores = score_paths(inspector, &paths, progress)?;
    let a: Vec<f64> = scores.iter().map(|s| s.a).collect();
    let c = calibrate_scores(&a, &labels, method)?;
    let pkg = inspector.package();
    Ok(Calibration {
        model: pkg.name().to_string(),
        model_sha256: Some(pkg.manifest.model.sha256.clone()),
        min: c.min,
        max: c.max,
        threshold: c.threshold,
        method: method.name().to_string(),
        target: match method {
            Method::FalseAlarmRate(t) => Some(t),
            _ => None,
        },
        n: Some(labels.len()),
        n_normal: Some(labels.iter().filter(|&&l| !l).count()),
        n_defect: Some(labels.iter().filter(|&&l| l).count()),
        data: Some(data.display().to_string()),
        data_sha256: Some(data_sha256(&paths)?),
        created_at: Some(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        camera: camera.map(str::to_string),
        metrics: Some(c.metrics.into_iter().collect()),
    })
}

pub fn write(cal: &Calibration, path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("create {}", parent.display()), e))?;
    }
    let text = serde_json::to_string_pretty(cal).map_err(|e| Error::Other(e.to_string()))? + "\n";
    std::fs::write(path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_give_the_documented_thresholds() {
        // raw scores 1..5 → normalized 0, .25, .5, .75, 1; the last two are defects.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [false, false, false, true, true];
        let c = calibrate_scores(&a, &y, Method::Fixed(0.2)).unwrap();
        assert_eq!((c.min, c.max, c.threshold), (1.0, 5.0, 0.2));
        assert_eq!(c.metrics["recall"], json!(1.0));
        assert_eq!(c.metrics["precision"], json!(0.5));
        let c = calibrate_scores(&a, &y, Method::BestF1).unwrap();
        assert!((c.threshold - 0.625).abs() < 1e-12, "{}", c.threshold);
        assert_eq!(c.metrics["f1"], json!(1.0));
        let c = calibrate_scores(&a, &y, Method::FalseAlarmRate(0.0)).unwrap();
        assert_eq!(c.threshold, 0.5);
        assert_eq!(c.metrics["false_alarm_rate"], json!(0.0));
        assert!(
            calibrate_scores(&[2.0, 2.0], &[false, true], Method::BestF1).is_err(),
            "degenerate"
        );
        assert!(Method::parse("nope", 0.2, 0.01).is_err());
    }
}

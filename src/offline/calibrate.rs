//! `railscope calibrate`: min/max of the raw score over a calibration set and a threshold by one
//! of four methods (docs/scoring.md), written as `calibration/<model>[.<camera>].json` with
//! provenance. `normals` needs normal images only (a new camera on day one); `fixed`, `best-f1`
//! and `false-alarm-rate` need a labelled set with defects. Mirrors `railscope_train.calibration`
//! so both sides produce the same file.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::{Error, Result};
use crate::offline::dataset::{data_sha256, list_split, Sample};
use crate::offline::evaluate::score_paths;
use crate::pipeline::inspector::Inspector;
use crate::pipeline::metrics;
use crate::pipeline::package::Calibration;
use crate::pipeline::scoring::Normalization;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// Bounds from the normals alone, threshold at the target false-alarm rate on them.
    Normals(f64),
    Fixed(f64),
    BestF1,
    FalseAlarmRate(f64),
}

impl Method {
    pub fn name(&self) -> &'static str {
        match self {
            Method::Normals(_) => "normals",
            Method::Fixed(_) => "fixed",
            Method::BestF1 => "best-f1",
            Method::FalseAlarmRate(_) => "false-alarm-rate",
        }
    }

    /// The target false-alarm rate, for the methods that have one.
    pub fn target(&self) -> Option<f64> {
        match *self {
            Method::Normals(t) | Method::FalseAlarmRate(t) => Some(t),
            Method::Fixed(_) | Method::BestF1 => None,
        }
    }

    pub fn parse(name: &str, threshold: f64, target: f64) -> Result<Self> {
        match name {
            "normals" => Ok(Method::Normals(target)),
            "fixed" => Ok(Method::Fixed(threshold)),
            "best-f1" => Ok(Method::BestF1),
            "false-alarm-rate" => Ok(Method::FalseAlarmRate(target)),
            other => Err(Error::Config(format!(
                "unknown calibration method {other:?} (normals, fixed, best-f1, false-alarm-rate)"
            ))),
        }
    }
}

/// Bounds, threshold and metrics from raw scores A and labels (true = defect). `normals` takes
/// its bounds and threshold from the normal scores only (defects, if any, only enter the
/// metrics); the labelled methods refuse a set without defects.
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
    if a.len() != labels.len() {
        return Err(Error::Other(format!(
            "{} scores but {} labels",
            a.len(),
            labels.len()
        )));
    }
    let n_def = labels.iter().filter(|&&l| l).count();
    let normals: Vec<f64> = a
        .iter()
        .zip(labels)
        .filter(|(_, &l)| !l)
        .map(|(&v, _)| v)
        .collect();
    let bounds_of: &[f64] = match method {
        Method::Normals(_) => {
            if normals.len() < 2 {
                return Err(Error::Other(format!(
                    "normals calibration needs at least 2 normal images (got {})",
                    normals.len()
                )));
            }
            &normals
        }
        _ if n_def == 0 => {
            return Err(Error::Other(format!(
                "{} calibration needs defect images; use the normals method (--method normals) for a set of normals only",
                method.name()
            )))
        }
        _ => a,
    };
    let min = bounds_of.iter().copied().fold(f64::INFINITY, f64::min);
    let max = bounds_of.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let norm = Normalization::new(min, max, 0.0).map_err(Error::Other)?;
    let a_norm: Vec<f64> = a.iter().map(|&v| norm.normalize(v)).collect();
    let threshold = match method {
        Method::Normals(t) => {
            let normal_norm: Vec<f64> = normals.iter().map(|&v| norm.normalize(v)).collect();
            metrics::false_alarm_threshold(&normal_norm, &vec![false; normal_norm.len()], t)
                .map_err(Error::Other)?
        }
        Method::Fixed(t) => t,
        Method::BestF1 => metrics::best_f1_threshold(&a_norm, labels).map_err(Error::Other)?,
        Method::FalseAlarmRate(t) => {
            metrics::false_alarm_threshold(&a_norm, labels, t).map_err(Error::Other)?
        }
    };
    let mut m = serde_json::Map::new();
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

/// The calibration set's images: the `test` split of `data`, or for `normals` a folder of
/// normals alone (`train/good`) when `data` has no `test/`.
pub fn calibration_samples(data: &Path, method: Method) -> Result<Vec<Sample>> {
    let has_test = data.join("test").is_dir();
    if matches!(method, Method::Normals(_)) && !has_test {
        return list_split(data, "train");
    }
    if !has_test && data.join("train").is_dir() {
        return Err(Error::Dataset {
            path: data.to_path_buf(),
            message: format!(
                "has no test/ split; the {} method needs a labelled set (test/good/ and test/<defect>/); for normal images alone use --method normals",
                method.name()
            ),
        });
    }
    list_split(data, "test")
}

/// Scores the calibration set of `data` ([`calibration_samples`]) and builds the calibration
/// file's content.
pub fn calibrate(
    inspector: &Inspector,
    data: &Path,
    method: Method,
    camera: Option<&str>,
    progress: bool,
) -> Result<Calibration> {
    let samples = calibration_samples(data, method)?;
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
        target: method.target(),
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

    #[test]
    fn normals_method_uses_the_normals_alone() {
        // Normals only: bounds 1…5 → A' = 0, .25, .5, .75, 1; with target 0.2 one normal of
        // five may lie above the threshold → the second largest, 0.75.
        let a = [3.0, 1.0, 5.0, 2.0, 4.0];
        let y = [false; 5];
        let c = calibrate_scores(&a, &y, Method::Normals(0.2)).unwrap();
        assert_eq!((c.min, c.max, c.threshold), (1.0, 5.0, 0.75));
        assert!(c.metrics.is_empty(), "no defects, no metrics");
        // A target below 1/n: the largest normal, A' = 1.
        let c = calibrate_scores(&a, &y, Method::Normals(0.01)).unwrap();
        assert_eq!(c.threshold, 1.0);
        // With defects in the set: bounds and threshold still from the normals (1…3), the
        // defects beyond A' = 1 only enter the metrics.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [false, false, false, true, true];
        let c = calibrate_scores(&a, &y, Method::Normals(0.0)).unwrap();
        assert_eq!((c.min, c.max, c.threshold), (1.0, 3.0, 1.0));
        assert_eq!(c.metrics["recall"], json!(1.0));
        assert_eq!(c.metrics["false_alarm_rate"], json!(0.0));
        assert_eq!(c.metrics["auroc"], json!(1.0));
    }

    #[test]
    fn normals_and_labelled_methods_refuse_the_wrong_sets() {
        for (a, y) in [
            (&[1.0][..], &[false][..]),
            (&[1.0, 5.0, 6.0][..], &[false, true, true][..]),
        ] {
            let e = calibrate_scores(a, y, Method::Normals(0.01))
                .unwrap_err()
                .to_string();
            assert!(e.contains("at least 2 normal images"), "{e}");
        }
        let e = calibrate_scores(&[2.0, 2.0], &[false, false], Method::Normals(0.01))
            .unwrap_err()
            .to_string();
        assert!(e.contains("degenerate"), "{e}");
        let e = calibrate_scores(&[1.0, 2.0], &[false, false], Method::Normals(1.0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("target"), "{e}");
        for m in [
            Method::Fixed(0.2),
            Method::BestF1,
            Method::FalseAlarmRate(0.01),
        ] {
            let e = calibrate_scores(&[1.0, 2.0, 3.0], &[false; 3], m)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(m.name()) && e.contains("needs defect images") && e.contains("normals"),
                "{e}"
            );
        }
        assert!(calibrate_scores(&[], &[], Method::Normals(0.01)).is_err());
        assert!(calibrate_scores(&[1.0, 2.0], &[false], Method::Normals(0.01)).is_err());
    }

    #[test]
    fn method_names_and_targets() {
        assert_eq!(
            Method::parse("normals", 0.2, 0.05).unwrap(),
            Method::Normals(0.05)
        );
        assert_eq!(Method::Normals(0.05).name(), "normals");
        assert_eq!(Method::Normals(0.05).target(), Some(0.05));
        assert_eq!(Method::FalseAlarmRate(0.1).target(), Some(0.1));
        assert_eq!(Method::Fixed(0.2).target(), None);
        assert_eq!(Method::BestF1.target(), None);
        let e = Method::parse("magic", 0.2, 0.01).unwrap_err().to_string();
        assert!(e.contains("normals"), "{e}");
    }

    #[test]
    fn normals_read_train_good_when_there_is_no_test_split() {
        let d = tempfile::tempdir().unwrap();
        let touch = |rel: &str| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"x").unwrap();
        };
        touch("train/good/a.png");
        touch("train/good/b.png");
        let s = calibration_samples(d.path(), Method::Normals(0.01)).unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|s| !s.is_defect));
        // The labelled methods read the test split only, and point at normals.
        let e = calibration_samples(d.path(), Method::BestF1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("test/") && e.contains("--method normals"), "{e}");
        // With a test split, normals reads it too (its good images are the normals).
        touch("test/good/c.png");
        touch("test/crack/d.png");
        let s = calibration_samples(d.path(), Method::Normals(0.01)).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.iter().filter(|s| s.is_defect).count(), 1);
        // A folder of normals given directly (its good/) works too.
        let s = calibration_samples(&d.path().join("train"), Method::Normals(0.01)).unwrap();
        assert_eq!(s.len(), 2);
    }
}

//! Detection metrics on anomaly scores (label `true` = defect), defined as scikit-learn and the
//! Python reference (`railscope_train.metrics`) define them, so that reports from both sides can
//! be compared number for number.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    pub fn_: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AtThreshold {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub false_alarm_rate: f64,
}

fn check(scores: &[f64], labels: &[bool]) -> Result<(), String> {
    if scores.len() != labels.len() {
        return Err(format!(
            "{} scores but {} labels",
            scores.len(),
            labels.len()
        ));
    }
    if scores.iter().any(|s| s.is_nan()) {
        return Err("scores contain NaN".into());
    }
    Ok(())
}

/// Indices sorting scores in descending order (stable).
fn order_desc(scores: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    idx
}

/// Cumulative (fp, tp) at each distinct score, highest first: one ROC/PR point per threshold.
fn cumulative_counts(scores: &[f64], labels: &[bool]) -> (Vec<f64>, Vec<usize>, Vec<usize>) {
    let idx = order_desc(scores);
    let (mut thr, mut fps, mut tps) = (Vec::new(), Vec::new(), Vec::new());
    let (mut tp, mut fp) = (0usize, 0usize);
    for (k, &i) in idx.iter().enumerate() {
        if labels[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = k + 1 == idx.len() || scores[idx[k + 1]] != scores[i];
        if last_of_tie {
            thr.push(scores[i]);
            fps.push(fp);
            tps.push(tp);
        }
    }
    (thr, fps, tps)
}

/// ROC curve points (fpr, tpr), starting at (0, 0), one point per distinct threshold
/// (sklearn `roc_curve` with `drop_intermediate=False`).
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Result<Vec<(f64, f64)>, String> {
    check(scores, labels)?;
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return Err("ROC needs both normal and defect samples".into());
    }
    let (_, fps, tps) = cumulative_counts(scores, labels);
    let mut pts = vec![(0.0, 0.0)];
    pts.extend(
        fps.iter()
            .zip(&tps)
            .map(|(&f, &t)| (f as f64 / neg as f64, t as f64 / pos as f64)),
    );
    Ok(pts)
}

/// Area under the ROC curve (trapezoidal over all distinct thresholds = Mann–Whitney U with ties
/// counted half), equal to `sklearn.metrics.roc_auc_score`.
pub fn auroc(scores: &[f64], labels: &[bool]) -> Result<f64, String> {
    let pts = roc_curve(scores, labels)?;
    Ok(pts
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
        .sum())
}

/// Precision–recall points (recall, precision), one per distinct threshold, highest threshold
/// first (sklearn `precision_recall_curve` without the final (0, 1) point).
pub fn pr_curve(scores: &[f64], labels: &[bool]) -> Result<Vec<(f64, f64)>, String> {
    check(scores, labels)?;
    let pos = labels.iter().filter(|&&l| l).count();
    if pos == 0 {
        return Err("precision/recall need defect samples".into());
    }
    let (_, fps, tps) = cumulative_counts(scores, labels);
    Ok(fps
        .iter()
        .zip(&tps)
        .map(|(&f, &t)| (t as f64 / pos as f64, t as f64 / (t + f) as f64))
        .collect())
}

/// Average precision, Σ (Rₖ − Rₖ₋₁)·Pₖ without interpolation
/// (`sklearn.metrics.average_precision_score`).
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Result<f64, String> {
    let pts = pr_curve(scores, labels)?;
    let mut prev_r = 0.0;
    let mut ap = 0.0;
    for (r, p) in pts {
        ap += (r - prev_r) * p;
        prev_r = r;
    }
    Ok(ap)
}

/// Confusion matrix with "defect" predicted when score > threshold (strict, as the verdict).
pub fn confusion(scores: &[f64], labels: &[bool], threshold: f64) -> Confusion {
    let mut c = Confusion::default();
    for (&s, &l) in scores.iter().zip(labels) {
        match (s > threshold, l) {
            (true, true) => c.tp += 1,
            (true, false) => c.fp += 1,
            (false, false) => c.tn += 1,
            (false, true) => c.fn_ += 1,
        }
    }
    c
}

impl Confusion {
    /// Precision, recall, F1 and false-alarm rate; 0 where undefined (sklearn's zero_division=0).
    pub fn rates(&self) -> AtThreshold {
        let div = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = div(self.tp, self.tp + self.fp);
        let recall = div(self.tp, self.tp + self.fn_);
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        AtThreshold {
            precision,
            recall,
            f1,
            false_alarm_rate: div(self.fp, self.fp + self.tn),
        }
    }
}

pub fn at_threshold(scores: &[f64], labels: &[bool], threshold: f64) -> AtThreshold {
    confusion(scores, labels, threshold).rates()
}

fn distinct_sorted(scores: &[f64]) -> Vec<f64> {
    let mut u = scores.to_vec();
    u.sort_by(f64::total_cmp);
    u.dedup();
    u
}

/// Threshold maximising F1: candidates are just below the lowest score and the midpoints between
/// neighbouring distinct scores; ties go to the higher threshold (fewer false alarms).
pub fn best_f1_threshold(scores: &[f64], labels: &[bool]) -> Result<f64, String> {
    check(scores, labels)?;
    if scores.is_empty() {
        return Err("no scores".into());
    }
    let u = distinct_sorted(scores);
    let mut candidates = vec![u[0] - 1e-9];
    candidates.extend(u.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    let mut best = (candidates[0], -1.0);
    for t in candidates {
        let f = at_threshold(scores, labels, t).f1;
        if f >= best.1 {
            best = (t, f);
        }
    }
    Ok(best.0)
}

/// Smallest threshold, among the normals' scores, whose false-alarm rate (normals above it) is
/// at most `target`.
pub fn false_alarm_threshold(scores: &[f64], labels: &[bool], target: f64) -> Result<f64, String> {
    check(scores, labels)?;
    if !(0.0..1.0).contains(&target) {
        return Err(format!(
            "target false-alarm rate must lie in [0, 1), got {target}"
        ));
    }
    let mut normals: Vec<f64> = scores
        .iter()
        .zip(labels)
        .filter(|(_, &l)| !l)
        .map(|(&s, _)| s)
        .collect();
    if normals.is_empty() {
        return Err("false-alarm-rate calibration needs normal samples".into());
    }
    normals.sort_by(|a, b| b.total_cmp(a));
    let k = (target * normals.len() as f64).floor() as usize;
    Ok(normals[k.min(normals.len() - 1)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_inverted_ranking() {
        let s = [0.1, 0.2, 0.8, 0.9];
        let y = [false, false, true, true];
        assert_eq!(auroc(&s, &y).unwrap(), 1.0);
        assert_eq!(average_precision(&s, &y).unwrap(), 1.0);
        let inv = [true, true, false, false];
        assert_eq!(auroc(&s, &inv).unwrap(), 0.0);
    }

    #[test]
    fn hand_computed_small_case() {
        // sklearn: roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.75,
        // average_precision_score = 0.8333…
        let s = [0.1, 0.4, 0.35, 0.8];
        let y = [false, false, true, true];
        assert!((auroc(&s, &y).unwrap() - 0.75).abs() < 1e-12);
        assert!((average_precision(&s, &y).unwrap() - 5.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn ties_count_half() {
        let s = [0.5, 0.5];
        let y = [false, true];
        assert_eq!(auroc(&s, &y).unwrap(), 0.5);
        assert_eq!(average_precision(&s, &y).unwrap(), 0.5);
    }

    #[test]
    fn confusion_is_strict() {
        let s = [0.2, 0.3, 0.3, 0.9];
        let y = [false, true, false, true];
        let c = confusion(&s, &y, 0.3);
        assert_eq!(
            c,
            Confusion {
                tp: 1,
                fp: 0,
                tn: 2,
                fn_: 1
            }
        );
        let r = c.rates();
        assert_eq!(r.precision, 1.0);
        assert_eq!(r.recall, 0.5);
        assert!((r.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(confusion(&s, &y, 1.0).rates().precision, 0.0);
    }

    #[test]
    fn best_f1_picks_the_separating_midpoint() {
        let s = [0.1, 0.2, 0.3, 0.7, 0.8];
        let y = [false, false, false, true, true];
        assert!((best_f1_threshold(&s, &y).unwrap() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn false_alarm_threshold_counts_normals_above() {
        let s: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).chain([5.0]).collect();
        let mut y = vec![false; 100];
        y.push(true);
        // 0 allowed above → the highest normal
        assert_eq!(false_alarm_threshold(&s, &y, 0.001).unwrap(), 0.99);
        // 5 allowed above → the 6th highest normal (0.94); FAR there = 5/100
        let t = false_alarm_threshold(&s, &y, 0.05).unwrap();
        assert_eq!(t, 0.94);
        assert!(at_threshold(&s, &y, t).false_alarm_rate <= 0.05);
        assert!(false_alarm_threshold(&s, &y, 1.0).is_err());
    }

    #[test]
    fn errors_on_degenerate_input() {
        assert!(auroc(&[0.1, 0.2], &[false, false]).is_err());
        assert!(auroc(&[0.1], &[false, true]).is_err());
        assert!(average_precision(&[0.1, 0.2], &[false, false]).is_err());
        assert!(auroc(&[f64::NAN, 0.2], &[false, true]).is_err());
    }
}

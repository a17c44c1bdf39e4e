//! The anomaly score exactly as `docs/scoring.md` defines it. Pure math, no I/O, so the parity
//! test with the Python reference checks only this and the preprocessing.
//!
//! ```text
//! R  = mean |x − x̂|                    (over C·H·W)
//! L  = ‖f(x) − f(x̂)‖₂ / √F
//! A  = λ·R + (1 − λ)·L
//! A' = (A − min) / (max − min)          not clamped
//! verdict = defect  iff  A' > threshold (strict)
//! ```
//! All sums are accumulated in f64 from the f32 model outputs.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Normal,
    Defect,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Normal => "normal",
            Verdict::Defect => "defect",
        }
    }

    /// The inverse of [`Verdict::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "normal" => Some(Verdict::Normal),
            "defect" => Some(Verdict::Defect),
            _ => None,
        }
    }
}

/// The calibration bounds and threshold used to turn a raw score into a verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    pub min: f64,
    pub max: f64,
    pub threshold: f64,
}

impl Normalization {
    /// Refuses a degenerate or non-finite calibration (docs/scoring.md: `max == min` is refused).
    pub fn new(min: f64, max: f64, threshold: f64) -> Result<Self, String> {
        if !min.is_finite() || !max.is_finite() || !threshold.is_finite() {
            return Err(format!(
                "min/max/threshold must be finite (got {min}, {max}, {threshold})"
            ));
        }
        if max <= min {
            return Err(format!(
                "max ({max}) must be greater than min ({min}); a degenerate calibration cannot normalize scores"
            ));
        }
        Ok(Self {
            min,
            max,
            threshold,
        })
    }

    pub fn normalize(&self, a: f64) -> f64 {
        (a - self.min) / (self.max - self.min)
    }

    pub fn verdict(&self, a_norm: f64) -> Verdict {
        verdict(a_norm, self.threshold)
    }
}

/// One image's score components.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    #[serde(rename = "R")]
    pub r: f64,
    #[serde(rename = "L")]
    pub l: f64,
    #[serde(rename = "A")]
    pub a: f64,
}

/// Normalized score and decision for one image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    #[serde(flatten)]
    pub score: Score,
    #[serde(rename = "A_norm")]
    pub a_norm: f64,
    pub threshold: f64,
    pub verdict: Verdict,
}

/// R: mean absolute reconstruction error over all C·H·W values.
pub fn reconstruction_error(x: &[f32], x_hat: &[f32]) -> f64 {
    assert_eq!(
        x.len(),
        x_hat.len(),
        "input and reconstruction differ in size"
    );
    assert!(!x.is_empty(), "empty image tensor");
    let sum: f64 = x
        .iter()
        .zip(x_hat)
        .map(|(&a, &b)| (a as f64 - b as f64).abs())
        .sum();
    sum / x.len() as f64
}

/// L: RMS difference of the discriminator features, ‖f(x) − f(x̂)‖₂ / √F.
pub fn feature_distance(f_real: &[f32], f_fake: &[f32]) -> f64 {
    assert_eq!(f_real.len(), f_fake.len(), "feature vectors differ in size");
    assert!(!f_real.is_empty(), "empty feature vector");
    let sq: f64 = f_real
        .iter()
        .zip(f_fake)
        .map(|(&a, &b)| {
            let d = a as f64 - b as f64;
            d * d
        })
        .sum();
    (sq / f_real.len() as f64).sqrt()
}

/// A = λ·R + (1 − λ)·L.
pub fn combine(r: f64, l: f64, lambda: f64) -> f64 {
    lambda * r + (1.0 - lambda) * l
}

/// Strict `>`: a score equal to the threshold is normal.
pub fn verdict(a_norm: f64, threshold: f64) -> Verdict {
    if a_norm > threshold {
        Verdict::Defect
    } else {
        Verdict::Normal
    }
}

/// R, L and A of one image from the model's outputs.
pub fn score(x: &[f32], x_hat: &[f32], f_real: &[f32], f_fake: &[f32], lambda: f64) -> Score {
    let r = reconstruction_error(x, x_hat);
    let l = feature_distance(f_real, f_fake);
    Score {
        r,
        l,
        a: combine(r, l, lambda),
    }
}

/// Applies the calibration to a raw score.
pub fn judge(score: Score, norm: &Normalization) -> Judged {
    let a_norm = norm.normalize(score.a);
    Judged {
        score,
        a_norm,
        threshold: norm.threshold,
        verdict: norm.verdict(a_norm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn reconstruction_error_is_mean_absolute_difference() {
        // |1-0.5| + |-1-(-0.5)| + |0.25-0.75| + |0-0| = 0.5+0.5+0.5+0 = 1.5 → /4
        let r = reconstruction_error(&[1.0, -1.0, 0.25, 0.0], &[0.5, -0.5, 0.75, 0.0]);
        assert!(close(r, 0.375), "{r}");
    }

    #[test]
    fn feature_distance_is_rms_difference() {
        // differences 3 and 4 → ‖·‖ = 5, F = 2 → 5/√2
        let l = feature_distance(&[3.0, 4.0], &[0.0, 0.0]);
        assert!(close(l, 5.0 / 2f64.sqrt()), "{l}");
        assert_eq!(feature_distance(&[1.5, -2.0, 7.0], &[1.5, -2.0, 7.0]), 0.0);
    }

    #[test]
    fn combined_score_uses_lambda() {
        let s = score(
            &[1.0, -1.0, 0.25, 0.0],
            &[0.5, -0.5, 0.75, 0.0],
            &[3.0, 4.0],
            &[0.0, 0.0],
            0.9,
        );
        let expected = 0.9 * 0.375 + 0.1 * (5.0 / 2f64.sqrt());
        assert!(close(s.a, expected), "{} vs {expected}", s.a);
        assert!(close(combine(2.0, 10.0, 1.0), 2.0));
        assert!(close(combine(2.0, 10.0, 0.0), 10.0));
    }

    #[test]
    fn accumulation_is_f64() {
        // 1e6 values of 0.1 error: an f32 running sum drifts visibly, f64 does not.
        let n = 1_000_000;
        let x = vec![0.1f32; n];
        let y = vec![0.0f32; n];
        let r = reconstruction_error(&x, &y);
        assert!((r - 0.1f32 as f64).abs() < 1e-12, "{r}");
    }

    #[test]
    fn normalization_is_not_clamped() {
        let n = Normalization::new(0.2, 0.6, 0.5).unwrap();
        assert!(close(n.normalize(0.4), 0.5));
        assert!(close(n.normalize(1.0), 2.0));
        assert!(close(n.normalize(0.0), -0.5));
    }

    #[test]
    fn threshold_is_strict() {
        assert_eq!(verdict(0.5, 0.5), Verdict::Normal);
        assert_eq!(verdict(0.500001, 0.5), Verdict::Defect);
        assert_eq!(verdict(-3.0, 0.5), Verdict::Normal);
        let n = Normalization::new(0.0, 1.0, 0.2).unwrap();
        let j = judge(
            Score {
                r: 0.0,
                l: 0.0,
                a: 0.2,
            },
            &n,
        );
        assert_eq!(j.verdict, Verdict::Normal);
        let j = judge(
            Score {
                r: 0.0,
                l: 0.0,
                a: 0.21,
            },
            &n,
        );
        assert_eq!(j.verdict, Verdict::Defect);
    }

    #[test]
    fn degenerate_calibration_is_refused() {
        assert!(Normalization::new(0.3, 0.3, 0.2).is_err());
        assert!(Normalization::new(0.5, 0.3, 0.2).is_err());
        assert!(Normalization::new(f64::NAN, 0.3, 0.2).is_err());
    }

    #[test]
    fn verdict_serializes_lowercase() {
        assert_eq!(
            serde_json::to_string(&Verdict::Defect).unwrap(),
            "\"defect\""
        );
        let j = judge(
            Score {
                r: 0.1,
                l: 0.2,
                a: 0.11,
            },
            &Normalization::new(0.0, 1.0, 0.2).unwrap(),
        );
        let v = serde_json::to_value(j).unwrap();
        assert_eq!(v["verdict"], "normal");
        assert!(v.get("A_norm").is_some() && v.get("R").is_some());
    }
}

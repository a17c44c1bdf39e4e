//! The anomaly score exactly as `docs/scoring.md` defines it. Pure math, no I/O, so the parity
//! test with the Python reference checks only this and the preprocessing.
//!
//! ```text
//! R  = pool(|x − x̂|)                   mean over C·H·W, or the top-k mean of the
//!                                       Gaussian-smoothed per-pixel error map (manifest pooling)
//! L  = ‖f(x) − f(x̂)‖₂ / √F
//! A  = λ·R + (1 − λ)·L
//! A' = (A − min) / (max − min)          not clamped
//! verdict = defect  iff  A' > threshold (strict)
//! ```
//! That is the score kind `lambda-l1-l2`. The kind `ade-gan` (version 1, seed 003's eq. 9–11)
//! keeps R and L, calls D = λ·R + (1 − λ)·L the reconstruction term and adds the extractor's
//! pattern logits z (`pattern_logits`, K values):
//! ```text
//! M = max_k softmax(z)_k                pattern confidence
//! P = Φ((D − recon_mean) / recon_std)   reconstruction probability (normal fitted on normals)
//! A = 1 − P/K − (1 − P)·M               in [0, 1 − 1/K]
//! ```
//! All sums are accumulated in f64 from the f32 model outputs.

use serde::{Deserialize, Serialize};

/// The paper's fixed threshold on A′ (seed 004, section 2.2.2), for methods that calibrate only
/// the bounds.
pub const PAPER_THRESHOLD: f64 = 0.2;

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
    /// Kind `ade-gan`: the pattern confidence M (max softmax probability of the pattern logits).
    #[serde(rename = "M", default, skip_serializing_if = "Option::is_none")]
    pub m: Option<f64>,
    /// Kind `ade-gan`: the reconstruction probability P = Φ((D − recon_mean) / recon_std).
    #[serde(rename = "P", default, skip_serializing_if = "Option::is_none")]
    pub p: Option<f64>,
}

impl Score {
    /// A `lambda-l1-l2` score (no pattern terms).
    pub fn new(r: f64, l: f64, a: f64) -> Self {
        Self {
            r,
            l,
            a,
            m: None,
            p: None,
        }
    }
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

/// How R pools the reconstruction error (manifest `[score] pooling`, docs/scoring.md).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Pooling {
    /// Mean of |x − x̂| over all C·H·W values (seed 004's eq. 4; the default).
    #[default]
    Mean,
    /// Mean of the `top_fraction` largest values of the per-pixel error map (mean over
    /// channels) smoothed by a Gaussian of `smooth_sigma` pixels.
    TopK {
        smooth_sigma: f64,
        top_fraction: f64,
    },
}

impl Pooling {
    /// The largest `smooth_sigma` a package may declare.
    pub const MAX_SIGMA: f64 = 8.0;

    /// A `topk` pooling with its parameters checked: σ in [0, 8], top_fraction in (0, 1].
    pub fn top_k(smooth_sigma: f64, top_fraction: f64) -> Result<Self, String> {
        if !(0.0..=Self::MAX_SIGMA).contains(&smooth_sigma) {
            return Err(format!(
                "smooth_sigma must lie in [0, {}], not {smooth_sigma}",
                Self::MAX_SIGMA
            ));
        }
        if !(top_fraction > 0.0 && top_fraction <= 1.0) {
            return Err(format!(
                "top_fraction must lie in (0, 1], not {top_fraction}"
            ));
        }
        Ok(Pooling::TopK {
            smooth_sigma,
            top_fraction,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::TopK { .. } => "topk",
        }
    }
}

/// Mean absolute difference over all values (the `mean` pooling of R).
pub fn mean_abs_error(x: &[f32], x_hat: &[f32]) -> f64 {
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

/// e(p) = (1/C) Σ_c |x_c(p) − x̂_c(p)|: the per-pixel error map (H×W, row-major) of one CHW
/// image, in f64.
pub fn error_map(x: &[f32], x_hat: &[f32], shape: [usize; 3]) -> Vec<f64> {
    let [c, h, w] = shape;
    let plane = h * w;
    assert!(plane > 0 && c > 0, "empty image shape {shape:?}");
    assert_eq!(x.len(), c * plane, "input does not match shape {shape:?}");
    assert_eq!(
        x_hat.len(),
        c * plane,
        "reconstruction does not match shape {shape:?}"
    );
    let mut e = vec![0f64; plane];
    for ch in 0..c {
        let (xs, ys) = (
            &x[ch * plane..(ch + 1) * plane],
            &x_hat[ch * plane..(ch + 1) * plane],
        );
        for ((o, &a), &b) in e.iter_mut().zip(xs).zip(ys) {
            *o += (a as f64 - b as f64).abs();
        }
    }
    let n = c as f64;
    e.iter_mut().for_each(|v| *v /= n);
    e
}

/// Normalized 1-D Gaussian weights for offsets −r…r, r = ⌈3σ⌉; `[1.0]` for σ = 0.
pub fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    if sigma <= 0.0 {
        return vec![1.0];
    }
    let r = (3.0 * sigma).ceil() as i64;
    let k: Vec<f64> = (-r..=r)
        .map(|t| {
            let z = t as f64 / sigma;
            (-0.5 * (z * z)).exp()
        })
        .collect();
    let sum = pairwise_sum(&k);
    k.into_iter().map(|v| v / sum).collect()
}

/// NumPy's pairwise summation (`np.sum` of a contiguous float64 array), so that sums the Python
/// reference takes with NumPy (the kernel's normalization, the standardize statistics) match it
/// to the last bit.
pub(crate) fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        return a.iter().fold(0.0, |s, &v| s + v);
    }
    if n <= 128 {
        let mut r = [0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[i..] {
            res += v;
        }
        return res;
    }
    let mut n2 = n / 2;
    n2 -= n2 % 8;
    pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
}

/// The index that position `i` (possibly outside 0…n−1) reads under OpenCV's
/// `BORDER_REFLECT_101` (`dcb|abcd|cba`), however far outside it lies.
pub fn reflect101(i: i64, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * (n as i64 - 1);
    let j = i.abs() % period;
    (if j >= n as i64 { period - j } else { j }) as usize
}

/// s = G_σ ∗ e: a separable Gaussian of an H×W map (along rows, then along columns),
/// reflect-101 borders, in f64. σ = 0 returns the map unchanged.
pub fn smooth(map: &[f64], height: usize, width: usize, sigma: f64) -> Vec<f64> {
    assert_eq!(
        map.len(),
        height * width,
        "map does not match {height}×{width}"
    );
    let k = gaussian_kernel(sigma);
    let r = (k.len() / 2) as i64;
    if r == 0 {
        return map.to_vec();
    }
    // Along each row (x direction).
    let cols: Vec<usize> = (-r..width as i64 + r)
        .map(|i| reflect101(i, width))
        .collect();
    let mut tmp = vec![0f64; map.len()];
    for y in 0..height {
        let row = &map[y * width..(y + 1) * width];
        for x in 0..width {
            let mut acc = 0.0;
            for (i, &wt) in k.iter().enumerate() {
                acc += wt * row[cols[x + i]];
            }
            tmp[y * width + x] = acc;
        }
    }
    // Along each column (y direction).
    let rows: Vec<usize> = (-r..height as i64 + r)
        .map(|i| reflect101(i, height))
        .collect();
    let mut out = vec![0f64; map.len()];
    for y in 0..height {
        for (i, &wt) in k.iter().enumerate() {
            let src = &tmp[rows[y + i] * width..(rows[y + i] + 1) * width];
            for (o, &v) in out[y * width..(y + 1) * width].iter_mut().zip(src) {
                *o += wt * v;
            }
        }
    }
    out
}

/// k = max(1, ⌈top_fraction · H · W − 1e-9⌉), at most H·W.
pub fn top_count(top_fraction: f64, height: usize, width: usize) -> usize {
    let k = (top_fraction * height as f64 * width as f64 - 1e-9).ceil();
    (k.max(1.0) as usize).min(height * width)
}

/// Mean of the `k` largest values.
pub fn top_mean(values: &[f64], k: usize) -> f64 {
    assert!(
        k >= 1 && k <= values.len(),
        "top {k} of {} values",
        values.len()
    );
    let mut v = values.to_vec();
    // After this, v[n-k..] holds the k largest values (in some order).
    let n = v.len();
    if k < n {
        v.select_nth_unstable_by(n - k, |a, b| a.total_cmp(b));
    }
    v[n - k..].iter().sum::<f64>() / k as f64
}

/// The map R pools under `pooling`: the smoothed per-pixel error map s for `topk`, the raw
/// per-pixel error map e (mean over channels) for `mean`.
pub fn pooled_map(x: &[f32], x_hat: &[f32], shape: [usize; 3], pooling: &Pooling) -> Vec<f64> {
    let e = error_map(x, x_hat, shape);
    match *pooling {
        Pooling::Mean => e,
        Pooling::TopK { smooth_sigma, .. } => smooth(&e, shape[1], shape[2], smooth_sigma),
    }
}

/// R: the reconstruction error of one CHW image of `shape` = [C, H, W], pooled as the package
/// says (docs/scoring.md).
pub fn reconstruction_error(x: &[f32], x_hat: &[f32], pooling: &Pooling, shape: [usize; 3]) -> f64 {
    assert_eq!(
        x.len(),
        shape.iter().product::<usize>(),
        "input does not match shape {shape:?}"
    );
    match *pooling {
        Pooling::Mean => mean_abs_error(x, x_hat),
        Pooling::TopK { .. } => {
            let s = pooled_map(x, x_hat, shape, pooling);
            reconstruction_error_from_map(x, x_hat, &s, pooling, shape)
        }
    }
}

/// R from `map`, the [`pooled_map`] of the same image, so a caller that also draws the map
/// computes it once. `mean` pooling takes the mean over all C·H·W values of |x − x̂| (eq. 4),
/// not the map.
pub fn reconstruction_error_from_map(
    x: &[f32],
    x_hat: &[f32],
    map: &[f64],
    pooling: &Pooling,
    shape: [usize; 3],
) -> f64 {
    match *pooling {
        Pooling::Mean => mean_abs_error(x, x_hat),
        Pooling::TopK { top_fraction, .. } => {
            top_mean(map, top_count(top_fraction, shape[1], shape[2]))
        }
    }
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

/// R, L and A of one CHW image of `shape` = [C, H, W] from the model's outputs (kind
/// `lambda-l1-l2`).
pub fn score(
    x: &[f32],
    x_hat: &[f32],
    f_real: &[f32],
    f_fake: &[f32],
    lambda: f64,
    pooling: &Pooling,
    shape: [usize; 3],
) -> Score {
    score_of_r(
        reconstruction_error(x, x_hat, pooling, shape),
        f_real,
        f_fake,
        lambda,
    )
}

/// R, L and A given R (kind `lambda-l1-l2`).
pub fn score_of_r(r: f64, f_real: &[f32], f_fake: &[f32], lambda: f64) -> Score {
    let l = feature_distance(f_real, f_fake);
    Score::new(r, l, combine(r, l, lambda))
}

/// Φ(z), the standard normal distribution function: Hart's double-precision rational
/// approximation (algorithm 5666, as given by West 2005), absolute error below 1e-15 everywhere
/// and relative error below 1e-8 in the lower tail. Φ(0) = ½ exactly; 0 below z = −37, 1 above
/// z = 37. NaN stays NaN.
pub fn normal_cdf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    let xa = z.abs();
    let tail = if xa > 37.0 {
        0.0
    } else {
        let e = (-0.5 * xa * xa).exp();
        if xa < 7.071_067_811_865_47 {
            let num = [
                3.526_249_659_989_11e-2,
                0.700_383_064_443_688,
                6.373_962_203_531_65,
                33.912_866_078_383,
                112.079_291_497_871,
                221.213_596_169_931,
                220.206_867_912_376,
            ];
            let den = [
                8.838_834_764_831_84e-2,
                1.755_667_163_182_64,
                16.064_177_579_207,
                86.780_732_202_946_1,
                296.564_248_779_674,
                637.333_633_378_831,
                793.826_512_519_948,
                440.413_735_824_752,
            ];
            let horner = |c: &[f64]| c.iter().fold(0.0, |b, &k| b * xa + k);
            e * horner(&num) / horner(&den)
        } else {
            let mut b = xa + 0.65;
            for k in [4.0, 3.0, 2.0, 1.0] {
                b = xa + k / b;
            }
            e / b / 2.506_628_274_631
        }
    };
    if z > 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// M = max_k softmax(z)_k = 1 / Σ_k exp(z_k − max z), in f64 from the f32 logits.
pub fn pattern_confidence(logits: &[f32]) -> f64 {
    assert!(logits.len() >= 2, "pattern logits need K >= 2 values");
    let top = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let sum: f64 = logits.iter().map(|&v| (v as f64 - top).exp()).sum();
    1.0 / sum
}

/// The parameters of the score kind `ade-gan` (docs/scoring.md), checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdeGan {
    /// μ of the normal that turns D into the probability P (fitted on calibration normals).
    pub recon_mean: f64,
    /// σ of that normal, > 0.
    pub recon_std: f64,
    /// K, the number of patterns (length of the pattern logits), ≥ 2.
    pub patterns: usize,
}

impl AdeGan {
    /// The only version of the kind this server computes (`[score] kind_version`).
    pub const VERSION: i64 = 1;

    pub fn new(recon_mean: f64, recon_std: f64, patterns: usize) -> Result<Self, String> {
        if !recon_mean.is_finite() || !recon_std.is_finite() || recon_std <= 0.0 {
            return Err(format!(
                "recon_mean must be finite and recon_std finite and > 0 (got {recon_mean}, {recon_std})"
            ));
        }
        if patterns < 2 {
            return Err(format!("needs at least 2 patterns, not {patterns}"));
        }
        Ok(Self {
            recon_mean,
            recon_std,
            patterns,
        })
    }

    /// P = Φ((D − recon_mean) / recon_std).
    pub fn probability(&self, d: f64) -> f64 {
        normal_cdf((d - self.recon_mean) / self.recon_std)
    }

    /// (A, P) from the reconstruction term D and the pattern confidence M:
    /// A = 1 − P/K − (1 − P)·M.
    pub fn combine(&self, d: f64, m: f64) -> (f64, f64) {
        let p = self.probability(d);
        (1.0 - p / self.patterns as f64 - (1.0 - p) * m, p)
    }
}

/// The manifest's `[score] kind` with its own parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScoreKind {
    /// `lambda-l1-l2`: A = λ·R + (1 − λ)·L.
    LambdaL1L2,
    /// `ade-gan` (version 1): A = 1 − P/K − (1 − P)·M.
    AdeGan(AdeGan),
}

impl ScoreKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ScoreKind::LambdaL1L2 => "lambda-l1-l2",
            ScoreKind::AdeGan(_) => "ade-gan",
        }
    }

    /// The model output this kind reads beyond the three of the contract.
    pub fn needs_pattern_logits(&self) -> bool {
        matches!(self, ScoreKind::AdeGan(_))
    }
}

/// Everything the manifest's `[score]` says, checked: how one image's outputs become its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRule {
    pub kind: ScoreKind,
    pub lambda: f64,
    pub pooling: Pooling,
}

impl ScoreRule {
    /// The score of one CHW image of `shape` = [C, H, W]. `pattern_logits` must be given for
    /// the `ade-gan` kind (the engine reads that output whenever the manifest declares it, and
    /// loading refuses an `ade-gan` package that does not); other kinds ignore it.
    pub fn score(
        &self,
        x: &[f32],
        x_hat: &[f32],
        f_real: &[f32],
        f_fake: &[f32],
        pattern_logits: Option<&[f32]>,
        shape: [usize; 3],
    ) -> Score {
        let r = reconstruction_error(x, x_hat, &self.pooling, shape);
        self.score_of_r(r, f_real, f_fake, pattern_logits)
    }

    /// [`score`](Self::score) and the map R pools ([`pooled_map`]), computed once: what a
    /// caller that also draws the heatmap needs.
    pub fn score_and_map(
        &self,
        x: &[f32],
        x_hat: &[f32],
        f_real: &[f32],
        f_fake: &[f32],
        pattern_logits: Option<&[f32]>,
        shape: [usize; 3],
    ) -> (Score, Vec<f64>) {
        let map = pooled_map(x, x_hat, shape, &self.pooling);
        let r = reconstruction_error_from_map(x, x_hat, &map, &self.pooling, shape);
        (self.score_of_r(r, f_real, f_fake, pattern_logits), map)
    }

    fn score_of_r(
        &self,
        r: f64,
        f_real: &[f32],
        f_fake: &[f32],
        pattern_logits: Option<&[f32]>,
    ) -> Score {
        let base = score_of_r(r, f_real, f_fake, self.lambda);
        match self.kind {
            ScoreKind::LambdaL1L2 => base,
            ScoreKind::AdeGan(k) => {
                let logits =
                    pattern_logits.expect("the ade-gan score needs the pattern logits output");
                assert_eq!(
                    logits.len(),
                    k.patterns,
                    "pattern logits do not match [output] pattern_dim"
                );
                let m = pattern_confidence(logits);
                let (a, p) = k.combine(base.a, m);
                Score {
                    a,
                    m: Some(m),
                    p: Some(p),
                    ..base
                }
            }
        }
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

    #[test]
    fn score_and_map_equals_score_and_the_pooled_map() {
        // 1 channel 9×9, one hot pixel; the map's peak is where R's top-k looked (k = 1).
        let mut x = vec![0f32; 81];
        x[40] = 1.0;
        let y = vec![0f32; 81];
        let (fr, ff) = ([0.5f32, 0.25], [0.0f32, 0.0]);
        for pooling in [Pooling::Mean, Pooling::top_k(1.5, 0.01).unwrap()] {
            let rule = ScoreRule {
                kind: ScoreKind::LambdaL1L2,
                lambda: 0.9,
                pooling,
            };
            let (s, map) = rule.score_and_map(&x, &y, &fr, &ff, None, [1, 9, 9]);
            assert_eq!(s, rule.score(&x, &y, &fr, &ff, None, [1, 9, 9]));
            assert_eq!(map, pooled_map(&x, &y, [1, 9, 9], &pooling));
            if let Pooling::TopK { .. } = pooling {
                let peak = map.iter().cloned().fold(f64::MIN, f64::max);
                assert_eq!(map[40], peak);
                assert_eq!(s.r, peak);
            }
        }
    }

    #[test]
    fn error_map_averages_channels() {
        let x = [1.0, 0.0, 0.0, 0.0, /* c1 */ 0.0, 0.0, 0.0, 2.0];
        let y = [0.0; 8];
        assert_eq!(error_map(&x, &y, [2, 2, 2]), vec![0.5, 0.0, 0.0, 1.0]);
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn reconstruction_error_is_mean_absolute_difference() {
        // |1-0.5| + |-1-(-0.5)| + |0.25-0.75| + |0-0| = 0.5+0.5+0.5+0 = 1.5 → /4
        let (x, y) = ([1.0, -1.0, 0.25, 0.0], [0.5, -0.5, 0.75, 0.0]);
        let r = reconstruction_error(&x, &y, &Pooling::Mean, [1, 2, 2]);
        assert!(close(r, 0.375), "{r}");
        assert!(close(mean_abs_error(&x, &y), 0.375));
        // The same four values as 2 channels of 1×2 pixels: still the mean over every value.
        let r = reconstruction_error(&x, &y, &Pooling::Mean, [2, 1, 2]);
        assert!(close(r, 0.375), "{r}");
    }

    fn topk(smooth_sigma: f64, top_fraction: f64) -> Pooling {
        Pooling::top_k(smooth_sigma, top_fraction).unwrap()
    }

    /// Reference 2-D Gaussian smoothing, written independently of `smooth`: the full 2-D sum
    /// of w_i·w_j·e(reflect(y+i), reflect(x+j)) with a hand-written reflect-101.
    fn smooth_2d(e: &[f64], h: usize, w: usize, sigma: f64) -> Vec<f64> {
        let r = (3.0 * sigma).ceil() as i64;
        let wts: Vec<f64> = (-r..=r)
            .map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp())
            .collect();
        let total: f64 = wts.iter().sum();
        let refl = |mut i: i64, n: i64| {
            while i < 0 || i >= n {
                i = if i < 0 { -i } else { 2 * (n - 1) - i };
            }
            i as usize
        };
        let mut out = vec![0.0; h * w];
        for y in 0..h as i64 {
            for x in 0..w as i64 {
                let mut acc = 0.0;
                for (a, wy) in (-r..=r).zip(&wts) {
                    for (b, wx) in (-r..=r).zip(&wts) {
                        acc += wy * wx * e[refl(y + a, h as i64) * w + refl(x + b, w as i64)];
                    }
                }
                out[y as usize * w + x as usize] = acc / (total * total);
            }
        }
        out
    }

    #[test]
    fn gaussian_kernel_is_normalized_with_radius_three_sigma() {
        assert_eq!(gaussian_kernel(0.0), vec![1.0]);
        for (sigma, len) in [(0.3, 3), (1.0, 7), (1.5, 11), (2.0, 13), (8.0, 49)] {
            let k = gaussian_kernel(sigma);
            assert_eq!(k.len(), len, "σ = {sigma}");
            assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let r = len / 2;
            assert!(close(k[r - 1], k[r + 1]), "symmetric");
            // w_1 / w_0 = exp(−1 / 2σ²)
            assert!(close(k[r + 1] / k[r], (-1.0 / (2.0 * sigma * sigma)).exp()));
        }
    }

    #[test]
    fn reflect101_mirrors_without_repeating_the_edge() {
        // dcb|abcd|cba over n = 4 (a=0 … d=3)
        let got: Vec<usize> = (-3..7).map(|i| reflect101(i, 4)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
        // Farther than one period out (a radius larger than the map) keeps bouncing.
        let got: Vec<usize> = (-5..8).map(|i| reflect101(i, 3)).collect();
        assert_eq!(got, vec![1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]);
        assert_eq!(reflect101(-7, 1), 0);
        assert_eq!(reflect101(5, 1), 0);
    }

    #[test]
    fn smoothing_reflects_at_the_borders() {
        // 1×5 row [0 0 0 0 1], kernel [a, b, a] (σ = 0.3, r = 1). The column pass of a one-row
        // map reads the row itself three times (weights sum to 1). At the right edge, x = 4
        // reads [x3, x4, x5 → x3] = [0, 1, 0] → b (BORDER_REFLECT would give a + b); x = 3
        // reads [0, 0, 1] → a.
        let k = gaussian_kernel(0.3);
        let (a, b) = (k[0], k[1]);
        let s = smooth(&[0.0, 0.0, 0.0, 0.0, 1.0], 1, 5, 0.3);
        let want = [0.0, 0.0, 0.0, a, b];
        for (g, w) in s.iter().zip(want) {
            assert!(close(*g, w), "{s:?} vs {want:?}");
        }
        // On the left edge, a hot pixel at x = 1 is mirrored into x = -1: x = 0 reads
        // [x1, x0, x1] = [1, 0, 1] → 2a.
        let s = smooth(&[0.0, 1.0, 0.0, 0.0, 0.0], 1, 5, 0.3);
        assert!(
            close(s[0], 2.0 * a) && close(s[1], b) && close(s[2], a),
            "{s:?}"
        );
        // A constant map stays constant (the weights sum to 1, borders included).
        let s = smooth(&[0.25; 35], 5, 7, 2.0);
        assert!(s.iter().all(|&v| (v - 0.25).abs() < 1e-12), "{s:?}");
        // Rows then columns equals the full 2-D sum, radius larger than the map included.
        let e: Vec<f64> = (0..6 * 9).map(|i| ((i * 37) % 11) as f64 / 10.0).collect();
        for sigma in [0.7, 1.5, 2.0, 4.0] {
            let got = smooth(&e, 6, 9, sigma);
            let want = smooth_2d(&e, 6, 9, sigma);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-12, "σ = {sigma}: {g} vs {w}");
            }
        }
        assert_eq!(smooth(&e, 6, 9, 0.0), e, "σ = 0 is no smoothing");
    }

    #[test]
    fn top_count_rounds_up_with_tolerance() {
        assert_eq!(top_count(0.01, 64, 64), 41); // 40.96 → 41
        assert_eq!(top_count(0.03, 64, 64), 123); // 122.88 → 123
        assert_eq!(top_count(0.25, 4, 4), 4); // exactly 4, not 5
        assert_eq!(top_count(0.07, 10, 10), 7); // 0.07·10·10 = 7.000000000000001 → 7, not 8
        assert_eq!(top_count(1e-6, 8, 8), 1, "at least one");
        assert_eq!(top_count(1.0, 3, 5), 15);
    }

    #[test]
    fn sigma_zero_topk_is_the_plain_top_k_mean() {
        // One channel 2×3; errors |x − x̂| = [0.125 0.5 0.25 / 0.875 0 0.375] (exact in f32)
        let x = [0.125, 0.5, -0.25, 0.875, 0.0, 0.375];
        let y = [0.0; 6];
        let sh = [1, 2, 3];
        let r = |f| reconstruction_error(&x, &y, &topk(0.0, f), sh);
        assert!(close(r(1.0 / 6.0), 0.875), "k = 1");
        assert!(close(r(0.5), (0.875 + 0.5 + 0.375) / 3.0), "k = 3");
        // top_fraction 1 without smoothing is the mean pooling.
        assert!(close(
            r(1.0),
            reconstruction_error(&x, &y, &Pooling::Mean, sh)
        ));
        // Channels are averaged per pixel before ranking: two channels, k = 1.
        let x2 = [1.0, 0.0, /* c1 */ 0.0, 0.6];
        let r2 = reconstruction_error(&x2, &[0.0; 4], &topk(0.0, 0.5), [2, 1, 2]);
        assert!(close(r2, 0.5), "max(mean(1, 0), mean(0, 0.6)) = 0.5: {r2}");
    }

    #[test]
    fn single_hot_pixel_is_spread_by_the_gaussian() {
        // 9×9 zeros with one hot pixel of error 1 in the middle, σ = 1 (radius 3): the smoothed
        // map is the outer product of the kernel, so its peak is w₀² and the top-9 mean is the
        // mean of the 3×3 block around the centre.
        let (h, w) = (9, 9);
        let mut x = vec![0f32; h * w];
        x[4 * w + 4] = 1.0;
        let y = vec![0f32; h * w];
        let k = gaussian_kernel(1.0);
        let (w0, w1) = (k[3], k[4]);
        let r1 = reconstruction_error(&x, &y, &topk(1.0, 1.0 / 81.0), [1, h, w]);
        assert!(close(r1, w0 * w0), "{r1} vs {}", w0 * w0);
        let r9 = reconstruction_error(&x, &y, &topk(1.0, 9.0 / 81.0), [1, h, w]);
        let block = (w0 * w0 + 4.0 * w0 * w1 + 4.0 * w1 * w1) / 9.0;
        assert!(close(r9, block), "{r9} vs {block}");
        // The mass is conserved away from the borders: all of s sums to 1.
        let s = pooled_map(&x, &y, [1, h, w], &topk(1.0, 0.5));
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Mean pooling dilutes the same pixel 81×; top-k keeps it far above.
        let mean = reconstruction_error(&x, &y, &Pooling::Mean, [1, h, w]);
        assert!(close(mean, 1.0 / 81.0) && r1 > 10.0 * mean);
        // In a corner, reflect-101 does not repeat the edge pixel, so the corner sees itself
        // once (w₀², where BORDER_REFLECT would give (w₀ + w₁)²).
        let mut xc = vec![0f32; h * w];
        xc[0] = 1.0;
        let sc = pooled_map(&xc, &y, [1, h, w], &topk(1.0, 0.5));
        assert!(
            close(sc[0], w0 * w0),
            "the corner sees itself once: {}",
            sc[0]
        );
        assert!(close(sc[1], w0 * w1) && close(sc[w + 1], w1 * w1));
    }

    #[test]
    fn hand_computed_small_topk_case() {
        // 1×3 row of errors [0, 3, 0], σ = 0.3 (r = 1, kernel [a, b, a]); with one row the
        // column pass reads the pixel itself three times. x = 0 reads [x1, x0, x1] = [3, 0, 3]
        // → 6a; x = 1 reads [0, 3, 0] → 3b; x = 2 → 6a.
        let k = gaussian_kernel(0.3);
        let (a, b) = (k[0], k[1]);
        let s = pooled_map(&[0.0, 3.0, 0.0], &[0.0; 3], [1, 1, 3], &topk(0.3, 0.5));
        assert!(
            close(s[0], 6.0 * a) && close(s[1], 3.0 * b) && close(s[2], 6.0 * a),
            "{s:?}"
        );
        // top_fraction 0.5 of 3 pixels → k = 2: the mean of 3b and 6a.
        let r = reconstruction_error(&[0.0, 3.0, 0.0], &[0.0; 3], &topk(0.3, 0.5), [1, 1, 3]);
        assert!(close(r, (3.0 * b + 6.0 * a) / 2.0), "{r}");
        // By hand: σ = 0.3 → exp(−1/0.18) = 0.003865…; b = 1/(1 + 2·0.003865…).
        let e = (-1.0f64 / 0.18).exp();
        assert!(close(b, 1.0 / (1.0 + 2.0 * e)) && close(a, e / (1.0 + 2.0 * e)));
        // The full score uses the pooled R.
        let sc = score(
            &[0.0, 3.0, 0.0],
            &[0.0; 3],
            &[1.0],
            &[0.0],
            0.5,
            &topk(0.3, 0.5),
            [1, 1, 3],
        );
        assert!(close(sc.r, r) && close(sc.l, 1.0) && close(sc.a, 0.5 * r + 0.5));
    }

    #[test]
    fn topk_parameters_are_checked() {
        assert!(Pooling::top_k(0.0, 1.0).is_ok());
        assert!(Pooling::top_k(8.0, 1e-6).is_ok());
        for (s, f) in [
            (-0.1, 0.5),
            (8.01, 0.5),
            (f64::NAN, 0.5),
            (1.0, 0.0),
            (1.0, 1.01),
            (1.0, f64::NAN),
        ] {
            assert!(Pooling::top_k(s, f).is_err(), "σ {s}, top_fraction {f}");
        }
        assert_eq!(Pooling::default(), Pooling::Mean);
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
            &Pooling::Mean,
            [1, 2, 2],
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
        let r = reconstruction_error(&x, &y, &Pooling::Mean, [1, 1000, 1000]);
        assert!((r - 0.1f32 as f64).abs() < 1e-12, "{r}");
        let top = Pooling::top_k(1.0, 0.5).unwrap();
        let r = reconstruction_error(&x, &y, &top, [1, 1000, 1000]);
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
        let j = judge(Score::new(0.0, 0.0, 0.2), &n);
        assert_eq!(j.verdict, Verdict::Normal);
        let j = judge(Score::new(0.0, 0.0, 0.21), &n);
        assert_eq!(j.verdict, Verdict::Defect);
    }

    #[test]
    fn degenerate_calibration_is_refused() {
        assert!(Normalization::new(0.3, 0.3, 0.2).is_err());
        assert!(Normalization::new(0.5, 0.3, 0.2).is_err());
        assert!(Normalization::new(f64::NAN, 0.3, 0.2).is_err());
    }

    #[test]
    fn normal_cdf_by_hand() {
        assert_eq!(normal_cdf(0.0), 0.5);
        // Φ(1), Φ(−1.96…) = 2.5 %, Φ(−3), Φ(−10): Python's 0.5·math.erfc(−z/√2)
        assert!((normal_cdf(1.0) - 0.841_344_746_068_542_9).abs() < 1e-15);
        assert!((normal_cdf(-1.959_963_984_540_054) - 0.025).abs() < 1e-15);
        assert!((normal_cdf(-3.0) - 0.001_349_898_031_630_095_7).abs() < 1e-15);
        // the lower tail keeps its relative precision; the far tails are exact 0 and 1
        let t = normal_cdf(-10.0);
        assert!((t / 7.619_853_024_160_593e-24 - 1.0).abs() < 1e-8, "{t}");
        assert_eq!(normal_cdf(-40.0), 0.0);
        assert_eq!(normal_cdf(40.0), 1.0);
        assert!(normal_cdf(f64::NAN).is_nan());
        let mut last = 0.0;
        for i in -800..=800 {
            let z = i as f64 / 100.0;
            let v = normal_cdf(z);
            assert!((v + normal_cdf(-z) - 1.0).abs() < 1e-15, "symmetric at {z}");
            assert!(v >= last, "monotone at {z}");
            last = v;
        }
    }

    #[test]
    fn pattern_confidence_is_the_max_softmax_probability() {
        // [ln 3, 0, 0] → 3 / (3 + 1 + 1)
        let m = pattern_confidence(&[3f32.ln(), 0.0, 0.0]);
        assert!((m - 0.6).abs() < 1e-7, "{m}");
        assert!(close(pattern_confidence(&[2.0, 2.0, 2.0, 2.0]), 0.25));
        // large logits do not overflow; the order of the logits does not matter
        assert!(close(pattern_confidence(&[1000.0, 0.0, -1000.0]), 1.0));
        assert!(close(
            pattern_confidence(&[0.5, -1.0, 2.0]),
            pattern_confidence(&[2.0, 0.5, -1.0])
        ));
    }

    fn ade(recon_mean: f64, recon_std: f64, patterns: usize, lambda: f64) -> ScoreRule {
        ScoreRule {
            kind: ScoreKind::AdeGan(AdeGan::new(recon_mean, recon_std, patterns).unwrap()),
            lambda,
            pooling: Pooling::Mean,
        }
    }

    #[test]
    fn hand_computed_ade_gan_score() {
        // R = 0.375 (reconstruction_error_is_mean_absolute_difference), L = 5/√2, K = 3,
        // M = 0.6. λ = 1: D = R = μ → P = ½, A = 1 − ½/3 − ½·0.6 = 0.5333…
        let (x, y) = ([1.0, -1.0, 0.25, 0.0], [0.5, -0.5, 0.75, 0.0]);
        let (fr, ff) = ([3.0, 4.0], [0.0, 0.0]);
        let logits = [3f32.ln(), 0.0, 0.0];
        let s = ade(0.375, 0.1, 3, 1.0).score(&x, &y, &fr, &ff, Some(&logits), [1, 2, 2]);
        assert!(close(s.r, 0.375) && close(s.l, 5.0 / 2f64.sqrt()));
        assert!((s.m.unwrap() - 0.6).abs() < 1e-7 && close(s.p.unwrap(), 0.5));
        assert!(
            (s.a - (1.0 - 0.5 / 3.0 - 0.5 * 0.6)).abs() < 1e-7,
            "{}",
            s.a
        );
        // λ = 0.5: D = 0.5·0.375 + 0.5·5/√2; μ = D − 0.2, σ = 0.2 → z = 1, P = Φ(1)
        let d = 0.5 * 0.375 + 0.5 * 5.0 / 2f64.sqrt();
        let s = ade(d - 0.2, 0.2, 3, 0.5).score(&x, &y, &fr, &ff, Some(&logits), [1, 2, 2]);
        let p = 0.841_344_746_068_542_9;
        assert!((s.p.unwrap() - p).abs() < 1e-12);
        assert!((s.a - (1.0 - p / 3.0 - (1.0 - p) * 0.6)).abs() < 1e-7);
    }

    #[test]
    fn ade_gan_limits_and_monotonicity() {
        let k = AdeGan::new(0.0, 1.0, 4).unwrap();
        // a well reconstructed image of a known pattern scores 0; every image at most 1 − 1/K,
        // reached by a hopeless reconstruction (P = 1) or by no pattern at all (M = 1/K)
        assert_eq!(k.combine(-1e9, 1.0), (0.0, 0.0));
        assert!(close(k.combine(1e9, 0.9).0, 0.75));
        assert!(close(k.combine(-1e9, 0.25).0, 0.75));
        assert!(close(k.combine(0.0, 0.25).0, 0.75));
        for m in [0.3, 0.6, 1.0] {
            let a: Vec<f64> = (-6..=6).map(|i| k.combine(i as f64 / 2.0, m).0).collect();
            assert!(a.windows(2).all(|w| w[1] > w[0]), "rises with D at M = {m}");
        }
        let a: Vec<f64> = [0.25, 0.5, 0.75, 1.0]
            .iter()
            .map(|&m| k.combine(0.0, m).0)
            .collect();
        assert!(a.windows(2).all(|w| w[1] < w[0]), "falls with M");
    }

    #[test]
    fn lambda_l1_l2_rule_is_the_plain_score() {
        let rule = ScoreRule {
            kind: ScoreKind::LambdaL1L2,
            lambda: 0.9,
            pooling: Pooling::Mean,
        };
        let (x, y) = ([1.0, -1.0, 0.25, 0.0], [0.5, -0.5, 0.75, 0.0]);
        let want = score(
            &x,
            &y,
            &[3.0, 4.0],
            &[0.0, 0.0],
            0.9,
            &Pooling::Mean,
            [1, 2, 2],
        );
        // Pattern logits, if the package declares them, do not change this kind.
        for logits in [None, Some(&[1.0f32, 2.0][..])] {
            let got = rule.score(&x, &y, &[3.0, 4.0], &[0.0, 0.0], logits, [1, 2, 2]);
            assert_eq!(got, want);
        }
        assert!(want.m.is_none() && want.p.is_none());
        assert!(!rule.kind.needs_pattern_logits() && rule.kind.as_str() == "lambda-l1-l2");
    }

    #[test]
    fn ade_gan_parameters_are_checked() {
        assert!(AdeGan::new(0.1, 0.01, 2).is_ok());
        for (mu, sd, k) in [
            (0.1, 0.0, 10),
            (0.1, -1.0, 10),
            (f64::NAN, 0.1, 10),
            (0.1, f64::INFINITY, 10),
            (0.1, 0.1, 1),
        ] {
            assert!(AdeGan::new(mu, sd, k).is_err(), "{mu} {sd} {k}");
        }
    }

    #[test]
    fn pattern_terms_serialize_only_for_ade_gan() {
        // lambda-l1-l2 results keep exactly their fields
        let v = serde_json::to_value(Score::new(0.1, 0.2, 0.11)).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 3, "{v}");
        let s = ade(0.0, 1.0, 2, 1.0).score(
            &[0.0],
            &[0.0],
            &[0.0],
            &[0.0],
            Some(&[0.0, 0.0]),
            [1, 1, 1],
        );
        let v = serde_json::to_value(s).unwrap();
        assert!(close(v["M"].as_f64().unwrap(), 0.5) && close(v["P"].as_f64().unwrap(), 0.5));
        let back: Score = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn verdict_serializes_lowercase() {
        assert_eq!(
            serde_json::to_string(&Verdict::Defect).unwrap(),
            "\"defect\""
        );
        let j = judge(
            Score::new(0.1, 0.2, 0.11),
            &Normalization::new(0.0, 1.0, 0.2).unwrap(),
        );
        let v = serde_json::to_value(j).unwrap();
        assert_eq!(v["verdict"], "normal");
        assert!(v.get("A_norm").is_some() && v.get("R").is_some());
    }
}

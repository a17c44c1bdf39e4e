//! Model packages (`models/<name>/manifest.toml` + `model.onnx`) and calibration files
//! (`calibration/<name>[.<camera>].json`), parsed and validated per docs/model-package.md and
//! docs/scoring.md. Nothing here touches ONNX Runtime; the graph itself is checked against the
//! manifest in `engine`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::pipeline::scoring::{AdeGan, Normalization, Pooling, ScoreKind, ScoreRule};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub model: ModelSection,
    pub input: InputSection,
    pub output: OutputSection,
    pub score: ScoreSection,
    #[serde(default)]
    pub training: Option<toml::Table>,
    #[serde(default)]
    pub metrics: Option<toml::Table>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelSection {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub onnx: String,
    pub sha256: String,
    #[serde(default)]
    pub opset: Option<i64>,
    #[serde(default)]
    pub exported_at: Option<toml::Value>,
}

/// `[input]` says how to preprocess; an unknown key here is a preprocessing step this server
/// does not perform, so it is refused rather than ignored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputSection {
    pub name: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub scale: f64,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// The photometric step after `pixel / scale` (absent: `none`).
    #[serde(default, skip_serializing_if = "Photometric::is_none")]
    pub photometric: Photometric,
    /// With `photometric = "standardize"`: x = clip((v − μ) / (spread · σ), −1, 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<f64>,
    pub resize: String,
}

/// `[input] photometric` (docs/model-package.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Photometric {
    /// `(v − mean_c) / std_c`, the manifest's fixed per-channel statistics.
    #[default]
    None,
    /// Each image and channel by its own mean and standard deviation.
    Standardize,
}

impl Photometric {
    pub fn is_none(&self) -> bool {
        *self == Photometric::None
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Photometric::None => "none",
            Photometric::Standardize => "standardize",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputSection {
    pub reconstruction: String,
    pub features_real: String,
    pub features_fake: String,
    pub feature_dim: usize,
    /// Optional fourth output: pattern logits `[N, pattern_dim]` (ADe-GAN's extractor), read
    /// only when declared; the `ade-gan` score kind needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern_logits: Option<String>,
    /// K, the number of patterns, with `pattern_logits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern_dim: Option<usize>,
}

impl OutputSection {
    /// The declared pattern-logits output and its K, checked: both fields or neither.
    pub fn pattern(&self) -> std::result::Result<Option<(&str, usize)>, String> {
        match (&self.pattern_logits, self.pattern_dim) {
            (None, None) => Ok(None),
            (Some(name), Some(k)) if k >= 2 && !name.is_empty() => Ok(Some((name.as_str(), k))),
            (Some(_), Some(k)) => Err(format!(
                "[output] pattern_dim must be at least 2 and pattern_logits a name (got {k})"
            )),
            _ => Err(
                "[output] pattern_logits and pattern_dim go together (the pattern-logits output and its K)"
                    .into(),
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScoreSection {
    pub kind: String,
    pub lambda: f64,
    /// How R pools the reconstruction error (absent: `mean`).
    #[serde(default, skip_serializing_if = "PoolingKind::is_mean")]
    pub pooling: PoolingKind,
    /// With `pooling = "topk"`: Gaussian σ of the error map in pixels, in [0, 8].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smooth_sigma: Option<f64>,
    /// With `pooling = "topk"`: the share of the pixels R averages, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_fraction: Option<f64>,
    /// Version of the kind's definition in docs/scoring.md: required for `ade-gan` (1), 1 if
    /// absent for `lambda-l1-l2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind_version: Option<i64>,
    /// `ade-gan`: μ of the normal fitted to the calibration normals' D = λ·R + (1 − λ)·L.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recon_mean: Option<f64>,
    /// `ade-gan`: σ of that normal, > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recon_std: Option<f64>,
}

/// `[score] pooling` as written in the manifest; [`ScoreSection::pooling`] gives it with its
/// parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolingKind {
    #[default]
    Mean,
    Topk,
}

impl PoolingKind {
    pub fn is_mean(&self) -> bool {
        *self == PoolingKind::Mean
    }
}

impl ScoreSection {
    /// The pooling of R with its parameters, checked (docs/scoring.md).
    pub fn pooling(&self) -> std::result::Result<Pooling, String> {
        match self.pooling {
            PoolingKind::Mean => Ok(Pooling::Mean),
            PoolingKind::Topk => {
                let (Some(sigma), Some(fraction)) = (self.smooth_sigma, self.top_fraction) else {
                    return Err(
                        "[score] pooling = \"topk\" needs smooth_sigma (Gaussian σ in pixels, 0 to 8) and top_fraction (share of the pixels, in (0, 1])".into(),
                    );
                };
                Pooling::top_k(sigma, fraction).map_err(|e| format!("[score] {e}"))
            }
        }
    }
}

/// The score kinds of docs/scoring.md this server computes.
pub const SCORE_KINDS: [&str; 2] = ["lambda-l1-l2", "ade-gan"];
const ARCHITECTURES: [&str; 4] = ["nested-edgan", "ganomaly", "skip-ganomaly", "ade-gan"];

impl InputSection {
    /// Number of f32 values of one image tensor.
    pub fn chw(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// `spread` of `photometric = "standardize"`, checked: finite and positive.
    pub fn standardize_spread(&self) -> std::result::Result<f64, String> {
        match self.spread {
            Some(s) if s.is_finite() && s > 0.0 => Ok(s),
            Some(s) => Err(format!(
                "[input] spread must be finite and positive, not {s}"
            )),
            None => Err(
                "[input] photometric = \"standardize\" needs spread (x = clip((v − μ) / (spread · σ), −1, 1); e.g. 3.0)".into(),
            ),
        }
    }
}

impl Manifest {
    /// The score this package declares, checked (docs/scoring.md): kind and version, λ, pooling,
    /// and for `ade-gan` its normal and the pattern-logits output it reads.
    pub fn score_rule(&self) -> std::result::Result<ScoreRule, String> {
        let s = &self.score;
        if !SCORE_KINDS.contains(&s.kind.as_str()) {
            return Err(format!(
                "[score] kind {:?} is not supported (one of {SCORE_KINDS:?})",
                s.kind
            ));
        }
        if !(0.0..=1.0).contains(&s.lambda) {
            return Err(format!(
                "[score] lambda must be in [0, 1], not {}",
                s.lambda
            ));
        }
        let pooling = s.pooling()?;
        let pattern = self.output.pattern()?;
        let kind = if s.kind == "ade-gan" {
            if s.kind_version != Some(AdeGan::VERSION) {
                return Err(format!(
                    "[score] kind = \"ade-gan\" needs kind_version = {} (got {}); docs/scoring.md",
                    AdeGan::VERSION,
                    s.kind_version
                        .map_or_else(|| "none".to_string(), |v| v.to_string())
                ));
            }
            let Some((_, k)) = pattern else {
                return Err("[score] kind = \"ade-gan\" needs [output] pattern_logits (the graph's pattern-logits output) and pattern_dim".into());
            };
            let (Some(mu), Some(sd)) = (s.recon_mean, s.recon_std) else {
                return Err("[score] kind = \"ade-gan\" needs recon_mean and recon_std (the normal fitted to the calibration normals' reconstruction term)".into());
            };
            ScoreKind::AdeGan(AdeGan::new(mu, sd, k).map_err(|e| format!("[score] ade-gan: {e}"))?)
        } else {
            if s.kind_version.is_some_and(|v| v != 1) {
                return Err(format!(
                    "[score] kind_version {} of \"lambda-l1-l2\" is not supported (only 1)",
                    s.kind_version.unwrap_or_default()
                ));
            }
            ScoreKind::LambdaL1L2
        };
        Ok(ScoreRule {
            kind,
            lambda: s.lambda,
            pooling,
        })
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let m: Manifest = toml::from_str(text).map_err(|e| Error::Package {
            path: path.to_path_buf(),
            message: format!("manifest.toml does not follow docs/model-package.md: {e}"),
        })?;
        m.validate(path)?;
        Ok(m)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |message: String| {
            Err(Error::Package {
                path: path.to_path_buf(),
                message,
            })
        };
        let i = &self.input;
        if !ARCHITECTURES.contains(&self.model.architecture.as_str()) {
            return bad(format!(
                "[model] architecture {:?} is not one of {ARCHITECTURES:?}",
                self.model.architecture
            ));
        }
        if i.channels != 1 && i.channels != 3 {
            return bad(format!(
                "[input] channels must be 1 (gray) or 3 (RGB), not {}",
                i.channels
            ));
        }
        if i.height == 0 || i.width == 0 {
            return bad("[input] height and width must be positive".into());
        }
        if i.mean.len() != i.channels || i.std.len() != i.channels {
            return bad(format!(
                "[input] mean and std need one value per channel ({} channels, {} means, {} stds)",
                i.channels,
                i.mean.len(),
                i.std.len()
            ));
        }
        if i.std
            .iter()
            .chain([&i.scale])
            .any(|s| s.is_nan() || *s <= 0.0)
        {
            return bad("[input] std and scale must be positive".into());
        }
        if i.photometric == Photometric::Standardize {
            if let Err(e) = i.standardize_spread() {
                return bad(e);
            }
        }
        if i.resize != "area" {
            return bad(format!(
                "[input] resize {:?} is not supported (only \"area\")",
                i.resize
            ));
        }
        if self.output.feature_dim == 0 {
            return bad("[output] feature_dim must be positive".into());
        }
        if let Err(e) = self.score_rule() {
            return bad(e);
        }
        if self.model.sha256.len() != 64
            || !self.model.sha256.chars().all(|c| c.is_ascii_hexdigit())
        {
            return bad(format!(
                "[model] sha256 {:?} is not a hex SHA-256",
                self.model.sha256
            ));
        }
        Ok(())
    }
}

/// A loaded, checked model package.
#[derive(Debug, Clone)]
pub struct ModelPackage {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub onnx_path: PathBuf,
}

impl ModelPackage {
    /// Reads the manifest, checks that `model.onnx` exists and that its SHA-256 matches.
    pub fn load(dir: &Path) -> Result<Self> {
        let manifest_path = dir.join("manifest.toml");
        if !dir.is_dir() {
            return Err(Error::Package {
                path: dir.to_path_buf(),
                message: "model folder does not exist (expected models/<name>/ with manifest.toml and model.onnx)".into(),
            });
        }
        let text = fs::read_to_string(&manifest_path).map_err(|e| Error::Package {
            path: manifest_path.clone(),
            message: format!("cannot read manifest: {e}"),
        })?;
        let manifest = Manifest::parse(&text, &manifest_path)?;
        let onnx_path = dir.join(&manifest.model.onnx);
        if !onnx_path.is_file() {
            return Err(Error::Package {
                path: onnx_path,
                message: "model file named by [model] onnx is missing".into(),
            });
        }
        let actual = sha256_file(&onnx_path)?;
        if !actual.eq_ignore_ascii_case(&manifest.model.sha256) {
            return Err(Error::Package {
                path: onnx_path,
                message: format!(
                    "SHA-256 {actual} does not match the manifest's {}; the model file was changed or the manifest is stale",
                    manifest.model.sha256
                ),
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            onnx_path,
        })
    }

    pub fn name(&self) -> &str {
        &self.manifest.model.name
    }

    /// Default calibration folder: `calibration/` beside `models/` (the repository layout), else
    /// `./calibration`.
    pub fn default_calibration_dir(&self) -> PathBuf {
        let beside = self.dir.canonicalize().ok().and_then(|d| {
            d.parent()
                .and_then(|p| p.parent())
                .map(|root| root.join("calibration"))
        });
        match beside {
            Some(p) if p.is_dir() => p,
            _ => PathBuf::from("calibration"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    pub model: String,
    #[serde(default)]
    pub model_sha256: Option<String>,
    pub min: f64,
    pub max: f64,
    pub threshold: f64,
    pub method: String,
    #[serde(default)]
    pub target: Option<f64>,
    #[serde(default)]
    pub n: Option<usize>,
    #[serde(default)]
    pub n_normal: Option<usize>,
    #[serde(default)]
    pub n_defect: Option<usize>,
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub data_sha256: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub camera: Option<String>,
    #[serde(default)]
    pub metrics: Option<BTreeMap<String, serde_json::Value>>,
}

impl Calibration {
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let c: Calibration = serde_json::from_str(text).map_err(|e| Error::Calibration {
            path: path.to_path_buf(),
            message: format!("not a calibration file per docs/scoring.md: {e}"),
        })?;
        c.normalization().map_err(|message| Error::Calibration {
            path: path.to_path_buf(),
            message,
        })?;
        if !matches!(
            c.method.as_str(),
            "normals" | "fixed" | "best-f1" | "false-alarm-rate"
        ) {
            return Err(Error::Calibration {
                path: path.to_path_buf(),
                message: format!("unknown method {:?}", c.method),
            });
        }
        Ok(c)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(|e| Error::Calibration {
            path: path.to_path_buf(),
            message: format!(
                "cannot read ({e}); run `railscope calibrate` or `make` the model package first"
            ),
        })?;
        Self::parse(&text, path)
    }

    pub fn normalization(&self) -> std::result::Result<Normalization, String> {
        Normalization::new(self.min, self.max, self.threshold)
    }

    /// Refuses a calibration made for another model: its bounds would be meaningless.
    pub fn check_model(&self, package: &ModelPackage, path: &Path) -> Result<()> {
        if self.model != package.name() {
            return Err(Error::Calibration {
                path: path.to_path_buf(),
                message: format!("is for model {:?}, not {:?}", self.model, package.name()),
            });
        }
        if let Some(sha) = &self.model_sha256 {
            if !sha.eq_ignore_ascii_case(&package.manifest.model.sha256) {
                return Err(Error::Calibration {
                    path: path.to_path_buf(),
                    message: format!(
                        "was made for model.onnx {sha}, but the package holds {}; recalibrate with `railscope calibrate`",
                        package.manifest.model.sha256
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The calibration file name: `<model>.json`, or `<model>.<camera>.json` for one camera.
pub fn calibration_file_name(model: &str, camera: Option<&str>) -> String {
    match camera {
        Some(cam) => format!("{model}.{cam}.json"),
        None => format!("{model}.json"),
    }
}

/// `<dir>/<model>.json`, or `<dir>/<model>.<camera>.json` when that exists for `camera`.
pub fn calibration_path(dir: &Path, model: &str, camera: Option<&str>) -> PathBuf {
    if camera.is_some() {
        let p = dir.join(calibration_file_name(model, camera));
        if p.is_file() {
            return p;
        }
    }
    dir.join(calibration_file_name(model, None))
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f =
        fs::File::open(path).map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid manifest (`SHA` stands for the model's digest); the engine's tests use it too.
    pub(crate) const MANIFEST: &str = r#"
[model]
name = "nested-edgan"
version = "1.0.0"
architecture = "nested-edgan"
onnx = "model.onnx"
sha256 = "SHA"
opset = 17
exported_at = "2026-11-23T12:00:00Z"

[input]
name = "image"
channels = 1
height = 64
width = 64
scale = 255.0
mean = [0.5]
std = [0.5]
resize = "area"

[output]
reconstruction = "reconstruction"
features_real = "features_real"
features_fake = "features_fake"
feature_dim = 256

[score]
kind = "lambda-l1-l2"
lambda = 0.9

[training]
seed = 1
"#;

    fn write_package(dir: &Path, onnx: &[u8], manifest_edit: impl Fn(String) -> String) {
        fs::write(dir.join("model.onnx"), onnx).unwrap();
        let sha = hex::encode(Sha256::digest(onnx));
        fs::write(
            dir.join("manifest.toml"),
            manifest_edit(MANIFEST.replace("SHA", &sha)),
        )
        .unwrap();
    }

    #[test]
    fn loads_a_valid_package_and_checks_hash() {
        let d = tempfile::tempdir().unwrap();
        write_package(d.path(), b"not really onnx", |m| m);
        let p = ModelPackage::load(d.path()).unwrap();
        assert_eq!(p.manifest.input.chw(), 64 * 64);
        assert_eq!(p.manifest.score.lambda, 0.9);
        // Packages without the optional fields keep the seed-004 score.
        assert_eq!(p.manifest.input.photometric, Photometric::None);
        assert_eq!(p.manifest.score.pooling(), Ok(Pooling::Mean));
        // Change the model after packaging: the hash check must catch it.
        fs::write(d.path().join("model.onnx"), b"tampered").unwrap();
        let err = ModelPackage::load(d.path()).unwrap_err().to_string();
        assert!(err.contains("does not match the manifest"), "{err}");
    }

    #[test]
    fn missing_model_file_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        write_package(d.path(), b"x", |m| m);
        fs::remove_file(d.path().join("model.onnx")).unwrap();
        let err = ModelPackage::load(d.path()).unwrap_err().to_string();
        assert!(
            err.contains("model.onnx") && err.contains("missing"),
            "{err}"
        );
        let err = ModelPackage::load(&d.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn inconsistent_manifests_are_refused() {
        let cases: [(&str, &str, &str); 5] = [
            ("channels = 1", "channels = 2", "channels must be 1"),
            ("mean = [0.5]", "mean = [0.5, 0.5]", "one value per channel"),
            ("lambda = 0.9", "lambda = 1.5", "lambda"),
            ("kind = \"lambda-l1-l2\"", "kind = \"mse\"", "kind"),
            ("resize = \"area\"", "resize = \"cubic\"", "resize"),
        ];
        for (from, to, needle) in cases {
            let d = tempfile::tempdir().unwrap();
            write_package(d.path(), b"x", |m| m.replace(from, to));
            let err = ModelPackage::load(d.path()).unwrap_err().to_string();
            assert!(err.contains(needle), "{to}: {err}");
        }
        let d = tempfile::tempdir().unwrap();
        write_package(d.path(), b"x", |m| {
            m.replace("resize = \"area\"", "resize = \"area\"\nblur_sigma = 1.0")
        });
        let err = ModelPackage::load(d.path()).unwrap_err().to_string();
        assert!(
            err.contains("blur_sigma"),
            "an unknown preprocessing key must be refused: {err}"
        );
        let d = tempfile::tempdir().unwrap();
        write_package(d.path(), b"x", |m| m.replace("[score]", "[scorez]"));
        let err = ModelPackage::load(d.path()).unwrap_err().to_string();
        assert!(err.contains("score"), "{err}");
    }

    /// `[input] photometric` / `spread` and `[score] pooling` / `smooth_sigma` / `top_fraction`.
    fn with_variant(m: String, input: &str, score: &str) -> String {
        m.replace("resize = \"area\"", &format!("{input}\nresize = \"area\""))
            .replace("lambda = 0.9", &format!("lambda = 0.9\n{score}"))
    }

    #[test]
    fn photometric_and_pooling_variants_load() {
        let d = tempfile::tempdir().unwrap();
        write_package(d.path(), b"x", |m| {
            with_variant(
                m,
                "photometric = \"standardize\"\nspread = 3.0",
                "pooling = \"topk\"\nsmooth_sigma = 2.0\ntop_fraction = 0.01",
            )
        });
        let p = ModelPackage::load(d.path()).unwrap();
        assert_eq!(p.manifest.input.photometric, Photometric::Standardize);
        assert_eq!(p.manifest.input.standardize_spread(), Ok(3.0));
        assert_eq!(
            p.manifest.score.pooling(),
            Ok(Pooling::TopK {
                smooth_sigma: 2.0,
                top_fraction: 0.01
            })
        );
        // The explicit defaults, and the boundary values of the ranges.
        for (input, score) in [
            ("photometric = \"none\"", "pooling = \"mean\""),
            (
                "photometric = \"none\"\nspread = 2.5",
                "pooling = \"topk\"\nsmooth_sigma = 0.0\ntop_fraction = 1.0",
            ),
            (
                "photometric = \"standardize\"\nspread = 0.5",
                "pooling = \"topk\"\nsmooth_sigma = 8.0\ntop_fraction = 1e-4",
            ),
        ] {
            let d = tempfile::tempdir().unwrap();
            write_package(d.path(), b"x", |m| with_variant(m, input, score));
            let p =
                ModelPackage::load(d.path()).unwrap_or_else(|e| panic!("{input} / {score}: {e}"));
            // The manifest round-trips through serde with its new fields.
            let again: Manifest = toml::from_str(&toml::to_string(&p.manifest).unwrap()).unwrap();
            assert_eq!(again, p.manifest);
        }
    }

    #[test]
    fn bad_photometric_and_pooling_are_refused() {
        let cases: [(&str, &str, &[&str]); 11] = [
            ("photometric = \"gamma\"", "", &["gamma", "standardize"]),
            ("photometric = \"standardize\"", "", &["needs spread"]),
            (
                "photometric = \"standardize\"\nspread = 0.0",
                "",
                &["spread must be finite and positive"],
            ),
            (
                "photometric = \"standardize\"\nspread = -1.0",
                "",
                &["spread must be finite and positive"],
            ),
            (
                "photometric = \"standardize\"\nspread = nan",
                "",
                &["spread must be finite and positive"],
            ),
            ("", "pooling = \"max\"", &["max", "topk"]),
            (
                "",
                "pooling = \"topk\"\ntop_fraction = 0.01",
                &["needs smooth_sigma", "top_fraction"],
            ),
            (
                "",
                "pooling = \"topk\"\nsmooth_sigma = 2.0",
                &["needs smooth_sigma", "top_fraction"],
            ),
            (
                "",
                "pooling = \"topk\"\nsmooth_sigma = 8.5\ntop_fraction = 0.01",
                &["smooth_sigma must lie in [0, 8]"],
            ),
            (
                "",
                "pooling = \"topk\"\nsmooth_sigma = 2.0\ntop_fraction = 0.0",
                &["top_fraction must lie in (0, 1]"],
            ),
            (
                "",
                "pooling = \"topk\"\nsmooth_sigma = 2.0\ntop_fraction = 1.5",
                &["top_fraction must lie in (0, 1]"],
            ),
        ];
        for (input, score, needles) in cases {
            let d = tempfile::tempdir().unwrap();
            write_package(d.path(), b"x", |m| with_variant(m, input, score));
            let err = ModelPackage::load(d.path()).unwrap_err().to_string();
            for needle in needles {
                assert!(err.contains(needle), "{input} / {score}: {err}");
            }
        }
        // Still exactly one score kind.
        let d = tempfile::tempdir().unwrap();
        write_package(d.path(), b"x", |m| {
            with_variant(
                m,
                "",
                "pooling = \"topk\"\nsmooth_sigma = 2.0\ntop_fraction = 0.01",
            )
            .replace("kind = \"lambda-l1-l2\"", "kind = \"topk-l1-l2\"")
        });
        let err = ModelPackage::load(d.path()).unwrap_err().to_string();
        assert!(
            err.contains("kind") && err.contains("lambda-l1-l2"),
            "{err}"
        );
    }

    /// The MANIFEST as an ADe-GAN package: the pattern-logits output and the `ade-gan` kind.
    fn ade_gan(m: String) -> String {
        m.replace(
            "feature_dim = 256",
            "feature_dim = 256\npattern_logits = \"pattern_logits\"\npattern_dim = 10",
        )
        .replace(
            "kind = \"lambda-l1-l2\"\nlambda = 0.9",
            "kind = \"ade-gan\"\nkind_version = 1\nlambda = 1.0\nrecon_mean = 0.25\nrecon_std = 0.05",
        )
        .replace("architecture = \"nested-edgan\"", "architecture = \"ade-gan\"")
    }

    #[test]
    fn ade_gan_package_loads_with_its_rule() {
        let d = tempfile::tempdir().unwrap();
        write_package(d.path(), b"x", ade_gan);
        let p = ModelPackage::load(d.path()).unwrap();
        let rule = p.manifest.score_rule().unwrap();
        assert_eq!(
            rule,
            ScoreRule {
                kind: ScoreKind::AdeGan(AdeGan::new(0.25, 0.05, 10).unwrap()),
                lambda: 1.0,
                pooling: Pooling::Mean,
            }
        );
        assert_eq!(
            p.manifest.output.pattern(),
            Ok(Some(("pattern_logits", 10)))
        );
        let again: Manifest = toml::from_str(&toml::to_string(&p.manifest).unwrap()).unwrap();
        assert_eq!(again, p.manifest);
        // With topk pooling too: R is pooled as for lambda-l1-l2.
        let d = tempfile::tempdir().unwrap();
        write_package(d.path(), b"x", |m| {
            ade_gan(m).replace(
                "recon_std = 0.05",
                "recon_std = 0.05\npooling = \"topk\"\nsmooth_sigma = 1.0\ntop_fraction = 0.02",
            )
        });
        let rule = ModelPackage::load(d.path())
            .unwrap()
            .manifest
            .score_rule()
            .unwrap();
        assert_eq!(rule.pooling, Pooling::top_k(1.0, 0.02).unwrap());
        // A lambda-l1-l2 package may declare the pattern output; its score ignores it.
        let d = tempfile::tempdir().unwrap();
        write_package(d.path(), b"x", |m| {
            m.replace(
                "feature_dim = 256",
                "feature_dim = 256\npattern_logits = \"pattern_logits\"\npattern_dim = 10",
            )
        });
        let p = ModelPackage::load(d.path()).unwrap();
        assert_eq!(p.manifest.score_rule().unwrap().kind, ScoreKind::LambdaL1L2);
    }

    #[test]
    fn bad_ade_gan_manifests_are_refused() {
        let cases: [(&str, &str, &[&str]); 10] = [
            (
                "kind_version = 1\n",
                "",
                &["needs kind_version = 1", "none"],
            ),
            (
                "kind_version = 1",
                "kind_version = 2",
                &["needs kind_version = 1", "got 2"],
            ),
            ("recon_std = 0.05", "", &["needs recon_mean and recon_std"]),
            (
                "recon_std = 0.05",
                "recon_std = 0.0",
                &["recon_std finite and > 0"],
            ),
            (
                "recon_mean = 0.25",
                "recon_mean = nan",
                &["recon_mean must be finite"],
            ),
            (
                "pattern_logits = \"pattern_logits\"\npattern_dim = 10",
                "",
                &["needs [output] pattern_logits"],
            ),
            (
                "pattern_dim = 10",
                "",
                &["pattern_logits and pattern_dim go together"],
            ),
            (
                "pattern_dim = 10",
                "pattern_dim = 1",
                &["pattern_dim must be at least 2"],
            ),
            (
                "kind = \"ade-gan\"",
                "kind = \"ade-gan-2\"",
                &["ade-gan-2", "not supported", "ade-gan"],
            ),
            (
                "lambda = 1.0",
                "lambda = -0.1",
                &["lambda must be in [0, 1]"],
            ),
        ];
        for (from, to, needles) in cases {
            let d = tempfile::tempdir().unwrap();
            write_package(d.path(), b"x", |m| {
                let m = ade_gan(m);
                assert!(m.contains(from), "{from}");
                m.replace(from, to)
            });
            let err = ModelPackage::load(d.path()).unwrap_err().to_string();
            for needle in needles {
                assert!(err.contains(needle), "{from} -> {to}: {err}");
            }
        }
        // lambda-l1-l2 has one version.
        let d = tempfile::tempdir().unwrap();
        write_package(d.path(), b"x", |m| {
            m.replace("lambda = 0.9", "lambda = 0.9\nkind_version = 2")
        });
        let err = ModelPackage::load(d.path()).unwrap_err().to_string();
        assert!(err.contains("kind_version 2"), "{err}");
        let d = tempfile::tempdir().unwrap();
        write_package(d.path(), b"x", |m| {
            m.replace("lambda = 0.9", "lambda = 0.9\nkind_version = 1")
        });
        ModelPackage::load(d.path()).unwrap();
    }

    #[test]
    fn calibration_validation() {
        let p = Path::new("cal.json");
        let ok =
            r#"{"model":"m","min":0.1,"max":0.5,"threshold":0.2,"method":"fixed","camera":null}"#;
        let c = Calibration::parse(ok, p).unwrap();
        assert!((c.normalization().unwrap().normalize(0.3) - 0.5).abs() < 1e-12);
        let degenerate = ok.replace("0.5", "0.1");
        let err = Calibration::parse(&degenerate, p).unwrap_err().to_string();
        assert!(err.contains("degenerate"), "{err}");
        let err = Calibration::parse(&ok.replace("fixed", "magic"), p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown method"), "{err}");
        assert!(Calibration::parse("{}", p).is_err());
        let normals = ok.replace(r#""fixed""#, r#""normals","target":0.01"#);
        assert_eq!(Calibration::parse(&normals, p).unwrap().method, "normals");
    }

    #[test]
    fn per_camera_calibration_overrides_default() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("m.json"), "{}").unwrap();
        assert_eq!(
            calibration_path(d.path(), "m", Some("cam7")),
            d.path().join("m.json")
        );
        fs::write(d.path().join("m.cam7.json"), "{}").unwrap();
        assert_eq!(
            calibration_path(d.path(), "m", Some("cam7")),
            d.path().join("m.cam7.json")
        );
        assert_eq!(
            calibration_path(d.path(), "m", None),
            d.path().join("m.json")
        );
    }
}

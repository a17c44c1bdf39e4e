//! ONNX Runtime: finding and loading `libonnxruntime.so`, building a session with the configured
//! execution-provider chain (TensorRT → CUDA → CPU by default), checking the graph against the
//! manifest, and running batches.
//!
//! The library is loaded at run time (`ort` `load-dynamic`) from the `onnxruntime` wheel in the
//! project venv so that the build never downloads a binary and CPU/GPU wheels are interchangeable.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use ort::ep::{self, ExecutionProvider};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::config::{EngineConfig, Provider};
use crate::error::{Error, Result};
use crate::pipeline::package::{Manifest, ModelPackage};

/// The ONNX Runtime minor version the `ort` API level (`api-31`) and the contract require.
pub const REQUIRED_ORT: (u32, u32) = (1, 31);
const INSTALL_HINT: &str =
    "run `make venv` (installs onnxruntime==1.31.1 into .venv) or `pip install onnxruntime==1.31.1`, \
     or point ORT_DYLIB_PATH / engine.ort_library at libonnxruntime.so.1.31.x";

// ---------------------------------------------------------------------------------------------
// Locating and loading the runtime library
// ---------------------------------------------------------------------------------------------

/// Where the library path came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibrarySource {
    EnvVar,
    Config,
    Venv,
}

/// Finds `libonnxruntime.so`: `ORT_DYLIB_PATH`, then `engine.ort_library`, then
/// `.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*` under the working
/// directory and every ancestor of the executable (so `target/release/railscope` finds the repo's
/// venv). An explicitly named path that does not exist is an error, never silently replaced.
pub fn locate_library(configured: Option<&Path>) -> Result<(PathBuf, LibrarySource)> {
    if let Some(v) = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if !p.is_file() {
            return Err(Error::Runtime(format!(
                "ORT_DYLIB_PATH={} does not exist; {INSTALL_HINT}",
                p.display()
            )));
        }
        return Ok((p, LibrarySource::EnvVar));
    }
    if let Some(p) = configured.filter(|p| !p.as_os_str().is_empty()) {
        if !p.is_file() {
            return Err(Error::Runtime(format!(
                "engine.ort_library = {} does not exist; {INSTALL_HINT}",
                p.display()
            )));
        }
        return Ok((p.to_path_buf(), LibrarySource::Config));
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    for root in roots {
        if let Some(p) = venv_library(&root) {
            return Ok((p, LibrarySource::Venv));
        }
    }
    Err(Error::Runtime(format!(
        "libonnxruntime.so not found (looked for ORT_DYLIB_PATH, engine.ort_library and \
         .venv/lib/python3*/site-packages/onnxruntime/capi/ in the working directory and above the executable); {INSTALL_HINT}"
    )))
}

fn venv_library(root: &Path) -> Option<PathBuf> {
    let pattern = root.join(".venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*");
    let mut found: Vec<PathBuf> = glob::glob(pattern.to_str()?)
        .ok()?
        .filter_map(|p| p.ok())
        .filter(|p| p.is_file())
        .collect();
    // Prefer the fully versioned name (libonnxruntime.so.1.31.1) over a bare symlink.
    found.sort_by_key(|p| std::cmp::Reverse(p.file_name().map(|n| n.len()).unwrap_or(0)));
    found.into_iter().next()
}

/// Version from a file name like `libonnxruntime.so.1.31.1`; `None` for an unversioned name.
pub fn version_from_filename(p: &Path) -> Option<(u32, u32, u32)> {
    let name = p.file_name()?.to_str()?;
    let rest = name.split(".so.").nth(1)?;
    let mut it = rest.split('.').map(|s| s.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// Checks a library's version (from its name) before `dlopen`, so that a wrong wheel gives a
/// message naming the fix rather than an ABI failure.
pub fn check_library_version(p: &Path) -> Result<()> {
    if let Some((major, minor, patch)) = version_from_filename(p) {
        if (major, minor) != REQUIRED_ORT {
            return Err(Error::Runtime(format!(
                "{} is ONNX Runtime {major}.{minor}.{patch}, but railscope needs {}.{}.x; {INSTALL_HINT}",
                p.display(),
                REQUIRED_ORT.0,
                REQUIRED_ORT.1
            )));
        }
    }
    Ok(())
}

struct Runtime {
    env: ort::environment::Environment,
    library: PathBuf,
}

static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

/// Loads ONNX Runtime (once per process) and returns the library path: the startup check that
/// runs before anything else so that a missing runtime is reported first.
pub fn ensure_runtime(cfg: &EngineConfig) -> Result<PathBuf> {
    runtime(cfg).map(|(_, p)| p)
}

/// Loads ONNX Runtime once per process and returns its environment and library path.
fn runtime(cfg: &EngineConfig) -> Result<(ort::environment::Environment, PathBuf)> {
    let mut guard = RUNTIME
        .lock()
        .map_err(|_| Error::Runtime("runtime lock poisoned".into()))?;
    if let Some(rt) = guard.as_ref() {
        return Ok((rt.env.clone(), rt.library.clone()));
    }
    let (library, source) = locate_library(cfg.ort_library.as_deref())?;
    check_library_version(&library)?;
    let library = library.canonicalize().unwrap_or(library);
    let builder = ort::init_from(&library).map_err(|e| {
        Error::Runtime(format!(
            "cannot load {} ({source:?}): {e}; {INSTALL_HINT}",
            library.display()
        ))
    })?;
    let env = builder
        .with_name("railscope")
        .build()
        .map_err(|e| Error::Runtime(format!("cannot create the ONNX Runtime environment: {e}")))?;
    tracing::info!(library = %library.display(), ?source, "loaded ONNX Runtime");
    *guard = Some(Runtime {
        env: env.clone(),
        library: library.clone(),
    });
    Ok((env, library))
}

// ---------------------------------------------------------------------------------------------
// Graph ↔ manifest check
// ---------------------------------------------------------------------------------------------

/// One graph input or output as ONNX Runtime reports it (-1 = dynamic dimension).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub is_f32: bool,
    pub dtype: String,
    pub shape: Vec<i64>,
}

fn spec_of(name: &str, t: &ValueType) -> TensorSpec {
    match t {
        ValueType::Tensor { ty, shape, .. } => TensorSpec {
            name: name.to_string(),
            is_f32: *ty == TensorElementType::Float32,
            dtype: format!("{ty:?}"),
            shape: shape.iter().copied().collect(),
        },
        other => TensorSpec {
            name: name.to_string(),
            is_f32: false,
            dtype: format!("{other:?}"),
            shape: vec![],
        },
    }
}

/// Checks names, element type, rank and fixed dimensions of the graph against the manifest.
/// The batch dimension must be dynamic (or 1 is refused: the service batches frames). The
/// pattern-logits output is checked when `[output]` declares it (the `ade-gan` score kind needs it).
pub fn validate_io(inputs: &[TensorSpec], outputs: &[TensorSpec], m: &Manifest) -> Result<()> {
    let i = &m.input;
    let o = &m.output;
    let image = inputs.iter().find(|s| s.name == i.name).ok_or_else(|| {
        Error::Mismatch(format!(
            "the graph has no input {:?} (graph inputs: {:?})",
            i.name,
            inputs.iter().map(|s| &s.name).collect::<Vec<_>>()
        ))
    })?;
    if inputs.len() != 1 {
        return Err(Error::Mismatch(format!(
            "the graph has {} inputs; the contract allows exactly one",
            inputs.len()
        )));
    }
    let chw = [i.channels as i64, i.height as i64, i.width as i64];
    check_tensor(image, "input", &chw, m)?;
    let find = |name: &str| {
        outputs.iter().find(|s| s.name == name).ok_or_else(|| {
            Error::Mismatch(format!(
                "the graph has no output {name:?} named in [output] (graph outputs: {:?})",
                outputs.iter().map(|s| &s.name).collect::<Vec<_>>()
            ))
        })
    };
    check_tensor(find(&o.reconstruction)?, "reconstruction", &chw, m)?;
    let f = [o.feature_dim as i64];
    check_tensor(find(&o.features_real)?, "features_real", &f, m)?;
    check_tensor(find(&o.features_fake)?, "features_fake", &f, m)?;
    if let Some((name, k)) = o.pattern().map_err(Error::Mismatch)? {
        let spec = outputs.iter().find(|s| s.name == name).ok_or_else(|| {
            Error::Mismatch(format!(
                "the graph has no output {name:?} named in [output] pattern_logits{} (graph outputs: {:?})",
                if m.score.kind == "lambda-l1-l2" {
                    String::new()
                } else {
                    format!(", which [score] kind {:?} needs", m.score.kind)
                },
                outputs.iter().map(|s| &s.name).collect::<Vec<_>>()
            ))
        })?;
        check_tensor(spec, "pattern_logits", &[k as i64], m)?;
    }
    Ok(())
}

fn check_tensor(s: &TensorSpec, role: &str, expected: &[i64], m: &Manifest) -> Result<()> {
    if !s.is_f32 {
        return Err(Error::Mismatch(format!(
            "{role} {:?} is {}, the contract requires float32",
            s.name, s.dtype
        )));
    }
    if s.shape.len() != expected.len() + 1 {
        return Err(Error::Mismatch(format!(
            "{role} {:?} has rank {} (shape {:?}); expected [N, {}]",
            s.name,
            s.shape.len(),
            s.shape,
            expected
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if s.shape[0] > 0 {
        return Err(Error::Mismatch(format!(
            "{role} {:?} has a fixed batch dimension {}; the contract requires a dynamic N",
            s.name, s.shape[0]
        )));
    }
    let labels: &[&str] = if expected.len() == 3 {
        &["channels", "height", "width"]
    } else if role == "pattern_logits" {
        &["pattern_dim"]
    } else {
        &["feature_dim"]
    };
    for ((&got, &want), label) in s.shape[1..].iter().zip(expected).zip(labels) {
        if got >= 0 && got != want {
            return Err(Error::Mismatch(format!(
                "{role} {:?} has {label} {got} but manifest.toml says {want} (graph shape {:?}, model {})",
                s.name, s.shape, m.model.name
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Engine
// ---------------------------------------------------------------------------------------------

/// Borrowed model outputs for one batch of `n` images (ONNX Runtime's memory, no copy).
pub struct OutputsView<'a> {
    pub n: usize,
    pub reconstruction: &'a [f32],
    pub features_real: &'a [f32],
    pub features_fake: &'a [f32],
    /// The pattern logits (`n · pattern_dim` values), when `[output]` declares them.
    pub pattern_logits: Option<&'a [f32]>,
    pub chw: usize,
    pub feature_dim: usize,
    /// K of the pattern logits (0 when not declared).
    pub pattern_dim: usize,
}

impl OutputsView<'_> {
    pub fn reconstruction_of(&self, k: usize) -> &[f32] {
        &self.reconstruction[k * self.chw..(k + 1) * self.chw]
    }
    pub fn features_real_of(&self, k: usize) -> &[f32] {
        &self.features_real[k * self.feature_dim..(k + 1) * self.feature_dim]
    }
    pub fn features_fake_of(&self, k: usize) -> &[f32] {
        &self.features_fake[k * self.feature_dim..(k + 1) * self.feature_dim]
    }
    pub fn pattern_logits_of(&self, k: usize) -> Option<&[f32]> {
        self.pattern_logits
            .map(|p| &p[k * self.pattern_dim..(k + 1) * self.pattern_dim])
    }
}

/// Owned copy of a batch's outputs.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub n: usize,
    pub reconstruction: Vec<f32>,
    pub features_real: Vec<f32>,
    pub features_fake: Vec<f32>,
    /// Empty when `[output]` declares no pattern logits.
    pub pattern_logits: Vec<f32>,
    pub chw: usize,
    pub feature_dim: usize,
    pub pattern_dim: usize,
}

pub struct Engine {
    /// ONNX Runtime's `run` needs exclusive access; the lock lets the engine be shared (`&self`)
    /// between the service's batching thread and the CLI without wrapping it again.
    session: std::sync::Mutex<Session>,
    provider: Provider,
    library: PathBuf,
    input_name: String,
    output_names: [String; 3],
    /// The declared pattern-logits output and its K (read only when declared).
    pattern: Option<(String, usize)>,
    shape: [usize; 3],
    feature_dim: usize,
    max_batch: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("provider", &self.provider)
            .field("library", &self.library)
            .finish()
    }
}

impl Engine {
    /// Loads the runtime, builds a session with the first provider that works, validates the
    /// graph against the manifest and (if configured) runs a warm-up batch.
    pub fn load(package: &ModelPackage, cfg: &EngineConfig) -> Result<Self> {
        let (env, library) = runtime(cfg)?;
        let mut failures: Vec<String> = Vec::new();
        let mut chosen = None;
        for name in &cfg.providers {
            let provider = Provider::parse(name)
                .ok_or_else(|| Error::Config(format!("unknown execution provider {name:?}")))?;
            match build_session(&env, provider, &package.onnx_path, cfg) {
                Ok(session) => {
                    chosen = Some((session, provider));
                    break;
                }
                Err(why) => {
                    // Not compiled into this runtime (the CPU wheel) is the expected case on a
                    // machine without a GPU; a provider that is present but fails is not.
                    if why.contains("not built into") {
                        tracing::info!(provider = provider.as_str(), reason = %why, "execution provider unavailable, falling back");
                    } else {
                        tracing::warn!(provider = provider.as_str(), reason = %why, "execution provider failed, falling back");
                    }
                    failures.push(format!("{}: {why}", provider.as_str()));
                }
            }
        }
        let (session, provider) = chosen.ok_or_else(|| {
            Error::Runtime(format!(
                "no execution provider could load {}: {}",
                package.onnx_path.display(),
                failures.join("; ")
            ))
        })?;
        tracing::info!(
            provider = provider.as_str(),
            model = package.name(),
            "session ready"
        );

        let inputs: Vec<TensorSpec> = session
            .inputs()
            .iter()
            .map(|o| spec_of(o.name(), o.dtype()))
            .collect();
        let outputs: Vec<TensorSpec> = session
            .outputs()
            .iter()
            .map(|o| spec_of(o.name(), o.dtype()))
            .collect();
        validate_io(&inputs, &outputs, &package.manifest)?;

        let m = &package.manifest;
        let engine = Engine {
            session: std::sync::Mutex::new(session),
            provider,
            library,
            input_name: m.input.name.clone(),
            output_names: [
                m.output.reconstruction.clone(),
                m.output.features_real.clone(),
                m.output.features_fake.clone(),
            ],
            pattern: m
                .output
                .pattern()
                .map_err(Error::Mismatch)?
                .map(|(name, k)| (name.to_string(), k)),
            shape: [m.input.channels, m.input.height, m.input.width],
            feature_dim: m.output.feature_dim,
            max_batch: cfg.max_batch.max(1),
        };
        if cfg.warmup {
            let t = Instant::now();
            let zeros = vec![0f32; engine.chw()];
            engine.run(&zeros, 1)?;
            tracing::info!(ms = t.elapsed().as_secs_f64() * 1e3, "warm-up run done");
        }
        Ok(engine)
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    pub fn library(&self) -> &Path {
        &self.library
    }

    pub fn chw(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    pub fn feature_dim(&self) -> usize {
        self.feature_dim
    }

    /// K of the pattern logits the engine reads, when the package declares them.
    pub fn pattern_dim(&self) -> Option<usize> {
        self.pattern.as_ref().map(|(_, k)| *k)
    }

    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Runs `n` images (NCHW, `n·C·H·W` values) in one session run and hands the outputs, still
    /// in ONNX Runtime's memory, to `f`. The input is passed without copying. Batches larger than
    /// `max_batch` must be split by the caller (see [`Engine::run`]).
    pub fn run_view<T>(
        &self,
        input: &[f32],
        n: usize,
        f: impl FnOnce(&OutputsView<'_>) -> T,
    ) -> Result<T> {
        let chw = self.chw();
        if n == 0 || input.len() != n * chw {
            return Err(Error::Inference(format!(
                "input holds {} values, expected {n} × {chw} (batch × C·H·W)",
                input.len()
            )));
        }
        let [c, h, w] = self.shape;
        let tensor = TensorRef::from_array_view(([n, c, h, w], input))
            .map_err(|e| Error::Inference(format!("cannot wrap input tensor: {e}")))?;
        let feature_dim = self.feature_dim;
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::Inference("session lock poisoned by an earlier panic".into()))?;
        let outputs = session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| Error::Inference(e.to_string()))?;
        let get = |name: &str, per_item: usize| -> Result<&[f32]> {
            let v = outputs
                .get(name)
                .ok_or_else(|| Error::Inference(format!("output {name:?} missing from the run")))?;
            let (_, data) = v
                .try_extract_tensor::<f32>()
                .map_err(|e| Error::Inference(format!("output {name:?}: {e}")))?;
            if data.len() != n * per_item {
                return Err(Error::Inference(format!(
                    "output {name:?} has {} values, expected {}",
                    data.len(),
                    n * per_item
                )));
            }
            Ok(data)
        };
        let pattern_logits = match &self.pattern {
            Some((name, k)) => Some(get(name, *k)?),
            None => None,
        };
        let view = OutputsView {
            n,
            reconstruction: get(&self.output_names[0], chw)?,
            features_real: get(&self.output_names[1], feature_dim)?,
            features_fake: get(&self.output_names[2], feature_dim)?,
            pattern_logits,
            chw,
            feature_dim,
            pattern_dim: self.pattern_dim().unwrap_or(0),
        };
        Ok(f(&view))
    }

    /// Runs any number of images, in chunks of at most `max_batch`, and copies the outputs out.
    pub fn run(&self, input: &[f32], n: usize) -> Result<Outputs> {
        let chw = self.chw();
        let fd = self.feature_dim;
        let pd = self.pattern_dim().unwrap_or(0);
        let mut out = Outputs {
            n,
            reconstruction: Vec::with_capacity(n * chw),
            features_real: Vec::with_capacity(n * fd),
            features_fake: Vec::with_capacity(n * fd),
            pattern_logits: Vec::with_capacity(n * pd),
            chw,
            feature_dim: fd,
            pattern_dim: pd,
        };
        if input.len() != n * chw {
            return Err(Error::Inference(format!(
                "input holds {} values, expected {n} × {chw}",
                input.len()
            )));
        }
        let mut start = 0;
        while start < n {
            let k = (n - start).min(self.max_batch);
            self.run_view(&input[start * chw..(start + k) * chw], k, |v| {
                out.reconstruction.extend_from_slice(v.reconstruction);
                out.features_real.extend_from_slice(v.features_real);
                out.features_fake.extend_from_slice(v.features_fake);
                if let Some(p) = v.pattern_logits {
                    out.pattern_logits.extend_from_slice(p);
                }
            })?;
            start += k;
        }
        Ok(out)
    }
}

fn build_session(
    env: &ort::environment::Environment,
    provider: Provider,
    model: &Path,
    cfg: &EngineConfig,
) -> std::result::Result<Session, String> {
    let dispatch = match provider {
        Provider::TensorRt => {
            if !ep::TensorRT::is_available().unwrap_or(false) {
                return Err(
                    "not built into this ONNX Runtime (install onnxruntime-gpu for TensorRT)"
                        .into(),
                );
            }
            std::fs::create_dir_all(&cfg.trt_engine_cache_dir).map_err(|e| {
                format!(
                    "cannot create engine cache {}: {e}",
                    cfg.trt_engine_cache_dir.display()
                )
            })?;
            ep::TensorRT::default()
                .with_device_id(cfg.device_id)
                .with_fp16(cfg.fp16)
                .with_engine_cache(true)
                .with_engine_cache_path(cfg.trt_engine_cache_dir.display())
                .with_timing_cache(true)
                .build()
                .error_on_failure()
        }
        Provider::Cuda => {
            if !ep::CUDA::is_available().unwrap_or(false) {
                return Err(
                    "not built into this ONNX Runtime (install onnxruntime-gpu for CUDA)".into(),
                );
            }
            ep::CUDA::default()
                .with_device_id(cfg.device_id)
                .build()
                .error_on_failure()
        }
        Provider::Cpu => ep::CPU::default().build().error_on_failure(),
    };
    let mut builder = Session::builder(env)
        .map_err(|e| e.to_string())?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| e.to_string())?;
    if cfg.intra_op_threads > 0 {
        builder = builder
            .with_intra_threads(cfg.intra_op_threads)
            .map_err(|e| e.to_string())?;
    }
    if !cfg.intra_op_spinning {
        builder = builder
            .with_intra_op_spinning(false)
            .map_err(|e| e.to_string())?;
    }
    builder
        .with_execution_providers([dispatch])
        .map_err(|e| e.to_string())?
        .commit_from_file(model)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let text = crate::pipeline::package::tests::MANIFEST.replace("SHA", &"0".repeat(64));
        Manifest::parse(&text, Path::new("manifest.toml")).unwrap()
    }

    fn spec(name: &str, shape: &[i64]) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            is_f32: true,
            dtype: "Float32".into(),
            shape: shape.to_vec(),
        }
    }

    fn good() -> (Vec<TensorSpec>, Vec<TensorSpec>) {
        (
            vec![spec("image", &[-1, 1, 64, 64])],
            vec![
                spec("reconstruction", &[-1, 1, 64, 64]),
                spec("features_real", &[-1, 256]),
                spec("features_fake", &[-1, 256]),
            ],
        )
    }

    #[test]
    fn matching_graph_passes() {
        let (i, o) = good();
        validate_io(&i, &o, &manifest()).unwrap();
    }

    #[test]
    fn mismatches_are_named() {
        let m = manifest();
        let (mut i, o) = good();
        i[0].shape[1] = 3;
        let e = validate_io(&i, &o, &m).unwrap_err().to_string();
        assert!(e.contains("channels 3") && e.contains("says 1"), "{e}");

        let (i, mut o) = good();
        o[0].name = "recon".into();
        let e = validate_io(&i, &o, &m).unwrap_err().to_string();
        assert!(e.contains("no output \"reconstruction\""), "{e}");

        let (i, mut o) = good();
        o[2].shape = vec![-1, 128];
        let e = validate_io(&i, &o, &m).unwrap_err().to_string();
        assert!(e.contains("feature_dim 128"), "{e}");

        let (mut i, o) = good();
        i[0].is_f32 = false;
        i[0].dtype = "Uint8".into();
        let e = validate_io(&i, &o, &m).unwrap_err().to_string();
        assert!(e.contains("float32"), "{e}");

        let (mut i, o) = good();
        i[0].shape = vec![1, 1, 64, 64];
        let e = validate_io(&i, &o, &m).unwrap_err().to_string();
        assert!(e.contains("dynamic N"), "{e}");

        let (mut i, o) = good();
        i[0].shape = vec![-1, 64, 64];
        let e = validate_io(&i, &o, &m).unwrap_err().to_string();
        assert!(e.contains("rank 3"), "{e}");
    }

    fn ade_gan_manifest(kind: &str) -> Manifest {
        let text = crate::pipeline::package::tests::MANIFEST
            .replace("SHA", &"0".repeat(64))
            .replace(
                "feature_dim = 256",
                "feature_dim = 256\npattern_logits = \"pattern_logits\"\npattern_dim = 10",
            )
            .replace(
                "kind = \"lambda-l1-l2\"",
                &format!("kind = \"{kind}\"\nkind_version = 1\nrecon_mean = 0.2\nrecon_std = 0.1"),
            );
        Manifest::parse(&text, Path::new("manifest.toml")).unwrap()
    }

    #[test]
    fn pattern_logits_output_is_checked_when_declared() {
        let (i, mut o) = good();
        // Not declared: an extra graph output is not read, and not required.
        validate_io(&i, &o, &manifest()).unwrap();
        let m = ade_gan_manifest("ade-gan");
        let e = validate_io(&i, &o, &m).unwrap_err().to_string();
        assert!(
            e.contains("no output \"pattern_logits\"")
                && e.contains("[score] kind \"ade-gan\" needs"),
            "{e}"
        );
        o.push(spec("pattern_logits", &[-1, 10]));
        validate_io(&i, &o, &m).unwrap();
        // Declared by a lambda-l1-l2 package: still checked, without blaming the kind.
        let plain = ade_gan_manifest("lambda-l1-l2");
        validate_io(&i, &o, &plain).unwrap();
        let e = validate_io(&i, &o[..3], &plain).unwrap_err().to_string();
        assert!(
            e.contains("no output \"pattern_logits\"") && !e.contains("kind"),
            "{e}"
        );
        o[3].shape = vec![-1, 7];
        let e = validate_io(&i, &o, &m).unwrap_err().to_string();
        assert!(e.contains("pattern_dim 7") && e.contains("says 10"), "{e}");
        o[3].shape = vec![-1, 10, 1];
        let e = validate_io(&i, &o, &m).unwrap_err().to_string();
        assert!(e.contains("pattern_logits") && e.contains("rank 3"), "{e}");
        o[3].shape = vec![4, 10];
        let e = validate_io(&i, &o, &m).unwrap_err().to_string();
        assert!(e.contains("dynamic N"), "{e}");
    }

    #[test]
    fn library_version_from_name() {
        assert_eq!(
            version_from_filename(Path::new("/x/libonnxruntime.so.1.31.1")),
            Some((1, 31, 1))
        );
        assert_eq!(
            version_from_filename(Path::new("/x/libonnxruntime.so")),
            None
        );
        check_library_version(Path::new("/x/libonnxruntime.so.1.31.1")).unwrap();
        let e = check_library_version(Path::new("/x/libonnxruntime.so.1.20.0"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1.20.0") && e.contains("onnxruntime==1.31.1"),
            "{e}"
        );
    }

    #[test]
    fn providers_parse() {
        assert_eq!(Provider::parse("TensorRT"), Some(Provider::TensorRt));
        assert_eq!(Provider::parse("cuda"), Some(Provider::Cuda));
        assert_eq!(Provider::parse("cpu"), Some(Provider::Cpu));
        assert_eq!(Provider::parse("tpu"), None);
    }
}

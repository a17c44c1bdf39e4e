//! One error type for the library. Messages are written for the operator reading a log line:
//! they say what was wrong and, where there is one, what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),

    #[error("ONNX Runtime library: {0}")]
    Runtime(String),

    #[error("model package {path}: {message}")]
    Package { path: PathBuf, message: String },

    #[error("calibration {path}: {message}")]
    Calibration { path: PathBuf, message: String },

    #[error("model does not match its manifest: {0}")]
    Mismatch(String),

    #[error("inference: {0}")]
    Inference(String),

    #[error("image {source_name}: {kind}")]
    Decode {
        source_name: String,
        kind: DecodeError,
    },

    #[error("preprocessing: {0}")]
    Preprocess(String),

    #[error("fastener search: {0}")]
    Search(String),

    #[error("dataset {path}: {message}")]
    Dataset { path: PathBuf, message: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },

    #[error("opencv: {0}")]
    OpenCv(String),

    /// The disk (or the database's file system) is full: no verdict can be stored until
    /// space is freed.
    #[error("storage full: {0}")]
    StorageFull(String),

    #[error("{0}")]
    Other(String),
}

/// Why an image could not be decoded; kept as its own type so callers (the HTTP service) can
/// map each kind to a client error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty input (0 bytes)")]
    Empty,
    #[error("not a supported image format (JPEG, PNG, BMP, TIFF)")]
    UnknownFormat,
    #[error("image too large: {0}")]
    TooLarge(String),
    #[error("corrupt or truncated image data: {0}")]
    Corrupt(String),
    #[error("unsupported pixel type: {0}")]
    UnsupportedPixel(String),
    /// Decodable, but not a frame the service can judge: too small a side, an absurd aspect
    /// ratio, or far more bytes than its pixels need (data appended after the image).
    #[error("not a usable frame: {0}")]
    Implausible(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<opencv::Error> for Error {
    fn from(e: opencv::Error) -> Self {
        Error::OpenCv(e.to_string())
    }
}

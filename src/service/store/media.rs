//! The kept images (frame, heatmap, reconstruction) as files under the media folder, named
//! `<day>/<camera>-<received ms>-<random>.<ext>`; the rows hold their paths relative to it.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub(super) struct MediaDir {
    root: PathBuf,
}

impl MediaDir {
    pub(super) fn new(root: PathBuf) -> Self {
        MediaDir { root }
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub(super) fn write(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_err(format!("creating {}", parent.display()), e))?;
        }
        std::fs::write(&p, bytes).map_err(|e| {
            // a partly written file is no use to anyone
            let _ = std::fs::remove_file(&p);
            io_err(format!("writing {}", p.display()), e)
        })
    }

    pub(super) fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(rel)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading media {rel}"), e)),
        }
    }
}

/// ENOSPC or EDQUOT: the file system (or the user's quota) is full.
pub(super) fn io_err(context: String, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(28) | Some(122) => Error::StorageFull(format!("{context}: {e}")),
        _ => Error::io(context, e),
    }
}

pub(super) fn content_type(ext: &str) -> &'static str {
    match ext {
        "png" => "image/png",
        "jpg" => "image/jpeg",
        "bmp" => "image/bmp",
        "tif" => "image/tiff",
        _ => "application/octet-stream",
    }
}

/// Media file names only need to be unlikely to collide within one millisecond and camera.
pub(super) fn rand_u32() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    n.wrapping_mul(0x9E37_79B9) ^ std::process::id()
}

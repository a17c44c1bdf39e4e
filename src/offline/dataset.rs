//! Labelled image folders in the MVTec AD layout: `<root>/test/good/*` are normal,
//! `<root>/test/<defect-type>/*` defective. Calibration and evaluation both read the `test`
//! split, as the Python reference does.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "tif", "tiff"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub path: PathBuf,
    /// `good` for normal images, otherwise the defect type (folder name).
    pub defect_type: String,
    pub is_defect: bool,
}

/// An image file by extension (case-insensitive); hidden files (".name") are not.
pub fn is_image(p: &Path) -> bool {
    if p.file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'))
    {
        return false;
    }
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

/// Image files directly in `dir`, sorted by name.
pub fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = fs::read_dir(dir).map_err(|e| Error::Dataset {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    v.sort();
    Ok(v)
}

/// The labelled samples of `<root>/<split>/` (sorted by type, then file name). `root` may also
/// point at the split folder itself. A split without any image is an error.
pub fn list_split(root: &Path, split: &str) -> Result<Vec<Sample>> {
    let out = split_samples(root, split)?;
    if out.is_empty() {
        let dir = root.join(split);
        return Err(Error::Dataset {
            path: if dir.is_dir() {
                dir
            } else {
                root.to_path_buf()
            },
            message: "no images found".into(),
        });
    }
    Ok(out)
}

/// [`list_split`], but a split whose folders hold no image yet (a test set's empty
/// `train/good/`) gives an empty list.
pub fn split_samples(root: &Path, split: &str) -> Result<Vec<Sample>> {
    let dir = if root.join(split).is_dir() {
        root.join(split)
    } else {
        root.to_path_buf()
    };
    if !dir.join("good").is_dir() {
        return Err(Error::Dataset {
            path: root.to_path_buf(),
            message: format!(
                "expected the MVTec layout {split}/good/ and {split}/<defect>/ folders"
            ),
        });
    }
    let rd = fs::read_dir(&dir).map_err(|e| Error::Dataset {
        path: dir.clone(),
        message: e.to_string(),
    })?;
    let mut types: Vec<(String, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| e.file_name().to_str().map(|n| (n.to_string(), e.path())))
        .collect();
    types.sort();
    let mut out = Vec::new();
    for (name, path) in types {
        let is_defect = name != "good";
        for p in images_in(&path)? {
            out.push(Sample {
                path: p,
                defect_type: name.clone(),
                is_defect,
            });
        }
    }
    Ok(out)
}

/// SHA-256 over the files' bytes in sorted path order (the calibration's `data_sha256`).
pub fn data_sha256(paths: &[PathBuf]) -> Result<String> {
    let mut sorted: Vec<&PathBuf> = paths.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    let mut buf = Vec::new();
    for p in sorted {
        buf.clear();
        fs::File::open(p)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| Error::io(format!("read {}", p.display()), e))?;
        h.update(&buf);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_mvtec_layout_with_labels() {
        let d = tempfile::tempdir().unwrap();
        for (sub, files) in [
            ("test/good", ["a.png", "b.png"]),
            ("test/crack", ["c.png", "notes.txt"]),
            ("test/.cache", ["x.png", "y.png"]),
        ] {
            fs::create_dir_all(d.path().join(sub)).unwrap();
            for f in files {
                fs::write(d.path().join(sub).join(f), f).unwrap();
            }
        }
        let s = list_split(d.path(), "test").unwrap();
        fs::write(d.path().join("test/good/.hidden.png"), "h").unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(
            list_split(d.path(), "test").unwrap().len(),
            3,
            "hidden files and folders are ignored"
        );
        assert_eq!(s[0].defect_type, "crack");
        assert!(s[0].is_defect);
        assert!(!s[1].is_defect && !s[2].is_defect);
        // the split folder itself works too
        assert_eq!(list_split(&d.path().join("test"), "test").unwrap().len(), 3);
        assert!(list_split(&d.path().join("test/crack"), "test").is_err());
        let paths: Vec<PathBuf> = s.iter().map(|s| s.path.clone()).collect();
        let mut rev = paths.clone();
        rev.reverse();
        assert_eq!(data_sha256(&paths).unwrap(), data_sha256(&rev).unwrap());
        // sha256("a.png" + "b.png" + "c.png") in sorted path order: crack/c < good/a < good/b
        let expected = hex::encode(Sha256::digest(b"c.pnga.pngb.png"));
        assert_eq!(data_sha256(&paths).unwrap(), expected);
    }
}

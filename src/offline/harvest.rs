//! `railscope harvest`: a camera's frames → an MVTec-layout folder of fastener crops to train on.
//!
//! Every whole slot the track locator places (`track.rs`) is cut out, turned the way the model
//! sees it (rail below the assembly), resized to `size`² and written to `train/good/` as
//! `<frame>_r<rail>_<side>_k<sleeper>.png`, so a crop can always be traced back to its frame. A
//! harvest from a real line holds some defective fasteners: `contact_sheet_NN.png` shows every
//! crop numbered in file order for a person to skim and prune, and robust training
//! (docs/models.md) tolerates what is left. `harvest.json` lists every crop with its frame and
//! box, and every frame in which no track was found.
//!
//! With `truth` (generated frames, `railscope_train.track`), each slot is labelled from the
//! ground truth beside its frame (IoU ≥ 0.5) and written to `test/<label>/` instead: the same
//! crops the service scores, as an MVTec test set for `railscope evaluate` (slot-level figures of
//! a model on a camera's own crops).

use std::path::{Path, PathBuf};

use opencv::core::{Mat, Point, Rect, Scalar, Vector, CV_8UC1};
use opencv::imgproc;
use opencv::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::offline::slot_eval::read_truth;
use crate::pipeline::fastener_search::iou;
use crate::pipeline::preprocess::{crop, decode, resize_to, to_gray, CropView, DecodeLimits};
use crate::pipeline::track::{Located, TrackLocator};

const SHEET_COLUMNS: usize = 16;
const SHEET_ROWS: usize = 12;
const THUMB: i32 = 96;

#[derive(Debug, Serialize)]
pub struct HarvestedCrop {
    pub file: String,
    pub frame: String,
    #[serde(rename = "box")]
    pub bbox: [i32; 4],
    pub rail: usize,
    pub side: i8,
    pub sleeper: usize,
    /// With ground truth: the slot's label ("good", a defect type, "missing_assembly").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct HarvestReport {
    pub frames: usize,
    pub crops: Vec<HarvestedCrop>,
    /// Slots cut by the frame's edge (not harvested).
    pub partial_slots: usize,
    /// Frames in which no track was found, with the reason.
    pub no_track: Vec<(String, String)>,
    pub contact_sheets: Vec<PathBuf>,
}

/// Cuts every whole slot of every image in `frames` (sorted by name) into `out/train/good`.
pub fn harvest(
    frames: &Path,
    locator: &TrackLocator,
    out: &Path,
    size: i32,
    truth: bool,
) -> Result<HarvestReport> {
    if !(16..=1024).contains(&size) {
        return Err(Error::Config(format!(
            "crop size must be 16..1024, not {size}"
        )));
    }
    let files = crate::offline::dataset::images_in(frames)?;
    if files.is_empty() {
        return Err(Error::Config(format!("{}: no images", frames.display())));
    }
    let good = out.join("train").join("good");
    if !truth {
        std::fs::create_dir_all(&good).map_err(|e| Error::io(good.display().to_string(), e))?;
    }
    let mut rep = HarvestReport::default();
    let mut thumbs: Vec<Mat> = Vec::new();
    let orientation = locator.orientation;
    for f in &files {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let stem = f
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(f).map_err(|e| Error::io(f.display().to_string(), e))?;
        let gray = to_gray(&decode(&bytes, &name, DecodeLimits::default())?)?;
        rep.frames += 1;
        let layout = match locator.locate(&gray)? {
            Located::Track(l) => l,
            Located::NoTrack { reason } => {
                rep.no_track.push((name, reason));
                continue;
            }
        };
        let labels = if truth {
            read_truth(f)?.slots
        } else {
            Vec::new()
        };
        let (whole, partial) = locator.whole_and_partial(layout.slots, gray.cols(), gray.rows());
        rep.partial_slots += partial.len();
        for s in whole {
            let label = if truth {
                let best = labels
                    .iter()
                    .map(|t| (iou(t.rect(), s.rect), &t.label))
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                match best {
                    Some((v, l)) if v >= 0.5 => Some(l.clone()),
                    _ => continue, // no true slot here: nothing to label it with
                }
            } else {
                None
            };
            let c = CropView::of_slot(&s, orientation).apply(&crop(&gray, s.rect)?)?;
            let c = resize_to(&c, size as usize, size as usize)?;
            let side = if s.side < 0 { "a" } else { "b" };
            let file = format!("{stem}_r{}_{side}_k{:02}.png", s.rail, s.sleeper);
            let folder = match &label {
                Some(l) => out.join("test").join(l),
                None => good.clone(),
            };
            std::fs::create_dir_all(&folder)
                .map_err(|e| Error::io(folder.display().to_string(), e))?;
            let path = folder.join(&file);
            opencv::imgcodecs::imwrite(path.as_os_str(), &c, &Vector::new())?;
            thumbs.push(resize_to(&c, THUMB as usize, THUMB as usize)?);
            rep.crops.push(HarvestedCrop {
                file: path
                    .strip_prefix(out)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned(),
                frame: name.clone(),
                bbox: [s.rect.x, s.rect.y, s.rect.width, s.rect.height],
                rail: s.rail,
                side: s.side,
                sleeper: s.sleeper,
                label,
            });
        }
    }
    for (page, chunk) in thumbs.chunks(SHEET_COLUMNS * SHEET_ROWS).enumerate() {
        let path = out.join(format!("contact_sheet_{:02}.png", page + 1));
        write_sheet(chunk, page * SHEET_COLUMNS * SHEET_ROWS, &path)?;
        rep.contact_sheets.push(path);
    }
    let manifest = out.join("harvest.json");
    std::fs::write(
        &manifest,
        serde_json::to_string_pretty(&rep).unwrap_or_default(),
    )
    .map_err(|e| Error::io(manifest.display().to_string(), e))?;
    Ok(rep)
}

/// A grid of thumbnails, each numbered with its index in `harvest.json`'s crop list.
fn write_sheet(thumbs: &[Mat], first: usize, path: &Path) -> Result<()> {
    let rows = thumbs.len().div_ceil(SHEET_COLUMNS) as i32;
    let cols = SHEET_COLUMNS.min(thumbs.len()) as i32;
    let pad = 2;
    let mut sheet = Mat::new_rows_cols_with_default(
        rows * (THUMB + pad),
        cols * (THUMB + pad),
        CV_8UC1,
        Scalar::all(0.0),
    )?;
    for (i, t) in thumbs.iter().enumerate() {
        let (r, c) = ((i / SHEET_COLUMNS) as i32, (i % SHEET_COLUMNS) as i32);
        let cell = Rect::new(c * (THUMB + pad), r * (THUMB + pad), THUMB, THUMB);
        let mut dst = Mat::roi_mut(&mut sheet, cell)?;
        t.copy_to(&mut dst)?;
        let label = (first + i).to_string();
        let at = Point::new(cell.x + 3, cell.y + 14);
        for (colour, thick) in [(0.0, 3), (255.0, 1)] {
            imgproc::put_text(
                &mut sheet,
                &label,
                at,
                imgproc::FONT_HERSHEY_SIMPLEX,
                0.45,
                Scalar::all(colour),
                thick,
                imgproc::LINE_AA,
                false,
            )?;
        }
    }
    opencv::imgcodecs::imwrite(path.as_os_str(), &sheet, &Vector::new())?;
    Ok(())
}

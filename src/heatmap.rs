//! Defect heatmaps for inspectors: per-pixel |x − x̂| (mean over channels), Gaussian-smoothed,
//! resized back onto each region of interest, colour-mapped (JET) and blended over the frame.
//!
//! The colour scale is fixed (`full_scale`), not stretched per image, so a clean fastener stays
//! blue and a broken one turns red; stretching would make every image look alarming.

use std::path::Path;

use opencv::core::{Mat, Rect, Size, Vector, CV_32FC1};
use opencv::imgproc;
use opencv::prelude::*;

use crate::config::HeatmapConfig;
use crate::error::{Error, Result};

/// Channel-mean absolute error map (H×W) of one image, from CHW tensors.
pub fn error_map(
    x: &[f32],
    x_hat: &[f32],
    channels: usize,
    height: usize,
    width: usize,
) -> Vec<f32> {
    let plane = height * width;
    assert_eq!(x.len(), channels * plane);
    assert_eq!(x_hat.len(), channels * plane);
    let mut out = vec![0f32; plane];
    for c in 0..channels {
        for (i, o) in out.iter_mut().enumerate() {
            *o += (x[c * plane + i] - x_hat[c * plane + i]).abs();
        }
    }
    let inv = 1.0 / channels as f32;
    out.iter_mut().for_each(|v| *v *= inv);
    out
}

/// One region's error map, at model resolution.
pub struct RegionMap {
    pub rect: Rect,
    pub map: Vec<f32>,
    pub height: usize,
    pub width: usize,
    /// The crop was flipped top to bottom before scoring; flip the map back onto the frame.
    pub flipped: bool,
}

/// Blends the colour-mapped error of every region over `frame` (gray or RGB, 8-bit) and returns
/// a BGR image ready for `imwrite`.
pub fn render(frame: &Mat, regions: &[RegionMap], cfg: &HeatmapConfig) -> Result<Mat> {
    let mut canvas = Mat::default();
    let code = if frame.channels() == 1 {
        imgproc::COLOR_GRAY2BGR
    } else {
        imgproc::COLOR_RGB2BGR
    };
    imgproc::cvt_color(frame, &mut canvas, code, 0)?;
    let full = Rect::new(0, 0, canvas.cols(), canvas.rows());
    for r in regions {
        let rect = r.rect & full;
        if rect.width <= 0 || rect.height <= 0 {
            continue;
        }
        let mut m =
            Mat::new_rows_cols_with_default(r.height as i32, r.width as i32, CV_32FC1, 0.0.into())?;
        m.data_typed_mut::<f32>()?.copy_from_slice(&r.map);
        if r.flipped {
            let mut f = Mat::default();
            opencv::core::flip(&m, &mut f, 0)?;
            m = f;
        }
        let mut smooth = Mat::default();
        imgproc::gaussian_blur(
            &m,
            &mut smooth,
            Size::new(0, 0),
            cfg.sigma.max(0.1),
            0.0,
            opencv::core::BORDER_REFLECT,
        )?;
        let mut big = Mat::default();
        imgproc::resize(
            &smooth,
            &mut big,
            rect.size(),
            0.0,
            0.0,
            imgproc::INTER_LINEAR,
        )?;
        let mut u8map = Mat::default();
        // 0 … full_scale → 0 … 255, saturating above.
        big.convert_to(
            &mut u8map,
            opencv::core::CV_8UC1,
            255.0 / cfg.full_scale.max(1e-6),
            0.0,
        )?;
        let mut colour = Mat::default();
        imgproc::apply_color_map(&u8map, &mut colour, imgproc::COLORMAP_JET)?;
        let base = Mat::roi(&canvas, rect)?.try_clone()?;
        let mut blended = Mat::default();
        opencv::core::add_weighted(
            &base,
            1.0 - cfg.alpha,
            &colour,
            cfg.alpha,
            0.0,
            &mut blended,
            -1,
        )?;
        let mut dst = Mat::roi_mut(&mut canvas, rect)?;
        blended.copy_to(&mut dst)?;
    }
    Ok(canvas)
}

pub fn write_png(path: &Path, bgr: &Mat) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("create {}", parent.display()), e))?;
    }
    let ok = opencv::imgcodecs::imwrite(path.to_string_lossy().as_ref(), bgr, &Vector::new())?;
    if !ok {
        return Err(Error::Other(format!("could not write {}", path.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{Scalar, Vec3b, CV_8UC1};

    #[test]
    fn error_map_averages_channels() {
        let x = [1.0, 0.0, 0.0, 0.0, /* c1 */ 0.0, 0.0, 0.0, 2.0];
        let y = [0.0; 8];
        assert_eq!(error_map(&x, &y, 2, 2, 2), vec![0.5, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn hot_region_turns_red_and_cold_stays_blue() {
        let frame = Mat::new_rows_cols_with_default(40, 80, CV_8UC1, Scalar::all(128.0)).unwrap();
        let cfg = HeatmapConfig {
            alpha: 1.0,
            ..HeatmapConfig::default()
        };
        let regions = [
            RegionMap {
                rect: Rect::new(0, 0, 40, 40),
                map: vec![0.0; 64],
                height: 8,
                width: 8,
                flipped: false,
            },
            RegionMap {
                rect: Rect::new(40, 0, 40, 40),
                map: vec![10.0; 64],
                height: 8,
                width: 8,
                flipped: true,
            },
        ];
        let out = render(&frame, &regions, &cfg).unwrap();
        let cold = *out.at_2d::<Vec3b>(20, 20).unwrap();
        let hot = *out.at_2d::<Vec3b>(20, 60).unwrap();
        // JET: 0 → dark blue (B high), 255 → dark red (R high); BGR order.
        assert!(cold[0] > 100 && cold[2] < 50, "{cold:?}");
        assert!(hot[2] > 100 && hot[0] < 50, "{hot:?}");
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("h/heat.png");
        write_png(&p, &out).unwrap();
        assert!(std::fs::metadata(&p).unwrap().len() > 100);
    }
}

//! ROC and precision–recall curves as PNG (plotters, bitmap backend). The font is bundled
//! (DejaVu Sans via the `dejavu` crate, rendered with ab_glyph) so plots render identically on
//! machines without any system fonts.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};

const SIZE: (u32, u32) = (640, 560);
static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // A broken bundled font would only cost the labels, never the report.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn perr<E: std::fmt::Display>(e: E) -> Error {
    Error::Other(format!("plot: {e}"))
}

/// Draws one curve on unit axes and writes it as an RGB PNG.
pub fn curve_png(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
    diagonal: bool,
) -> Result<()> {
    register_font();
    let (w, h) = SIZE;
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(perr)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(54)
            .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)
            .map_err(perr)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(perr)?;
        if diagonal {
            chart
                .draw_series(LineSeries::new(
                    vec![(0.0, 0.0), (1.0, 1.0)],
                    ShapeStyle::from(&BLACK.mix(0.3)).stroke_width(1),
                ))
                .map_err(perr)?;
        }
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                ShapeStyle::from(&BLUE).stroke_width(2),
            ))
            .map_err(perr)?;
        root.present().map_err(perr)?;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("create {}", parent.display()), e))?;
    }
    image::save_buffer_with_format(
        path,
        &buf,
        w,
        h,
        image::ExtendedColorType::Rgb8,
        image::ImageFormat::Png,
    )
    .map_err(|e| Error::Other(format!("write {}: {e}", path.display())))
}

/// ROC curve (stepwise points from `metrics::roc_curve`).
pub fn roc_png(path: &Path, points: &[(f64, f64)], auroc: f64) -> Result<()> {
    curve_png(
        path,
        &format!("ROC (AUROC {auroc:.3})"),
        "false-positive rate",
        "true-positive rate",
        points,
        true,
    )
}

/// Precision–recall curve drawn as sklearn's step plot (recall increasing).
pub fn pr_png(path: &Path, points: &[(f64, f64)], ap: f64) -> Result<()> {
    let mut steps = Vec::with_capacity(points.len() * 2 + 1);
    let mut prev_r = 0.0;
    for &(r, p) in points {
        steps.push((prev_r, p));
        steps.push((r, p));
        prev_r = r;
    }
    curve_png(
        path,
        &format!("Precision–recall (AP {ap:.3})"),
        "recall",
        "precision",
        &steps,
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_readable_pngs_with_ink() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("roc.png");
        roc_png(&p, &[(0.0, 0.0), (0.1, 0.8), (1.0, 1.0)], 0.9).unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), SIZE);
        // The curve is blue: some pixels must be strongly blue.
        let blue = img
            .pixels()
            .filter(|px| px[2] > 200 && px[0] < 80 && px[1] < 80)
            .count();
        assert!(blue > 200, "no curve drawn ({blue} blue pixels)");
        // Labels are drawn in black-ish text: a bundled font must have produced dark pixels
        // outside the plot area (left margin holds the y-axis labels).
        let dark_left = (0..50)
            .flat_map(|x| (0..SIZE.1).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y)[0] < 100)
            .count();
        assert!(dark_left > 20, "no axis text rendered ({dark_left})");
        pr_png(&d.path().join("pr.png"), &[(0.5, 1.0), (1.0, 0.6)], 0.8).unwrap();
    }
}

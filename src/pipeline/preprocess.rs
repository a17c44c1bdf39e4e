//! From encoded bytes to the model's NCHW f32 tensor, in the order docs/model-package.md fixes:
//! decode (8/16-bit; 16 → 8 by `>> 8`) → colour to the model's channels (gray with the
//! `COLOR_BGR2GRAY` weights) → [optional CLAHE] → crop the region of interest → resize
//! (INTER_AREA to shrink, INTER_LINEAR to enlarge) → `pixel / scale` → the photometric step
//! (`(v − mean) / std`, or per-image `standardize`) → CHW.
//!
//! Decoding uses the `image` crate with hard limits so that a header claiming a huge image is
//! refused before anything is allocated; everything after decoding uses OpenCV so that resizing
//! and colour conversion match the Python reference (cv2) bit for bit.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader};
use opencv::core::{Mat, Rect, Scalar, Size, CV_8UC1, CV_8UC3};
use opencv::imgproc;
use opencv::prelude::*;

use crate::config::{GeometryConfig, PreprocessConfig};
use crate::error::{DecodeError, Error, Result};
use crate::pipeline::package::{InputSection, Photometric};
use crate::pipeline::scoring::pairwise_sum;
use crate::pipeline::track::{Orientation, Slot, TrackLocator};

/// Refuse-before-allocating limits for decoding, all checked from the image's header.
///
/// `Default` holds the allocation limits of the default configuration and no frame-shape
/// checks (the tools decode crops and test images of any size); `From<&PreprocessConfig>` (what
/// [`Preprocessor`], hence the service, uses) adds the frame-shape checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    pub max_width: u32,
    pub max_height: u32,
    pub max_decoded_bytes: u64,
    /// Most pixels (width × height).
    pub max_pixels: u64,
    /// Shortest accepted side in pixels (0: any).
    pub min_side: u32,
    /// Longest side at most this many times the shorter one (0: any ratio).
    pub max_aspect_ratio: u32,
    /// Refuse an encoding of more than [`ENCODED_BYTES_PER_RAW_BYTE`] × the raw pixel bytes +
    /// [`ENCODED_SLACK_BYTES`]: data appended after the image, which would be stored with it.
    pub refuse_trailing_data: bool,
}

/// No image format needs more than this many encoded bytes per raw pixel byte (uncompressed
/// BMP/TIFF and a stored PNG need about one)…
pub const ENCODED_BYTES_PER_RAW_BYTE: u64 = 2;
/// …plus this much for headers and metadata (EXIF, ICC profiles).
pub const ENCODED_SLACK_BYTES: u64 = 64 * 1024;

impl Default for DecodeLimits {
    fn default() -> Self {
        let c = PreprocessConfig::default();
        Self {
            max_width: c.max_width,
            max_height: c.max_height,
            max_decoded_bytes: c.max_decoded_bytes,
            max_pixels: c.max_pixels,
            min_side: 0,
            max_aspect_ratio: 0,
            refuse_trailing_data: false,
        }
    }
}

impl From<&PreprocessConfig> for DecodeLimits {
    fn from(c: &PreprocessConfig) -> Self {
        Self {
            max_width: c.max_width,
            max_height: c.max_height,
            max_decoded_bytes: c.max_decoded_bytes,
            max_pixels: c.max_pixels,
            min_side: c.min_side,
            max_aspect_ratio: c.max_aspect_ratio,
            refuse_trailing_data: true,
        }
    }
}

impl DecodeLimits {
    /// The checks that need only the header: `raw_bytes` is what the decoded pixels take.
    fn check_header(
        &self,
        encoded_bytes: usize,
        (w, h): (u32, u32),
        raw_bytes: u64,
    ) -> std::result::Result<(), DecodeError> {
        let pixels = w as u64 * h as u64;
        if pixels > self.max_pixels {
            return Err(DecodeError::TooLarge(format!(
                "{w}×{h} px is {:.1} MP, over preprocess.max_pixels = {} ({:.1} MP)",
                pixels as f64 / 1e6,
                self.max_pixels,
                self.max_pixels as f64 / 1e6
            )));
        }
        let (short, long) = (w.min(h), w.max(h));
        if short < self.min_side {
            return Err(DecodeError::Implausible(format!(
                "{w}×{h} px: its shorter side is under preprocess.min_side = {} px",
                self.min_side
            )));
        }
        if self.max_aspect_ratio > 0 && long as u64 > short as u64 * self.max_aspect_ratio as u64 {
            return Err(DecodeError::Implausible(format!(
                "{w}×{h} px: aspect ratio {:.0}:1 is over preprocess.max_aspect_ratio = {}:1",
                long as f64 / short.max(1) as f64,
                self.max_aspect_ratio
            )));
        }
        let most = raw_bytes
            .saturating_mul(ENCODED_BYTES_PER_RAW_BYTE)
            .saturating_add(ENCODED_SLACK_BYTES);
        if self.refuse_trailing_data && encoded_bytes as u64 > most {
            return Err(DecodeError::Implausible(format!(
                "{encoded_bytes} bytes for a {w}×{h} px image whose pixels take {raw_bytes} bytes \
                 (at most {most} expected): data appended after the image?"
            )));
        }
        Ok(())
    }
}

/// Decodes an image into an 8-bit Mat that is either 1-channel gray or 3-channel **RGB**
/// (alpha dropped). `name` is only used in error messages. Dimensions, pixel count, shape and
/// encoded size are checked from the header, before the pixel buffer is allocated.
pub fn decode(bytes: &[u8], name: &str, limits: DecodeLimits) -> Result<Mat> {
    let err = |kind: DecodeError| Error::Decode {
        source_name: name.to_string(),
        kind,
    };
    if bytes.is_empty() {
        return Err(err(DecodeError::Empty));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| err(DecodeError::Corrupt(e.to_string())))?;
    if reader.format().is_none() {
        return Err(err(DecodeError::UnknownFormat));
    }
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_width);
    l.max_image_height = Some(limits.max_height);
    l.max_alloc = Some(limits.max_decoded_bytes);
    reader.limits(l.clone());
    // Reads the header only; refuses dimensions over max_width / max_height.
    let mut decoder = reader.into_decoder().map_err(|e| err(classify(e)))?;
    limits
        .check_header(bytes.len(), decoder.dimensions(), decoder.total_bytes())
        .map_err(err)?;
    // As `ImageReader::decode`: the pixel buffer counts against max_decoded_bytes, and the
    // decoder's own buffers get what is left.
    l.reserve(decoder.total_bytes())
        .and_then(|()| decoder.set_limits(l))
        .map_err(|e| err(classify(e)))?;
    let img = DynamicImage::from_decoder(decoder).map_err(|e| err(classify(e)))?;
    to_mat(img).map_err(err)
}

fn classify(e: ImageError) -> DecodeError {
    match e {
        ImageError::Limits(l) => DecodeError::TooLarge(l.to_string()),
        ImageError::Unsupported(u) => DecodeError::UnsupportedPixel(u.to_string()),
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeError::Corrupt(format!("truncated ({io})"))
        }
        other => DecodeError::Corrupt(other.to_string()),
    }
}

fn mat_from(buf: &[u8], w: u32, h: u32, channels: i32) -> std::result::Result<Mat, DecodeError> {
    let typ = if channels == 1 { CV_8UC1 } else { CV_8UC3 };
    let mut m = Mat::new_rows_cols_with_default(h as i32, w as i32, typ, Scalar::all(0.0))
        .map_err(|e| DecodeError::TooLarge(e.to_string()))?;
    m.data_bytes_mut()
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?
        .copy_from_slice(buf);
    Ok(m)
}

fn to_mat(img: DynamicImage) -> std::result::Result<Mat, DecodeError> {
    let (w, h) = (img.width(), img.height());
    if w == 0 || h == 0 {
        return Err(DecodeError::Corrupt("zero-sized image".into()));
    }
    // 16-bit → 8-bit by >> 8 (the contract), not image's rounding /257 conversion.
    let hi = |v: u16| (v >> 8) as u8;
    match img {
        DynamicImage::ImageLuma8(b) => mat_from(b.as_raw(), w, h, 1),
        DynamicImage::ImageLumaA8(b) => {
            let g: Vec<u8> = b.as_raw().chunks_exact(2).map(|p| p[0]).collect();
            mat_from(&g, w, h, 1)
        }
        DynamicImage::ImageRgb8(b) => mat_from(b.as_raw(), w, h, 3),
        DynamicImage::ImageRgba8(b) => {
            let rgb: Vec<u8> = b
                .as_raw()
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            mat_from(&rgb, w, h, 3)
        }
        DynamicImage::ImageLuma16(b) => {
            let g: Vec<u8> = b.as_raw().iter().map(|&v| hi(v)).collect();
            mat_from(&g, w, h, 1)
        }
        DynamicImage::ImageLumaA16(b) => {
            let g: Vec<u8> = b.as_raw().chunks_exact(2).map(|p| hi(p[0])).collect();
            mat_from(&g, w, h, 1)
        }
        DynamicImage::ImageRgb16(b) => {
            let rgb: Vec<u8> = b.as_raw().iter().map(|&v| hi(v)).collect();
            mat_from(&rgb, w, h, 3)
        }
        DynamicImage::ImageRgba16(b) => {
            let rgb: Vec<u8> = b
                .as_raw()
                .chunks_exact(4)
                .flat_map(|p| [hi(p[0]), hi(p[1]), hi(p[2])])
                .collect();
            mat_from(&rgb, w, h, 3)
        }
        other => Err(DecodeError::UnsupportedPixel(format!(
            "{:?} (only 8- and 16-bit integer images are accepted)",
            other.color()
        ))),
    }
}

/// Converts a decoded gray/RGB Mat to the model's channel count.
pub fn to_channels(m: &Mat, channels: usize) -> Result<Mat> {
    let have = m.channels() as usize;
    if have == channels {
        return Ok(m.clone());
    }
    let code = match (have, channels) {
        // Same weights as cv2.COLOR_BGR2GRAY applied to the matching channels.
        (3, 1) => imgproc::COLOR_RGB2GRAY,
        (1, 3) => imgproc::COLOR_GRAY2RGB,
        _ => {
            return Err(Error::Preprocess(format!(
                "cannot convert {have} channels to {channels}"
            )))
        }
    };
    let mut out = Mat::default();
    imgproc::cvt_color(m, &mut out, code, 0)?;
    Ok(out)
}

/// Gray view of a frame (for fastener search), without copying when it already is gray.
pub fn to_gray(m: &Mat) -> Result<Mat> {
    to_channels(m, 1)
}

/// Contrast-limited adaptive histogram equalisation; on colour frames it equalises the L channel
/// of Lab so that hues do not shift.
pub fn clahe(m: &Mat, clip_limit: f64, tile: i32) -> Result<Mat> {
    let mut c = imgproc::create_clahe(clip_limit, Size::new(tile, tile))?;
    let mut out = Mat::default();
    if m.channels() == 1 {
        c.apply(m, &mut out)?;
        return Ok(out);
    }
    let mut lab = Mat::default();
    imgproc::cvt_color(m, &mut lab, imgproc::COLOR_RGB2Lab, 0)?;
    let mut planes = opencv::core::Vector::<Mat>::new();
    opencv::core::split(&lab, &mut planes)?;
    let mut l_eq = Mat::default();
    c.apply(&planes.get(0)?, &mut l_eq)?;
    planes.set(0, l_eq)?;
    opencv::core::merge(&planes, &mut lab)?;
    imgproc::cvt_color(&lab, &mut out, imgproc::COLOR_Lab2RGB, 0)?;
    Ok(out)
}

/// INTER_AREA when the image shrinks (in both directions), INTER_LINEAR otherwise; no resampling
/// at all when the size already matches.
pub fn resize_to(m: &Mat, width: usize, height: usize) -> Result<Mat> {
    let (w, h) = (m.cols() as usize, m.rows() as usize);
    if w == width && h == height {
        return Ok(m.clone());
    }
    let interp = if width <= w && height <= h {
        imgproc::INTER_AREA
    } else {
        imgproc::INTER_LINEAR
    };
    let mut out = Mat::default();
    imgproc::resize(
        m,
        &mut out,
        Size::new(width as i32, height as i32),
        0.0,
        0.0,
        interp,
    )?;
    Ok(out)
}

/// Crops `r` (clipped to the frame). A box entirely outside the frame is an error.
pub fn crop(m: &Mat, r: Rect) -> Result<Mat> {
    let frame = Rect::new(0, 0, m.cols(), m.rows());
    let clipped = r & frame;
    if clipped.width <= 0 || clipped.height <= 0 {
        return Err(Error::Preprocess(format!(
            "region {}x{}+{}+{} lies outside the {}x{} frame",
            r.width,
            r.height,
            r.x,
            r.y,
            m.cols(),
            m.rows()
        )));
    }
    Ok(Mat::roi(m, clipped)?.try_clone()?)
}

/// How a crop was turned before scoring (and is turned back for heatmaps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CropView {
    pub transposed: bool,
    pub flipped: bool,
}

impl CropView {
    pub const AS_IS: CropView = CropView {
        transposed: false,
        flipped: false,
    };

    /// A track slot's crop turned so that the model sees the assembly as it was trained, rail
    /// below it: transposed when the rails run down, then flipped top to bottom on the far side.
    pub fn of_slot(slot: &Slot, orientation: Orientation) -> Self {
        Self {
            transposed: orientation == Orientation::Down,
            flipped: slot.side > 0,
        }
    }

    /// Frame orientation → the model's.
    pub fn apply(&self, m: &Mat) -> Result<Mat> {
        let mut cur = m.try_clone()?;
        if self.transposed {
            let mut t = Mat::default();
            opencv::core::transpose(&cur, &mut t)?;
            cur = t;
        }
        if self.flipped {
            let mut f = Mat::default();
            opencv::core::flip(&cur, &mut f, 0)?;
            cur = f;
        }
        Ok(cur)
    }

    /// The model's orientation → the frame's (the inverse of [`CropView::apply`]).
    pub fn undo(&self, m: &Mat) -> Result<Mat> {
        let mut cur = m.try_clone()?;
        if self.flipped {
            let mut f = Mat::default();
            opencv::core::flip(&cur, &mut f, 0)?;
            cur = f;
        }
        if self.transposed {
            let mut t = Mat::default();
            opencv::core::transpose(&cur, &mut t)?;
            cur = t;
        }
        Ok(cur)
    }
}

/// Normalisation per the manifest's `[input]` (docs/model-package.md).
///
/// `photometric = "none"`: folded into a 256-entry table per channel, each entry computed in
/// f32 exactly as NumPy does it (`(p / scale − mean) / std`, all float32).
///
/// `photometric = "standardize"`: per image and channel, μ and σ (population) of
/// `v = p / scale` over H×W in f64, `x = clip((v − μ) / (spread · max(σ, 1/scale)), −1, 1)`,
/// rounded to f32.
#[derive(Debug, Clone)]
pub struct Normalizer {
    channels: usize,
    height: usize,
    width: usize,
    step: Step,
}

#[derive(Debug, Clone)]
enum Step {
    Table {
        lut: Vec<[f32; 256]>,
        /// Its inverse per channel: pixel = (x · std + mean) · scale.
        inverse: Denorm,
    },
    Standardize {
        /// `p / scale` in f64 for every byte value.
        v: Box<[f64; 256]>,
        spread: f64,
        /// The least σ used: one grey level, `1 / scale`.
        min_sigma: f64,
        scale: f64,
    },
}

impl Normalizer {
    /// Fails only for a `standardize` input without a valid `spread`, which a loaded
    /// manifest never has.
    pub fn new(input: &InputSection) -> Result<Self> {
        let step = match input.photometric {
            Photometric::None => {
                let scale = input.scale as f32;
                Step::Table {
                    lut: (0..input.channels)
                        .map(|c| {
                            let (mean, std) = (input.mean[c] as f32, input.std[c] as f32);
                            let mut t = [0f32; 256];
                            for (p, v) in t.iter_mut().enumerate() {
                                *v = ((p as f32) / scale - mean) / std;
                            }
                            t
                        })
                        .collect(),
                    inverse: Denorm {
                        channels: (0..input.channels)
                            .map(|c| (input.std[c] * input.scale, input.mean[c] * input.scale))
                            .collect(),
                    },
                }
            }
            Photometric::Standardize => {
                let spread = input.standardize_spread().map_err(Error::Preprocess)?;
                let mut v = Box::new([0f64; 256]);
                for (p, x) in v.iter_mut().enumerate() {
                    *x = p as f64 / input.scale;
                }
                Step::Standardize {
                    v,
                    spread,
                    min_sigma: 1.0 / input.scale,
                    scale: input.scale,
                }
            }
        };
        Ok(Self {
            channels: input.channels,
            height: input.height,
            width: input.width,
            step,
        })
    }

    pub fn photometric(&self) -> Photometric {
        match self.step {
            Step::Table { .. } => Photometric::None,
            Step::Standardize { .. } => Photometric::Standardize,
        }
    }

    pub fn chw(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Resizes `roi` (already in the model's channels) and writes its normalized CHW tensor into
    /// `out` (length C·H·W).
    pub fn write_tensor(&self, roi: &Mat, out: &mut [f32]) -> Result<()> {
        self.write(roi, out, None)
    }

    /// [`Normalizer::write_tensor`], and the way back from this crop's model space to pixels
    /// (for `standardize`, with the crop's own μ and σ).
    pub fn write_tensor_with_inverse(&self, roi: &Mat, out: &mut [f32]) -> Result<Denorm> {
        let mut channels = Vec::with_capacity(self.channels);
        self.write(roi, out, Some(&mut channels))?;
        Ok(match &self.step {
            Step::Table { inverse, .. } => inverse.clone(),
            Step::Standardize { .. } => Denorm { channels },
        })
    }

    /// With `inverse`, a `standardize` step pushes each channel's (gain, offset) there.
    fn write(
        &self,
        roi: &Mat,
        out: &mut [f32],
        mut inverse: Option<&mut Vec<(f64, f64)>>,
    ) -> Result<()> {
        if roi.channels() as usize != self.channels {
            return Err(Error::Preprocess(format!(
                "region has {} channels, the model expects {}",
                roi.channels(),
                self.channels
            )));
        }
        if out.len() != self.chw() {
            return Err(Error::Preprocess(format!(
                "tensor slot holds {} values, expected {}",
                out.len(),
                self.chw()
            )));
        }
        let resized = resize_to(roi, self.width, self.height)?;
        let resized = if resized.is_continuous() {
            resized
        } else {
            resized.try_clone()?
        };
        let px = resized.data_bytes()?;
        let plane = self.height * self.width;
        let c = self.channels;
        match &self.step {
            Step::Table { lut, .. } => {
                for (i, pixel) in px.chunks_exact(c).enumerate() {
                    for (ch, &p) in pixel.iter().enumerate() {
                        out[ch * plane + i] = lut[ch][p as usize];
                    }
                }
            }
            Step::Standardize {
                v,
                spread,
                min_sigma,
                scale,
            } => {
                let n = plane as f64;
                let mut vals = vec![0f64; plane];
                let mut dev = vec![0f64; plane];
                for (ch, dst) in out.chunks_exact_mut(plane).enumerate() {
                    for (x, pixel) in vals.iter_mut().zip(px.chunks_exact(c)) {
                        *x = v[pixel[ch] as usize];
                    }
                    // As NumPy's mean and std: two passes, pairwise sums.
                    let mu = pairwise_sum(&vals) / n;
                    for (d, &x) in dev.iter_mut().zip(&vals) {
                        *d = (x - mu) * (x - mu);
                    }
                    let sigma = (pairwise_sum(&dev) / n).sqrt().max(*min_sigma);
                    let denom = spread * sigma;
                    if let Some(inv) = inverse.as_deref_mut() {
                        // v = x · spread · σ + μ, pixel = v · scale.
                        inv.push((denom * scale, mu * scale));
                    }
                    for (o, &x) in dst.iter_mut().zip(&vals) {
                        *o = ((x - mu) / denom).clamp(-1.0, 1.0) as f32;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The way back from one crop's model-space values to pixels, per channel
/// `pixel = gain · x + offset` (the photometric step of docs/model-package.md reversed):
/// `none`: `(x · std + mean) · scale`; `standardize`: `(x · spread · σ + μ) · scale` with the
/// crop's own μ and σ (values the clip cut off stay at μ ± spread·σ).
#[derive(Debug, Clone, PartialEq)]
pub struct Denorm {
    /// (gain, offset) per channel.
    pub channels: Vec<(f64, f64)>,
}

impl Denorm {
    /// A CHW tensor of `height × width` (the model's x̂) as interleaved 8-bit pixels (HWC),
    /// rounded and clamped to 0 … 255.
    pub fn to_pixels(&self, chw: &[f32], height: usize, width: usize) -> Vec<u8> {
        let c = self.channels.len();
        let plane = height * width;
        assert_eq!(
            chw.len(),
            c * plane,
            "tensor does not match {c}×{height}×{width}"
        );
        let mut out = vec![0u8; c * plane];
        for (ch, &(gain, offset)) in self.channels.iter().enumerate() {
            for (i, &x) in chw[ch * plane..(ch + 1) * plane].iter().enumerate() {
                out[i * c + ch] = (gain * x as f64 + offset).round().clamp(0.0, 255.0) as u8;
            }
        }
        out
    }
}

/// Where in a frame the fasteners are.
#[derive(Debug, Clone, PartialEq)]
pub enum RoiMode {
    /// The whole frame is one fastener image (the MVTec crops, fixed-mount cameras).
    Whole,
    /// Fixed rectangles per camera.
    Rects(Vec<Rect>),
    /// Find every fastener with template matching (`fastener_search`).
    Search,
    /// Place a slot wherever the track's geometry says a fastener must be (`track`).
    Track(TrackLocator),
}

impl RoiMode {
    pub fn from_config(c: &PreprocessConfig) -> Result<Self> {
        Self::parse(&c.roi, &c.rects, &c.geometry)
    }

    /// `whole`, `search`, `rects` with its `[x, y, w, h]` rectangles, or `track` with the
    /// camera's view of the track.
    pub fn parse(mode: &str, rects: &[[i32; 4]], geometry: &GeometryConfig) -> Result<Self> {
        match mode {
            "whole" => Ok(RoiMode::Whole),
            "search" => Ok(RoiMode::Search),
            "track" => Ok(RoiMode::Track(TrackLocator::from_config(geometry)?)),
            "rects" => {
                if rects.is_empty() || rects.iter().any(|r| r[2] <= 0 || r[3] <= 0) {
                    return Err(Error::Config(
                        "roi = \"rects\" needs rects = [[x, y, w, h], …] with positive w and h"
                            .into(),
                    ));
                }
                Ok(RoiMode::Rects(
                    rects
                        .iter()
                        .map(|r| Rect::new(r[0], r[1], r[2], r[3]))
                        .collect(),
                ))
            }
            other => Err(Error::Config(format!(
                "unknown roi mode {other:?} (whole, rects, search or track)"
            ))),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            RoiMode::Whole => "whole",
            RoiMode::Rects(_) => "rects",
            RoiMode::Search => "search",
            RoiMode::Track(_) => "track",
        }
    }
}

/// The per-model preprocessing pipeline.
#[derive(Debug, Clone)]
pub struct Preprocessor {
    pub normalizer: Normalizer,
    pub channels: usize,
    pub limits: DecodeLimits,
    pub clahe: Option<(f64, i32)>,
}

impl Preprocessor {
    pub fn new(input: &InputSection, cfg: &PreprocessConfig) -> Result<Self> {
        Ok(Self {
            normalizer: Normalizer::new(input)?,
            channels: input.channels,
            limits: DecodeLimits::from(cfg),
            clahe: cfg.clahe.then_some((cfg.clahe_clip_limit, cfg.clahe_tile)),
        })
    }

    /// Decode and convert to the model's channels (+ CLAHE when enabled): the frame that crops
    /// are cut from.
    pub fn frame(&self, bytes: &[u8], name: &str) -> Result<Mat> {
        let decoded = decode(bytes, name, self.limits)?;
        let m = to_channels(&decoded, self.channels)?;
        match self.clahe {
            Some((clip, tile)) => clahe(&m, clip, tile),
            None => Ok(m),
        }
    }

    pub fn write_tensor(&self, roi: &Mat, out: &mut [f32]) -> Result<()> {
        self.normalizer.write_tensor(roi, out)
    }

    pub fn write_tensor_with_inverse(&self, roi: &Mat, out: &mut [f32]) -> Result<Denorm> {
        self.normalizer.write_tensor_with_inverse(roi, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, ImageFormat, Luma, Rgb};

    fn encode(img: DynamicImage, fmt: ImageFormat) -> Vec<u8> {
        let mut v = Cursor::new(Vec::new());
        img.write_to(&mut v, fmt).unwrap();
        v.into_inner()
    }

    fn gray_ramp(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageLuma8(ImageBuffer::from_fn(w, h, |x, y| {
            Luma([((x * 7 + y * 3) % 256) as u8])
        }))
    }

    fn input(channels: usize, size: usize) -> InputSection {
        InputSection {
            name: "image".into(),
            channels,
            height: size,
            width: size,
            scale: 255.0,
            mean: vec![0.5; channels],
            std: vec![0.5; channels],
            photometric: Photometric::None,
            spread: None,
            resize: "area".into(),
        }
    }

    fn standardized(channels: usize, size: usize, spread: f64) -> Normalizer {
        Normalizer::new(&InputSection {
            photometric: Photometric::Standardize,
            spread: Some(spread),
            ..input(channels, size)
        })
        .unwrap()
    }

    fn gray_mat(w: usize, h: usize, px: &[u8]) -> Mat {
        mat_from(px, w as u32, h as u32, 1).unwrap()
    }

    fn decode_err(bytes: &[u8]) -> DecodeError {
        match decode(bytes, "t", DecodeLimits::default()) {
            Err(Error::Decode { kind, .. }) => kind,
            other => panic!("expected a decode error, got {other:?}"),
        }
    }

    #[test]
    fn decodes_every_format_to_the_same_pixels() {
        let img = gray_ramp(40, 30);
        for fmt in [ImageFormat::Png, ImageFormat::Bmp, ImageFormat::Tiff] {
            let m = decode(&encode(img.clone(), fmt), "t", DecodeLimits::default()).unwrap();
            assert_eq!((m.cols(), m.rows()), (40, 30), "{fmt:?}");
            let g = to_gray(&m).unwrap();
            assert_eq!(
                g.data_bytes().unwrap(),
                img.as_luma8().unwrap().as_raw().as_slice(),
                "{fmt:?}"
            );
        }
        // JPEG is lossy: only check it decodes to the right size and roughly the right values.
        let m = decode(
            &encode(img.clone(), ImageFormat::Jpeg),
            "t",
            DecodeLimits::default(),
        )
        .unwrap();
        assert_eq!((m.cols(), m.rows(), m.channels()), (40, 30, 1));
    }

    #[test]
    fn sixteen_bit_is_shifted_not_rounded() {
        // 0x12FF >> 8 = 0x12, whereas rounding /257 would give 0x13.
        let img = DynamicImage::ImageLuma16(ImageBuffer::from_fn(4, 4, |_, _| Luma([0x12FFu16])));
        let m = decode(&encode(img, ImageFormat::Png), "t", DecodeLimits::default()).unwrap();
        assert!(m.data_bytes().unwrap().iter().all(|&v| v == 0x12));
        let rgb = DynamicImage::ImageRgb16(ImageBuffer::from_fn(2, 2, |_, _| {
            Rgb([0xFFFFu16, 0x80FF, 0x00FF])
        }));
        let m = decode(&encode(rgb, ImageFormat::Png), "t", DecodeLimits::default()).unwrap();
        assert_eq!(&m.data_bytes().unwrap()[..3], &[0xFF, 0x80, 0x00]);
    }

    #[test]
    fn colour_to_gray_uses_bgr2gray_weights() {
        // cv2 BGR2GRAY: 0.299 R + 0.587 G + 0.114 B (fixed point, rounded).
        let rgb = DynamicImage::ImageRgb8(ImageBuffer::from_fn(1, 1, |_, _| Rgb([200u8, 100, 50])));
        let m = decode(&encode(rgb, ImageFormat::Png), "t", DecodeLimits::default()).unwrap();
        let g = to_gray(&m).unwrap();
        let expected = (0.299f64 * 200.0 + 0.587 * 100.0 + 0.114 * 50.0).round() as u8; // 124
        assert_eq!(g.data_bytes().unwrap()[0], expected);
    }

    #[test]
    fn bad_inputs_give_clear_errors() {
        assert_eq!(decode_err(b""), DecodeError::Empty);
        assert_eq!(
            decode_err(b"hello, this is text and not an image at all"),
            DecodeError::UnknownFormat
        );
        let png = encode(gray_ramp(64, 64), ImageFormat::Png);
        assert!(matches!(
            decode_err(&png[..png.len() / 2]),
            DecodeError::Corrupt(_)
        ));
        let mut corrupt = png.clone();
        for b in corrupt.iter_mut().skip(40).take(200) {
            *b ^= 0x5A;
        }
        assert!(matches!(decode_err(&corrupt), DecodeError::Corrupt(_)));
        let msg = Error::Decode {
            source_name: "x.png".into(),
            kind: decode_err(&png[..20]),
        }
        .to_string();
        assert!(
            msg.contains("x.png") && (msg.contains("truncated") || msg.contains("corrupt")),
            "{msg}"
        );
    }

    #[test]
    fn float_images_are_refused_by_pixel_type() {
        let img =
            DynamicImage::ImageRgb32F(ImageBuffer::from_fn(4, 4, |_, _| Rgb([0.5f32, 0.25, 1.0])));
        let tiff = encode(img, ImageFormat::Tiff);
        assert!(matches!(
            decode_err(&tiff),
            DecodeError::UnsupportedPixel(_)
        ));
    }

    /// A PNG whose header claims 100000×100000 pixels (10 GB gray): refused from the header.
    fn bomb_png() -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut crc_in = kind.to_vec();
            crc_in.extend_from_slice(data);
            out.extend_from_slice(&crc_in);
            out.extend_from_slice(&crc32(&crc_in).to_be_bytes());
        }
        fn crc32(data: &[u8]) -> u32 {
            let mut c = 0xFFFF_FFFFu32;
            for &b in data {
                c ^= b as u32;
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        }
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        chunk(&mut v, b"IHDR", &ihdr);
        chunk(
            &mut v,
            b"IDAT",
            &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        );
        chunk(&mut v, b"IEND", &[]);
        v
    }

    #[test]
    fn decompression_bomb_is_refused_before_allocation() {
        assert!(matches!(decode_err(&bomb_png()), DecodeError::TooLarge(_)));
        // Within the dimension limits but over the byte budget.
        let tight = DecodeLimits {
            max_width: 1 << 20,
            max_height: 1 << 20,
            max_decoded_bytes: 1000,
            ..DecodeLimits::default()
        };
        let png = encode(gray_ramp(64, 64), ImageFormat::Png);
        match decode(&png, "t", tight) {
            Err(Error::Decode {
                kind: DecodeError::TooLarge(_),
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn frame_limits_refuse_from_the_header() {
        let frame = DecodeLimits::from(&PreprocessConfig::default());
        let check = |img: DynamicImage, tail: usize, limits: DecodeLimits| {
            let mut png = encode(img, ImageFormat::Png);
            png.extend(std::iter::repeat_n(7u8, tail));
            match decode(&png, "t", limits) {
                Ok(_) => None,
                Err(Error::Decode { kind, .. }) => Some(kind),
                Err(other) => panic!("{other:?}"),
            }
        };
        let implausible = |k: Option<DecodeError>, says: &str| match k {
            Some(DecodeError::Implausible(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("expected Implausible({says}), got {other:?}"),
        };
        implausible(check(gray_ramp(1, 1), 0, frame), "min_side = 16");
        implausible(
            check(gray_ramp(2048, 16), 0, frame),
            "max_aspect_ratio = 64:1",
        );
        implausible(
            check(gray_ramp(16, 2048), 0, frame),
            "max_aspect_ratio = 64:1",
        );
        implausible(check(gray_ramp(64, 64), 100_000, frame), "appended");
        assert_eq!(check(gray_ramp(1024, 16), 0, frame), None);
        assert_eq!(check(gray_ramp(64, 64), 4096, frame), None);
        // The tools' default checks allocation only: any shape, any tail.
        assert_eq!(
            check(gray_ramp(1, 1), 100_000, DecodeLimits::default()),
            None
        );
        let budget = DecodeLimits {
            max_pixels: 4095,
            ..frame
        };
        match check(gray_ramp(64, 64), 0, budget) {
            Some(DecodeError::TooLarge(m)) => {
                assert!(
                    m.contains("64×64") && m.contains("max_pixels = 4095"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn normalizer_writes_chw_in_model_space() {
        let n = Normalizer::new(&input(3, 2)).unwrap();
        assert_eq!(n.photometric(), Photometric::None);
        let rgb = DynamicImage::ImageRgb8(ImageBuffer::from_fn(2, 2, |x, _| {
            if x == 0 {
                Rgb([0u8, 255, 51])
            } else {
                Rgb([255u8, 0, 102])
            }
        }));
        let m = decode(&encode(rgb, ImageFormat::Png), "t", DecodeLimits::default()).unwrap();
        let mut out = vec![0f32; 12];
        n.write_tensor(&m, &mut out).unwrap();
        // channel planes: R = [0,255,0,255] → [-1,1,-1,1]; G → [1,-1,1,-1]; B: 51/255=0.2 → -0.6, 102 → -0.2
        assert_eq!(&out[0..4], &[-1.0, 1.0, -1.0, 1.0]);
        assert_eq!(&out[4..8], &[1.0, -1.0, 1.0, -1.0]);
        assert!(
            (out[8] + 0.6).abs() < 1e-6 && (out[9] + 0.2).abs() < 1e-6,
            "{out:?}"
        );
        // wrong channel count is refused
        let g = to_gray(&m).unwrap();
        assert!(n.write_tensor(&g, &mut out).is_err());
    }

    #[test]
    fn standardize_uses_each_images_own_statistics() {
        // v = [0, 0, 1, 1]: μ = 0.5, σ = 0.5 → (v − μ) / (spread · σ)
        let m = gray_mat(2, 2, &[0, 0, 255, 255]);
        let mut out = vec![0f32; 4];
        let n = standardized(1, 2, 1.0);
        assert_eq!(n.photometric(), Photometric::Standardize);
        n.write_tensor(&m, &mut out).unwrap();
        assert_eq!(out, [-1.0, -1.0, 1.0, 1.0]);
        standardized(1, 2, 2.0).write_tensor(&m, &mut out).unwrap();
        assert_eq!(out, [-0.5, -0.5, 0.5, 0.5]);
        // By hand, with a spread that does not clip: v = [51, 102, 153, 204] / 255
        // = [.2, .4, .6, .8], μ = .5, σ = √(.05) → x = (v − .5) / (3 √.05).
        let m = gray_mat(2, 2, &[51, 102, 153, 204]);
        standardized(1, 2, 3.0).write_tensor(&m, &mut out).unwrap();
        let s = 3.0 * 0.05f64.sqrt();
        for (o, v) in out.iter().zip([0.2, 0.4, 0.6, 0.8]) {
            assert!((*o as f64 - (v - 0.5) / s).abs() < 1e-7, "{out:?}");
        }
    }

    #[test]
    fn standardize_ignores_brightness_and_contrast() {
        let base: Vec<u8> = (0..64u32).map(|i| (40 + (i * 37) % 61) as u8).collect();
        // 2× the contrast and 10 levels brighter: exactly representable, same standardized input.
        let other: Vec<u8> = base.iter().map(|&p| 2 * p + 10).collect();
        let n = standardized(1, 8, 3.0);
        let (mut a, mut b) = (vec![0f32; 64], vec![0f32; 64]);
        n.write_tensor(&gray_mat(8, 8, &base), &mut a).unwrap();
        n.write_tensor(&gray_mat(8, 8, &other), &mut b).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
        // The `none` path follows the brightness, as it should.
        let plain = Normalizer::new(&input(1, 8)).unwrap();
        plain.write_tensor(&gray_mat(8, 8, &base), &mut a).unwrap();
        plain.write_tensor(&gray_mat(8, 8, &other), &mut b).unwrap();
        assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 0.1));
    }

    #[test]
    fn standardize_floors_sigma_and_clips() {
        let n = standardized(1, 4, 3.0);
        let mut out = vec![0f32; 16];
        // A flat image: σ = 0 → floored at 1/scale, every value 0 (no NaN).
        n.write_tensor(&gray_mat(4, 4, &[77; 16]), &mut out)
            .unwrap();
        assert!(out.iter().all(|&v| v == 0.0), "{out:?}");
        // One pixel a grey level brighter: σ = √15/16/255 < 1/255 → floored; that pixel's
        // x = (15/16 /255) / (3/255) = 0.3125, the others −(1/16)/3.
        let mut px = [77u8; 16];
        px[5] = 78;
        n.write_tensor(&gray_mat(4, 4, &px), &mut out).unwrap();
        assert!((out[5] - 0.3125).abs() < 1e-6, "{out:?}");
        assert!((out[0] + 1.0 / 48.0).abs() < 1e-6, "{out:?}");
        // One bright outlier in a dark field lies far beyond spread·σ: clipped to 1.
        let mut px = [10u8; 16];
        px[3] = 250;
        n.write_tensor(&gray_mat(4, 4, &px), &mut out).unwrap();
        assert_eq!(out[3], 1.0);
        assert!(out.iter().all(|v| (-1.0..=1.0).contains(v)));
    }

    #[test]
    fn standardize_is_per_channel_and_matches_an_f64_reference() {
        // RGB 4×4 with three different channel statistics.
        let (w, h) = (4usize, 4usize);
        let px: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let i = i as u32;
                [
                    (i * 13 % 256) as u8,
                    (200 - i * 3) as u8,
                    (100 + (i * 7) % 20) as u8,
                ]
            })
            .collect();
        let m = mat_from(&px, w as u32, h as u32, 3).unwrap();
        let spread = 2.5;
        let mut out = vec![0f32; 3 * w * h];
        standardized(3, 4, spread)
            .write_tensor(&m, &mut out)
            .unwrap();
        for ch in 0..3 {
            let v: Vec<f64> = px
                .iter()
                .skip(ch)
                .step_by(3)
                .map(|&p| p as f64 / 255.0)
                .collect();
            let mu = v.iter().sum::<f64>() / 16.0;
            let sd = (v.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / 16.0).sqrt();
            for (i, x) in v.iter().enumerate() {
                let want = ((x - mu) / (spread * sd.max(1.0 / 255.0))).clamp(-1.0, 1.0);
                let got = out[ch * 16 + i] as f64;
                assert!(
                    (got - want).abs() < 1e-6,
                    "channel {ch} pixel {i}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn the_inverse_brings_a_crop_back_to_its_pixels() {
        // 8×8 gray ramp and an RGB one; the model sees them at their own size (no resampling).
        let px: Vec<u8> = (0..64).map(|i| (20 + i * 3) as u8).collect();
        let gray = gray_mat(8, 8, &px);
        let rgb_px: Vec<u8> = (0..64 * 3).map(|i| (i * 5 % 251) as u8).collect();
        let rgb = mat_from(&rgb_px, 8, 8, 3).unwrap();
        let none = Normalizer::new(&input(1, 8)).unwrap();
        let none3 = Normalizer::new(&input(3, 8)).unwrap();
        // spread 3: nothing of a ramp is clipped, so the way back is exact up to rounding.
        let std1 = standardized(1, 8, 3.0);
        let std3 = standardized(3, 8, 3.0);
        for (n, m, want) in [
            (&none, &gray, &px),
            (&std1, &gray, &px),
            (&none3, &rgb, &rgb_px),
            (&std3, &rgb, &rgb_px),
        ] {
            let mut x = vec![0f32; n.chw()];
            let inv = n.write_tensor_with_inverse(m, &mut x).unwrap();
            let mut plain = vec![0f32; n.chw()];
            n.write_tensor(m, &mut plain).unwrap();
            assert_eq!(x, plain, "the same tensor either way");
            assert_eq!(&inv.to_pixels(&x, 8, 8), want, "{:?}", n.photometric());
        }
        // none: (x · std + mean) · scale, the same for every crop.
        assert_eq!(
            none.write_tensor_with_inverse(&gray, &mut vec![0f32; 64])
                .unwrap()
                .channels,
            vec![(0.5 * 255.0, 0.5 * 255.0)]
        );
        // standardize: the crop's own μ and σ; a brighter crop gets a larger offset.
        let brighter: Vec<u8> = px.iter().map(|p| p + 30).collect();
        let a = std1
            .write_tensor_with_inverse(&gray, &mut vec![0f32; 64])
            .unwrap();
        let b = std1
            .write_tensor_with_inverse(&gray_mat(8, 8, &brighter), &mut vec![0f32; 64])
            .unwrap();
        assert!(
            (a.channels[0].0 - b.channels[0].0).abs() < 1e-9,
            "same contrast"
        );
        assert!(
            (b.channels[0].1 - a.channels[0].1 - 30.0).abs() < 1e-9,
            "30 levels brighter"
        );
        // Out-of-range values are clamped to 0 … 255.
        assert_eq!(inv_of(&none).to_pixels(&[-3.0, 3.0], 1, 2), vec![0, 255]);
    }

    fn inv_of(n: &Normalizer) -> Denorm {
        n.write_tensor_with_inverse(&gray_mat(8, 8, &[0; 64]), &mut vec![0f32; n.chw()])
            .unwrap()
    }

    #[test]
    fn standardize_without_spread_is_refused() {
        let bad = InputSection {
            photometric: Photometric::Standardize,
            spread: None,
            ..input(1, 4)
        };
        let e = Normalizer::new(&bad).unwrap_err().to_string();
        assert!(e.contains("spread"), "{e}");
        let bad = InputSection {
            spread: Some(0.0),
            ..bad
        };
        assert!(Normalizer::new(&bad).is_err());
    }

    #[test]
    fn resize_uses_area_to_shrink() {
        // 4x4 checker of 0/255 in 2x2 blocks shrunk to 2x2 by area averaging → exact block values;
        // a 1x1 shrink of the whole thing averages to 127.5 → 128 with INTER_AREA.
        let img = DynamicImage::ImageLuma8(ImageBuffer::from_fn(4, 4, |x, y| {
            Luma([if (x / 2 + y / 2) % 2 == 0 { 0u8 } else { 255 }])
        }));
        let m = decode(&encode(img, ImageFormat::Png), "t", DecodeLimits::default()).unwrap();
        let r = resize_to(&m, 2, 2).unwrap();
        assert_eq!(r.data_bytes().unwrap(), &[0, 255, 255, 0]);
        let r = resize_to(&m, 1, 1).unwrap();
        assert_eq!(r.data_bytes().unwrap()[0], 128);
        let up = resize_to(&m, 8, 8).unwrap();
        assert_eq!((up.cols(), up.rows()), (8, 8));
    }

    #[test]
    fn crop_clips_and_refuses_outside() {
        let m = decode(
            &encode(gray_ramp(20, 10), ImageFormat::Png),
            "t",
            DecodeLimits::default(),
        )
        .unwrap();
        let c = crop(&m, Rect::new(15, 5, 10, 10)).unwrap();
        assert_eq!((c.cols(), c.rows()), (5, 5));
        assert!(crop(&m, Rect::new(30, 0, 5, 5)).is_err());
    }

    #[test]
    fn clahe_changes_a_low_contrast_frame() {
        let img = DynamicImage::ImageLuma8(ImageBuffer::from_fn(64, 64, |x, _| {
            Luma([100 + (x / 16) as u8])
        }));
        let m = decode(&encode(img, ImageFormat::Png), "t", DecodeLimits::default()).unwrap();
        let out = clahe(&m, 4.0, 4).unwrap();
        let (lo, hi) = out
            .data_bytes()
            .unwrap()
            .iter()
            .fold((255u8, 0u8), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(hi - lo > 3, "CLAHE should stretch contrast: {lo}..{hi}");
        let rgb = to_channels(&m, 3).unwrap();
        assert_eq!(clahe(&rgb, 2.0, 8).unwrap().channels(), 3);
    }
}

// The heatmap's colour legend and the crop zoom of the review view (pure).
//
// The server colours each heatmap pixel by the A′ its crop would have if its worst region looked
// like that pixel (docs/scoring.md, "Heatmap"; src/pipeline/heatmap.rs ColourScale::index): A′ from 0 to
// the threshold over the cool half of JET (blue → green), from the threshold to 2 × threshold over
// the warm half (yellow → red), clamped beyond. The legend here draws the same scale.

import { fmtScore } from './format.js';

/** OpenCV's COLORMAP_JET as CSS colour stops (position 0..1, colour). */
export const JET_STOPS = Object.freeze([
  [0, '#000080'],
  [0.125, '#0000ff'],
  [0.375, '#00ffff'],
  [0.625, '#ffff00'],
  [0.875, '#ff0000'],
  [1, '#800000'],
]);

/** A left-to-right CSS gradient of the JET colour map. */
export function jetGradient() {
  return `linear-gradient(to right, ${JET_STOPS.map(([p, c]) => `${c} ${(p * 100).toFixed(1)}%`).join(', ')})`;
}

/**
 * The A′ range the colour bar spans for a threshold t: [t − h, t + h] with h = t (so 0 … 2t) when
 * t > 0; a threshold ≤ 0 (no calibration method gives one) spans one A′ unit either side, as the
 * server does. Null without a finite threshold.
 */
export function legendRange(threshold) {
  if (!Number.isFinite(threshold)) return null;
  const half = threshold > 0 ? threshold : 1;
  return { lo: threshold - half, threshold, hi: threshold + half };
}

/** Where A′ sits on the colour bar, 0..100 (%), clamped like the colours. */
export function legendPct(aNorm, threshold) {
  const r = legendRange(threshold);
  if (!r || !Number.isFinite(aNorm)) return null;
  return Math.min(100, Math.max(0, ((aNorm - r.lo) / (r.hi - r.lo)) * 100));
}

/**
 * The legend of one inspection's heatmap: the three ticks (0, the threshold, 2 × threshold) with
 * their text, and where the frame's own A′ falls. Null without a threshold.
 */
export function heatLegend(threshold, aNorm) {
  const r = legendRange(threshold);
  if (!r) return null;
  const frame = Number.isFinite(aNorm)
    ? { value: aNorm, pct: legendPct(aNorm, threshold), label: `this frame ${fmtScore(aNorm)}`, beyond: aNorm > r.hi }
    : null;
  return {
    gradient: jetGradient(),
    ticks: [
      { key: 'lo', value: r.lo, pct: 0, label: fmtScore(r.lo, threshold > 0 ? 0 : 3) },
      { key: 'threshold', value: r.threshold, pct: 50, label: `threshold ${fmtScore(r.threshold)}` },
      { key: 'hi', value: r.hi, pct: 100, label: fmtScore(r.hi) },
    ],
    frame,
  };
}

/** Index of the crop with the highest A′ (the one that decided the frame), or -1. */
export function worstCrop(crops) {
  let best = -1;
  (crops ?? []).forEach((c, i) => {
    if (!validBox(c)) return;
    if (best < 0 || (c.A_norm ?? -Infinity) > (crops[best].A_norm ?? -Infinity)) best = i;
  });
  return best;
}

/** Index of the crop whose box holds frame pixel (x, y) — the worst of them when boxes overlap — or -1. */
export function cropAt(crops, x, y) {
  let best = -1;
  (crops ?? []).forEach((c, i) => {
    if (!validBox(c)) return;
    const [bx, by, bw, bh] = c.box;
    if (x < bx || y < by || x >= bx + bw || y >= by + bh) return;
    if (best < 0 || (c.A_norm ?? -Infinity) > (crops[best].A_norm ?? -Infinity)) best = i;
  });
  return best;
}

function validBox(c) {
  return Array.isArray(c?.box) && c.box.length === 4 && c.box[2] > 0 && c.box[3] > 0;
}

/**
 * Frame pixel under a point of an <img> drawn with object-fit: contain: `rect` is the element's
 * box (left, top, width, height), `natural` its natural size. Null outside the picture.
 */
export function framePoint(rect, natural, clientX, clientY) {
  if (!rect?.width || !rect?.height || !natural?.width || !natural?.height) return null;
  const scale = Math.min(rect.width / natural.width, rect.height / natural.height);
  const ox = rect.left + (rect.width - natural.width * scale) / 2;
  const oy = rect.top + (rect.height - natural.height * scale) / 2;
  const x = Math.floor((clientX - ox) / scale);
  const y = Math.floor((clientY - oy) / scale);
  if (x < 0 || y < 0 || x >= natural.width || y >= natural.height) return null;
  return { x, y };
}

/**
 * Zoom of the crop panels: 4× when `panels` crops of `boxWidth` pixels (plus `gap` between them)
 * fit in `available` pixels, else 3× (the panels then wrap).
 */
export function zoomFactor(boxWidth, panels, available, gap = 16) {
  const need = (z) => panels * boxWidth * z + (panels - 1) * gap;
  return need(4) <= available ? 4 : 3;
}

/**
 * CSS geometry to show box `[x, y, w, h]` of a `frameW × frameH` image at `zoom`: the viewport's
 * size and the image's size and offset inside it.
 */
export function cropView(box, frameW, frameH, zoom) {
  // Clipped to the frame, as the server clips a box before cropping.
  const x = Math.max(0, box[0]);
  const y = Math.max(0, box[1]);
  const w = Math.max(1, Math.min(frameW, box[0] + box[2]) - x);
  const h = Math.max(1, Math.min(frameH, box[1] + box[3]) - y);
  return {
    width: w * zoom,
    height: h * zoom,
    imgWidth: frameW * zoom,
    imgHeight: frameH * zoom,
    left: 0 - x * zoom,
    top: 0 - y * zoom,
  };
}

/**
 * The partial slots of an inspection (`partial_slots`: fastener slots cut by the frame's edge,
 * listed but not scored) as valid `[x, y, w, h]` boxes; anything malformed is left out.
 */
export function partialSlots(slots) {
  if (!Array.isArray(slots)) return [];
  return slots.filter((b) => Array.isArray(b) && b.length === 4 && b.every((v) => Number.isFinite(v)) && b[2] > 0 && b[3] > 0);
}

/** The tooltip and legend text of a partial slot. */
export const PARTIAL_SLOT_LABEL = 'cut by the frame edge — not scored';

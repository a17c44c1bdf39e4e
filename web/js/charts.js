// Small SVG chart builders (pure: data in, SVG markup string out, no DOM), plus the scaling
// helpers they use. Charts scale with their container through the viewBox.

import { escapeHtml as esc, fmtClock } from './format.js';

/** Colours for series (Okabe–Ito, distinguishable with the common colour-vision deficiencies). */
export const PALETTE = Object.freeze(['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#8c6d1f', '#333333']);

export function colorFor(index) {
  return PALETTE[((index % PALETTE.length) + PALETTE.length) % PALETTE.length];
}

/** A linear map from [d0, d1] to [r0, r1]; a degenerate domain maps to the middle of the range. */
export function linearScale(d0, d1, r0, r1) {
  const span = d1 - d0;
  if (!Number.isFinite(span) || span === 0) return () => (r0 + r1) / 2;
  const k = (r1 - r0) / span;
  return (x) => r0 + (x - d0) * k;
}

/** A "nice" step (1, 2, 2.5 or 5 × 10^k) giving about `count` intervals over span. */
export function niceStep(span, count = 5) {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, count);
  const pow = 10 ** Math.floor(Math.log10(raw));
  const m = raw / pow;
  const nice = m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10;
  return nice * pow;
}

/**
 * Nice ticks covering [min, max]: { min, max, step, ticks } where min/max are widened to whole
 * steps. An empty span is widened so the axis is never degenerate.
 */
export function niceTicks(min, max, count = 5) {
  let lo = Number.isFinite(min) ? min : 0;
  let hi = Number.isFinite(max) ? max : 1;
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) hi = lo === 0 ? 1 : lo + Math.abs(lo) * 0.5;
  const step = niceStep(hi - lo, count);
  const nlo = Math.floor(lo / step + 1e-9) * step;
  const nhi = Math.ceil(hi / step - 1e-9) * step;
  const ticks = [];
  for (let v = nlo, i = 0; v <= nhi + step * 1e-6 && i < 1000; v = nlo + ++i * step) ticks.push(round(v, step));
  return { min: nlo, max: nhi, step, ticks };
}

function round(v, step) {
  const digits = Math.max(0, -Math.floor(Math.log10(step)) + 2);
  return Number(v.toFixed(Math.min(12, digits)));
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);

/** Time ticks (epoch ms) on round multiples of a step chosen for about maxCount ticks. */
export function timeTicks(t0, t1, maxCount = 6) {
  if (!(t1 > t0)) return { step: 60000, ticks: Number.isFinite(t0) ? [t0] : [] };
  const step = TIME_STEPS.find((s) => (t1 - t0) / s <= maxCount) ?? 86400000 * Math.ceil((t1 - t0) / 86400000 / maxCount);
  const ticks = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) ticks.push(t);
  return { step, ticks };
}

/** Compact number for axis labels: 0.125 → "0.125", 1500 → "1.5k". */
export function fmtTick(v) {
  if (Math.abs(v) >= 10000) return `${+(v / 1000).toFixed(1)}k`;
  if (Number.isInteger(v)) return String(v);
  return String(+v.toFixed(4));
}

function n(x) {
  return Number.isFinite(x) ? +x.toFixed(2) : 0;
}

function frame({ width, height, title, desc, id }) {
  const label = esc(title);
  return {
    open: `<svg class="chart" viewBox="0 0 ${width} ${height}" preserveAspectRatio="xMidYMid meet" role="img" aria-labelledby="${id}-t ${id}-d" xmlns="http://www.w3.org/2000/svg"><title id="${id}-t">${label}</title><desc id="${id}-d">${esc(desc ?? '')}</desc>`,
    close: '</svg>',
  };
}

function emptyChart(opts, message) {
  const { width, height } = opts;
  const f = frame(opts);
  return `${f.open}<rect class="plot-bg" x="0" y="0" width="${width}" height="${height}" rx="4"/><text class="empty" x="${width / 2}" y="${height / 2}" text-anchor="middle">${esc(message)}</text>${f.close}`;
}

function axes({ m, width, height, xTicks, xs, xFmt, yTicks, ys, yFmt, xLabel, yLabel }) {
  const parts = [];
  const x0 = m.left, x1 = width - m.right, y0 = height - m.bottom, y1 = m.top;
  for (const t of yTicks) {
    const y = n(ys(t));
    parts.push(`<line class="grid" x1="${x0}" x2="${x1}" y1="${y}" y2="${y}"/><text class="tick" x="${x0 - 6}" y="${y + 4}" text-anchor="end">${esc(yFmt(t))}</text>`);
  }
  for (const t of xTicks) {
    const x = n(xs(t));
    // Labels at the very edges are anchored inwards so they are never clipped.
    const anchor = x > x1 - 24 ? 'end' : x < x0 + 12 ? 'start' : 'middle';
    parts.push(`<line class="tickmark" x1="${x}" x2="${x}" y1="${y0}" y2="${y0 + 5}"/><text class="tick" x="${x}" y="${y0 + 18}" text-anchor="${anchor}">${esc(xFmt(t))}</text>`);
  }
  parts.push(`<line class="axis" x1="${x0}" x2="${x1}" y1="${y0}" y2="${y0}"/><line class="axis" x1="${x0}" x2="${x0}" y1="${y0}" y2="${y1}"/>`);
  if (xLabel) parts.push(`<text class="axis-label" x="${(x0 + x1) / 2}" y="${height - 4}" text-anchor="middle">${esc(xLabel)}</text>`);
  if (yLabel) parts.push(`<text class="axis-label" transform="translate(12 ${(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  return parts.join('');
}

function legend(items, x, y) {
  let cx = x;
  return items
    .map((it) => {
      const w = 22 + it.name.length * 7;
      const s = `<g class="legend-item"><rect x="${cx}" y="${y - 9}" width="12" height="12" rx="2" fill="${it.color}"/><text class="legend" x="${cx + 16}" y="${y + 1}">${esc(it.name)}</text></g>`;
      cx += w;
      return s;
    })
    .join('');
}

/**
 * Defect rate per camera over time from GET /v1/stats/trend: one line per camera, y = defects /
 * frames of each bucket (buckets without frames break the line), x = bucket start time.
 */
export function trendSeries(trend) {
  return (trend?.series ?? []).map((s, i) => ({
    name: s.camera,
    color: colorFor(i),
    points: (s.points ?? []).map((p) => ({
      x: Date.parse(p.t),
      y: p.frames > 0 ? p.defects / p.frames : null,
      frames: p.frames,
      defects: p.defects,
    })),
  }));
}

export function lineChart(series, opts) {
  const o = { width: 720, height: 260, id: 'line', yLabel: '', xLabel: '', yMin: 0, yMaxAtLeast: 0, yFmt: fmtTick, ...opts };
  const pts = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x));
  if (!pts.length) return emptyChart(o, o.emptyText ?? 'No data yet');
  const m = { left: 52, right: 12, top: 28, bottom: 40 };
  const xMin = Math.min(...pts.map((p) => p.x));
  // xEnd (e.g. now): the axis runs on to it, so a camera that stopped sending shows its gap.
  const xMax = Math.max(...pts.map((p) => p.x), xMin + (o.bucketMs ?? 60000), Number.isFinite(o.xEnd) ? o.xEnd : -Infinity);
  const ys = pts.map((p) => p.y).filter(Number.isFinite);
  const yt = niceTicks(o.yMin, Math.max(o.yMaxAtLeast, ...ys, o.yMin + 1e-9), 4);
  const xsc = linearScale(xMin, xMax, m.left, o.width - m.right);
  const ysc = linearScale(yt.min, yt.max, o.height - m.bottom, m.top);
  const tt = timeTicks(xMin, xMax, Math.max(2, Math.floor((o.width - 80) / 90)));
  const f = frame(o);
  const body = [];
  body.push(axes({ m, width: o.width, height: o.height, xTicks: tt.ticks, xs: xsc, xFmt: (t) => fmtClock(t, tt.step < 60000), yTicks: yt.ticks, ys: ysc, yFmt: o.yFmt, xLabel: o.xLabel, yLabel: o.yLabel }));
  for (const s of series) {
    let d = '';
    let pen = false;
    for (const p of s.points) {
      if (!Number.isFinite(p.y)) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${n(xsc(p.x))} ${n(ysc(p.y))}`;
      pen = true;
    }
    body.push(`<g class="series" data-series="${esc(s.name)}">`);
    if (d) body.push(`<path class="line" d="${d}" stroke="${s.color}"/>`);
    for (const p of s.points) {
      if (!Number.isFinite(p.y)) continue;
      const tip = `${s.name} ${fmtClock(p.x, true)}: ${o.yFmt(p.y)}${p.frames != null ? ` (${p.defects}/${p.frames} frames)` : ''}`;
      body.push(`<circle class="dot" cx="${n(xsc(p.x))}" cy="${n(ysc(p.y))}" r="3" fill="${s.color}"><title>${esc(tip)}</title></circle>`);
    }
    body.push('</g>');
  }
  body.push(legend(series.map((s) => ({ name: s.name, color: s.color })), m.left, 14));
  return `${f.open}${body.join('')}${f.close}`;
}

/**
 * Defects along the track from GET /v1/stats/positions for one track: a bar per position bucket,
 * confirmed defects darker at the bottom, unconfirmed ones above.
 */
export function positionChart(buckets, bucketM, opts) {
  const o = { width: 720, height: 220, id: 'pos', ...opts };
  const bs = (buckets ?? []).filter((b) => Number.isFinite(b.position_m));
  if (!bs.length) return emptyChart(o, o.emptyText ?? 'No frames with a track position yet');
  const m = { left: 52, right: 12, top: 28, bottom: 40 };
  const bw = bucketM > 0 ? bucketM : 100;
  const xMin = Math.min(...bs.map((b) => b.position_m));
  const xMax = Math.max(...bs.map((b) => b.position_m + bw));
  const xt = niceTicks(xMin, xMax, Math.max(2, Math.floor((o.width - 80) / 90)));
  const yt = niceTicks(0, Math.max(1, ...bs.map((b) => b.defects)), 4);
  const xsc = linearScale(xt.min, xt.max, m.left, o.width - m.right);
  const ysc = linearScale(0, yt.max, o.height - m.bottom, m.top);
  const f = frame(o);
  const body = [axes({ m, width: o.width, height: o.height, xTicks: xt.ticks, xs: xsc, xFmt: (v) => `${+(v / 1000).toFixed(3)}`, yTicks: yt.ticks, ys: ysc, yFmt: fmtTick, xLabel: 'track position (km)', yLabel: 'defects' })];
  for (const b of bs) {
    const x = xsc(b.position_m);
    const w = Math.max(1.5, xsc(b.position_m + bw) - x - 1);
    const confirmed = Math.min(b.confirmed ?? 0, b.defects);
    const yAll = ysc(b.defects);
    const yConf = ysc(confirmed);
    const y0 = ysc(0);
    const rate = b.frames > 0 ? ((b.defects / b.frames) * 100).toFixed(1) : '0';
    const tip = `km ${(b.position_m / 1000).toFixed(3)}–${((b.position_m + bw) / 1000).toFixed(3)}: ${b.defects} defects (${confirmed} confirmed) in ${b.frames} frames, ${rate} %`;
    body.push(`<g class="bucket"><title>${esc(tip)}</title><rect class="bar-frames" x="${n(x)}" y="${m.top}" width="${n(w)}" height="${n(y0 - m.top)}"/>`);
    if (b.defects > 0) body.push(`<rect class="bar-defect" x="${n(x)}" y="${n(yAll)}" width="${n(w)}" height="${n(y0 - yAll)}"/>`);
    if (confirmed > 0) body.push(`<rect class="bar-confirmed" x="${n(x)}" y="${n(yConf)}" width="${n(w)}" height="${n(y0 - yConf)}"/>`);
    body.push('</g>');
  }
  body.push(legend([{ name: 'defects', color: 'var(--defect-soft)' }, { name: 'confirmed', color: 'var(--defect)' }, { name: 'frames seen', color: 'var(--frames-bg)' }], m.left, 14));
  return `${f.open}${body.join('')}${f.close}`;
}

/** Group GET /v1/stats/positions buckets by track id (tracks sorted by name, buckets by position). */
export function groupByTrack(buckets) {
  const map = new Map();
  for (const b of buckets ?? []) {
    const key = b.track_id ?? '–';
    if (!map.has(key)) map.set(key, []);
    map.get(key).push(b);
  }
  return [...map.entries()].sort((a, b) => String(a[0]).localeCompare(String(b[0]))).map(([track, bs]) => ({ track, buckets: bs.sort((a, b) => a.position_m - b.position_m) }));
}

/**
 * Score distribution from GET /v1/stats/scores: stacked normal/defect counts per A_norm bin, the
 * threshold as a dashed vertical line. scale: 'linear' or 'sqrt' (makes rare bins visible).
 */
export function scoreHistogram(stats, opts) {
  const o = { width: 720, height: 260, id: 'hist', scale: 'linear', ...opts };
  const bins = stats?.bins ?? [];
  const total = bins.reduce((a, b) => a + (b.normal ?? 0) + (b.defect ?? 0), 0);
  if (!bins.length || total === 0) return emptyChart(o, o.emptyText ?? 'No scored frames yet');
  const m = { left: 52, right: 12, top: 28, bottom: 40 };
  const xMin = Math.min(...bins.map((b) => b.lo));
  const xMax = Math.max(...bins.map((b) => b.hi), Number.isFinite(stats.threshold) ? stats.threshold : -Infinity);
  const maxCount = Math.max(1, ...bins.map((b) => (b.normal ?? 0) + (b.defect ?? 0)));
  const f = o.scale === 'sqrt' ? Math.sqrt : (v) => v;
  const yt = niceTicks(0, maxCount, 4);
  const xsc = linearScale(xMin, xMax, m.left, o.width - m.right);
  const ysc = linearScale(0, f(yt.max), o.height - m.bottom, m.top);
  const y = (v) => ysc(f(v));
  const xt = niceTicks(xMin, xMax, Math.max(2, Math.floor((o.width - 80) / 70)));
  const fr = frame(o);
  const body = [axes({ m, width: o.width, height: o.height, xTicks: xt.ticks.filter((t) => t >= xMin - 1e-9 && t <= xMax + 1e-9), xs: xsc, xFmt: fmtTick, yTicks: yt.ticks, ys: y, yFmt: fmtTick, xLabel: 'normalized score A′', yLabel: o.scale === 'sqrt' ? 'frames (√ scale)' : 'frames' })];
  for (const b of bins) {
    const x = xsc(b.lo);
    const w = Math.max(1, xsc(b.hi) - x - 1);
    const nn = b.normal ?? 0, nd = b.defect ?? 0;
    const y0 = y(0), yN = y(nn), yAll = y(nn + nd);
    const tip = `A′ ${fmtTick(b.lo)}–${fmtTick(b.hi)}: ${nn} normal, ${nd} defect`;
    body.push(`<g class="bin"><title>${esc(tip)}</title>`);
    if (nn > 0) body.push(`<rect class="bar-normal" x="${n(x)}" y="${n(yN)}" width="${n(w)}" height="${n(y0 - yN)}"/>`);
    if (nd > 0) body.push(`<rect class="bar-defect" x="${n(x)}" y="${n(yAll)}" width="${n(w)}" height="${n(yN - yAll)}"/>`);
    body.push('</g>');
  }
  if (Number.isFinite(stats.threshold)) {
    const tx = n(xsc(stats.threshold));
    const right = tx > o.width - 140;
    body.push(`<g class="threshold"><line x1="${tx}" x2="${tx}" y1="${m.top - 4}" y2="${o.height - m.bottom}"/><text x="${right ? tx - 4 : tx + 4}" y="${m.top + 10}" text-anchor="${right ? 'end' : 'start'}">threshold ${esc(fmtTick(+stats.threshold.toFixed(3)))}</text></g>`);
  }
  body.push(legend([{ name: 'normal verdict', color: 'var(--normal-bar)' }, { name: 'defect verdict', color: 'var(--defect)' }], m.left, 14));
  return `${fr.open}${body.join('')}${fr.close}`;
}

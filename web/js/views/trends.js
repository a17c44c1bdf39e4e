// Trends: defect rate per camera over time, defects along the track, score distribution
// against the threshold. Plain SVG from js/charts.js; refreshed every 15 s while shown.

import { escapeHtml as esc, fmtPercent } from '../format.js';
import { groupByTrack, lineChart, positionChart, scoreHistogram, trendSeries } from '../charts.js';

const BUCKET_S = { 900: 15, 3600: 60, 21600: 300, 86400: 900, 604800: 3600 };
const REFRESH_MS = 15_000;

export function createTrendsView(ctx) {
  const { api } = ctx;
  const root = document.getElementById('view-trends');
  const camSelect = document.getElementById('t-camera');
  const windowSel = document.getElementById('t-window');
  const bucketM = document.getElementById('t-bucket-m');
  const sqrt = document.getElementById('t-sqrt');
  const body = (id) => document.querySelector(`#${id} .chart-body`);
  const note = (id) => document.getElementById(`${id}-note`);
  let timer = null;
  let seq = 0;
  let last = null;

  function width(id) {
    // Draw in the container's own pixel width so text keeps its size on any screen.
    const w = body(id).clientWidth || 600;
    return Math.max(320, Math.round(w));
  }

  async function refresh() {
    const my = ++seq;
    const windowS = Number(windowSel.value);
    const camera = camSelect.value;
    const since = new Date(Date.now() - windowS * 1000).toISOString();
    const bucket_s = BUCKET_S[windowS] ?? 60;
    const params = { camera, since };
    // Each chart loads on its own: one failing endpoint does not blank the others.
    const [trend, positions, scores] = await Promise.allSettled([
      api.trend({ ...params, bucket_s }),
      api.positions({ camera, bucket_m: Number(bucketM.value) }),
      api.scores({ camera, bins: 40 }),
    ]);
    if (my !== seq) return;
    last = { trend, positions, scores, windowS, since, bucket_s, camera };
    draw();
  }

  function failed(id, result) {
    const e = result.reason;
    const msg = String(e?.message ?? e).slice(0, 160);
    body(id).innerHTML = `<p class="error" role="alert">Could not load this chart (${esc(e?.code ?? 'error')}): ${esc(msg)}</p>`;
    note(id).textContent = '';
  }

  function draw() {
    if (!last) return;
    const { windowS, bucket_s } = last;
    if (last.trend.status === 'fulfilled') drawTrend(last.trend.value, windowS, bucket_s);
    else failed('chart-trend', last.trend);
    if (last.scores.status === 'fulfilled') drawScores(last.scores.value);
    else failed('chart-scores', last.scores);
    if (last.positions.status === 'fulfilled') drawPositions(last.positions.value);
    else failed('chart-positions', last.positions);
  }

  function drawTrend(trend, windowS, bucket_s) {
    // Trend: x covers the chosen window.
    const series = trendSeries(trend);
    const totals = series.map((s) => {
      const f = s.points.reduce((a, p) => a + (p.frames ?? 0), 0);
      const d = s.points.reduce((a, p) => a + (p.defects ?? 0), 0);
      return `${s.name} ${fmtPercent(f ? d / f : 0)} of ${f}`;
    });
    body('chart-trend').innerHTML = lineChart(series, {
      id: 'svg-trend', width: width('chart-trend'), height: 260, bucketMs: (trend?.bucket_s ?? bucket_s) * 1000,
      xEnd: Math.floor(Date.now() / ((trend?.bucket_s ?? bucket_s) * 1000)) * (trend?.bucket_s ?? bucket_s) * 1000,
      title: 'Defect rate per camera over time', desc: `Defects per frame in ${trend?.bucket_s ?? bucket_s} s buckets. ${totals.join('; ')}`,
      yLabel: 'defect rate', yFmt: (v) => `${+(v * 100).toFixed(1)} %`, yMaxAtLeast: 0.05,
    });
    note('chart-trend').textContent = `${trend?.bucket_s ?? bucket_s} s buckets over the last ${windowS >= 3600 ? `${windowS / 3600} h` : `${windowS / 60} min`}`;
  }

  function drawScores(scores) {
    const total = (scores?.bins ?? []).reduce((a, b) => a + b.normal + b.defect, 0);
    body('chart-scores').innerHTML = scoreHistogram(scores, {
      id: 'svg-scores', width: width('chart-scores'), height: 260, scale: sqrt.checked ? 'sqrt' : 'linear',
      title: 'Distribution of normalized scores against the threshold', desc: `${total} frames; threshold ${scores?.threshold ?? '–'}.`,
    });
    note('chart-scores').textContent = `${total} frames · all time`;
  }

  function drawPositions(positions) {
    const groups = groupByTrack(positions?.buckets);
    const bm = positions?.bucket_m ?? Number(bucketM.value);
    const w = width('chart-positions');
    body('chart-positions').innerHTML = groups.length
      ? groups.map((g, i) => {
        const d = g.buckets.reduce((a, b) => a + b.defects, 0);
        const c = g.buckets.reduce((a, b) => a + (b.confirmed ?? 0), 0);
        return `<h3>Track ${esc(g.track)} <span class="muted">· ${d} defects, ${c} confirmed</span></h3>${positionChart(g.buckets, bm, { id: `svg-pos-${i}`, width: w, height: 200, title: `Defects along track ${g.track}`, desc: `${d} defects (${c} confirmed) in ${bm} m buckets.` })}`;
      }).join('')
      : positionChart([], bm, { id: 'svg-pos-empty', width: w, height: 160, title: 'Defects along the track' });
    note('chart-positions').textContent = `${bm} m buckets · all time · hover a bar for its numbers`;
  }

  function syncCameras(state) {
    const ids = state.cameras.order;
    const want = ids.join('|');
    if (camSelect.dataset.ids === want) return;
    const cur = camSelect.value;
    camSelect.innerHTML = `<option value="">all cameras</option>${ids.map((id) => `<option value="${esc(id)}">${esc(id)}</option>`).join('')}`;
    camSelect.dataset.ids = want;
    camSelect.value = ids.includes(cur) ? cur : '';
  }

  for (const el of [camSelect, windowSel, bucketM]) el.addEventListener('change', refresh);
  sqrt.addEventListener('change', draw);
  document.getElementById('t-refresh').addEventListener('click', refresh);
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (!root.hidden) draw(); }, 150);
  });

  return {
    root,
    update(state, prev) {
      if (state.cameras.order !== prev?.cameras?.order) syncCameras(state);
    },
    show(state) {
      syncCameras(state);
      refresh();
      clearInterval(timer);
      timer = setInterval(() => { if (!root.hidden) refresh(); }, REFRESH_MS);
    },
    hide() {
      clearInterval(timer);
      timer = null;
    },
  };
}

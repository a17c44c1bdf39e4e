// End-to-end test of the inspector dashboard in real headless Chromium against the real
// `railscope serve`, fed by `railscope simulate` and single fixture POSTs.
//
//   cd web && npm ci && node --test tests/e2e
//
// Needs target/release/railscope (cargo build --release; RAILSCOPE_BIN overrides) and
// /usr/bin/chromium (CHROMIUM overrides). Screenshots go to web/test-artifacts/.
// The whole run is bounded: a watchdog kills everything after 170 s.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { cpSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { computeEffect, exactThreshold, reviewedFromProposal } from '../../js/calibration.js';

const WEB = fileURLToPath(new URL('../../', import.meta.url));
const REPO = resolve(WEB, '..');
const BIN = process.env.RAILSCOPE_BIN ?? join(REPO, 'target/release/railscope');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ART = join(WEB, 'test-artifacts');
const FIX = join(REPO, 'tests/fixtures/fasteners/test');
const INSPECTOR = 'demo-inspector-token';
const ADMIN = 'demo-admin-token';
// A named account, created with `railscope accounts add` before the service starts: the
// inspector of these tests logs in with it, so reviews carry its name.
const ACCOUNT = 'e2e.inspector';
const ACCOUNT_PASSWORD = 'e2e password, long enough';
const DESKTOP = { width: 1366, height: 768 };
const TABLET = { width: 800, height: 1100 };
// axe-core (devDependency), evaluated in the page through the DevTools protocol (the page's
// Content-Security-Policy forbids inline scripts, and rightly so); WCAG 2.0/2.1 A and AA rules.
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

let base, port, tmp, server, simulator, ctx, page;
/** Before anything was stored: the e2e's "last visit" for the start-of-shift summary. */
const E2E_START = Date.now();
const children = new Set();
const consoleErrors = [];
let loggedIn = false;

// ------------------------------------------------------------------ helpers
function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port: p } = s.address();
      s.close(() => ok(p));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, timeoutMs = 20_000, everyMs = 250) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

function startChild(name, args, env) {
  const log = createWriteStream(join(ART, `${name}.log`));
  // Only the variables this test sets reach railscope, not the caller's RAILSCOPE__* ones.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RAILSCOPE__')));
  const child = spawn(BIN, args, { cwd: REPO, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function killAll() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { killAll(); process.exit(130); });
// Watchdog: never hang (the test must stop by itself well inside 3 minutes).
const watchdog = setTimeout(() => {
  console.error('e2e watchdog: 170 s exceeded, killing the server and the browser');
  killAll();
  process.exit(1);
}, 170_000);
watchdog.unref();

async function api(path, { token = INSPECTOR, method = 'GET', body, headers = {} } = {}) {
  const res = await fetch(base + path, { method, body, headers: { Authorization: `Bearer ${token}`, ...headers } });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

async function postFrame(camera, file, positionM) {
  const res = await fetch(`${base}/v1/cameras/${camera}/frames`, {
    method: 'POST',
    body: readFileSync(file),
    headers: { Authorization: `Bearer demo-key-${camera}`, 'Content-Type': 'image/png', 'X-Track-Id': 'L9', 'X-Track-Position-M': String(positionM), 'X-Frame-Id': `e2e-${positionM}` },
  });
  const text = await res.text();
  assert.equal(res.status, 200, `POST frame ${file}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** A blank mid-gray 8-bit grayscale PNG (no rail, no sleeper), as in tests/service/harness.rs blank_png. */
function grayPng(width = 512, height = 512, value = 128) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8 bit, grayscale, deflate, no filter, no interlace
  const row = Buffer.alloc(width + 1, value);
  row[0] = 0; // filter: none
  const raw = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

async function shot(name, opts = {}) {
  // Transient toasts would cover the view in the picture.
  await page.evaluate(() => document.getElementById('toasts')?.replaceChildren());
  await page.screenshot({ path: join(ART, `${name}.png`), ...opts });
}

/** axe-core on the page as it is now: 0 violations of the WCAG 2 A/AA rules. */
async function axeCheck(what) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE);
  const res = await page.evaluate((tags) => window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] }), AXE_TAGS);
  const found = res.violations.map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 6).map((n) => `${n.target.join(' ')}${n.failureSummary ? ` [${n.failureSummary.replace(/\s+/g, ' ').slice(0, 160)}]` : ''}`).join(' | ')}`);
  assert.deepEqual(found, [], `axe-core on ${what}: ${found.length} violation(s)`);
  // axe did run its rules here (a page it could not analyse would pass nothing either).
  assert.ok(res.passes.length >= 10, `axe-core on ${what}: only ${res.passes.length} rules passed`);
  axeChecked.push(`${what}: ${res.passes.length} rules passed, ${res.incomplete.length} need review${res.incomplete.length ? ` (${res.incomplete.map((v) => `${v.id}: ${v.nodes.slice(0, 4).map((n) => n.target.join(' ')).join(', ')}`).join('; ')})` : ''}`);
}
const axeChecked = [];

/**
 * The view as it is at 1366 px and at 800 px: a full-page screenshot `<name>-<width>.png` each,
 * axe-core with 0 violations each, and no horizontal scrolling at 800 px. Back to 1366 after.
 */
async function checkView(name, { widths = [DESKTOP, TABLET] } = {}) {
  for (const vp of widths) {
    await page.setViewportSize(vp);
    await sleep(400); // the charts redraw at their new width 150 ms after a resize
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    if (vp.width <= 800) assert.ok(overflow <= 0, `${name}: no horizontal scrolling at ${vp.width} px (overflow ${overflow} px)`);
    await shot(`${name}-${vp.width}`, { fullPage: true });
    await axeCheck(`${name} at ${vp.width} px`);
  }
  await page.setViewportSize(DESKTOP);
}

async function go(view) {
  await page.evaluate((v) => { location.hash = `#/${v}`; }, view);
  await page.waitForSelector(`#view-${view}:not([hidden])`);
}

// ------------------------------------------------------------------ setup / teardown
before(async () => {
  assert.ok(existsSync(BIN), `${BIN} is missing: build it first (cargo build --release)`);
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing (apt-get install chromium)`);
  rmSync(ART, { recursive: true, force: true });
  mkdirSync(ART, { recursive: true });
  tmp = mkdtempSync(join(tmpdir(), 'railscope-e2e-'));
  // The service reads calibration files from a copy, never the repo's.
  cpSync(join(REPO, 'calibration'), join(tmp, 'calibration'), { recursive: true });
  // The repo's config with cam-04 looking at whole track frames (roi = "track"), as
  // tests/service_track.rs configures cam-01: a frame without track is a defect with a note.
  const cfgBase = readFileSync(join(REPO, 'config/railscope.toml'), 'utf8');
  const cfg = cfgBase.replace('api_key = "demo-key-cam-04"', 'api_key = "demo-key-cam-04"\nroi = "track"\ngeometry = { orientation = "across", px_per_m = 200.0, rails = 1 }');
  assert.notEqual(cfg, cfgBase, "cam-04's entry is in config/railscope.toml");
  const cfgPath = join(tmp, 'railscope.toml');
  writeFileSync(cfgPath, cfg);
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // The account, in the database the service will open (password on stdin, never in argv).
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RAILSCOPE__')));
  const added = spawnSync(BIN, ['--config', cfgPath, 'accounts', 'add', ACCOUNT, '--role', 'inspector', '--password-stdin'], {
    cwd: REPO, env: { ...inherited, RAILSCOPE__STORAGE__PATH: join(tmp, 'store') }, input: `${ACCOUNT_PASSWORD}\n`, encoding: 'utf8',
  });
  assert.equal(added.status, 0, `railscope accounts add: ${added.stderr}`);
  assert.equal(JSON.parse(added.stdout).account, ACCOUNT);
  server = startChild('server', ['--config', cfgPath, 'serve'], {
    RAILSCOPE__SERVER__BIND: `127.0.0.1:${port}`,
    RAILSCOPE__STORAGE__PATH: join(tmp, 'store'),
    RAILSCOPE__ENGINE__CALIBRATION_DIR: join(tmp, 'calibration'),
    // The review test gives cam-01 one confirmed defect and one false alarm (the shipped
    // config asks for 10 of each before it proposes anything).
    RAILSCOPE__CALIBRATION__MIN_REVIEWS_PER_CLASS: '1',
  });
  let exited = null;
  server.on('exit', (code) => { exited = code; });
  await until('GET /readyz = 200', async () => {
    if (exited !== null) throw new Error(`server exited with ${exited}; see test-artifacts/server.log`);
    const r = await fetch(`${base}/readyz`).catch(() => null);
    return r?.status === 200;
  }, 60_000, 300);

  const userDataDir = join(tmp, 'chromium-profile');
  ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: DESKTOP,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  ctx.setDefaultTimeout(20_000);
  page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // Before login the page asks GET /v1/me (401) and the wrong-token attempt is a 401 too.
    if (!loggedIn && /status of 401/.test(m.text())) return;
    consoleErrors.push(`${m.text()} @ ${m.location()?.url ?? ''}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400 && loggedIn) consoleErrors.push(`HTTP ${r.status()} ${r.url()}`);
  });
});

after(async () => {
  try { await ctx?.close(); } catch { /* already gone */ }
  killAll();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  clearTimeout(watchdog);
});

// ------------------------------------------------------------------ the tests (in order)
test('login: a wrong password and a wrong token are refused, the account logs in by name and password', async () => {
  await page.goto(`${base}/`);
  await page.waitForSelector('#login-view:not([hidden])');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'login-user', 'the account name has the focus');
  assert.equal(await page.getAttribute('#login-user', 'autocomplete'), 'username');
  assert.equal(await page.getAttribute('#login-password', 'autocomplete'), 'current-password');
  assert.equal(await page.isVisible('#login-token'), false, 'the token field waits behind its disclosure');
  await page.fill('#login-user', ACCOUNT);
  await page.fill('#login-password', 'not the password');
  await page.click('#login-submit');
  await page.waitForFunction(() => document.getElementById('login-error').textContent === 'Unknown account name or wrong password.');
  assert.equal(await page.isVisible('#view-wall'), false, 'nothing shown without a login');
  // The shared token is still offered, behind "Log in with a shared token instead".
  await page.click('#login-token-box summary');
  await page.fill('#login-token', 'not-a-token');
  await page.click('#login-submit');
  await page.waitForFunction(() => document.getElementById('login-error').textContent.includes('token was refused'));
  const me = await page.evaluate(async () => (await fetch('/v1/me')).status);
  assert.equal(me, 401);
  await checkView('login');

  await page.fill('#login-token', '');
  await page.click('#login-token-box summary');
  await page.fill('#login-password', ACCOUNT_PASSWORD);
  await page.click('#login-submit');
  await page.waitForSelector('#view-wall:not([hidden])');
  loggedIn = true;
  assert.equal(await page.textContent('#role-label'), 'inspector');
  assert.equal(await page.textContent('#who-label'), `Signed in as ${ACCOUNT}`);
  assert.equal(await page.isVisible('#reload-btn'), false, 'admin-only control hidden from an inspector');
  // The session is the HttpOnly cookie: the page cannot read it, but fetch/EventSource use it.
  assert.equal(await page.evaluate(() => document.cookie.includes('railscope_session')), false);
  const who = await page.evaluate(async () => (await fetch('/v1/me')).json());
  assert.deepEqual(who, { role: 'inspector', who: ACCOUNT });
});

test('live wall: tiles appear and update from the event stream', async () => {
  // A few defective frames first (deterministic content for the review queue), then simulated cameras.
  const defects = readdirSync(FIX).filter((d) => d !== 'good');
  const posted = [];
  for (let i = 0; i < 4; i++) {
    const dir = join(FIX, defects[i % defects.length]);
    posted.push(await postFrame('cam-01', join(dir, readdirSync(dir)[0]), 500 + i * 120));
  }
  assert.ok(posted.some((p) => p.verdict === 'defect'), `no fixture defect was flagged: ${posted.map((p) => p.A_norm).join(', ')}`);
  // A blank gray frame to the roi = "track" camera (before the simulator, so that it is not the
  // newest defect later): a defect without a crop and a score, whose note says why.
  const blank = await fetch(`${base}/v1/cameras/cam-04/frames`, {
    method: 'POST',
    body: grayPng(),
    headers: { Authorization: 'Bearer demo-key-cam-04', 'Content-Type': 'image/png', 'X-Track-Id': 'L9', 'X-Track-Position-M': '900', 'X-Frame-Id': 'e2e-blank' },
  });
  noTrack = JSON.parse(await blank.text());
  assert.equal(blank.status, 200, JSON.stringify(noTrack));
  assert.equal(noTrack.verdict, 'defect', JSON.stringify(noTrack));
  assert.match(noTrack.note ?? '', /^no track found: .+/, JSON.stringify(noTrack));
  assert.equal(noTrack.A_norm, null);
  assert.deepEqual(noTrack.crops, []);
  // half the frames defective, so flagged defects arrive live within the test's window whatever the
  // model's recall (the default 10 % and a model at 1 % false alarms give one flagged frame in ~16)
  simulator = startChild('simulate', ['simulate', '--url', base, '--cameras', '2', '--fps', '2', '--duration', '20', '--synthetic', '--defect-rate', '0.5']);

  await page.waitForSelector('.tile[data-camera="cam-01"]');
  await page.waitForSelector('.tile[data-camera="cam-02"]');
  const frames = async (cam) => Number((await page.textContent(`.tile[data-camera="${cam}"] [data-field="frames"]`)).replace(/\D/g, '') || 0);
  const f1 = await until('cam-02 frames > 0', async () => (await frames('cam-02')) > 0 && frames('cam-02'));
  await until('cam-02 frame count increases live', async () => (await frames('cam-02')) > f1 + 2, 20_000);
  // The latest kept frame is shown with its age; the silent cameras (never sent) are flagged.
  await page.waitForFunction(() => {
    const img = document.querySelector('.tile[data-camera="cam-01"] img[data-field="img"]');
    return img && !img.hidden && img.naturalWidth > 0;
  });
  assert.match(await page.textContent('.tile[data-camera="cam-01"] [data-field="imgage"]'), /kept frame #\d+/);
  assert.match(await page.textContent('.tile[data-camera="cam-02"] [data-field="fps"]'), /fps/);
  assert.match(await page.textContent('.tile[data-camera="cam-02"] [data-field="rate"]'), /%/);
  assert.equal(await page.isVisible('.tile[data-camera="cam-03"] [data-field="silent"]'), true, 'cam-03 never sent: silent warning');
  assert.equal(await page.isVisible('.tile[data-camera="cam-01"] [data-field="silent"]'), false);
  // cam-04's latest frame had no track: its tag instead of a score, no "null" / "NaN".
  await page.waitForSelector('.tile[data-camera="cam-04"] [data-field="score"] [data-role="note-tag"]');
  const tile4 = await page.textContent('.tile[data-camera="cam-04"] [data-field="score"]');
  assert.match(tile4, /no track/);
  assert.doesNotMatch(tile4, /null|NaN|undefined/);
  await sleep(2500); // let frames/s settle for the screenshot
  // The start-of-shift panel says plainly that no Prometheus is configured for this server.
  await page.waitForSelector('#shift-alerts[data-status="not_connected"]');
  assert.match(await page.textContent('#shift-alerts-status'), /^Alerts not connected/);
  await checkView('wall');
});

let confirmedId, falseAlarmId, noTrack;

test('review queue: heatmap overlay, keyboard review (c, f, j/k), live arrivals', async () => {
  await go('review');
  // Filter to cam-01 so the confirmed defect and the false alarm belong to one camera.
  await page.selectOption('#f-camera', 'cam-01');
  await page.waitForSelector('#queue-list [role="option"]');
  await page.waitForFunction(() => {
    const h = document.getElementById('detail-heatmap');
    return h && h.complete && h.naturalWidth > 0;
  });
  assert.equal(await page.getAttribute('#heat-opacity', 'type'), 'range');
  const opacity = await page.evaluate(() => getComputedStyle(document.getElementById('detail-heatmap')).opacity);
  assert.equal(Number(opacity), 0.6);
  const heatOpacity = (want) => page.waitForFunction((w) => Number(getComputedStyle(document.getElementById('detail-heatmap')).opacity) === w, want, { timeout: 3000 });
  await page.keyboard.press('h'); // heatmap off
  await heatOpacity(0);
  assert.equal(await page.isChecked('#heat-toggle'), false);
  await page.keyboard.press('h');
  await heatOpacity(0.6);
  await page.fill('#heat-opacity', '80'); // the slider
  await heatOpacity(0.8);
  assert.equal(await page.textContent('#heat-opacity-out'), '80 %');
  await page.fill('#heat-opacity', '60');
  await page.focus('#queue-list');

  // The heatmap's legend in A′: 0, this inspection's threshold in the middle, 2 × threshold.
  const shownId = Number(await page.getAttribute('#queue-list [aria-selected="true"]', 'data-id'));
  const shown = (await api(`/v1/inspections/${shownId}`)).json;
  assert.equal(await page.isVisible('#heat-legend'), true, 'the colour legend is shown with the heatmap');
  assert.match(await page.textContent('#heat-legend figcaption'), /A′/);
  assert.equal(await page.isVisible('#heat-legend [data-tick="threshold"]'), true);
  assert.equal(await page.textContent('#heat-legend [data-tick="threshold"]'), `threshold ${shown.threshold.toFixed(3)}`);
  assert.equal(await page.textContent('#heat-legend [data-tick="lo"]'), '0');
  assert.equal(await page.textContent('#heat-legend [data-tick="hi"]'), (2 * shown.threshold).toFixed(3));
  const tickX = await page.$$eval('#heat-legend .legend-tick', (els) => els.map((e) => e.getBoundingClientRect().left));
  assert.ok(tickX[0] < tickX[1] && tickX[1] < tickX[2], `ticks in order: ${tickX}`);

  // The model's reconstruction beside the frame (r), frame-sized.
  assert.ok(shown.reconstruction_url, 'a defect keeps its reconstruction');
  assert.equal(await page.isVisible('#detail-recon'), false, 'off by default');
  await page.keyboard.press('r');
  await page.waitForFunction(() => {
    const r = document.getElementById('detail-recon');
    return r && r.complete && r.naturalWidth > 0 && r.getBoundingClientRect().width > 0;
  });
  assert.equal(await page.isChecked('#recon-toggle'), true);
  const [frameW, reconW] = await page.evaluate(() => ['detail-frame', 'detail-recon'].map((id) => document.getElementById(id).naturalWidth));
  assert.equal(reconW, frameW, 'the reconstruction has the frame size');
  await checkView('review');
  await page.focus('#queue-list');

  // Zoom on the worst crop (z): frame, heatmap and reconstruction at 3–4×, pixelated; Esc closes.
  await page.keyboard.press('z');
  await page.waitForSelector('#zoom-dialog[open] .zoom-panel[data-kind="reconstruction"] img');
  await page.waitForFunction(() => [...document.querySelectorAll('#zoom-dialog img')].every((i) => i.complete && i.naturalWidth > 0));
  const zoom = await page.$eval('#zoom-dialog .zoom-panel[data-kind="frame"] img', (img) => ({ rendering: getComputedStyle(img).imageRendering, scale: img.getBoundingClientRect().width / img.naturalWidth }));
  assert.equal(zoom.rendering, 'pixelated');
  assert.ok(zoom.scale >= 3 && zoom.scale <= 4, `zoom ${zoom.scale}×`);
  await shot('review-zoom-1366');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.getElementById('zoom-dialog').open);
  await page.focus('#queue-list');

  // New defects arrive live while the simulator runs.
  const topId = async () => Number(await page.getAttribute('#queue-list [role="option"]', 'data-id'));
  const firstTop = await topId();
  await until('a newer defect arriving live', async () => (await topId()) > firstTop, 30_000);

  // j / k move the selection.
  const selected = async () => Number(await page.getAttribute('#queue-list [aria-selected="true"]', 'data-id'));
  const s0 = await selected();
  await page.keyboard.press('j');
  const s1 = await selected();
  assert.ok(s1 < s0, 'j selects the next (older) item');
  await page.keyboard.press('k');
  assert.equal(await selected(), s0);
  await page.keyboard.press('ArrowDown');
  assert.equal(await selected(), s1);
  await page.keyboard.press('ArrowUp');

  // n focuses the note; s picks the next severity; c opens the type picker and 2 confirms the
  // selected defect as a fractured clip (two keys), with the note and the severity.
  confirmedId = await selected();
  const queueIds = () => page.$$eval('#queue-list [role="option"]', (els) => els.map((e) => Number(e.dataset.id)));
  const idsBefore = await queueIds();
  await page.keyboard.press('n');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'review-note');
  await page.keyboard.type('clip missing (e2e)');
  await page.keyboard.press('Escape');
  assert.equal(await page.inputValue('#review-severity'), 'immediate', 'the first configured severity is preselected');
  await page.keyboard.press('s');
  assert.equal(await page.inputValue('#review-severity'), 'plan');
  await page.keyboard.press('c');
  await page.waitForSelector('#type-picker:not([hidden])');
  assert.equal(await page.getAttribute('#btn-confirm', 'aria-expanded'), 'true');
  assert.match(await page.textContent('#type-picker [data-type="fractured_clip"]'), /^2\s+fractured clip$/);
  assert.match(await page.textContent('#type-picker [data-type="other"]'), /^0\s+other$/);
  await shot('review-type-picker-1366');
  await axeCheck('review with the defect type picker open');
  await page.keyboard.press('2');
  await until('API shows the confirmation', async () => (await api(`/v1/inspections/${confirmedId}`)).json?.review?.state === 'confirmed');
  const confirmed = (await api(`/v1/inspections/${confirmedId}`)).json;
  assert.equal(confirmed.review.note, 'clip missing (e2e)');
  assert.equal(confirmed.review.type, 'fractured_clip');
  assert.equal(confirmed.review.severity, 'plan');
  assert.equal(confirmed.review.lifecycle.state, 'open');
  await page.waitForFunction((id) => !document.getElementById(`q-${id}`), confirmedId);
  const selAfter = await selected();
  assert.notEqual(selAfter, confirmedId, 'the next item is selected');
  // Exactly the confirmed item left the queue; live arrivals may have joined it meanwhile.
  const idsAfter = await queueIds();
  assert.ok(!idsAfter.includes(confirmedId), 'the confirmed item left the queue');
  const lost = idsBefore.filter((id) => id !== confirmedId && !idsAfter.includes(id));
  assert.deepEqual(lost, [], 'no other item left the queue');

  // f marks the (new) selection as a false alarm.
  falseAlarmId = selAfter;
  await page.keyboard.press('f');
  await until('API shows the false alarm', async () => (await api(`/v1/inspections/${falseAlarmId}`)).json?.review?.state === 'false_alarm');
  await page.waitForFunction((id) => !document.getElementById(`q-${id}`), falseAlarmId);

  // The review-state filter lists them again.
  await page.selectOption('#f-review', 'reviewed');
  await page.waitForSelector(`#q-${confirmedId}`);
  await page.waitForSelector(`#q-${falseAlarmId}`);
  await page.click('#f-reset');
  await page.waitForFunction(() => document.getElementById('f-review').value === 'unreviewed' && document.getElementById('f-camera').value === '');
});

/** RFC 4180 rows (quoted fields, doubled quotes, CRLF). */
function parseCsv(text) {
  const rows = [];
  let row = [], field = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false; else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; } else if (c === '\n') { row.push(field); rows.push(row); row = []; field = ''; } else if (c !== '\r') field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows;
}

test('defects: the confirmed defect is listed, exported as CSV and GeoJSON, and its repair ordered', async () => {
  await go('defects');
  const rowSel = `#defect-table tr[data-id="${confirmedId}"]`;
  await page.waitForSelector(rowSel);
  assert.match(await page.textContent(rowSel), /fractured clip/);
  assert.match(await page.textContent('#defect-summary'), /confirmed defect/);
  const shown = (await api(`/v1/inspections/${confirmedId}`)).json;
  const dm = Math.round(shown.position_m * 10); // kilometrage km+m to 0.1 m, e.g. 1+234.5
  const km = `${Math.floor(dm / 10000)}+${String(Math.floor((dm % 10000) / 10)).padStart(3, '0')}.${dm % 10}`;

  // Download CSV: parsed back, the row has km+m, track, type, severity, note and the image link.
  const [csvDl] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
  assert.match(csvDl.suggestedFilename(), /^railscope-defects-.*\.csv$/);
  const rows = parseCsv(readFileSync(await csvDl.path(), 'utf8'));
  const col = (name) => rows[0].indexOf(name);
  const mine = rows.find((r) => r[col('id')] === String(confirmedId));
  assert.ok(mine, `row ${confirmedId} in ${JSON.stringify(rows)}`);
  assert.equal(mine[col('km')], km);
  assert.equal(mine[col('track_id')], shown.track_id);
  assert.equal(mine[col('type')], 'fractured_clip');
  assert.equal(mine[col('severity')], 'plan');
  assert.equal(mine[col('state')], 'open');
  assert.equal(mine[col('note')], 'clip missing (e2e)');
  assert.equal(mine[col('camera')], 'cam-01');
  assert.equal(mine[col('image_url')], `${base}/v1/inspections/${confirmedId}/image`);

  // Download GeoJSON: a FeatureCollection, no invented coordinates, the linear reference kept.
  const [geoDl] = await Promise.all([page.waitForEvent('download'), page.click('#export-geojson')]);
  const geo = JSON.parse(readFileSync(await geoDl.path(), 'utf8'));
  assert.equal(geo.type, 'FeatureCollection');
  const feat = geo.features.find((f) => f.id === confirmedId);
  assert.ok(feat, JSON.stringify(geo));
  assert.equal(feat.geometry, null);
  assert.deepEqual([feat.properties.km, feat.properties.type, feat.properties.severity], [km, 'fractured_clip', 'plan']);
  assert.deepEqual(feat.properties.linear_ref, { route: shown.track_id, measure_m: shown.position_m });

  // The printable work order has the same filters.
  assert.equal(await page.getAttribute('#export-print', 'href'), '/v1/defects?format=html');
  const print = await page.evaluate(async () => { const r = await fetch('/v1/defects?format=html'); return { ct: r.headers.get('content-type'), text: await r.text() }; });
  assert.match(print.ct, /^text\/html/);
  assert.ok(print.text.includes(km) && print.text.includes('@media print'));
  // A filter narrows the list and the export links.
  await page.selectOption('#d-severity', 'immediate');
  await page.waitForFunction((id) => !document.querySelector(`#defect-table tr[data-id="${id}"]`), confirmedId);
  assert.equal(await page.getAttribute('#export-csv', 'href'), '/v1/defects?format=csv&severity=immediate');
  await page.selectOption('#d-severity', '');
  await page.waitForSelector(rowSel);
  await checkView('defects');

  // Order the repair: the lifecycle moves on, with who.
  await page.click(`${rowSel} button[data-to="repair_ordered"]`);
  await until('API shows repair_ordered', async () => (await api(`/v1/inspections/${confirmedId}`)).json?.review?.lifecycle?.state === 'repair_ordered');
  await page.waitForFunction((sel) => /repair ordered/.test(document.querySelector(sel)?.textContent ?? ''), rowSel);
  const hist = (await api(`/v1/inspections/${confirmedId}/history`)).json.items.map((e) => `${e.kind}:${e.state}`);
  assert.deepEqual(hist, ['review:confirmed', 'lifecycle:open', 'lifecycle:repair_ordered']);
});

test('review: a defect without a crop says why (note), with no score and no crop to zoom', async () => {
  await go('review');
  await page.selectOption('#f-camera', 'cam-04');
  await page.waitForSelector(`#q-${noTrack.id}`);
  // The list row: a tag instead of the score.
  assert.equal(await page.textContent(`#q-${noTrack.id} [data-role="note-tag"]`), 'no track');
  assert.equal(await page.getAttribute(`#q-${noTrack.id} [data-role="note-tag"]`, 'title'), noTrack.note);
  await page.click(`#q-${noTrack.id}`);
  await page.waitForSelector('#frame-note[data-kind="no_track"]');
  await page.waitForFunction(() => {
    const f = document.getElementById('detail-frame');
    return f && f.complete && f.naturalWidth > 0;
  });
  // The notice: visible, above the picture, with the server's reason.
  assert.equal(await page.isVisible('#frame-note'), true);
  const notice = await page.textContent('#frame-note');
  assert.match(notice, /No track found — blocked or misaimed camera\?/);
  assert.ok(notice.includes(noTrack.note.replace(/^no track found:\s*/, '')), `the reason is shown: ${notice}`);
  const [noteBox, stackBox] = await Promise.all([page.locator('#frame-note').boundingBox(), page.locator('#stack').boundingBox()]);
  assert.ok(noteBox.y + noteBox.height <= stackBox.y + 1, 'the notice is above the image');
  // No score: a dash, no comparison with the threshold, no crop to zoom.
  assert.equal(await page.textContent('#detail-score [data-role="a-norm"]'), '–');
  const scoreText = await page.textContent('#detail-score');
  assert.match(scoreText, /not scored/);
  assert.doesNotMatch(scoreText, /[>≤]|null|NaN|undefined/);
  assert.equal(await page.isDisabled('#zoom-btn'), true);
  assert.doesNotMatch(await page.textContent('#review-detail'), /\bnull\b|NaN|undefined/);
  if (await page.isVisible('#heat-legend')) assert.match(await page.textContent('#heat-legend'), /no A′/);
  await shot('review-note-1366');

  // Partial slots drawn as thin dashed outlines with their tooltip and legend line. A blank frame
  // has no slots, so the listing is answered with this frame as an "every slot cut" one.
  const route = (url) => url.pathname === '/v1/inspections';
  await page.route(route, async (r) => {
    const res = await r.fetch();
    const body = await res.json();
    for (const i of body.items ?? []) {
      if (i.id !== noTrack.id) continue;
      Object.assign(i, { verdict: 'normal', note: "every fastener slot is cut by the frame's edge", partial_slots: [[0, 180, 48, 48], [470, 300, 42, 48]] });
    }
    await r.fulfill({ response: res, json: body });
  });
  await page.selectOption('#f-verdict', '');
  await page.waitForSelector('#frame-note[data-kind="all_partial"]');
  assert.equal(await page.textContent(`#q-${noTrack.id} [data-role="note-tag"]`), 'not scored');
  await page.waitForSelector('#stack svg.boxes rect.partial');
  const partial = await page.$$eval('#stack svg.boxes rect.partial', (rs) => rs.map((r) => ({ dash: getComputedStyle(r).strokeDasharray, title: r.querySelector('title')?.textContent })));
  assert.equal(partial.length, 2);
  for (const x of partial) {
    assert.equal(x.title, 'cut by the frame edge — not scored');
    assert.notEqual(x.dash, 'none', 'dashed');
  }
  assert.match(await page.textContent('#partial-legend'), /2 fastener slots cut by the frame edge — not scored/);
  await shot('review-partial-1366');
  await page.unroute(route);
  await page.click('#f-reset');
  await page.waitForFunction(() => document.getElementById('f-review').value === 'unreviewed' && document.getElementById('f-camera').value === '');
});

test('review: deep links open the exact inspection; a filtered bulk dismissal states its count and is undone (issue 12)', async () => {
  // Counts are the server's: wait for the simulated cameras to stop, then the badge, the list's
  // header and GET /v1/inspections agree on the number of unreviewed defects.
  await until('the simulator finished', async () => simulator.exitCode !== null, 40_000);
  await go('review');
  await page.waitForSelector('#queue-list [role="option"]');
  const unreviewed = async () => (await api('/v1/inspections?verdict=defect&review=unreviewed&limit=1')).json.total;
  const countsAgree = async () => {
    const n = await unreviewed();
    const badge = await page.getAttribute('#review-badge', 'data-count');
    const header = await page.getAttribute('#queue-summary', 'data-count');
    return badge === String(n) && header === String(n) && n;
  };
  const n0 = await until('badge = list header = API total', countsAgree);
  assert.match(await page.textContent('#queue-summary'), new RegExp(`^${n0} unreviewed defects`));

  // A deep link to an inspection the list does not hold (a normal frame): exactly that one.
  const normal = (await api('/v1/inspections?camera=cam-02&verdict=normal&limit=1')).json.items[0];
  assert.ok(normal, 'cam-02 sent normal frames');
  const showsExactly = (id) => page.waitForFunction((x) => document.getElementById('detail-h')?.textContent === `Inspection #${x}`
    && document.querySelector(`#q-${x}[data-linked="true"][aria-selected="true"]`), id);
  await page.evaluate((id) => { location.hash = `#/review/${id}`; }, normal.id);
  await showsExactly(normal.id);
  const listed = await page.$$eval('#queue-list [role="option"]:not([data-linked])', (els) => els.map((e) => Number(e.dataset.id)));
  assert.ok(listed.length > 0 && !listed.includes(normal.id), 'the list itself does not hold it');
  // Opened cold (a link pasted into a new page): the same inspection, not the newest one.
  await page.goto(`${base}/#/review/${normal.id}`);
  await page.waitForSelector('#view-review:not([hidden])');
  await showsExactly(normal.id);
  // An id that does not exist: said clearly (its 404 is expected, not a page error).
  const errorsBefore = consoleErrors.length;
  await page.evaluate(() => { location.hash = '#/review/99999999'; });
  await page.waitForFunction(() => /No inspection #99999999\./.test(document.getElementById('detail-empty')?.textContent ?? ''));
  await sleep(300);
  const unexpected = consoleErrors.splice(errorsBefore).filter((e) => !e.includes('/v1/inspections/99999999'));
  consoleErrors.push(...unexpected);

  // cam-02's unreviewed defects above a score, on its stretch of track (km), highest score first.
  const cam2 = (await api('/v1/inspections?camera=cam-02&verdict=defect&review=unreviewed&limit=500')).json.items.filter((i) => Number.isFinite(i.A_norm));
  const scores = [...new Set(cam2.map((i) => i.A_norm))].sort((a, b) => a - b);
  assert.ok(scores.length >= 3, `cam-02 has unreviewed defects to triage: ${scores}`);
  const minScore = String((scores[0] + scores[1]) / 2);
  const track = cam2[0].track_id;
  const positions = cam2.map((i) => i.position_m);
  const fromKm = Math.floor(Math.min(...positions) / 1000);
  const toKm = Math.ceil(Math.max(...positions) / 1000 + 0.001);
  await go('review');
  await page.selectOption('#f-camera', 'cam-02');
  await page.selectOption('#f-sort', 'score');
  for (const [sel, v] of [['#f-min-score', minScore], ['#f-track', track], ['#f-from-km', String(fromKm)], ['#f-to-km', String(toKm)]]) {
    await page.fill(sel, v);
    await page.dispatchEvent(sel, 'change');
  }
  const query = new URLSearchParams({ camera: 'cam-02', verdict: 'defect', review: 'unreviewed', track_id: track, min_position_m: String(fromKm * 1000), max_position_m: String(toKm * 1000), min_score: minScore, sort: 'score', limit: '500' });
  const expected = (await api(`/v1/inspections?${query}`)).json;
  const expectedIds = expected.items.map((i) => i.id);
  assert.equal(expected.total, cam2.filter((i) => i.A_norm >= Number(minScore)).length, 'min_score honoured, total = what it matches');
  assert.ok(expected.total >= 2 && expected.total < cam2.length);
  await page.waitForFunction((n) => document.getElementById('queue-summary').dataset.count === String(n), expected.total);
  await until('the list in score order', async () => JSON.stringify(await page.$$eval('#queue-list [role="option"]:not([data-linked])', (els) => els.map((e) => Number(e.dataset.id)))) === JSON.stringify(expectedIds.slice(0, 50)));

  // Dismiss them all (keyboard): the confirmation states the exact count and the filters.
  await page.focus('#bulk-false-alarm');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#bulk-dialog[open] #bulk-go');
  assert.equal(await page.getAttribute('#bulk-what', 'data-count'), String(expected.total));
  assert.equal(await page.textContent('#bulk-h'), `Dismiss all ${expected.total} as false alarms?`);
  assert.match(await page.textContent('#bulk-what'), new RegExp(`^${expected.total} unreviewed defects from cam-02 with A′ ≥ .* on track ${track} km`));
  await page.fill('#bulk-note', 'dirty lens (e2e)');
  await shot('review-bulk-1366');
  await axeCheck('the bulk review confirmation dialog');
  await page.focus('#bulk-go');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => !document.getElementById('bulk-dialog').open);
  await page.waitForFunction(() => document.getElementById('queue-summary').dataset.count === '0');
  const reviews = await Promise.all(expectedIds.map(async (id) => (await api(`/v1/inspections/${id}`)).json.review));
  for (const r of reviews) assert.deepEqual([r?.state, r?.note, r?.reviewer], ['false_alarm', 'dirty lens (e2e)', ACCOUNT]);
  const hist = (await api(`/v1/inspections/${expectedIds[0]}/history`)).json.items;
  const batchId = hist.at(-1).batch_id;
  assert.ok(Number.isInteger(batchId), JSON.stringify(hist));
  assert.equal((await api(`/v1/review-batches/${batchId}`)).json.count, expected.total);
  await until('the badge counts them out', async () => (await page.getAttribute('#review-badge', 'data-count')) === String(n0 - expected.total));

  // Undo from the toast (keyboard): every one unreviewed again, the counts back.
  await page.waitForSelector('#toasts .toast-action');
  await page.focus('#toasts .toast-action');
  await page.keyboard.press('Enter');
  await until('unreviewed again', async () => (await Promise.all(expectedIds.map(async (id) => (await api(`/v1/inspections/${id}`)).json.review))).every((r) => r === null));
  await page.waitForFunction((n) => document.getElementById('queue-summary').dataset.count === String(n), expected.total);
  const undone = (await api(`/v1/review-batches/${batchId}`)).json.undone;
  assert.equal(undone.by, ACCOUNT);
  assert.deepEqual([...undone.restored].sort(), [...expectedIds].sort());
  assert.equal(await page.isVisible('#bulk-undo'), false, 'nothing left to undo');
  await page.click('#f-reset');
  await page.waitForFunction(() => document.getElementById('f-review').value === 'unreviewed' && document.getElementById('f-camera').value === '' && document.getElementById('f-sort').value === 'newest');
  assert.equal(await until('badge = list header = API total again', countsAgree), n0);
});

test('trends: the three charts are drawn', async () => {
  await go('trends');
  await page.waitForSelector('#chart-trend svg.chart circle');
  await page.waitForSelector('#chart-scores svg.chart .threshold');
  await page.waitForSelector('#chart-positions svg.chart');
  const bars = await page.$$eval('#chart-positions svg.chart .bar-defect', (els) => els.length);
  assert.ok(bars > 0, 'defects along the track are drawn');
  assert.ok(await page.$eval('#chart-scores svg.chart', (s) => s.querySelectorAll('.bar-normal, .bar-defect').length) > 0);
  await checkView('trends');
});

test('calibration: a proposal after one confirmed defect and one false alarm', async () => {
  await go('calibration');
  const card = '.calib-card[data-camera="cam-01"]';
  await page.waitForSelector(`${card} [data-role="proposed-threshold"]`);
  await page.waitForSelector(`${card} table.effect`);
  assert.equal(await page.isVisible(`${card} [data-role="apply"]`), false, 'Apply is admin-only');
  // The server's effects agree with the page's math over the frames the proposal counted, and
  // those are the stored reviewed frames (A′ under the same calibration).
  const prop = (await api('/v1/cameras/cam-01/calibration/proposal?method=best_f1')).json;
  assert.ok(prop.proposed && Number.isFinite(prop.proposed.threshold), JSON.stringify(prop));
  assert.ok(prop.reviewed.confirmed >= 1 && prop.reviewed.false_alarm >= 1);
  const counted = reviewedFromProposal(prop);
  for (const k of ['tp', 'fp', 'fn', 'tn']) {
    assert.equal(prop.effect.current[k], computeEffect(counted, prop.current.threshold)[k], `effect.current.${k}`);
    assert.equal(prop.effect.proposed[k], computeEffect(counted, prop.proposed.threshold)[k], `effect.proposed.${k}`);
  }
  const reviewed = (await api('/v1/inspections?camera=cam-01&review=reviewed&limit=500')).json.items;
  assert.deepEqual(counted.map((r) => r.id).sort(), reviewed.filter((i) => i.A_norm != null).map((i) => i.id).sort());
  for (const r of counted) assert.ok(Math.abs(r.A_norm - reviewed.find((i) => i.id === r.id).A_norm) < 1e-12);
  assert.equal(await page.textContent(`${card} [data-role="proposed-threshold"]`), exactThreshold(prop.proposed.threshold));
  assert.match(await page.textContent(`${card} [data-role="source"]`), /model default: nested-edgan\.json/);
  // The false-alarm-rate method with a target.
  await page.selectOption(`${card} [data-role="method"]`, 'false_alarm_rate');
  await page.waitForSelector(`${card} [data-role="target"]`, { state: 'visible' });
  await page.waitForSelector(`${card} [data-role="proposed-threshold"]`);
  await checkView('calibration');
});

test('admin: apply a proposed threshold', async () => {
  loggedIn = false; // the reloaded page asks /v1/me again: a 401 now is expected
  await page.click('#logout-btn');
  await page.waitForSelector('#login-view:not([hidden])');
  assert.equal((await page.evaluate(async () => (await fetch('/v1/me')).status)), 401, 'logged out');
  await page.click('#login-token-box summary');
  await page.fill('#login-token', ADMIN);
  await page.click('#login-submit');
  await page.waitForSelector('.views-nav:not([hidden])');
  loggedIn = true;
  assert.equal(await page.textContent('#role-label'), 'admin');
  assert.equal(await page.textContent('#who-label'), 'Signed in with the shared admin token');
  await go('calibration');
  const card = '.calib-card[data-camera="cam-01"]';
  await page.waitForSelector(`${card} [data-role="proposed-threshold"]`);
  await page.waitForSelector(`${card} [data-role="apply"]`, { state: 'visible' });
  const proposed = Number(await page.inputValue(`${card} [data-role="try"]`));
  await page.click(`${card} [data-role="apply"]`);
  await until('cam-01 threshold applied', async () => {
    const cams = (await api('/v1/cameras')).json.cameras;
    return cams.find((c) => c.id === 'cam-01').calibration.threshold === proposed;
  });
  await page.waitForFunction((t) => Number(document.querySelector('.calib-card[data-camera="cam-01"] [data-role="current-threshold"]').dataset.exact) === t, proposed);
  await page.waitForSelector(`${card} [data-role="source"][data-origin="applied"]`);
  // Kept in the database, audited, and listed on the card.
  const audit = (await api('/v1/calibration/audit?camera=cam-01')).json.items;
  assert.equal(audit[0].action, 'apply');
  assert.equal(audit[0].actor, 'admin');
  assert.equal(audit[0].new_threshold, proposed);
  assert.match(audit[0].reason, /^best-F1 proposal from 1 confirmed defects and 1 false alarms reviewed under nested-edgan /);
  await page.waitForSelector(`${card} [data-role="audit-list"] li[data-audit-id="${audit[0].id}"]`);
  assert.equal(existsSync(join(tmp, 'calibration', 'nested-edgan.cam-01.json')), false, 'no calibration file is written');
});

test('admin: Apply sends the exact proposal when rounding would miss a confirmed defect (issue 12)', async () => {
  // cam-02's simulated frames, reviewed through the API so that best F1 flags every reviewed
  // frame: the proposal then sits a hair below the lowest confirmed defect L, where the old
  // page's 4-decimal rounding went above L (so "recall 100 %" applied as a miss).
  assert.deepEqual((await api('/v1/inspections?camera=cam-02&review=reviewed')).json.items, [], 'cam-02 has no review yet');
  const frames = (await api('/v1/inspections?camera=cam-02&limit=500')).json.items.filter((i) => Number.isFinite(i.A_norm)).sort((a, b) => a.A_norm - b.A_norm);
  const distinct = frames.filter((f, k) => k === 0 || f.A_norm > frames[k - 1].A_norm);
  const roundsUp = (a) => { const frac = (a * 1e4) % 1; return frac > 0.51 && frac < 0.99; };
  const k = distinct.findIndex((f, i) => i + 3 < distinct.length && f.A_norm > 0.001 && roundsUp(f.A_norm));
  assert.ok(k >= 0, `a cam-02 frame whose A′ rounds up at 4 decimals, below three others: ${distinct.map((f) => f.A_norm).join(', ')}`);
  const low = distinct[k];
  const [mid, high1, high2] = [distinct[k + 1], distinct.at(-2), distinct.at(-1)];
  for (const [f, state] of [[low, 'confirmed'], [mid, 'false_alarm'], [high1, 'confirmed'], [high2, 'confirmed']]) {
    const r = await api(`/v1/inspections/${f.id}/review`, { method: 'POST', body: JSON.stringify({ state }), headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 200, r.text);
  }
  const prop = (await api('/v1/cameras/cam-02/calibration/proposal?method=best_f1')).json;
  const p = prop.proposed?.threshold;
  assert.ok(p < low.A_norm && low.A_norm - p < 1e-8, `just below L = ${low.A_norm}: ${JSON.stringify(prop)}`);
  assert.equal(prop.missed_confirmed, 0);
  assert.equal(prop.effect.proposed.recall, 1);
  assert.ok(Number(p.toFixed(4)) > low.A_norm, `the old page's rounding ${p.toFixed(4)} would have missed L = ${low.A_norm}`);

  const card = '.calib-card[data-camera="cam-02"]';
  await go('calibration');
  await page.selectOption(`${card} [data-role="method"]`, 'best_f1');
  await page.click(`${card} [data-role="get"]`);
  await page.waitForFunction(([sel, t]) => document.querySelector(`${sel} [data-role="proposed-threshold"]`)?.textContent === t, [card, exactThreshold(p)]);
  assert.equal(await page.inputValue(`${card} [data-role="try"]`), exactThreshold(p), 'the box holds the exact proposal');
  assert.match(await page.textContent(`${card} [data-role="whatif"]`), /catches 3 of 3 confirmed defects \(recall 100\.0 %\)/);
  assert.equal(await page.isVisible(`${card} [data-role="whatif-missed"]`), false);
  // What the rounded value would do is said in words.
  await page.fill(`${card} [data-role="try"]`, p.toFixed(4));
  await page.waitForSelector(`${card} [data-role="whatif-missed"]:not([hidden])`);
  assert.match(await page.textContent(`${card} [data-role="whatif-missed"]`), /^Misses 1 of 3 confirmed defects/);
  await page.fill(`${card} [data-role="try"]`, exactThreshold(p));
  await page.waitForSelector(`${card} [data-role="whatif-missed"]`, { state: 'hidden' });

  const sent = page.waitForRequest((r) => r.method() === 'PUT' && r.url().endsWith('/v1/cameras/cam-02/calibration'));
  await page.click(`${card} [data-role="apply"]`);
  const body = JSON.parse((await sent).postData());
  assert.equal(body.threshold, p, 'Apply sends the exact proposed value');
  await until('cam-02 threshold applied', async () => (await api('/v1/cameras')).json.cameras.find((c) => c.id === 'cam-02').calibration.threshold === p);
  const cam2 = (await api('/v1/cameras')).json.cameras.find((c) => c.id === 'cam-02').calibration;
  assert.equal(cam2.origin, 'applied');
  assert.ok(low.A_norm > cam2.threshold, 'the confirmed defect the proposal was built from is still flagged');
  const after = (await api('/v1/cameras/cam-02/calibration/proposal?method=best_f1')).json;
  assert.equal(after.effect.current.fn, 0, 'no confirmed defect missed at the applied threshold');
  const entry = (await api('/v1/calibration/audit?camera=cam-02')).json.items[0];
  await page.waitForSelector(`${card} [data-role="audit-list"] li[data-audit-id="${entry.id}"]`);
  assert.match(await page.textContent(`${card} li[data-audit-id="${entry.id}"] [data-role="change"]`), new RegExp(`→ ${exactThreshold(p).replace('.', '\\.')}$`));
  assert.equal(await page.textContent(`${card} li[data-audit-id="${entry.id}"] [data-role="actor"]`), 'admin');
  await checkView('calibration-applied');

  // Clear: the model default applies again, and that is audited too.
  await page.click(`${card} [data-role="clear"]`);
  await page.waitForSelector(`${card} [data-role="source"][data-origin="default"]`);
  const cleared = (await api('/v1/calibration/audit?camera=cam-02')).json.items[0];
  assert.equal(cleared.action, 'clear');
  assert.equal(cleared.old_threshold, p);
  await page.waitForSelector(`${card} li[data-audit-id="${cleared.id}"][data-action="clear"]`);
  assert.equal(await page.isVisible(`${card} [data-role="clear"]`), false);
});

test('tablet width (800×1100): the review view fits', async () => {
  await page.setViewportSize(TABLET);
  await go('review');
  await page.waitForSelector('#queue-list [role="option"]');
  await page.waitForFunction(() => {
    const h = document.getElementById('detail-heatmap');
    return h && h.complete && h.naturalWidth > 0;
  });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `no horizontal scrolling at 800 px (overflow ${overflow} px)`);
  // (every view's 800 px screenshot and axe-core run: checkView in the tests above)
  await page.setViewportSize(DESKTOP);
});

test('axe-core ran on every view', async () => {
  const views = ['login', 'wall', 'review', 'defects', 'trends', 'calibration', 'calibration-applied'];
  for (const v of views) for (const w of [1366, 800]) assert.ok(axeChecked.some((c) => c.startsWith(`${v} at ${w} px:`)), `${v} at ${w} px: ${axeChecked.join('; ')}`);
  console.log(`axe-core, 0 violations (WCAG 2 A/AA): ${axeChecked.join('; ')}`);
});

test('no console errors', async () => {
  assert.deepEqual(consoleErrors, []);
});

// After "no console errors": cutting the page off the server makes the browser log failed loads.
test('start of shift: the summary since the last visit, full camera names; a server outage is one banner, not silent cameras (issue 12)', async () => {
  await page.setViewportSize(DESKTOP);
  // The person's last visit (this browser) was before any frame: everything is new.
  await page.addInitScript((t) => { try { localStorage.setItem('railscope.lastVisit', String(t)); } catch { /* private mode */ } }, E2E_START);
  await page.reload();
  await go('wall');
  const expected = (await api(`/v1/summary?since=${encodeURIComponent(new Date(E2E_START).toISOString())}`)).json;
  assert.ok(expected.totals.defects > 0, JSON.stringify(expected.totals));
  await page.waitForSelector('#shift-totals[data-defects]');
  assert.equal(await page.getAttribute('#shift-totals', 'data-defects'), String(expected.totals.defects));
  assert.match(await page.textContent('#shift-totals'), new RegExp(`^${expected.totals.defects} new defects? in `));
  const c1 = expected.cameras.find((c) => c.camera === 'cam-01');
  assert.equal(Number(await page.textContent('#shift-table tr[data-camera="cam-01"] [data-field="defects"]')), c1.defects);
  // The tile: unreviewed defects of that camera, the defects since and the track section.
  assert.equal(Number((await page.textContent('.tile[data-camera="cam-01"] [data-field="unreviewed"]')).replace(/\D/g, '')), c1.unreviewed);
  assert.match(await page.textContent('.tile[data-camera="cam-01"] [data-field="sincelabel"]'), /^Defects since /);
  assert.match(await page.textContent('.tile[data-camera="cam-01"] [data-field="track"]'), /km \d/);
  // Full camera names: wrapped, never cut at "left rail".
  for (const cam of ['cam-01', 'cam-02']) {
    const name = await page.$eval(`.tile[data-camera="${cam}"] [data-field="name"]`, (el) => ({ text: el.textContent, cut: el.scrollWidth > el.clientWidth }));
    assert.match(name.text, /(left|right) rail$/);
    assert.equal(name.cut, false, `${cam}'s name is shown whole`);
  }
  // Another start: a minute ahead, nothing since; back to the last visit.
  await page.fill('#shift-since', await page.evaluate(() => {
    const d = new Date(Date.now() + 60_000);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  }));
  await page.dispatchEvent('#shift-since', 'change');
  await page.waitForFunction(() => document.getElementById('shift-totals').dataset.defects === '0' && /^0 new defects/.test(document.getElementById('shift-totals').textContent));
  await page.click('#shift-last-visit');
  await page.waitForFunction((n) => document.getElementById('shift-totals').textContent.startsWith(`${n} new defect`), expected.totals.defects);
  await shot('wall-shift-1366');

  // Firing Prometheus alerts (GET /v1/alerts answered as a Prometheus-connected server would;
  // docker/grafana/check_alerts.py gets such an answer from a real Prometheus): listed per
  // camera in the panel, and on the camera's tile.
  const firing = { connected: true, checked_at: new Date().toISOString(), alerts: [
    { name: 'RailscopeCameraSilent', state: 'firing', severity: 'warning', camera: 'cam-02', instance: null, since: new Date(Date.now() - 400_000).toISOString(), summary: 'Camera cam-02 sent no frame for 6m 40s' },
    { name: 'RailscopeQueueSaturated', state: 'pending', severity: 'critical', camera: null, instance: `127.0.0.1:${port}`, since: new Date(Date.now() - 60_000).toISOString(), summary: `railscope 127.0.0.1:${port} inference queue 85% full` },
  ] };
  const alertsRoute = (url) => url.pathname === '/v1/alerts';
  let alertsAnswer = { status: 200, json: firing };
  await page.route(alertsRoute, (r) => r.fulfill({ status: alertsAnswer.status, json: alertsAnswer.json }));
  try {
    await page.reload();
    await go('wall');
    await page.waitForSelector('#shift-alerts[data-status="alerts"]');
    assert.equal(await page.textContent('#shift-alerts-status'), '1 alert firing, 1 pending');
    const li = '#shift-alerts-list li[data-alert="RailscopeCameraSilent"][data-camera="cam-02"]';
    assert.match(await page.textContent(li), /^firing cam-02 .*RailscopeCameraSilent · warning · since .*Camera cam-02 sent no frame for 6m 40s$/);
    assert.match(await page.textContent('#shift-alerts-list li[data-alert="RailscopeQueueSaturated"]'), /^pending service RailscopeQueueSaturated/);
    await page.waitForSelector('.tile[data-camera="cam-02"] [data-field="alerts"]:not([hidden])');
    assert.equal(await page.textContent('.tile[data-camera="cam-02"] [data-field="alerts"]'), '1 alert firing: RailscopeCameraSilent');
    assert.equal(await page.isVisible('.tile[data-camera="cam-01"] [data-field="alerts"]'), false);
    await checkView('wall-alerts');
    // Prometheus down: the server answers 502 alerts_unavailable; the panel says so, and the
    // server itself is not taken for down.
    alertsAnswer = { status: 502, json: { error: { code: 'alerts_unavailable', message: 'alerts unavailable: Prometheus cannot be reached (Connection Failed)' } } };
    await page.reload();
    await go('wall');
    await page.waitForSelector('#shift-alerts[data-status="unavailable"]');
    assert.equal(await page.textContent('#shift-alerts-status'), 'Alerts unavailable: Prometheus cannot be reached (Connection Failed)');
    await page.waitForSelector('#shift-totals[data-defects]');
    assert.equal(await page.isVisible('#server-banner'), false, 'Prometheus down is not the server down');
    assert.equal(await page.isVisible('.tile[data-camera="cam-02"] [data-field="alerts"]'), false);
    await shot('wall-alerts-unavailable-1366');
  } finally {
    await page.unroute(alertsRoute);
  }

  // The server cannot be reached: one banner; no camera turns SILENT.
  assert.equal(await page.isVisible('.tile[data-camera="cam-03"] [data-field="silent"]'), true, 'cam-03 never sent: silent while the server answers');
  await page.route('**/v1/**', (r) => r.abort());
  try {
    await page.waitForSelector('#server-banner:not([hidden])', { timeout: 25_000 });
    assert.match(await page.textContent('#server-banner'), /Cannot reach the server since \d{2}:\d{2}:\d{2}/);
    const states = await page.$$eval('.tile [data-field="state"]', (els) => els.map((e) => e.textContent));
    assert.ok(states.length >= 4 && states.every((s) => s === 'no data'), states.join(', '));
    assert.equal(await page.isVisible('.tile[data-camera="cam-03"] [data-field="silent"]'), false, 'not silent: unknown');
    assert.equal(await page.isVisible('#silent-badge'), false);
    await shot('wall-server-down-1366');
    await axeCheck('the wall with the server-down banner');
  } finally {
    await page.unroute('**/v1/**');
  }
  await page.waitForSelector('#server-banner', { state: 'hidden', timeout: 10_000 });
  await page.waitForSelector('.tile[data-camera="cam-03"] [data-field="silent"]', { state: 'visible' });
});

// The railscope HTTP API client. Same-origin fetches with the HttpOnly session cookie set by
// POST /v1/login; every failure becomes an ApiError with the server's stable error code.

export class ApiError extends Error {
  constructor(status, code, message, retryAfterS = null) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || (status === 0 ? 'network' : `http_${status}`);
    /** Seconds from the Retry-After header (429, 503), or null. */
    this.retryAfterS = retryAfterS;
  }
}

/** Turn a non-2xx response into an ApiError, using the {"error": {code, message}} body when present. */
export async function errorFrom(res) {
  let code = null, message = null;
  try {
    const body = await res.json();
    code = body?.error?.code ?? null;
    message = body?.error?.message ?? null;
  } catch {
    /* not JSON */
  }
  const retry = Number.parseInt(res.headers?.get?.('Retry-After') ?? '', 10);
  return new ApiError(res.status, code, message || `${res.status} ${res.statusText || ''}`.trim(), Number.isFinite(retry) ? retry : null);
}

export function createApi(fetchImpl = (...a) => globalThis.fetch(...a), { onUnauthorized } = {}) {
  async function request(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetchImpl(path, init);
    } catch (e) {
      throw new ApiError(0, 'network', `The server cannot be reached (${e.message}).`);
    }
    if (!res.ok) {
      const err = await errorFrom(res);
      if (res.status === 401 && path !== '/v1/login' && onUnauthorized) onUnauthorized(err);
      throw err;
    }
    if (res.status === 204) return null;
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  }
  const q = (params) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
    const s = p.toString();
    return s ? `?${s}` : '';
  };
  const enc = encodeURIComponent;
  return {
    request,
    // An account: login({ username, password }); a config token: login({ token }).
    login: (credentials) => request('POST', '/v1/login', credentials),
    logout: () => request('POST', '/v1/logout'),
    me: () => request('GET', '/v1/me'),
    cameras: () => request('GET', '/v1/cameras'),
    inspections: (query) => request('GET', `/v1/inspections${typeof query === 'string' ? (query ? `?${query}` : '') : q(query)}`),
    inspection: (id) => request('GET', `/v1/inspections/${enc(id)}`),
    review: (id, state, note) => request('POST', `/v1/inspections/${enc(id)}/review`, { state, note: note ?? '' }),
    // A confirmation with its type, severity, rail side and sleeper (js/defects.js confirmBody).
    reviewWith: (id, body) => request('POST', `/v1/inspections/${enc(id)}/review`, body),
    // Bulk review (js/state.js bulkBody): one transaction; the answer is the batch, with its id for the undo.
    reviewBatch: (body) => request('POST', '/v1/review-batches', body),
    undoReviewBatch: (id) => request('POST', `/v1/review-batches/${enc(id)}/undo`),
    catalogue: () => request('GET', '/v1/defects/catalogue'),
    defects: (query) => request('GET', `/v1/defects${query ?? ''}`),
    lifecycle: (id, state, note) => request('POST', `/v1/inspections/${enc(id)}/lifecycle`, { state, note: note ?? '' }),
    trend: (params) => request('GET', `/v1/stats/trend${q(params)}`),
    positions: (params) => request('GET', `/v1/stats/positions${q(params)}`),
    scores: (params) => request('GET', `/v1/stats/scores${q(params)}`),
    // The start-of-shift summary: per camera, what happened since `since` (RFC 3339).
    summary: (params) => request('GET', `/v1/summary${q(params)}`),
    // Firing and pending railscope alerts of the configured Prometheus ({connected: false} when
    // none is configured; 502 alerts_unavailable when it cannot be asked).
    alerts: () => request('GET', '/v1/alerts'),
    proposal: (camera, params) => request('GET', `/v1/cameras/${enc(camera)}/calibration/proposal${q(params)}`),
    // The threshold is sent as the number it is, never rounded; reason goes to the audit.
    applyCalibration: (camera, threshold, reason) => request('PUT', `/v1/cameras/${enc(camera)}/calibration`, reason ? { threshold, reason } : { threshold }),
    clearCalibration: (camera) => request('DELETE', `/v1/cameras/${enc(camera)}/calibration`),
    calibrationAudit: (params) => request('GET', `/v1/calibration/audit${q(params)}`),
    reload: () => request('POST', '/admin/reload'),
  };
}

// The login panel's logic (no DOM): what to send, what to say when it fails, and who is signed in.

/**
 * The body of POST /v1/login from the panel's fields: a token when the token box is open and
 * filled, else the account name and password. `{ error }` when something is missing.
 */
export function loginBody({ username = '', password = '', token = '', tokenOpen = false }) {
  const t = token.trim();
  if (tokenOpen && t) return { body: { token: t } };
  const name = username.trim();
  if (!name && !password) {
    return { error: tokenOpen ? 'Enter a token, or your account name and password.' : 'Enter your account name and password.' };
  }
  if (!name) return { error: 'Enter your account name.' };
  if (!password) return { error: 'Enter your password.' };
  return { body: { username: name, password } };
}

/** Seconds as "N s" / "N min" for a waiting time. */
function fmtWait(s) {
  if (!Number.isFinite(s) || s <= 0) return 'a while';
  if (s < 90) return `${Math.ceil(s)} s`;
  return `${Math.ceil(s / 60)} min`;
}

/** What the panel says when a login fails (an ApiError from js/api.js). */
export function loginFailureMessage(err, viaToken) {
  if (err?.status === 429 || err?.code === 'too_many_attempts') {
    return `Too many failed logins. Wait ${fmtWait(err.retryAfterS)} and try again; the right password does not get in before then.`;
  }
  if (err?.status === 401) return viaToken ? 'This token was refused.' : 'Unknown account name or wrong password.';
  if (err?.status === 0) return `Cannot reach the server: ${err.message}`;
  return `Login failed: ${err?.message ?? err}`;
}

/** The top bar's "signed in as" text from GET /v1/me or the login answer. */
export function signedInAs(me) {
  const role = me?.role ?? 'inspector';
  const who = me?.who ?? role;
  return who === role ? `Signed in with the shared ${role} token` : `Signed in as ${who}`;
}

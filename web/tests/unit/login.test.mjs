import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loginBody, loginFailureMessage, signedInAs } from '../../js/login.js';
import { ApiError } from '../../js/api.js';

test('the login body: an account by default, the token when its box is open and filled', () => {
  assert.deepEqual(loginBody({ username: ' alice ', password: 'pw pw pw pw' }), { body: { username: 'alice', password: 'pw pw pw pw' } });
  assert.deepEqual(loginBody({ username: 'alice', password: 'x', token: ' tok ', tokenOpen: true }), { body: { token: 'tok' } });
  assert.deepEqual(loginBody({ username: 'alice', password: 'x', token: 'tok', tokenOpen: false }), { body: { username: 'alice', password: 'x' } },
    'a token typed into a closed box is not sent');
  assert.match(loginBody({}).error, /account name and password/);
  assert.match(loginBody({ tokenOpen: true }).error, /token/);
  assert.match(loginBody({ password: 'x' }).error, /account name/);
  assert.match(loginBody({ username: 'alice' }).error, /password/);
});

test('login failures are told apart: refused, throttled (with the wait), unreachable', () => {
  assert.equal(loginFailureMessage(new ApiError(401, 'unauthorized', 'x'), false), 'Unknown account name or wrong password.');
  assert.equal(loginFailureMessage(new ApiError(401, 'unauthorized', 'x'), true), 'This token was refused.');
  const slow = loginFailureMessage(new ApiError(429, 'too_many_attempts', 'x', 840), false);
  assert.match(slow, /Too many failed logins\. Wait 14 min/);
  assert.match(loginFailureMessage(new ApiError(429, 'too_many_attempts', 'x', 30), false), /Wait 30 s/);
  assert.match(loginFailureMessage(new ApiError(429, 'too_many_attempts', 'x'), false), /Wait a while/);
  assert.match(loginFailureMessage(new ApiError(0, 'network', 'down'), false), /Cannot reach the server: down/);
  assert.match(loginFailureMessage(new ApiError(500, 'internal', 'boom'), false), /Login failed: boom/);
});

test('who is signed in: an account by name, a shared token by its role', () => {
  assert.equal(signedInAs({ role: 'inspector', who: 'alice' }), 'Signed in as alice');
  assert.equal(signedInAs({ role: 'admin', who: 'admin' }), 'Signed in with the shared admin token');
  assert.equal(signedInAs({ role: 'inspector' }), 'Signed in with the shared inspector token');
});

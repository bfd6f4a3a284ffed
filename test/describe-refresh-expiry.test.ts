/** `status`' refresh-token expiry warning (src/cli/describe.ts): a day before, or at a quarter of
 * the refresh token's lifetime when that comes first; shown in `status --json`. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeServer, refreshTokenExpiryWarning } from '../src/cli/describe.ts';
import type { Credential, ServerConfig } from '../src/types.ts';

const NOW = 1_800_000_000_000;
const HOUR = 3600_000;
const server: ServerConfig = { name: 'kc', url: 'https://mcp.example.com/mcp', source: 'config', httpHeaders: {}, envHttpHeaders: {}, oauth: { authorizeParams: {} } };
const credential = (over: Partial<Credential>): Credential => ({
  key: { serverName: 'kc', resource: 'https://mcp.example.com/mcp', issuer: 'https://sso.example.com/realms/x' },
  accessToken: 'at',
  refreshToken: 'rt',
  tokenType: 'Bearer',
  expiresAt: NOW + HOUR,
  scopes: ['mcp'],
  clientId: 'c',
  tokenEndpoint: 'https://sso.example.com/realms/x/token',
  tokenEndpointAuthMethod: 'none',
  obtainedAt: NOW,
  ...over,
});

describe('refresh token expiry warning', () => {
  it('none without a known expiry, or far from it', () => {
    assert.equal(refreshTokenExpiryWarning(credential({}), 'kc', NOW), undefined);
    assert.equal(refreshTokenExpiryWarning(credential({ refreshTokenExpiresAt: NOW + 30 * 24 * HOUR }), 'kc', NOW), undefined);
    assert.equal(refreshTokenExpiryWarning(credential({ refreshToken: undefined, refreshTokenExpiresAt: NOW + HOUR }), 'kc', NOW), undefined);
  });

  it('within a day: warns with the login command', () => {
    const w = refreshTokenExpiryWarning(credential({ refreshTokenExpiresAt: NOW + 23 * HOUR }), 'kc', NOW);
    assert.match(w ?? '', /expires in 23h 0m/);
    assert.match(w ?? '', /mcp-oauth login kc/);
  });

  it('within a quarter of its lifetime, even more than a day ahead', () => {
    // 40 days of life, 9 left (obtained 31 days ago): under a quarter.
    const c = credential({ obtainedAt: NOW - 31 * 24 * HOUR, refreshTokenExpiresAt: NOW + 9 * 24 * HOUR });
    assert.match(refreshTokenExpiryWarning(c, 'kc', NOW) ?? '', /expires in 9d/);
    assert.equal(refreshTokenExpiryWarning({ ...c, obtainedAt: NOW - 20 * 24 * HOUR }, 'kc', NOW), undefined);
  });

  it('expired: sign in again; status --json says so and needs a sign-in once the access token is gone too', () => {
    const c = credential({ expiresAt: NOW - 1, refreshTokenExpiresAt: NOW - 1000 });
    assert.match(refreshTokenExpiryWarning(c, 'kc', NOW) ?? '', /expired .* ago: sign in again/);
    const state = describeServer(server, { ...c, provider: 'keycloak', quirksApplied: ['refresh-expires-in'] }, NOW);
    assert.equal(state.needs_sign_in, true);
    assert.equal(state.refresh_token_expires_at, new Date(NOW - 1000).toISOString());
    assert.equal(state.provider, 'keycloak');
    assert.deepEqual(state.quirks_applied, ['refresh-expires-in']);
    assert.equal(describeServer(server, credential({ refreshTokenExpiresAt: NOW - 1000 }), NOW).needs_sign_in, false, 'the access token still works');
  });
});

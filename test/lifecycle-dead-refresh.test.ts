/**
 * The token manager and the providers' words for a dead refresh token (src/oauth/quirks.ts):
 * each ends in signin_required (exit 4) with the credential kept and marked needsSignIn, never a
 * protocol violation; and the `resource` of a refresh is the one the sign-in sent (none for Entra).
 */
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { TokenManager } from '../src/lifecycle/token-manager.ts';
import { MemoryCredentialStore } from '../src/store/memory-store.ts';
import type { Credential } from '../src/types.ts';
import { startFakeServers, demoServer, demoCredential, type CannedResponse, type FakeServers } from './fixtures/lifecycle-fake-servers.ts';

let fake: FakeServers;
before(async () => {
  fake = await startFakeServers();
});
after(() => fake.close());
beforeEach(() => {
  fake.tokenRequests.length = 0;
  fake.config = { delayMs: 0, rotate: true, includeScope: true, expiresIn: 3600, failNext: [] };
});

async function refreshWith(over: Partial<Credential> = {}) {
  const store = new MemoryCredentialStore();
  const credential = demoCredential(fake, { expiresAt: Date.now() - 5_000, ...over });
  await store.put(credential);
  const manager = new TokenManager({ server: demoServer(fake), store, fetch: globalThis.fetch, retry: { sleep: async () => {} } });
  return { store, credential, manager };
}

const answers: Array<{ who: string; canned: CannedResponse; oauthError: string; reason: RegExp }> = [
  { who: 'Atlassian', canned: { status: 403, body: { error: 'unauthorized_client', error_description: 'refresh_token is invalid' } }, oauthError: 'unauthorized_client', reason: /unauthorized_client: refresh_token is invalid/ },
  { who: 'Keycloak', canned: { status: 400, body: { error: 'invalid_grant', error_description: 'Maximum allowed refresh token reuse exceeded' } }, oauthError: 'invalid_grant', reason: /invalid_grant: Maximum allowed refresh token reuse exceeded/ },
  { who: 'GitHub (HTTP 200)', canned: { status: 200, body: { error: 'bad_refresh_token', error_description: 'The refresh token passed is incorrect or expired.' } }, oauthError: 'bad_refresh_token', reason: /bad_refresh_token/ },
];

describe('dead refresh token answers', () => {
  for (const { who, canned, oauthError, reason } of answers) {
    test(`${who}: ${oauthError} → signin_required, credential kept and marked, no second attempt`, async () => {
      fake.config.failNext.push(canned);
      const { store, credential, manager } = await refreshWith();
      const check = (e: { code: string; hint?: string; oauthError?: string; message: string }) => {
        assert.equal(e.code, 'signin_required');
        assert.equal(e.hint, 'mcp-oauth login demo');
        assert.equal(e.oauthError, oauthError);
        assert.match(e.message, reason);
        return true;
      };
      await assert.rejects(manager.accessToken(), check);
      const stored = await store.get(credential.key);
      assert.equal(stored?.needsSignIn?.oauthError, oauthError);
      assert.match(stored?.needsSignIn?.reason ?? '', reason);
      assert.deepEqual({ ...stored, needsSignIn: undefined }, { ...credential, needsSignIn: undefined });
      await assert.rejects(manager.accessToken(), check);
      assert.equal(fake.tokenRequests.length, 1, 'a refresh token known to be dead is not tried again');
    });
  }

  test('invalid_client still forgets the registration (it is the client, not the token)', async () => {
    fake.config.failNext.push({ status: 401, body: { error: 'invalid_client' } });
    const { store, credential, manager } = await refreshWith();
    await store.putRegistration({ issuer: fake.origin, clientId: 'client-1', tokenEndpointAuthMethod: 'none', redirectUris: ['http://127.0.0.1/cb'], source: 'dynamic_registration', registeredAt: 0 });
    await assert.rejects(manager.accessToken(), { code: 'signin_required' });
    assert.equal(await store.getRegistration(fake.origin), undefined);
    assert.equal((await store.get(credential.key))?.needsSignIn?.oauthError, 'invalid_client');
  });

  test('another OAuth error (invalid_request) is not taken for a dead token: nothing is marked', async () => {
    fake.config.failNext.push({ status: 400, body: { error: 'invalid_request' } });
    const { store, credential, manager } = await refreshWith();
    await assert.rejects(manager.accessToken(), { code: 'signin_required' });
    assert.equal((await store.get(credential.key))?.needsSignIn, undefined);
  });
});

describe('the resource of a refresh', () => {
  test('the credential\'s resource by default, its resourceIndicator when the sign-in sent one', async () => {
    await (await refreshWith()).manager.accessToken();
    assert.deepEqual(fake.tokenRequests[0].getAll('resource'), [fake.mcpUrl]);
    const origin = new URL(fake.mcpUrl).origin;
    await (await refreshWith({ resourceIndicator: origin })).manager.accessToken();
    assert.deepEqual(fake.tokenRequests[1].getAll('resource'), [origin]);
  });

  test('none for a credential signed in with the Entra profile (v2 refuses it)', async () => {
    await (await refreshWith({ provider: 'entra', quirksApplied: ['no-resource-parameter'] })).manager.accessToken();
    assert.deepEqual(fake.tokenRequests[0].getAll('resource'), []);
  });
});

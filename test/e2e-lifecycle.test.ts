/**
 * End-to-end: what happens to a stored sign-in when the server side changes under it. A grant
 * revoked mid-session (one refresh attempt, then a clear "sign in again" that keeps everything
 * else), and a token endpoint that fails transiently (retries) or persistently (the sign-in is
 * kept untouched, exit code 6).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSandbox, type Sandbox, type SandboxOptions } from '../src/sandbox/index.ts';
import { assertNoSecretsPrinted, browserLaunches, makeHome, readStore, runCli, writeConfig, type CliResult, type TestHome, ok, onlyCredential } from './helpers/e2e.ts';

async function withSignedIn(opts: SandboxOptions, fn: (sb: Sandbox, h: TestHome) => Promise<void>): Promise<void> {
  const sb = await startSandbox(opts);
  const h = await makeHome();
  try {
    await writeConfig(h.home, `[mcp_servers.sb]\nurl = "${sb.mcpUrl}"\n`);
    ok(await runCli(['login', 'sb'], { env: h.env }), 'login');
    assert.equal(await browserLaunches(h.browserLog), 1);
    await fn(sb, h);
  } finally {
    await sb.close();
    await h.cleanup();
  }
}



/** What `status --json` and `list --json` must still show after the grant died: everything but a live grant. */
function assertKeptButNeedsSignIn(state: Record<string, any>, sb: Sandbox, clientId: string): void {
  assert.equal(state.auth_status, 'oauth');
  assert.equal(state.issuer, sb.issuer);
  assert.equal(state.client_id, clientId);
  assert.ok(Array.isArray(state.scopes) && state.scopes.includes('mcp:tools'), JSON.stringify(state.scopes));
  assert.equal(state.needs_sign_in, true);
  assert.match(state.needs_sign_in_reason, /invalid_grant/);
}

describe('e2e lifecycle', { concurrency: true }, () => {
  describe('a grant revoked on the server mid-session', { concurrency: true }, () => {
    it('non-interactive: one 401, one refresh attempt, exit 4 naming the login command; nothing else is lost; login works again', async () => {
      await withSignedIn({}, async (sb, h) => {
        ok(await runCli(['call', 'sb', 'echo', '{"text":"before"}'], { env: h.env }), 'call before revocation');
        const before = await onlyCredential(h.home);
        await sb.revokeAllGrants();
        sb.resetCounters();

        // --no-browser with nothing to paste: the sign-in cannot happen in this process.
        const call = await runCli(['call', 'sb', 'echo', '{"text":"after"}', '--no-browser'], { env: h.env });
        assert.equal(call.code, 4, call.stderr);
        assert.equal(sb.counters.mcp401, 1, 'the revoked access token got exactly one 401');
        // RFC 6749 §5.2 invalid_grant is final: one refresh attempt, no retry loop.
        assert.equal(sb.counters.tokenRequests.refresh_token, 1);
        assert.equal(sb.counters.tokenRequests.authorization_code, undefined);
        assert.equal(await browserLaunches(h.browserLog), 1, '--no-browser launched nothing');

        // A script asking for a token now gets the reason and the next command, never a browser.
        const token = await runCli(['token', 'sb'], { env: h.env });
        assert.equal(token.code, 4, token.stderr);
        assert.equal(token.stdout, '');
        assert.match(token.stderr, /\bsb\b/);
        assert.match(token.stderr, /mcp-oauth login sb/);
        assert.equal(sb.counters.tokenRequests.refresh_token, 1, 'a grant known to be dead is not retried');
        assert.equal(await browserLaunches(h.browserLog), 1);

        const status = await runCli(['status', 'sb', '--json'], { env: h.env });
        assert.equal(status.code, 0);
        assertKeptButNeedsSignIn(JSON.parse(status.stdout), sb, before.clientId);
        const list = await runCli(['list', '--json'], { env: h.env });
        const entry = (JSON.parse(list.stdout).servers as Array<Record<string, any>>).find((s) => s.server === 'sb');
        assert.ok(entry, list.stdout);
        assertKeptButNeedsSignIn(entry, sb, before.clientId);
        const human = await runCli(['status', 'sb'], { env: h.env });
        assert.match(human.stdout, /Sign-in required/);
        assert.match(human.stdout, /Next: mcp-oauth login sb/);
        const kept = await onlyCredential(h.home);
        assert.equal(kept.clientId, before.clientId);
        assert.equal(kept.key.issuer, before.key.issuer);
        assert.equal((await readStore(h.home)).registrations[sb.issuer]?.clientId, before.clientId, 'the client registration is kept');

        sb.resetCounters();
        ok(await runCli(['login', 'sb'], { env: h.env }), 'login again');
        assert.equal(sb.counters.registrations, 0, 'the kept client registration is reused');
        const again = ok(await runCli(['call', 'sb', 'echo', '{"text":"again"}'], { env: h.env }), 'call after login');
        assert.equal(again.stdout, 'again\n');
        assert.equal((await onlyCredential(h.home)).needsSignIn, undefined);
        await assertNoSecretsPrinted(h.home, call.stdout, call.stderr, token.stderr, status.stdout, list.stdout, human.stdout, again.stdout);
      });
    });

    it('interactive call: one refresh attempt, then exactly one browser sign-in and the call succeeds', async () => {
      await withSignedIn({}, async (sb, h) => {
        await sb.revokeAllGrants();
        sb.resetCounters();
        const call = ok(await runCli(['call', 'sb', 'echo', '{"text":"resumed"}'], { env: h.env }), 'call');
        assert.equal(call.stdout, 'resumed\n');
        assert.equal(sb.counters.mcp401, 1);
        assert.equal(sb.counters.tokenRequests.refresh_token, 1);
        assert.equal(sb.counters.tokenRequests.authorization_code, 1);
        assert.equal(sb.counters.registrations, 0);
        assert.equal(await browserLaunches(h.browserLog), 2, 'one new browser launch for the new sign-in');
      });
    });
  });

  describe('token endpoint failures', { concurrency: true }, () => {
    it('transient 503 temporarily_unavailable: retried, the call succeeds, the credential survives', async () => {
      await withSignedIn({ accessTokenTtlSeconds: 5 }, async (sb, h) => {
        const before = await onlyCredential(h.home);
        await sleep(5500);
        sb.resetCounters();
        sb.setTokenEndpointFault({ status: 503, body: { error: 'temporarily_unavailable' }, times: 2 });
        const call = ok(await runCli(['call', 'sb', 'echo', '{"text":"retried"}'], { env: h.env }), 'call');
        assert.equal(call.stdout, 'retried\n');
        assert.equal(sb.counters.tokenRequests.refresh_token, 3, 'two failures, then the successful refresh');
        assert.equal(sb.counters.mcp401, 0);
        const after = await onlyCredential(h.home);
        assert.equal(after.key.issuer, before.key.issuer);
        assert.equal(after.clientId, before.clientId);
        assert.notEqual(after.accessToken, before.accessToken);
        assert.equal(after.needsSignIn, undefined);
        assert.equal(await browserLaunches(h.browserLog), 1);
        await assertNoSecretsPrinted(h.home, call.stdout, call.stderr);
      });
    });

    it('persistent outage: exit 6, the sign-in is kept byte for byte, and works once the server is back', async () => {
      await withSignedIn({ accessTokenTtlSeconds: 5 }, async (sb, h) => {
        await sleep(5500);
        const storeFile = join(h.home, 'credentials.json');
        const bytesBefore = await readFile(storeFile);
        const credentialBefore = await onlyCredential(h.home);
        sb.resetCounters();
        sb.setTokenEndpointFault({ status: 503, body: { error: 'temporarily_unavailable' }, times: 100 });

        const call = await runCli(['call', 'sb', 'echo', '{"text":"down"}'], { env: h.env });
        assert.equal(call.code, 6, call.stderr);
        assert.match(call.stderr, /sign-in is kept/i);
        assert.match(call.stderr, /\bsb\b/);
        assert.doesNotMatch(call.stderr, /mcp-oauth login/, 'an outage is not a reason to sign in again');
        assert.ok(sb.counters.tokenRequests.refresh_token >= 2, 'retried before giving up');
        assert.equal(sb.counters.mcp401, 0, 'the expired token was never sent');
        assert.equal(await browserLaunches(h.browserLog), 1, 'no browser for an outage');
        assert.deepEqual(await onlyCredential(h.home), credentialBefore);
        assert.ok((await readFile(storeFile)).equals(bytesBefore), 'the store file is unchanged');
        await assertNoSecretsPrinted(h.home, call.stdout, call.stderr);

        sb.setTokenEndpointFault(undefined);
        sb.resetCounters();
        const back = ok(await runCli(['call', 'sb', 'echo', '{"text":"back"}'], { env: h.env }), 'call after the outage');
        assert.equal(back.stdout, 'back\n');
        assert.equal(sb.counters.tokenRequests.refresh_token, 1, 'the kept refresh token works');
        assert.equal(await browserLaunches(h.browserLog), 1);
      });
    });
  });
});

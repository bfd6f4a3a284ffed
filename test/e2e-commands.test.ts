/**
 * End-to-end: every CLI command against the sandbox, as a user or a script would run it. Output
 * contracts (`--json` fields, exit codes, hints naming the next command) and what each command
 * does at the server (a printed token works, logout really revokes, doctor's steps).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSandbox, type Sandbox, type SandboxOptions } from '../src/sandbox/index.ts';
import { fingerprint } from '../src/secrets.ts';
import { assertNoSecretsPrinted, browserLaunches, makeHome, readStore, runCli, writeConfig, type CliResult, type TestHome, ok, onlyCredential, mcpStatusWith } from './helpers/e2e.ts';

async function withSandboxHome(opts: SandboxOptions, fn: (sb: Sandbox, h: TestHome) => Promise<void>): Promise<void> {
  const sb = await startSandbox(opts);
  const h = await makeHome();
  try {
    await writeConfig(h.home, `[mcp_servers.sb]\nurl = "${sb.mcpUrl}"\n`);
    await fn(sb, h);
  } finally {
    await sb.close();
    await h.cleanup();
  }
}




describe('e2e commands', { concurrency: true }, () => {
  it('list / list --json: oauth, not_logged_in, bearer_token, and a Codex entry usable by name', async () => {
    await withSandboxHome({}, async (sb, h) => {
      await writeConfig(
        h.home,
        `[mcp_servers.sb]\nurl = "${sb.mcpUrl}"\n\n[mcp_servers.other]\nurl = "${sb.mcpUrl}"\n\n` +
          `[mcp_servers.static]\nurl = "${sb.mcpUrl}"\nbearer_token_env_var = "SB_STATIC_TOKEN"\n`,
      );
      // Codex's config is read-only for us: its remote entries are listed, stdio entries skipped.
      const codexFile = join(h.env.CODEX_HOME!, 'config.toml');
      const codexText = `[mcp_servers.codexsb]\nurl = "${sb.mcpUrl}"\n\n[mcp_servers.local]\ncommand = "some-stdio-server"\n`;
      await writeFile(codexFile, codexText);
      ok(await runCli(['login', 'sb'], { env: h.env }), 'login sb');

      const listed = ok(await runCli(['list', '--json'], { env: h.env }), 'list --json');
      const byName = Object.fromEntries((JSON.parse(listed.stdout).servers as Array<Record<string, any>>).map((s) => [s.server, s]));
      assert.deepEqual(Object.keys(byName).sort(), ['codexsb', 'local', 'other', 'sb', 'static']);
      assert.equal(byName.local.auth_status, 'unsupported', "Codex's stdio entry has no OAuth to manage");
      assert.equal(byName.sb.auth_status, 'oauth');
      assert.equal(byName.sb.needs_sign_in, false);
      assert.equal(byName.sb.issuer, sb.issuer);
      assert.equal(byName.other.auth_status, 'not_logged_in', 'a credential belongs to one server name');
      assert.equal(byName.other.needs_sign_in, true);
      assert.equal(byName.static.auth_status, 'bearer_token');
      assert.equal(byName.codexsb.auth_status, 'not_logged_in');
      assert.equal(byName.codexsb.source, 'codex');

      const human = ok(await runCli(['list'], { env: h.env }), 'list');
      assert.match(human.stdout, /^sb\s+oauth\s/m);
      assert.match(human.stdout, /^other\s+not logged in\s/m);
      assert.match(human.stdout, /^static\s+bearer token\s/m);
      assert.match(human.stdout, /Next: mcp-oauth login /);

      // The Codex entry works by name (signs in on first use) and Codex's file is left alone.
      const codexCall = ok(await runCli(['call', 'codexsb', 'echo', '{"text":"codex"}'], { env: h.env }), 'call codexsb');
      assert.equal(codexCall.stdout, 'codex\n');
      assert.equal(await readFile(codexFile, 'utf8'), codexText);
      const relisted = JSON.parse(ok(await runCli(['list', '--json'], { env: h.env }), 'list').stdout).servers as Array<Record<string, any>>;
      assert.equal(relisted.find((s) => s.server === 'codexsb')?.auth_status, 'oauth');

      // bearer_token_env_var: the static token from the environment is sent, no OAuth at all.
      const token = ok(await runCli(['token', 'sb'], { env: h.env }), 'token sb').stdout.trim();
      const launches = await browserLaunches(h.browserLog);
      const staticCall = ok(await runCli(['call', 'static', 'echo', '{"text":"static"}'], { env: { ...h.env, SB_STATIC_TOKEN: token } }), 'call static');
      assert.equal(staticCall.stdout, 'static\n');
      assert.equal(await browserLaunches(h.browserLog), launches, 'no sign-in for a bearer-token server');
      assert.equal(Object.keys((await readStore(h.home)).credentials).length, 2, 'only sb and codexsb hold credentials');
      await assertNoSecretsPrinted(h.home, listed.stdout, human.stdout, codexCall.stdout, codexCall.stderr, staticCall.stdout);
    });
  });

  it('status NAME --json: what is stored, with fingerprints only', async () => {
    await withSandboxHome({}, async (sb, h) => {
      const notYet = JSON.parse(ok(await runCli(['status', 'sb', '--json'], { env: h.env }), 'status').stdout);
      assert.equal(notYet.auth_status, 'not_logged_in');
      ok(await runCli(['login', 'sb'], { env: h.env }), 'login');
      const status = ok(await runCli(['status', 'sb', '--json'], { env: h.env }), 'status --json');
      const s = JSON.parse(status.stdout);
      const c = await onlyCredential(h.home);
      assert.equal(s.server, 'sb');
      assert.equal(s.url, sb.mcpUrl);
      assert.equal(s.auth_status, 'oauth');
      assert.equal(s.needs_sign_in, false);
      assert.equal(s.issuer, sb.issuer);
      assert.equal(s.resource, sb.mcpUrl);
      assert.equal(s.client_id, c.clientId);
      assert.deepEqual(s.scopes, c.scopes);
      assert.equal(s.has_refresh_token, true);
      assert.equal(s.expired, false);
      assert.equal(Date.parse(s.expires_at), c.expiresAt);
      assert.equal(s.store, 'file');
      assert.equal(s.access_token_fingerprint, fingerprint(c.accessToken));
      assert.equal(s.refresh_token_fingerprint, fingerprint(c.refreshToken));
      assert.notEqual(s.access_token_fingerprint, s.refresh_token_fingerprint);
      const human = ok(await runCli(['status', 'sb'], { env: h.env }), 'status');
      assert.ok(human.stdout.includes(fingerprint(c.accessToken)));
      await assertNoSecretsPrinted(h.home, status.stdout, human.stdout);
    });
  });

  it('token NAME: prints a token the MCP server accepts; refreshes an expired one first', async () => {
    await withSandboxHome({}, async (sb, h) => {
      ok(await runCli(['login', 'sb'], { env: h.env }), 'login');
      const first = ok(await runCli(['token', 'sb'], { env: h.env }), 'token');
      const firstToken = first.stdout.trim();
      assert.equal(first.stdout, `${firstToken}\n`, 'only the token on stdout, for $(mcp-oauth token sb)');
      assert.equal(firstToken, (await onlyCredential(h.home)).accessToken);
      assert.equal(await mcpStatusWith(sb.mcpUrl, firstToken), 200);

      // Make the stored token expired (by its recorded expiry) without waiting for it: a real
      // short TTL would race with the CLI's start-up time on a loaded machine.
      const file = join(h.home, 'credentials.json');
      const store = JSON.parse(await readFile(file, 'utf8'));
      const [id] = Object.keys(store.credentials);
      store.credentials[id] = { ...store.credentials[id], obtainedAt: Date.now() - 7200_000, expiresAt: Date.now() - 1000 };
      await writeFile(file, JSON.stringify(store), { mode: 0o600 });
      sb.resetCounters();
      const second = ok(await runCli(['token', 'sb'], { env: h.env }), 'token after expiry');
      const secondToken = second.stdout.trim();
      assert.notEqual(secondToken, firstToken);
      assert.equal(sb.counters.tokenRequests.refresh_token, 1);
      assert.deepEqual(sb.counters.tokenRequestLog[0].resource, [sb.mcpUrl]);
      assert.equal(await mcpStatusWith(sb.mcpUrl, secondToken), 200);
      const asJson = JSON.parse(ok(await runCli(['token', 'sb', '--json'], { env: h.env }), 'token --json').stdout);
      assert.equal(asJson.access_token, secondToken);
      assert.equal(asJson.token_type, 'Bearer');
      assert.ok(Date.parse(asJson.expires_at) > Date.now());
      assert.equal((await onlyCredential(h.home)).accessToken, secondToken);
      assert.equal(await browserLaunches(h.browserLog), 1);
      await assertNoSecretsPrinted(h.home, second.stderr);
    });
  });

  it('token NAME when not signed in: exit 4, the login command, no browser', async () => {
    await withSandboxHome({}, async (sb, h) => {
      const r = await runCli(['token', 'sb'], { env: h.env });
      assert.equal(r.code, 4, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /mcp-oauth login sb/);
      assert.equal(await browserLaunches(h.browserLog), 0);
      assert.equal(sb.counters.authorizeRequests.length, 0);
    });
  });

  it('logout: revokes at the server, deletes locally; the revoked refresh token no longer works', async () => {
    await withSandboxHome({}, async (sb, h) => {
      ok(await runCli(['login', 'sb'], { env: h.env }), 'login');
      const c = await onlyCredential(h.home);
      sb.resetCounters();
      const out = ok(await runCli(['logout', 'sb'], { env: h.env }), 'logout');
      assert.match(out.stdout, /revoked at the server and deleted/);
      assert.match(out.stdout, /mcp-oauth login sb/);
      assert.ok(sb.counters.revocations > 0, 'RFC 7009 revocation request sent');
      assert.deepEqual((await readStore(h.home)).credentials, {});
      // RFC 7009 §2: after revocation the refresh token is invalid at the token endpoint.
      const res = await fetch(c.tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: c.refreshToken, client_id: c.clientId, resource: sb.mcpUrl }),
      });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_grant');
      const status = JSON.parse(ok(await runCli(['status', 'sb', '--json'], { env: h.env }), 'status').stdout);
      assert.equal(status.auth_status, 'not_logged_in');
      const again = ok(await runCli(['logout', 'sb'], { env: h.env }), 'logout again');
      assert.match(again.stdout, /Not signed in/);
    });
  });

  it('doctor NAME --json: every step ok after login; the stored-credential step fails with a hint before', async () => {
    await withSandboxHome({}, async (sb, h) => {
      const before = await runCli(['doctor', 'sb', '--json'], { env: h.env });
      assert.equal(before.code, 4, before.stderr);
      const b = JSON.parse(before.stdout);
      assert.equal(b.ok, false);
      const failed = (b.steps as Array<Record<string, any>>).filter((s) => s.ok === false);
      assert.deepEqual(failed.map((s) => s.step), ['stored credential']);
      assert.equal(failed[0].hint, 'mcp-oauth login sb');
      const byStep = Object.fromEntries((b.steps as Array<Record<string, any>>).map((s) => [s.step, s.ok]));
      assert.equal(byStep['protected resource metadata (RFC 9728)'], true);
      assert.equal(byStep['authorization server metadata (RFC 8414)'], true);
      assert.equal(byStep['connect (server/discover or initialize)'], 'skip');
      assert.equal(await browserLaunches(h.browserLog), 0, 'doctor never signs in');
      const human = await runCli(['doctor', 'sb'], { env: h.env });
      assert.match(human.stdout, /✗ stored credential: not signed in/);
      assert.match(human.stdout, /Next: mcp-oauth login sb/);

      ok(await runCli(['login', 'sb'], { env: h.env }), 'login');
      sb.resetCounters();
      const after = ok(await runCli(['doctor', 'sb', '--json'], { env: h.env }), 'doctor after login');
      const a = JSON.parse(after.stdout);
      assert.equal(a.ok, true);
      const steps = a.steps as Array<Record<string, any>>;
      assert.deepEqual(steps.map((s) => s.step), [
        'configuration',
        'gateway',
        'server challenge',
        'protected resource metadata (RFC 9728)',
        'authorization server metadata (RFC 8414)',
        'stored credential',
        'refresh (a real token request)',
        'connect (server/discover or initialize)',
        'tools/list',
      ]);
      // The gateway step is informational: "skip" when no gateway runs (test/gateway-status.test.ts).
      for (const s of steps) assert.equal(s.ok, s.step === 'gateway' ? 'skip' : true, `${s.step}: ${s.detail}`);
      // The sandbox's default server: doctor names the era it negotiated and the headers it sent.
      const connect = steps.find((s) => s.step.startsWith('connect'))!;
      assert.ok(['modern', 'legacy'].includes(connect.data.era));
      assert.equal(steps.at(-1)!.data.headers_sent['mcp-protocol-version'], connect.data.protocol_version);
      assert.equal(sb.counters.tokenRequests.refresh_token, 1, 'the refresh step made a real token request');
      await assertNoSecretsPrinted(h.home, before.stdout, human.stdout, after.stdout);
    });
  });

  it('add / remove round trip; add on an existing name needs --force', async () => {
    const h = await makeHome();
    try {
      const url = 'http://127.0.0.1:9/mcp';
      const add = ok(await runCli(['add', 'x', url, '--scopes', 'a,b'], { env: h.env }), 'add');
      assert.match(add.stdout, /Added x/);
      const config = await readFile(join(h.home, 'config.toml'), 'utf8');
      assert.match(config, /\[mcp_servers\.x\]/);
      const again = await runCli(['add', 'x', 'http://127.0.0.1:10/mcp'], { env: h.env });
      assert.equal(again.code, 2, again.stderr);
      assert.match(again.stderr, /--force/);
      assert.equal(await readFile(join(h.home, 'config.toml'), 'utf8'), config, 'unchanged without --force');
      ok(await runCli(['add', 'x', 'http://127.0.0.1:10/mcp', '--force'], { env: h.env }), 'add --force');
      let servers = JSON.parse(ok(await runCli(['list', '--json'], { env: h.env }), 'list').stdout).servers as Array<Record<string, any>>;
      assert.deepEqual(servers.map((s) => [s.server, s.url]), [['x', 'http://127.0.0.1:10/mcp']]);
      ok(await runCli(['remove', 'x'], { env: h.env }), 'remove');
      servers = JSON.parse(ok(await runCli(['list', '--json'], { env: h.env }), 'list').stdout).servers;
      assert.deepEqual(servers, []);
      const removeAgain = await runCli(['remove', 'x'], { env: h.env });
      assert.equal(removeAgain.code, 3, removeAgain.stderr);
    } finally {
      await h.cleanup();
    }
  });

  it('unknown command → exit 2 with usage; unknown server → exit 3 naming mcp-oauth add', async () => {
    const h = await makeHome();
    try {
      const cmd = await runCli(['frobnicate'], { env: h.env });
      assert.equal(cmd.code, 2);
      assert.match(cmd.stderr, /unknown command "frobnicate"/);
      assert.match(cmd.stderr, /Usage: mcp-oauth/);
      const flag = await runCli(['list', '--nope'], { env: h.env });
      assert.equal(flag.code, 2, flag.stderr);
      const server = await runCli(['tools', 'nosuch'], { env: h.env });
      assert.equal(server.code, 3, server.stderr);
      assert.match(server.stderr, /no server named "nosuch"/);
      assert.match(server.stderr, /mcp-oauth add nosuch URL/);
      assert.equal(await browserLaunches(h.browserLog), 0);
    } finally {
      await h.cleanup();
    }
  });
});

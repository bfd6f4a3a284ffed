/**
 * Discovery end to end (issue 6): one sandbox per kind of server seen in the wild
 * (src/sandbox/discovery-modes.ts), each reached through the library, the CLI and the proxy from an
 * empty home. Every run must end with echo's answer, having sent the first request without a token,
 * fetched the metadata the mode publishes (and found it where it is), asked for the right RFC 8707
 * `resource`, and stored one credential keyed by the authorization server's own issuer. The step-up
 * cap, the authorization server migration and bad input are in e2e-discovery-edges.test.ts.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSandbox, type DiscoveryMode, type Sandbox } from '../src/sandbox/index.ts';
import { readStore, runCli, browserLaunches, ok, type TestHome } from './helpers/e2e.ts';
import {
  ENTRY_POINTS, assertEchoed, assertMetadataFetched, cleanup, discoveryHome, run, storedCredential, type EntryPoint, type RunOutcome,
} from './fixtures/discovery-e2e.ts';

const PRM = '/.well-known/oauth-protected-resource';
const AS_META = '/.well-known/oauth-authorization-server';
const origin = (sb: Sandbox) => new URL(sb.mcpUrl).origin;

interface ModeCase {
  mode: DiscoveryMode;
  /** Metadata fetches (url, status) a sign-in must make, in this order. */
  metadata: (sb: Sandbox) => Array<[string, number]>;
  /** More checks after a successful run with sign-in. */
  check?: (sb: Sandbox, h: TestHome, entry: EntryPoint) => Promise<void>;
}

const CASES: ModeCase[] = [
  {
    mode: 'standard',
    metadata: (sb) => [[`${origin(sb)}${PRM}/mcp`, 200], [`${sb.issuer}${AS_META}`, 200]],
  },
  {
    // The metadata names the origin: that (canonical) value is the resource asked for and stored.
    mode: 'resource-prefix',
    metadata: (sb) => [[`${origin(sb)}${PRM}`, 200], [`${sb.issuer}${AS_META}`, 200]],
    async check(sb, h) {
      const credential = await storedCredential(h);
      assert.equal(credential.resourceIndicator, origin(sb), 'the RFC 8707 resource is stored with the credential');
      assert.equal(credential.key.resource, sb.mcpUrl, 'the credential is still keyed by the server URL');
    },
  },
  {
    // No resource_metadata in the 401: the path-form URL first (404), then the root.
    mode: 'root-only',
    metadata: (sb) => [[`${origin(sb)}${PRM}/mcp`, 404], [`${origin(sb)}${PRM}`, 200], [`${sb.issuer}${AS_META}`, 200]],
  },
  {
    // Google's hosted servers: initialize public, 401 only on tools/call, per-tool metadata URL.
    mode: 'per-tool',
    metadata: (sb) => [[`${origin(sb)}${PRM}/echo`, 200], [`${sb.issuer}${AS_META}`, 200]],
    async check(sb) {
      const log = sb.counters.mcpLog;
      // The connect step (initialize, or server/discover for a client of the 2026-07-28 era).
      const init = log.find((e) => e.rpcMethods.includes('initialize') || e.rpcMethods.includes('server/discover'));
      assert.deepEqual(init && [init.authorization, init.status], [false, 200], 'the connect step went without a token and was answered');
      assert.ok(!log.some((e) => e.status === 401 && !e.rpcMethods.includes('tools/call')), 'only tools/call was ever refused');
      assert.ok(log.some((e) => e.rpcMethods.includes('tools/call') && e.status === 401 && !e.authorization), 'the first tools/call went without a token');
    },
  },
  {
    // The metadata lists `issuer + "/"`; the authorization server's metadata says `issuer`.
    mode: 'trailing-slash-issuer',
    metadata: (sb) => [[`${origin(sb)}${PRM}/mcp`, 200], [`${sb.issuer}${AS_META}`, 200]],
  },
  {
    // 2025-03-26: no resource metadata; the authorization server's RFC 8414 metadata at the MCP origin.
    mode: 'no-prm-origin-as',
    metadata: (sb) => [[`${origin(sb)}${PRM}/mcp`, 404], [`${origin(sb)}${PRM}`, 404], [`${origin(sb)}${AS_META}`, 200]],
  },
  {
    // 2025-03-26 without any metadata: /authorize, /token, /register at the MCP origin.
    mode: 'no-metadata',
    metadata: (sb) => [
      [`${origin(sb)}${PRM}/mcp`, 404], [`${origin(sb)}${PRM}`, 404], [`${origin(sb)}${AS_META}`, 404],
    ],
    async check(sb, h) {
      const credential = await storedCredential(h);
      assert.equal(credential.tokenEndpoint, `${origin(sb)}/token`);
      assert.equal(sb.counters.issuers[sb.issuer]?.registrations.length, 1, 'registered at /register');
    },
  },
];

/** The checks every signed-in run shares. */
async function assertSignedInRun(sb: Sandbox, h: TestHome, outcome: RunOutcome, entry: EntryPoint, text: string): Promise<void> {
  const what = `${sb.discovery} via ${entry}`;
  assertEchoed(outcome, text, what);
  assert.equal(outcome.launches, 1, `${what}: one browser launch`);
  const { authorizeRequests, tokenRequestLog, mcpLog } = sb.counters;
  assert.equal(authorizeRequests.length, 1, `${what}: one authorization request`);
  assert.equal(authorizeRequests[0].resource, sb.resource, `${what}: authorize resource`);
  const codeExchanges = tokenRequestLog.filter((e) => e.grantType === 'authorization_code');
  assert.deepEqual(codeExchanges.map((e) => e.resource), [[sb.resource]], `${what}: token request resource`);
  assert.equal(mcpLog[0]?.authorization, false, `${what}: the first MCP request carries no token (none stored yet)`);
  for (const e of mcpLog.filter((x) => x.authorization)) assert.equal(e.tokenIssuer, sb.issuer, `${what}: only tokens of ${sb.issuer} sent`);
  const credential = await storedCredential(h);
  assert.equal(credential.key.issuer, sb.issuer, `${what}: keyed by the authorization server metadata's issuer`);
}

describe('discovery: every kind of server through the library, the CLI and the proxy', { concurrency: 3 }, () => {
  for (const c of CASES) {
    describe(c.mode, { concurrency: 1 }, () => {
      let sb: Sandbox;
      before(async () => {
        sb = await startSandbox({ discovery: c.mode });
      });
      after(() => sb.close());

      for (const entry of ENTRY_POINTS) {
        test(`${c.mode} via the ${entry}`, async () => {
          sb.resetCounters();
          const h = await discoveryHome();
          try {
            const text = `${c.mode} ${entry}`;
            const outcome = await run(entry, sb.mcpUrl, h, text);
            await assertSignedInRun(sb, h, outcome, entry, text);
            assertMetadataFetched(sb, c.metadata(sb), `${c.mode} via ${entry}`);
            await c.check?.(sb, h, entry);
          } finally {
            await cleanup(h);
          }
        });
      }
    });
  }

  describe('no-oauth', { concurrency: 1 }, () => {
    let sb: Sandbox;
    before(async () => {
      sb = await startSandbox({ discovery: 'no-oauth' });
    });
    after(() => sb.close());

    for (const entry of ENTRY_POINTS) {
      test(`no-oauth via the ${entry}: no token, no metadata, no browser, nothing stored`, async () => {
        sb.resetCounters();
        const h = await discoveryHome();
        try {
          const outcome = await run(entry, sb.mcpUrl, h, `open ${entry}`);
          assertEchoed(outcome, `open ${entry}`, `no-oauth via ${entry}`);
          assert.equal(outcome.launches, 0, 'no browser');
          assert.ok(sb.counters.mcpLog.length > 0);
          assert.ok(sb.counters.mcpLog.every((e) => !e.authorization), 'no Authorization header on any request');
          assert.deepEqual(sb.counters.metadataRequests, [], 'no discovery at all');
          assert.equal(sb.counters.authorizeRequests.length, 0);
          assert.deepEqual((await readStore(h.home)).credentials, {}, 'nothing stored');
        } finally {
          await cleanup(h);
        }
      });
    }

    test('no-oauth: `tools` lists without a sign-in; `login` says none is needed (exit 0) and stores nothing', async () => {
      sb.resetCounters();
      const h = await discoveryHome();
      try {
        ok(await runCli(['tools', sb.mcpUrl], { env: h.env }), 'tools');
        const login = ok(await runCli(['login', sb.mcpUrl], { env: h.env }), 'login');
        assert.match(login.stdout + login.stderr, /nothing to sign in|no sign-in|not (need|require)|without .*sign-in|no OAuth/i, login.stdout + login.stderr);
        assert.equal(await browserLaunches(h.browserLog), 0);
        assert.deepEqual((await readStore(h.home)).credentials, {});
        assert.ok(sb.counters.mcpLog.every((e) => !e.authorization));
      } finally {
        await cleanup(h);
      }
    });
  });

  describe('per-tool: `tools` needs no sign-in', () => {
    let sb: Sandbox;
    before(async () => {
      sb = await startSandbox({ discovery: 'per-tool' });
    });
    after(() => sb.close());

    test('per-tool: `mcp-oauth tools` lists the tools with no token, no browser, nothing stored', async () => {
      const h = await discoveryHome();
      try {
        const tools = ok(await runCli(['tools', sb.mcpUrl, '--json'], { env: h.env }), 'tools');
        assert.ok(JSON.parse(tools.stdout).tools.some((t: { name: string }) => t.name === 'echo'));
        assert.equal(await browserLaunches(h.browserLog), 0);
        assert.deepEqual((await readStore(h.home)).credentials, {});
        assert.ok(sb.counters.mcpLog.every((e) => !e.authorization));
        assert.deepEqual(sb.counters.metadataRequests, [], 'no discovery while nothing asked for a token');
      } finally {
        await cleanup(h);
      }
    });
  });
});

// The proxy's sign-in coordinator, in process with a fake token manager and a fake sign-in: one
// sign-in across "processes" (coordinators sharing a lock directory), the store read first, and no
// new browser tab for a while after a failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignInCoordinator } from '../src/proxy/signin-coordinator.ts';
import { McpOAuthError } from '../src/errors.ts';
import { serverFromUrl } from '../src/client/session.ts';
import { silentLogger, type Credential } from '../src/types.ts';
import type { TokenManager } from '../src/lifecycle/token-manager.ts';

const URL_ = 'http://127.0.0.1:9/mcp';

function credential(scopes: string[] = []): Credential {
  return {
    key: { serverName: URL_, resource: URL_, issuer: 'http://127.0.0.1:8' },
    accessToken: 'a'.repeat(20),
    refreshToken: 'r'.repeat(20),
    tokenType: 'Bearer',
    expiresAt: Date.now() + 60_000,
    scopes,
    clientId: 'c',
    tokenEndpoint: 'http://127.0.0.1:8/token',
    tokenEndpointAuthMethod: 'none',
    obtainedAt: Date.now(),
  };
}

async function setup(fn: (ctx: { home: string; store: { current?: Credential }; make: (signIn: () => Promise<Credential>) => SignInCoordinator }) => Promise<void>) {
  const home = await mkdtemp(join(tmpdir(), 'mcp-oauth-coordinator-'));
  const store: { current?: Credential } = {};
  const manager = { resource: URL_, credential: async () => store.current } as unknown as TokenManager;
  const make = (signIn: () => Promise<Credential>) =>
    new SignInCoordinator({
      server: serverFromUrl(URL_),
      store: {} as never,
      manager,
      fetch: globalThis.fetch,
      env: {},
      logger: silentLogger,
      home,
      timeoutMs: 5000,
      signIn,
    });
  try {
    await fn({ home, store, make });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

test('two processes (coordinators sharing the lock) and three requests each: one sign-in', async () => {
  await setup(async ({ store, make }) => {
    let signIns = 0;
    const signIn = async () => {
      signIns += 1;
      await new Promise((r) => setTimeout(r, 300));
      store.current = credential();
      return store.current;
    };
    const a = make(signIn);
    const b = make(signIn);
    await Promise.all([a.ensureSignedIn(), a.ensureSignedIn(), a.ensureSignedIn(), b.ensureSignedIn(), b.ensureSignedIn(), b.ensureSignedIn()]);
    assert.equal(signIns, 1);
  });
});

test('a credential already in the store (a login in a terminal): no sign-in; missing scopes: sign-in', async () => {
  await setup(async ({ store, make }) => {
    let signIns = 0;
    store.current = credential(['mcp:tools']);
    const c = make(async () => {
      signIns += 1;
      store.current = credential(['mcp:tools', 'mcp:admin']);
      return store.current;
    });
    await c.ensureSignedIn();
    assert.equal(signIns, 0);
    await c.ensureSignedIn({ scopes: ['mcp:admin'] });
    assert.equal(signIns, 1, 'step-up needs a new grant');
  });
});

test('after a failed sign-in: fail fast without a new browser, unless the store has a credential by then', async () => {
  await setup(async ({ store, make }) => {
    let signIns = 0;
    const c = make(async () => {
      signIns += 1;
      throw new McpOAuthError('signin_timeout', 'No sign-in completed within 5 seconds.');
    });
    await assert.rejects(c.ensureSignedIn(), (err: McpOAuthError) => err.hint === `mcp-oauth login "${URL_}"` && /did not complete/.test(err.message));
    await assert.rejects(c.ensureSignedIn());
    assert.equal(signIns, 1, 'no second browser tab right after a failure');
    store.current = credential();
    await c.ensureSignedIn();
    assert.equal(signIns, 1);
  });
});

test('a process that waited for another one which failed does not open its own tab', async () => {
  await setup(async ({ make }) => {
    let signIns = 0;
    const failing = async () => {
      signIns += 1;
      await new Promise((r) => setTimeout(r, 300));
      throw new McpOAuthError('signin_denied', 'The sign-in was denied.');
    };
    const results = await Promise.allSettled([make(failing).ensureSignedIn(), make(failing).ensureSignedIn()]);
    assert.equal(signIns, 1);
    assert.ok(results.every((r) => r.status === 'rejected'));
  });
});

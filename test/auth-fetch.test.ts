import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { McpOAuthError } from '../src/errors.ts';
import { TokenManager, type SignInRequest, type TokenManagerOptions } from '../src/lifecycle/token-manager.ts';
import { createAuthenticatedFetch } from '../src/lifecycle/auth-fetch.ts';
import { MemoryCredentialStore } from '../src/store/memory-store.ts';
import type { Credential } from '../src/types.ts';
import { startFakeServers, demoServer, demoCredential, type FakeServers } from './fixtures/lifecycle-fake-servers.ts';

let fake: FakeServers;
before(async () => {
  fake = await startFakeServers();
});
after(() => fake.close());
beforeEach(() => {
  fake.tokenRequests.length = 0;
  fake.mcpRequests.length = 0;
  fake.mcpHandler = undefined;
  fake.reuseDetected = 0;
  fake.config = { delayMs: 0, rotate: true, includeScope: true, expiresIn: 3600, failNext: [] };
});

async function setup(over: Partial<Credential> = {}, opts: Partial<TokenManagerOptions> = {}) {
  const store = opts.store ?? new MemoryCredentialStore();
  const credential = demoCredential(fake, over);
  await store.put(credential);
  const manager = new TokenManager({ server: demoServer(fake), store, fetch: globalThis.fetch, retry: { attempts: 0 }, ...opts });
  const authFetch = createAuthenticatedFetch(manager, { fetch: globalThis.fetch });
  return { store, credential, manager, authFetch };
}

const bearer = (token: string | undefined) => `Bearer ${token}`;

describe('createAuthenticatedFetch', () => {
  test('adds the Bearer token, replacing an Authorization header the caller set', async () => {
    const { credential, authFetch } = await setup();
    const res = await authFetch(fake.mcpUrl, { method: 'POST', headers: { Authorization: 'Basic xyz', 'x-extra': '1' }, body: '{"a":1}' });
    assert.equal(res.status, 200);
    assert.deepEqual(fake.mcpRequests, [{ authorization: bearer(credential.accessToken), body: '{"a":1}' }]);
    assert.equal(fake.tokenRequests.length, 0);
  });

  test('401 → refresh → one retry with the new token and the same (streamed) body', async () => {
    // The server no longer accepts the token and we could not know (no expiry stored).
    const { credential, authFetch, store } = await setup({ accessToken: 'at-revoked-by-server', expiresAt: undefined });
    const payload = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}';
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(payload));
        c.close();
      },
    });
    const res = await authFetch(fake.mcpUrl, { method: 'POST', body, duplex: 'half' } as RequestInit);
    assert.equal(res.status, 200);
    assert.equal(fake.tokenRequests.length, 1);
    assert.equal(fake.mcpRequests.length, 2);
    assert.equal(fake.mcpRequests[0].authorization, 'Bearer at-revoked-by-server');
    const stored = await store.get(credential.key);
    assert.equal(fake.mcpRequests[1].authorization, bearer(stored?.accessToken));
    assert.deepEqual(fake.mcpRequests.map((r) => r.body), [payload, payload]);
  });

  test('concurrent requests that all get a 401 share one refresh', async () => {
    fake.config.delayMs = 100;
    const { authFetch } = await setup({ accessToken: 'at-revoked-by-server', expiresAt: undefined });
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => authFetch(fake.mcpUrl, { method: 'POST', body: String(i) })));
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200, 200]);
    assert.equal(fake.tokenRequests.length, 1);
    assert.equal(fake.reuseDetected, 0);
  });

  test('a second 401 → needsSignIn stored and signin_required naming the server and the login command', async () => {
    fake.mcpHandler = (_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
      res.end();
    };
    const { credential, authFetch, store } = await setup();
    await assert.rejects(authFetch(fake.mcpUrl, { method: 'POST', body: 'x' }), (e: McpOAuthError) => {
      assert.equal(e.code, 'signin_required');
      assert.equal(e.hint, 'mcp-oauth login demo');
      assert.match(e.message, /^Sign-in required for demo:/);
      assert.doesNotMatch(e.message, new RegExp(credential.accessToken!));
      return true;
    });
    assert.equal(fake.mcpRequests.length, 2, 'exactly one retry');
    assert.equal(fake.tokenRequests.length, 1);
    assert.ok((await store.get(credential.key))?.needsSignIn);
  });

  test('403 insufficient_scope → step-up sign-in with the union of scopes, then the retry succeeds', async () => {
    const requests: SignInRequest[] = [];
    let granted: string[] = [];
    fake.mcpHandler = (req, res) => {
      const token = req.headers.authorization?.replace(/^Bearer /, '') ?? '';
      if (granted.includes('mcp:write') && fake.validAccessTokens.has(token)) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"ok":true}');
      }
      res.writeHead(403, { 'www-authenticate': 'Bearer error="insufficient_scope", scope="mcp:write"' });
      res.end();
    };
    const store = new MemoryCredentialStore();
    const { authFetch } = await setup({}, {
      store,
      signIn: async (r) => {
        requests.push(r);
        granted = r.scopes ?? [];
        const next = demoCredential(fake, { scopes: granted });
        await store.put(next);
        return next;
      },
    });
    const res = await authFetch(fake.mcpUrl, { method: 'POST', body: 'x' });
    assert.equal(res.status, 200);
    assert.equal(requests.length, 1);
    assert.equal(requests[0].reason, 'insufficient_scope');
    assert.deepEqual(requests[0].scopes, ['mcp:read', 'offline_access', 'mcp:write']);
    assert.deepEqual(requests[0].challenge?.scope, ['mcp:write']);
  });

  test('403 insufficient_scope that never ends → at most 3 step-ups, then insufficient_scope', async () => {
    fake.mcpHandler = (_req, res) => {
      res.writeHead(403, { 'www-authenticate': 'Bearer error="insufficient_scope", scope="admin"' });
      res.end();
    };
    let calls = 0;
    const store = new MemoryCredentialStore();
    const { authFetch } = await setup({}, {
      store,
      signIn: async (r) => {
        calls++;
        const next = demoCredential(fake, { scopes: r.scopes });
        await store.put(next);
        return next;
      },
    });
    await assert.rejects(authFetch(fake.mcpUrl, { method: 'POST', body: 'x' }), { code: 'insufficient_scope' });
    assert.equal(calls, 3);
    assert.equal(fake.mcpRequests.length, 4);
  });

  test('403 insufficient_scope without interactive sign-in → insufficient_scope with the login hint', async () => {
    fake.mcpHandler = (_req, res) => {
      res.writeHead(403, { 'www-authenticate': 'Bearer error="insufficient_scope", scope="admin"' });
      res.end();
    };
    const { authFetch } = await setup();
    await assert.rejects(authFetch(fake.mcpUrl), { code: 'insufficient_scope', hint: 'mcp-oauth login demo' });
  });

  test('a 403 without insufficient_scope and other statuses are returned untouched', async () => {
    fake.mcpHandler = (_req, res) => {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end('forbidden');
    };
    const { authFetch } = await setup();
    const res = await authFetch(fake.mcpUrl);
    assert.equal(res.status, 403);
    assert.equal(await res.text(), 'forbidden');
    assert.equal(fake.mcpRequests.length, 1);
  });

  test('an SSE response streams through unbuffered', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    fake.mcpHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: message\ndata: {"first":true}\n\n');
      void released.then(() => res.end('event: message\ndata: {"last":true}\n\n'));
    };
    const { authFetch } = await setup();
    const res = await authFetch(fake.mcpUrl, { method: 'POST', body: '{}' });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const reader = res.body!.getReader();
    // The server holds the stream open until we release it: a buffering fetch would never get here.
    let guard: NodeJS.Timeout | undefined;
    const first = await Promise.race([
      reader.read(),
      new Promise<never>((_, reject) => (guard = setTimeout(() => reject(new Error('first SSE event not delivered while the stream is open')), 5000))),
    ]);
    clearTimeout(guard);
    assert.match(new TextDecoder().decode(first.value), /"first":true/);
    release();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    assert.match(rest, /"last":true/);
  });
});

describe('token audience', () => {
  test('the token is never sent to another origin than the MCP server', async () => {
    const { manager } = await setup();
    let called = false;
    const recording = async (input: string | URL, init?: RequestInit) => {
      called = true;
      return globalThis.fetch(input, init);
    };
    const authFetch = createAuthenticatedFetch(manager, { fetch: recording, allowedOrigin: new URL(fake.mcpUrl).origin });
    await assert.rejects(authFetch('http://127.0.0.1:9/elsewhere', { method: 'POST', body: '{}' }), (e: unknown) => e instanceof McpOAuthError && e.code === 'insecure_url' && /Refusing to send the access token/.test(e.message));
    assert.equal(called, false, 'no request may leave for the other origin');
    const ok = await authFetch(fake.mcpUrl, { method: 'POST', body: '{}' });
    await ok.body?.cancel();
    assert.equal(called, true);
  });
});

describe('auth only when the server asks (MCP 2026-07-28 "Authorization Flow Steps")', () => {
  async function unsignedSetup(opts: Partial<TokenManagerOptions> = {}) {
    const store = opts.store ?? new MemoryCredentialStore();
    const requests: SignInRequest[] = [];
    const manager = new TokenManager({
      server: demoServer(fake),
      store,
      fetch: globalThis.fetch,
      retry: { attempts: 0 },
      signIn: async (r) => {
        requests.push(r);
        const next = demoCredential(fake, r.scopes ? { scopes: r.scopes } : {});
        await store.put(next);
        return next;
      },
      ...opts,
    });
    return { store, manager, requests, authFetch: createAuthenticatedFetch(manager, { fetch: globalThis.fetch }) };
  }

  test('no credential and a server that needs none: no Authorization header, no sign-in', async () => {
    fake.mcpHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    };
    const { authFetch, requests, store } = await unsignedSetup();
    const res = await authFetch(fake.mcpUrl, { method: 'POST', body: 'x' });
    assert.equal(res.status, 200);
    assert.deepEqual(fake.mcpRequests.map((r) => r.authorization), [undefined]);
    assert.equal(requests.length, 0);
    assert.deepEqual(await store.list(), []);
  });

  test('no credential: the 401 and its challenge start the sign-in, then one retry with the token', async () => {
    const { authFetch, requests, store } = await unsignedSetup();
    // Default handler: 401 without a valid token. Give it a challenge like a real server.
    fake.mcpHandler = (req, res) => {
      const token = req.headers.authorization?.replace(/^Bearer /, '') ?? '';
      if (fake.validAccessTokens.has(token)) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"ok":true}');
      }
      res.writeHead(401, { 'www-authenticate': `Bearer resource_metadata="${fake.origin}/.well-known/oauth-protected-resource/tool", scope="mcp:read"` });
      res.end();
    };
    const res = await authFetch(fake.mcpUrl, { method: 'POST', body: 'x' });
    assert.equal(res.status, 200);
    assert.equal(requests.length, 1);
    assert.equal(requests[0].reason, 'no_credential');
    assert.deepEqual(requests[0].challenge, { resourceMetadata: `${fake.origin}/.well-known/oauth-protected-resource/tool`, scope: ['mcp:read'] });
    const [stored] = await store.list();
    assert.deepEqual(fake.mcpRequests.map((r) => r.authorization), [undefined, bearer(stored.accessToken)]);
  });

  test('a credential marked needsSignIn is not sent; the 401 starts the new sign-in', async () => {
    const store = new MemoryCredentialStore();
    await store.put(demoCredential(fake, { needsSignIn: { reason: 'revoked', at: 1 } }));
    const { authFetch, requests } = await unsignedSetup({ store });
    const res = await authFetch(fake.mcpUrl, { method: 'POST', body: 'x' });
    assert.equal(res.status, 200);
    assert.equal(fake.mcpRequests[0].authorization, undefined);
    assert.equal(requests[0].reason, 'grant_gone');
    assert.equal(fake.tokenRequests.length, 0, 'no refresh of a grant known to be gone');
  });

  test('a server that always answers insufficient_scope gets exactly 3 authorization requests, first sign-in included', async () => {
    fake.mcpHandler = (req, res) => {
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': 'Bearer scope="mcp:read"' });
        return res.end();
      }
      res.writeHead(403, { 'www-authenticate': 'Bearer error="insufficient_scope", scope="more"' });
      res.end();
    };
    const { authFetch, requests } = await unsignedSetup();
    await assert.rejects(authFetch(fake.mcpUrl, { method: 'POST', body: 'x' }), (e: McpOAuthError) => {
      assert.equal(e.code, 'insufficient_scope');
      assert.match(e.message, /after 3 sign-ins \(it asks for: more\)/);
      return true;
    });
    assert.deepEqual(requests.map((r) => r.reason), ['no_credential', 'insufficient_scope', 'insufficient_scope']);
  });
});

describe('authorization server migration (MCP 2026-07-28 "Authorization Server Binding")', () => {
  test('a 401 after the server named a new issuer: no refresh at the old one, a sign-in at the new one', async () => {
    const store = new MemoryCredentialStore();
    const requests: SignInRequest[] = [];
    const { credential, authFetch } = await setup({ accessToken: 'at-old-issuer', expiresAt: undefined }, {
      store,
      authorizationServers: async () => ['https://new-issuer.example.com'],
      signIn: async (r) => {
        requests.push(r);
        const next = demoCredential(fake, { key: { ...demoCredential(fake).key, issuer: 'https://new-issuer.example.com' } });
        await store.put(next);
        return next;
      },
    });
    const res = await authFetch(fake.mcpUrl, { method: 'POST', body: 'x' });
    assert.equal(res.status, 200);
    assert.equal(fake.tokenRequests.length, 0, 'the old issuer was not asked for a refresh');
    assert.equal(requests.length, 1);
    assert.equal(requests[0].reason, 'issuer_changed');
    assert.equal(requests[0].previous?.key.issuer, credential.key.issuer);
    assert.match((await store.get(credential.key))?.needsSignIn?.reason ?? '', /moved to the authorization server https:\/\/new-issuer\.example\.com/);
  });

  test('non-interactive: the move is marked and reported as a sign-in to run', async () => {
    const { authFetch, store, credential } = await setup({ accessToken: 'at-old-issuer', expiresAt: undefined }, {
      authorizationServers: async () => ['https://new-issuer.example.com/'],
    });
    await assert.rejects(authFetch(fake.mcpUrl, { method: 'POST', body: 'x' }), { code: 'signin_required', hint: 'mcp-oauth login demo' });
    assert.ok((await store.get(credential.key))?.needsSignIn);
  });

  test('the same issuer (even with a trailing slash) or unreadable metadata: the usual refresh', async () => {
    for (const authorizationServers of [
      async () => [`${demoCredential(fake).key.issuer}/`],
      async () => {
        throw new Error('metadata unreachable');
      },
    ]) {
      fake.tokenRequests.length = 0;
      const { authFetch } = await setup({ accessToken: 'at-revoked-by-server', expiresAt: undefined }, { authorizationServers });
      const res = await authFetch(fake.mcpUrl, { method: 'POST', body: 'x' });
      assert.equal(res.status, 200);
      assert.equal(fake.tokenRequests.length, 1);
    }
  });
});

describe('a named server and a sign-in made with its bare URL', () => {
  test('the named entry uses the bare-URL credential (no sign-in), another named entry never does', async () => {
    const store = new MemoryCredentialStore();
    const bare = demoCredential(fake, { key: { ...demoCredential(fake).key, serverName: fake.mcpUrl } });
    await store.put(bare);
    const signIns: SignInRequest[] = [];
    const manager = new TokenManager({ server: demoServer(fake), store, fetch: globalThis.fetch, retry: { attempts: 0 }, signIn: async (r) => {
      signIns.push(r);
      throw new Error('no sign-in expected');
    } });
    const res = await createAuthenticatedFetch(manager, { fetch: globalThis.fetch })(fake.mcpUrl, { method: 'POST', body: 'x' });
    assert.equal(res.status, 200);
    assert.equal(fake.mcpRequests[0].authorization, bearer(bare.accessToken));
    assert.equal(signIns.length, 0);

    // A named entry with its own credential keeps it; the bare URL never borrows a named one.
    const named = demoCredential(fake);
    await store.put(named);
    assert.equal((await manager.credential({ reload: true }))?.accessToken, named.accessToken);
    const bareManager = new TokenManager({ server: { ...demoServer(fake), name: fake.mcpUrl, source: 'url' }, store: new MemoryCredentialStore(), fetch: globalThis.fetch });
    assert.equal(await bareManager.credential(), undefined);
  });
});

describe('a raw 2026-07-28 JSON-RPC body (MCP "Request Metadata")', () => {
  test('gets MCP-Protocol-Version, Mcp-Method and Mcp-Name unless the caller set them; 2025 bodies get none', async () => {
    const seen: Headers[] = [];
    const { manager } = await setup();
    const recording = async (input: string | URL, init?: RequestInit) => {
      seen.push(new Headers(init?.headers));
      return globalThis.fetch(input, init);
    };
    const authFetch = createAuthenticatedFetch(manager, { fetch: recording });
    const modern = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'wetter 🌦', arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } });
    await (await authFetch(fake.mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: modern })).text();
    assert.equal(seen[0].get('mcp-protocol-version'), '2026-07-28');
    assert.equal(seen[0].get('mcp-method'), 'tools/call');
    assert.equal(seen[0].get('mcp-name'), `=?base64?${Buffer.from('wetter 🌦').toString('base64')}?=`);
    assert.equal(seen[0].get('content-type'), 'application/json');
    await (await authFetch(fake.mcpUrl, { method: 'POST', headers: { 'Mcp-Method': 'custom' }, body: modern })).text();
    assert.equal(seen[1].get('mcp-method'), 'custom', 'the caller wins');
    const legacy = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} });
    await (await authFetch(fake.mcpUrl, { method: 'POST', body: legacy })).text();
    assert.equal(seen[2].get('mcp-method'), null);
  });
});

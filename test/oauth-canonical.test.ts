import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assertSecureEndpoint, canonicalResourceUri, isLoopbackHost } from '../src/oauth/canonical.ts';
import { parseBearerChallenge, parseChallenges } from '../src/oauth/www-authenticate.ts';
import { isMcpOAuthError } from '../src/errors.ts';

describe('canonicalResourceUri', () => {
  const cases: Array<[string, string]> = [
    ['https://mcp.example.com/mcp', 'https://mcp.example.com/mcp'],
    ['https://mcp.example.com', 'https://mcp.example.com'],
    ['https://mcp.example.com/', 'https://mcp.example.com'],
    ['https://mcp.example.com/mcp/', 'https://mcp.example.com/mcp'],
    ['HTTPS://MCP.Example.COM/Mcp', 'https://mcp.example.com/Mcp'],
    ['https://mcp.example.com:443/mcp', 'https://mcp.example.com/mcp'],
    ['http://127.0.0.1:80/mcp', 'http://127.0.0.1/mcp'],
    ['https://mcp.example.com:8443', 'https://mcp.example.com:8443'],
    ['https://mcp.example.com/mcp#fragment', 'https://mcp.example.com/mcp'],
    ['https://mcp.example.com/#x', 'https://mcp.example.com'],
    ['https://mcp.example.com/server/mcp?tenant=a', 'https://mcp.example.com/server/mcp?tenant=a'],
    ['https://mcp.example.com/mcp/?tenant=a', 'https://mcp.example.com/mcp?tenant=a'],
    ['http://[::1]:3000/mcp', 'http://[::1]:3000/mcp'],
  ];
  for (const [input, expected] of cases) {
    it(`${input} -> ${expected}`, () => assert.equal(canonicalResourceUri(input), expected));
  }

  it('rejects a URL without a scheme and a non-http scheme', () => {
    assert.throws(() => canonicalResourceUri('mcp.example.com'), (e) => isMcpOAuthError(e, 'usage') && /absolute URL/.test(e.message));
    assert.throws(() => canonicalResourceUri('ftp://mcp.example.com'), (e) => isMcpOAuthError(e, 'usage'));
  });
});

describe('assertSecureEndpoint', () => {
  it('accepts https and loopback http', () => {
    for (const url of ['https://as.example.com/token', 'http://127.0.0.1:4000/t', 'http://127.5.6.7/t', 'http://localhost:8080/t', 'http://[::1]:1/t']) {
      assert.equal(assertSecureEndpoint(url, 'token_endpoint').href, new URL(url).href);
    }
  });

  it('refuses http on other hosts and other schemes, naming the endpoint', () => {
    for (const url of ['http://as.example.com/token', 'http://10.0.0.1/token', 'http://localhost.example.com/t', 'javascript:alert(1)']) {
      assert.throws(
        () => assertSecureEndpoint(url, 'token_endpoint'),
        (e) => isMcpOAuthError(e, 'insecure_url') && e.message.includes('token_endpoint') && !!e.hint,
        url,
      );
    }
  });

  it('knows loopback names', () => {
    assert.equal(isLoopbackHost('127.0.0.1'), true);
    assert.equal(isLoopbackHost('app.localhost'), true);
    assert.equal(isLoopbackHost('128.0.0.1'), false);
    assert.equal(isLoopbackHost('localhost.evil.com'), false);
  });
});

describe('parseBearerChallenge', () => {
  it('parses the MCP spec example with resource_metadata and scope', () => {
    const c = parseBearerChallenge(
      'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource",\n    scope="files:read"',
    );
    assert.deepEqual(c, { resourceMetadata: 'https://mcp.example.com/.well-known/oauth-protected-resource', scope: ['files:read'] });
  });

  it('parses an insufficient_scope challenge with all parameters', () => {
    const c = parseBearerChallenge(
      'Bearer error="insufficient_scope", scope="files:read files:write  user:profile", realm="mcp", ' +
        'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource", error_description="Additional file write permission required"',
    );
    assert.deepEqual(c, {
      error: 'insufficient_scope',
      errorDescription: 'Additional file write permission required',
      realm: 'mcp',
      resourceMetadata: 'https://mcp.example.com/.well-known/oauth-protected-resource',
      scope: ['files:read', 'files:write', 'user:profile'],
    });
  });

  it('finds the Bearer challenge among several, scheme case-insensitive', () => {
    const header = 'Basic realm="a, b", Negotiate YII/ab==, DPoP algs="ES256", bEaReR realm="x", error="invalid_token"';
    assert.deepEqual(parseBearerChallenge(header), { realm: 'x', error: 'invalid_token' });
    const all = parseChallenges(header);
    assert.deepEqual(all.map((c) => c.scheme), ['basic', 'negotiate', 'dpop', 'bearer']);
    assert.equal(all[0].params.realm, 'a, b');
    assert.equal(all[1].token68, 'YII/ab==');
  });

  it('keeps commas inside quoted strings and unescapes quoted pairs', () => {
    const c = parseBearerChallenge('Bearer error_description="bad \\"token\\", try again", error=invalid_token');
    assert.deepEqual(c, { errorDescription: 'bad "token", try again', error: 'invalid_token' });
  });

  it('accepts unquoted URLs and case-insensitive parameter names', () => {
    const c = parseBearerChallenge('Bearer Resource_Metadata=https://x.example/.well-known/oauth-protected-resource/mcp, Scope=read');
    assert.deepEqual(c, { resourceMetadata: 'https://x.example/.well-known/oauth-protected-resource/mcp', scope: ['read'] });
  });

  it('returns an empty challenge for a bare Bearer and treats an empty scope as absent', () => {
    assert.deepEqual(parseBearerChallenge('Bearer'), {});
    assert.deepEqual(parseBearerChallenge('Bearer scope=""'), {});
    assert.deepEqual(parseBearerChallenge('Basic realm="x", Bearer'), {});
  });

  it('keeps the first of duplicated parameters', () => {
    assert.deepEqual(parseBearerChallenge('Bearer scope="a", scope="b"'), { scope: ['a'] });
  });

  it('returns undefined without a Bearer challenge and survives garbage', () => {
    assert.equal(parseBearerChallenge(null), undefined);
    assert.equal(parseBearerChallenge(''), undefined);
    assert.equal(parseBearerChallenge('Basic realm="x"'), undefined);
    assert.equal(parseBearerChallenge('=== ,,, "unterminated'), undefined);
    assert.equal(parseBearerChallenge('BearerX realm="x"'), undefined);
    // Garbage before a valid challenge does not hide it; an unterminated string ends the header.
    assert.deepEqual(parseBearerChallenge('";;", Bearer realm="ok", error="unterminated'), { realm: 'ok', error: 'unterminated' });
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMcpOAuthError } from '../src/errors.ts';
import {
  buildAuthorizationUrl,
  createPkce,
  createState,
  pkceChallengeS256,
  validateAuthorizationResponse,
} from '../src/oauth/authorize.ts';
import type { AuthorizationServerMetadata } from '../src/oauth/discovery.ts';

const metadata: AuthorizationServerMetadata = {
  issuer: 'https://as.example.com',
  authorization_endpoint: 'https://as.example.com/authorize?tenant=t1',
  token_endpoint: 'https://as.example.com/token',
  code_challenge_methods_supported: ['S256'],
};

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isMcpOAuthError(e), `expected McpOAuthError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

describe('PKCE and state', () => {
  it('S256 matches the RFC 7636 Appendix B known answer', () => {
    assert.equal(
      pkceChallengeS256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'),
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    );
  });

  it('creates a 43-char base64url verifier with its S256 challenge, fresh each time', () => {
    const a = createPkce();
    const b = createPkce();
    assert.match(a.verifier, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(a.method, 'S256');
    assert.equal(a.challenge, pkceChallengeS256(a.verifier));
    assert.notEqual(a.verifier, b.verifier);
  });

  it('creates unguessable state values', () => {
    const s = createState();
    assert.match(s, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(s, createState());
  });
});

describe('buildAuthorizationUrl', () => {
  const base = {
    metadata,
    clientId: 'client-1',
    redirectUri: 'http://127.0.0.1:8123/callback',
    resource: 'https://mcp.example.com/mcp',
    state: 'state-abc',
    codeChallenge: 'challenge-xyz',
  };

  it('sets every protocol parameter once, keeps the endpoint query, includes extra params', () => {
    const url = new URL(
      buildAuthorizationUrl({ ...base, scopes: ['files:read', 'offline_access'], extraParams: { access_type: 'offline' } }),
    );
    assert.equal(url.origin + url.pathname, 'https://as.example.com/authorize');
    const p = url.searchParams;
    assert.equal(p.get('tenant'), 't1');
    assert.equal(p.get('response_type'), 'code');
    assert.equal(p.get('client_id'), 'client-1');
    assert.equal(p.get('redirect_uri'), 'http://127.0.0.1:8123/callback');
    assert.equal(p.get('state'), 'state-abc');
    assert.equal(p.get('code_challenge'), 'challenge-xyz');
    assert.equal(p.get('code_challenge_method'), 'S256');
    assert.equal(p.get('scope'), 'files:read offline_access');
    assert.equal(p.get('access_type'), 'offline');
    assert.deepEqual(p.getAll('resource'), ['https://mcp.example.com/mcp']);
  });

  it('replaces a resource already present in the endpoint query (never twice)', () => {
    const url = new URL(
      buildAuthorizationUrl({
        ...base,
        metadata: { ...metadata, authorization_endpoint: 'https://as.example.com/authorize?resource=x' },
        scopes: [],
      }),
    );
    assert.deepEqual(url.searchParams.getAll('resource'), ['https://mcp.example.com/mcp']);
  });

  it('omits scope when there are no scopes', () => {
    const url = new URL(buildAuthorizationUrl({ ...base, scopes: [] }));
    assert.equal(url.searchParams.has('scope'), false);
  });

  it('refuses extra params that would override protocol parameters', () => {
    throwsCode(() => buildAuthorizationUrl({ ...base, scopes: [], extraParams: { code_challenge_method: 'plain' } }), 'config_invalid');
    throwsCode(() => buildAuthorizationUrl({ ...base, scopes: [], extraParams: { state: 'x' } }), 'config_invalid');
  });

  it('refuses a plain-http authorization endpoint off loopback', () => {
    throwsCode(
      () =>
        buildAuthorizationUrl({
          ...base,
          scopes: [],
          metadata: { ...metadata, authorization_endpoint: 'http://as.example.com/authorize' },
        }),
      'insecure_url',
    );
  });
});

describe('validateAuthorizationResponse', () => {
  const withIss: AuthorizationServerMetadata = { ...metadata, authorization_response_iss_parameter_supported: true };
  const check = (query: string, md: AuthorizationServerMetadata = metadata, expectedState = 's1') =>
    validateAuthorizationResponse({ params: new URLSearchParams(query), expectedState, metadata: md });

  it('returns the code when state matches', () => {
    assert.deepEqual(check('code=c1&state=s1'), { code: 'c1' });
  });

  it('state mismatch and missing state', () => {
    throwsCode(() => check('code=c1&state=other'), 'state_mismatch');
    throwsCode(() => check('code=c1'), 'state_mismatch');
    throwsCode(() => check('code=c1&state=s1&state=s1'), 'state_mismatch');
  });

  it('never puts the code or state into the message', () => {
    try {
      check('code=secret-code-123&state=wrong-state-456');
      assert.fail('should throw');
    } catch (e) {
      assert.ok(isMcpOAuthError(e));
      const text = JSON.stringify(e.toJSON());
      assert.ok(!text.includes('secret-code-123'));
      assert.ok(!text.includes('wrong-state-456'));
    }
  });

  it('RFC 9207: iss must equal the issuer when present', () => {
    assert.deepEqual(check('code=c1&state=s1&iss=https%3A%2F%2Fas.example.com', withIss), { code: 'c1' });
    throwsCode(() => check('code=c1&state=s1&iss=https%3A%2F%2Fevil.example.com'), 'iss_mismatch');
    throwsCode(() => check('code=c1&state=s1&iss=https%3A%2F%2Fevil.example.com', withIss), 'iss_mismatch');
  });

  it('RFC 9207: iss missing is refused only when the AS advertises it', () => {
    throwsCode(() => check('code=c1&state=s1', withIss), 'iss_missing');
    assert.deepEqual(check('code=c1&state=s1', { ...metadata, authorization_response_iss_parameter_supported: false }), {
      code: 'c1',
    });
  });

  it('iss is checked on error responses too', () => {
    throwsCode(() => check('error=access_denied&state=s1&iss=https%3A%2F%2Fevil.example.com'), 'iss_mismatch');
  });

  it('error=access_denied → signin_denied; other errors → oauth_error with the code', () => {
    assert.throws(
      () => check('error=access_denied&error_description=User+said+no&state=s1'),
      (e: unknown) => isMcpOAuthError(e, 'signin_denied') && e.oauthError === 'access_denied' && e.message.includes('User said no'),
    );
    assert.throws(
      () => check('error=invalid_scope&state=s1'),
      (e: unknown) => isMcpOAuthError(e, 'oauth_error') && e.oauthError === 'invalid_scope',
    );
  });

  it('a response with neither code nor error is refused', () => {
    throwsCode(() => check('state=s1'), 'oauth_error');
  });
});

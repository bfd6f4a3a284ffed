import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { selectScopes, stepUpScopes } from '../src/oauth/scopes.ts';
import { authorizeParamsFor, explainMissingRefreshToken, providerFor } from '../src/oauth/quirks.ts';

describe('selectScopes', () => {
  it('config wins over challenge and metadata', () => {
    assert.deepEqual(selectScopes({ configScopes: ['cfg'], challengeScope: ['ch'], scopesSupported: ['prm'] }), ['cfg']);
  });

  it('challenge wins over PRM scopes_supported', () => {
    assert.deepEqual(selectScopes({ challengeScope: ['ch1', 'ch2'], scopesSupported: ['prm'] }), ['ch1', 'ch2']);
    assert.deepEqual(selectScopes({ configScopes: [], challengeScope: ['ch'] }), ['ch']);
  });

  it('falls back to all of PRM scopes_supported, else to no scope', () => {
    assert.deepEqual(selectScopes({ scopesSupported: ['a', 'b'] }), ['a', 'b']);
    assert.deepEqual(selectScopes({}), []);
    assert.deepEqual(selectScopes({ challengeScope: [], scopesSupported: [] }), []);
  });

  it('adds offline_access only when the AS lists it and scopes are requested', () => {
    assert.deepEqual(selectScopes({ challengeScope: ['a'], asScopesSupported: ['a', 'offline_access'] }), ['a', 'offline_access']);
    assert.deepEqual(selectScopes({ configScopes: ['x'], asScopesSupported: ['offline_access'] }), ['x', 'offline_access']);
    assert.deepEqual(selectScopes({ challengeScope: ['a'], asScopesSupported: ['a'] }), ['a']);
    assert.deepEqual(selectScopes({ challengeScope: ['a'] }), ['a']);
    // Alone it would replace the server's default scopes.
    assert.deepEqual(selectScopes({ asScopesSupported: ['offline_access'] }), []);
  });

  it('does not duplicate offline_access or other scopes', () => {
    assert.deepEqual(selectScopes({ scopesSupported: ['offline_access', 'a', 'a'], asScopesSupported: ['offline_access'] }), ['offline_access', 'a']);
  });
});

describe('stepUpScopes', () => {
  it('is the union of granted and challenged scopes, order kept', () => {
    assert.deepEqual(stepUpScopes(['read', 'profile'], ['write', 'read']), ['read', 'profile', 'write']);
    assert.deepEqual(stepUpScopes([], ['a']), ['a']);
    assert.deepEqual(stepUpScopes(['a'], []), ['a']);
  });
});

describe('provider quirks', () => {
  it('Google gets access_type=offline and prompt=consent, with a refresh-token hint', () => {
    for (const issuer of ['https://accounts.google.com', 'https://accounts.google.com/', 'accounts.google.com']) {
      const q = providerFor(issuer);
      assert.equal(q.name, 'google', issuer);
      assert.deepEqual(q.authorizeParams, { access_type: 'offline', prompt: 'consent' });
      assert.match(q.missingRefreshTokenHint ?? '', /access_type=offline/);
      assert.match(q.missingRefreshTokenHint ?? '', /prompt=consent/);
    }
  });

  it('other providers get no extra parameters, never prompt=consent', () => {
    for (const issuer of ['https://login.microsoftonline.com/x/v2.0', 'https://auth.example.com', 'https://accounts.google.com.evil.example', 'http://accounts.google.com']) {
      assert.deepEqual(providerFor(issuer).authorizeParams, {}, issuer);
      assert.equal(providerFor(issuer).authorizeParams.prompt, undefined, issuer);
    }
    for (const issuer of ['https://auth.example.com', 'https://accounts.google.com.evil.example', 'http://accounts.google.com']) {
      const q = providerFor(issuer);
      assert.equal(q.name, 'generic', issuer);
      assert.deepEqual(q.authorizeParams, {});
      assert.equal(q.missingRefreshTokenHint, undefined);
    }
  });

  it('the override forces or disables quirks', () => {
    assert.equal(providerFor('https://idp.corp.example', 'google').name, 'google');
    assert.equal(providerFor('https://idp.corp.example', 'Google').name, 'google');
    assert.deepEqual(providerFor('https://accounts.google.com', 'none').authorizeParams, {});
  });

  it('returns copies that callers may change without affecting later calls', () => {
    providerFor('https://accounts.google.com').authorizeParams.prompt = 'none';
    assert.equal(providerFor('https://accounts.google.com').authorizeParams.prompt, 'consent');
  });

  it('configured parameters win; an empty value removes the default', () => {
    const google = providerFor('https://accounts.google.com');
    assert.deepEqual(authorizeParamsFor(google, { prompt: 'select_account', hd: 'example.com' }), {
      access_type: 'offline',
      prompt: 'select_account',
      hd: 'example.com',
    });
    assert.deepEqual(authorizeParamsFor(google, { prompt: '' }), { access_type: 'offline' });
    assert.deepEqual(authorizeParamsFor(providerFor('https://auth.example.com'), { audience: 'api' }), { audience: 'api' });
  });
});

describe('explainMissingRefreshToken', () => {
  const google = 'https://accounts.google.com';

  it('explains a Google sign-in without access_type=offline or prompt=consent', () => {
    const both = explainMissingRefreshToken(google, {});
    assert.match(both ?? '', /access_type=offline/);
    assert.match(both ?? '', /prompt=consent/);
    const noPrompt = explainMissingRefreshToken(google, { access_type: 'offline', prompt: 'select_account' });
    assert.match(noPrompt ?? '', /prompt=consent/);
    assert.doesNotMatch(noPrompt ?? '', /access_type/);
    assert.match(explainMissingRefreshToken('https://idp.example', { prompt: 'consent' }, 'google') ?? '', /access_type=offline/);
  });

  it('says nothing when both were sent or the provider is not Google', () => {
    assert.equal(explainMissingRefreshToken(google, { access_type: 'offline', prompt: 'consent' }), undefined);
    assert.equal(explainMissingRefreshToken(google, { access_type: 'offline', prompt: 'select_account consent' }), undefined);
    assert.equal(explainMissingRefreshToken('https://auth.example.com', {}), undefined);
    assert.equal(explainMissingRefreshToken(google, {}, 'none'), undefined);
  });
});

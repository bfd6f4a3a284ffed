/**
 * The gateway secret: what a local client presents to `mcp-oauth serve`, so that another user or
 * process on the machine (or a web page, through DNS rebinding) cannot use its tokens. 256 random
 * bits, kept in the credential store like the tokens (keychain, file or Redis: N gateways that
 * share a Redis store share it), created on first use, and compared in constant time.
 */
import { crypto } from '../builtins.ts';
import type { Credential, CredentialKey, CredentialStore } from '../types.ts';

/** The store key the secret lives under: not a URL, so `list` never shows it as a server. */
export const GATEWAY_SECRET_KEY: CredentialKey = {
  serverName: 'mcp-oauth-gateway',
  resource: 'urn:mcp-oauth:gateway',
  issuer: 'urn:mcp-oauth:gateway',
};

/** Clients send `Authorization: Bearer SECRET` (every MCP client's HTTP config can set a header). */
export const GATEWAY_AUTH_HEADER = 'authorization';

export function isGatewaySecretKey(key: CredentialKey): boolean {
  return key.serverName === GATEWAY_SECRET_KEY.serverName && key.resource === GATEWAY_SECRET_KEY.resource;
}

/** The stored secret; with `create`, a new one is made and stored when there is none. */
export async function gatewaySecret(store: CredentialStore, opts: { create: boolean }): Promise<string | undefined> {
  const existing = await store.get(GATEWAY_SECRET_KEY);
  if (existing?.accessToken) return existing.accessToken;
  if (!opts.create) return undefined;
  // Under the store's lock: two first starts (serve and install) must agree on one secret.
  return store.withLock(GATEWAY_SECRET_KEY, async () => {
    const again = await store.get(GATEWAY_SECRET_KEY);
    if (again?.accessToken) return again.accessToken;
    const secret = crypto().randomBytes(32).toString('base64url');
    const record: Credential = {
      key: GATEWAY_SECRET_KEY,
      accessToken: secret,
      tokenType: 'gateway-secret',
      scopes: [],
      clientId: 'mcp-oauth-gateway',
      tokenEndpoint: 'urn:mcp-oauth:gateway',
      tokenEndpointAuthMethod: 'none',
      obtainedAt: Date.now(),
    };
    await store.put(record);
    return secret;
  });
}

/**
 * A check of Authorization headers against the secret. Both sides are SHA-256 digests, so the
 * comparison takes the same time whatever the presented length (timingSafeEqual needs equal sizes);
 * the secret's digest is computed once, not per request.
 */
export function secretCheck(secret: string): (authorization: string | undefined) => boolean {
  const c = crypto();
  const expected = c.createHash('sha256').update(secret).digest();
  return (authorization) => {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    const presented = m ? m[1]! : '';
    return c.timingSafeEqual(c.createHash('sha256').update(presented).digest(), expected) && presented.length > 0;
  };
}

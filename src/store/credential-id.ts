import type { CredentialKey } from '../types.ts';

/**
 * Stable id of a credential: config name, canonical resource and issuer. Used as the file store's
 * map key, the keychain account name, and (hashed) the lock file name. The issuer is part of it
 * because credentials are keyed by issuer (MCP auth spec 2026-07-28): a server that moves to a
 * new authorization server must never be sent the old one's tokens.
 */
export function credentialId(key: CredentialKey): string {
  return `${key.serverName}|${key.resource}|${key.issuer}`;
}

/** Keychain account for an issuer's client registration (cannot collide with credentialId:
 * server names never equal "registration" followed by an issuer URL with no resource part). */
export function registrationAccount(issuer: string): string {
  return `registration|${issuer}`;
}

/** Registration lookups may ask for one that lists a given redirect URI (e.g. a fixed callback
 * port). Exact match: RFC 8252 §7.3 lets loopback ports vary, but not every AS implements it. */
export function registrationMatches(redirectUris: string[], redirectUri: string | undefined): boolean {
  return redirectUri === undefined || redirectUris.includes(redirectUri);
}

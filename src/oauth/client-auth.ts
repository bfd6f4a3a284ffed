/**
 * Client authentication at the token, revocation and device authorization endpoints: RFC 6749
 * §2.3.1 (a client secret, in the Authorization header or the body), §3.2.1 (a public client names
 * itself), RFC 7523 §2.2 `private_key_jwt` (a client assertion signed with the client's own key).
 * tokens.ts re-exports everything here: `ClientAuth` is part of its contract.
 *
 * The assertion code (jose, node:crypto keys) is imported only when a client actually uses
 * `private_key_jwt`, so a process that refreshes with a secret or as a public client never loads it.
 */
import { McpOAuthError } from '../errors.ts';
import type { TokenEndpointAuthMethod } from '../types.ts';
import type { SigningKey } from './client-assertion.ts';

/** `private_key_jwt`: the key, the JWS algorithm chosen for it, and the assertion's audience. */
export interface ClientAssertionSigner {
  key: SigningKey;
  /** One of `key.algorithms`, accepted by the AS (see `chooseSigningAlg` in client-assertion.ts). */
  alg: string;
  /** draft-ietf-oauth-rfc7523bis (RFC 10070) §3: the authorization server's issuer identifier. */
  audience: string;
  /** JWS `kid` (RFC 7515 §4.1.4); defaults to the key's own (a JWK's `kid`). */
  kid?: string;
}

export type ClientAuth = {
  clientId: string;
  clientSecret?: string;
  method: TokenEndpointAuthMethod;
  /** Required when `method` is `private_key_jwt`. */
  assertion?: ClientAssertionSigner;
};

/** RFC 6749 Appendix B: application/x-www-form-urlencoded of one value (space → "+"). */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

/**
 * Applies the client's authentication to one request. Async because a client assertion is signed
 * per request (a fresh `jti` each time: the AS refuses a replayed one, RFC 7523 §3 item 7).
 * `now` (epoch ms) dates the assertion; callers without a clock (logout's revocation) may omit it.
 */
export async function applyClientAuth(
  client: ClientAuth,
  body: URLSearchParams,
  headers: Record<string, string>,
  now?: number,
): Promise<void> {
  if (client.method === 'none') {
    // RFC 6749 §3.2.1: a public client identifies itself with client_id in the body.
    body.set('client_id', client.clientId);
    return;
  }
  if (client.method === 'private_key_jwt') {
    if (!client.assertion) {
      throw new McpOAuthError(
        'config_invalid',
        `The client "${client.clientId}" uses private_key_jwt but no signing key is configured.`,
        { hint: 'set private_key_file (or private_key_env) in [mcp_servers.NAME.oauth]' },
      );
    }
    const { createClientAssertion, CLIENT_ASSERTION_TYPE } = await import('./client-assertion.ts');
    const assertion = await createClientAssertion({
      clientId: client.clientId,
      ...client.assertion,
      // Only a caller without any clock gets here without `now` (see the doc comment).
      now: now ?? Date.now(),
    });
    // RFC 7521 §4.2: client_assertion_type + client_assertion. client_id is OPTIONAL there ("MUST
    // identify the same client" as the assertion's sub); sent because some servers require it
    // (Microsoft Entra ID's certificate credentials) and none refuse it.
    body.set('client_id', client.clientId);
    body.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
    body.set('client_assertion', assertion);
    return;
  }
  if (!client.clientSecret) {
    throw new McpOAuthError(
      'config_invalid',
      `The client "${client.clientId}" uses ${client.method} but no client secret is available.`,
      { hint: 'set the environment variable named by client_secret_env in [mcp_servers.NAME.oauth]' },
    );
  }
  if (client.method === 'client_secret_basic') {
    // §2.3.1: id and secret are form-urlencoded BEFORE being joined by ":" and base64-encoded;
    // skipping that breaks secrets containing ":" or non-ASCII characters.
    const credentials = `${formEncode(client.clientId)}:${formEncode(client.clientSecret)}`;
    headers['authorization'] = `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
  } else {
    body.set('client_id', client.clientId);
    body.set('client_secret', client.clientSecret);
  }
}

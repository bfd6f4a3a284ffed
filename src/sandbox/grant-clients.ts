// The sandbox's pre-registered clients for sign-in without a person (grant modes, grant-modes.ts):
// confidential clients for the client credentials grant (RFC 6749 §4.4) with each client
// authentication method (RFC 6749 §2.3.1 basic and post, RFC 7523 §2.2 private_key_jwt), a
// public client for workload identity (RFC 7523 §2.1, where the assertion is the credential), and
// the MCP authorization server's client that enterprise ID-JAGs name (SEP-990). The private key of
// the private_key_jwt client is generated here and handed to the test (or written to a 0600 file
// by the CLI); the authorization server knows only its public JWK.
import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair } from 'jose';
import type { JWK } from 'jose';

export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

export const SANDBOX_GRANTS = ['client_credentials', 'jwt_bearer', 'enterprise'] as const;
export type SandboxGrant = (typeof SANDBOX_GRANTS)[number];

export function isSandboxGrant(value: string): value is SandboxGrant {
  return (SANDBOX_GRANTS as readonly string[]).includes(value);
}

export interface SecretClient {
  clientId: string;
  clientSecret: string;
}

export interface PrivateKeyJwtClient {
  clientId: string;
  /** The JWS algorithm of the key (from token_endpoint_auth_signing_alg_values_supported). */
  alg: string;
  kid: string;
  /** PKCS #8 PEM of the private key. */
  privateKeyPem: string;
  /** The same private key as a JWK (with kid and alg). */
  privateJwk: JWK;
  /** What the authorization server has registered (its `jwks`). */
  publicJwk: JWK;
}

export interface GrantClients {
  /** client_credentials with client_secret_basic. */
  clientSecretBasic?: SecretClient;
  /** client_credentials with client_secret_post. */
  clientSecretPost?: SecretClient;
  /** client_credentials with private_key_jwt (RFC 7523 §2.2). */
  privateKeyJwt?: PrivateKeyJwtClient;
  /** jwt_bearer (workload identity): a public client; it sends its client_id, the assertion authenticates. */
  jwtBearer?: { clientId: string };
  /** enterprise: the client at the MCP authorization server (client_secret_basic) that ID-JAGs name in `client_id`. */
  enterprise?: SecretClient;
}

export const CLIENT_IDS = {
  clientSecretBasic: 'sandbox-client-secret-basic',
  clientSecretPost: 'sandbox-client-secret-post',
  privateKeyJwt: 'sandbox-private-key-jwt',
  jwtBearer: 'sandbox-workload',
  enterprise: 'sandbox-enterprise-mcp-client',
} as const;

/** The key type that signs with `alg` (RFC 7518 §3.1, RFC 8037 for EdDSA). */
async function keyPairFor(alg: string) {
  if (alg === 'EdDSA' || alg === 'Ed25519') return generateKeyPair('Ed25519', { extractable: true });
  if (/^(RS|PS)\d+$/.test(alg)) return generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
  return generateKeyPair(alg, { extractable: true });
}

const noRedirects = { response_types: [], redirect_uris: [] };
const secret = (chosen: string | undefined) => chosen ?? randomBytes(24).toString('base64url');

/**
 * The clients for the grants asked for: what the test/CLI gets, and the oidc-provider metadata.
 * `signingAlgs`: the authorization server's token_endpoint_auth_signing_alg_values_supported (the
 * private_key_jwt key uses the first asymmetric one, else ES256).
 */
export async function createGrantClients(
  grants: ReadonlySet<SandboxGrant>,
  opts: { clientSecret?: string; signingAlgs?: string[] } = {},
): Promise<{ clients: GrantClients; metadata: Array<Record<string, unknown>> }> {
  const clients: GrantClients = {};
  const metadata: Array<Record<string, unknown>> = [];
  if (grants.has('client_credentials')) {
    clients.clientSecretBasic = { clientId: CLIENT_IDS.clientSecretBasic, clientSecret: secret(opts.clientSecret) };
    clients.clientSecretPost = { clientId: CLIENT_IDS.clientSecretPost, clientSecret: secret(opts.clientSecret) };
    for (const [client, method] of [[clients.clientSecretBasic, 'client_secret_basic'], [clients.clientSecretPost, 'client_secret_post']] as const) {
      metadata.push({
        client_id: client.clientId, client_secret: client.clientSecret, client_name: `Sandbox client credentials (${method})`,
        grant_types: ['client_credentials'], token_endpoint_auth_method: method, ...noRedirects,
      });
    }
    const alg = opts.signingAlgs?.find((a) => !a.startsWith('HS')) ?? 'ES256';
    const { privateKey } = await keyPairFor(alg);
    const jwk = await exportJWK(privateKey);
    const kid = (await calculateJwkThumbprint(jwk)).slice(0, 16);
    const privateJwk: JWK = { ...jwk, kid, alg, use: 'sig' };
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = privateJwk;
    clients.privateKeyJwt = { clientId: CLIENT_IDS.privateKeyJwt, alg, kid, privateKeyPem: await exportPKCS8(privateKey), privateJwk, publicJwk };
    metadata.push({
      client_id: CLIENT_IDS.privateKeyJwt, client_name: 'Sandbox client credentials (private_key_jwt)',
      grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk] }, ...noRedirects,
    });
  }
  if (grants.has('jwt_bearer')) {
    clients.jwtBearer = { clientId: CLIENT_IDS.jwtBearer };
    metadata.push({
      client_id: CLIENT_IDS.jwtBearer, client_name: 'Sandbox workload (jwt-bearer)',
      grant_types: [JWT_BEARER_GRANT], token_endpoint_auth_method: 'none', ...noRedirects,
    });
  }
  if (grants.has('enterprise')) {
    // draft-ietf-oauth-identity-assertion-authz-grant §4.4 / "Security Considerations": ID-JAGs are
    // for confidential clients, which authenticate at the Resource Authorization Server.
    clients.enterprise = { clientId: CLIENT_IDS.enterprise, clientSecret: secret(opts.clientSecret) };
    metadata.push({
      client_id: CLIENT_IDS.enterprise, client_secret: clients.enterprise.clientSecret, client_name: 'Sandbox enterprise MCP client (ID-JAG)',
      grant_types: [JWT_BEARER_GRANT], token_endpoint_auth_method: 'client_secret_basic', ...noRedirects,
    });
  }
  return { clients, metadata };
}

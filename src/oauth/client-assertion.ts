/**
 * `private_key_jwt` client authentication (RFC 7523 §2.2, RFC 7521 §4.2): reading the client's
 * signing key, choosing the JWS algorithm the authorization server accepts, and signing the client
 * assertion. Pure: the edge reads the key file and passes its text; keys are parsed by node:crypto
 * and JWTs signed by jose — no hand-written crypto. Key material never appears in a message.
 */
import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { McpOAuthError } from '../errors.ts';
import type { ClientAuth } from './client-auth.ts';

/** RFC 7523 §2.2 / RFC 7521 §4.2 `client_assertion_type`. */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** RFC 10070 (draft-ietf-oauth-rfc7523bis) §4: the explicit type of a client authentication JWT. */
export const CLIENT_ASSERTION_TYP = 'client-authentication+jwt';
/** A short life (RFC 7523 §3 item 4: the AS may reject a far-off `exp`); one is signed per request. */
export const CLIENT_ASSERTION_LIFETIME_SECONDS = 60;

export interface SigningKey {
  /** The private key. Held in memory only; never serialised or shown. */
  key: KeyObject;
  /** For messages: "RSA 2048-bit", "EC P-256", "Ed25519". */
  description: string;
  /** JWS algorithms (RFC 7518 §3.1, RFC 8037) this key can sign with, in our order of preference. */
  algorithms: string[];
  /** A JWK's `kid`, sent in the JWS header so the AS can pick the registered key. */
  kid?: string;
}

// RS256 first: the most widely registered default (OpenID Connect Registration §2); PS* next.
const RSA_ALGS = ['RS256', 'PS256', 'RS384', 'PS384', 'RS512', 'PS512'];
// RFC 7518 §3.4: ES256 is P-256 with SHA-256, ES384 P-384, ES512 P-521 — the curve fixes the alg.
const EC_ALGS: Record<string, { crv: string; alg: string }> = {
  prime256v1: { crv: 'P-256', alg: 'ES256' },
  secp384r1: { crv: 'P-384', alg: 'ES384' },
  secp521r1: { crv: 'P-521', alg: 'ES512' },
};

function keyError(source: string, why: string, hint?: string): McpOAuthError {
  return new McpOAuthError('config_invalid', `${capitalize(source)} ${why}.`, {
    hint: hint ?? `point private_key_file (or private_key_env) at an unencrypted PKCS#8, SEC1 or PKCS#1 PEM private key, or a private JWK`,
    details: { keySource: source },
  });
}

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * Parses a private signing key from the text of a PEM file (PKCS#8 "PRIVATE KEY", SEC1 "EC PRIVATE
 * KEY", PKCS#1 "RSA PRIVATE KEY"; other blocks such as "EC PARAMETERS" are skipped) or a private
 * JWK (RFC 7517; a JWK Set holding exactly one private key also works). `source` names where the
 * text came from, for messages ("the file /etc/mcp/key.pem").
 */
export function importSigningKey(text: string, source = 'the signing key'): SigningKey {
  const trimmed = text.trim();
  if (!trimmed) throw keyError(source, 'is empty');
  if (trimmed.startsWith('{')) return importJwkText(trimmed, source);

  // RFC 7468 §2: "-----BEGIN label-----" … "-----END label-----".
  const blocks = [...trimmed.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g)];
  if (blocks.length === 0) throw keyError(source, 'is neither a PEM private key (no "-----BEGIN … PRIVATE KEY-----" line) nor a JSON Web Key');
  const labels = blocks.map((b) => b[1]);
  if (labels.includes('ENCRYPTED PRIVATE KEY') || /Proc-Type:\s*4,ENCRYPTED/.test(trimmed)) {
    throw keyError(source, 'is an encrypted private key; mcp-oauth cannot ask for its passphrase', 'decrypt it into a file only you can read: openssl pkey -in KEY -out KEY.plain (then chmod 600)');
  }
  if (labels.includes('OPENSSH PRIVATE KEY')) {
    throw keyError(source, 'is in the OpenSSH format', 'convert it to PKCS#8: ssh-keygen -p -m PKCS8 -f KEY (on a copy)');
  }
  const privateBlock = blocks.find((b) => b[1].endsWith('PRIVATE KEY'));
  if (!privateBlock) {
    const what = labels.some((l) => l.includes('CERTIFICATE')) ? 'a certificate' : 'a public key';
    throw keyError(source, `holds ${what} (${labels.join(', ')}), not the private key that signs the client assertion`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: privateBlock[0], format: 'pem' });
  } catch {
    // node's message says nothing useful ("DECODER routines::unsupported") and must not echo the key.
    throw keyError(source, `could not be read as a ${privateBlock[1]} (the PEM is damaged or of an unsupported kind)`);
  }
  return describeKey(key, source);
}

function importJwkText(text: string, source: string): SigningKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw keyError(source, 'starts with "{" but is not valid JSON (expected a JSON Web Key)');
  }
  let jwk = parsed as Record<string, unknown>;
  if (Array.isArray(jwk.keys)) {
    // A JWK Set (RFC 7517 §5): usable when exactly one member is a private key.
    const privates = (jwk.keys as unknown[]).filter((k): k is Record<string, unknown> => !!k && typeof k === 'object' && 'd' in k);
    if (privates.length !== 1) throw keyError(source, `is a JWK Set with ${privates.length} private keys; exactly one is needed`);
    jwk = privates[0];
  }
  if (jwk.kty === 'oct') throw keyError(source, 'is a symmetric ("oct") key; private_key_jwt needs an asymmetric private key');
  if (typeof jwk.kty !== 'string') throw keyError(source, 'is not a JSON Web Key (no "kty")');
  if (typeof jwk.d !== 'string') throw keyError(source, `is a public ${jwk.kty} JWK; the private key (with "d") is needed`);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
  } catch {
    throw keyError(source, `could not be read as a private ${jwk.kty} JWK (a member is missing or malformed)`);
  }
  const described = describeKey(key, source);
  // RFC 7517 §4.4: a JWK's "alg" names the one algorithm it is meant for.
  if (typeof jwk.alg === 'string') {
    if (!described.algorithms.includes(jwk.alg)) {
      throw keyError(source, `says "alg": "${jwk.alg}", which the ${described.description} key cannot sign with (it can: ${described.algorithms.join(', ')})`);
    }
    described.algorithms = [jwk.alg];
  }
  if (typeof jwk.kid === 'string' && jwk.kid) described.kid = jwk.kid;
  return described;
}

function describeKey(key: KeyObject, source: string): SigningKey {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa') {
    const bits = details.modulusLength ?? 0;
    // RFC 7518 §3.3 / §3.5: "A key of size 2048 bits or larger MUST be used".
    if (bits < 2048) throw keyError(source, `is an RSA key of ${bits} bits; RS256/PS256 need at least 2048 (RFC 7518 §3.3)`);
    return { key, description: `RSA ${bits}-bit`, algorithms: [...RSA_ALGS] };
  }
  if (type === 'ec') {
    const curve = EC_ALGS[details.namedCurve ?? ''];
    if (!curve) throw keyError(source, `is an EC key on the curve ${details.namedCurve ?? '(unknown)'}; supported: P-256, P-384, P-521`);
    return { key, description: `EC ${curve.crv}`, algorithms: [curve.alg] };
  }
  if (type === 'ed25519') {
    // RFC 8037 §3.1 "EdDSA"; RFC 9864 registers the fully specified "Ed25519" too.
    return { key, description: 'Ed25519', algorithms: ['EdDSA', 'Ed25519'] };
  }
  if (type === 'rsa-pss') {
    throw keyError(source, 'is an RSA-PSS-only key (id-RSASSA-PSS), which cannot be used here', 'use a plain RSA key: it signs PS256 as well as RS256');
  }
  throw keyError(source, `is a ${type ?? 'unknown'} key; private_key_jwt needs RSA, EC (P-256, P-384, P-521) or Ed25519`);
}

/**
 * The JWS algorithm for client assertions: the first of the key's algorithms (or the configured
 * one) that the authorization server lists in `token_endpoint_auth_signing_alg_values_supported`
 * (RFC 8414 §2). An absent list says nothing (the MCP client-credentials extension requires it
 * with JWT authentication), so the key's preferred algorithm is tried.
 */
export function chooseSigningAlg(
  key: SigningKey,
  supported: readonly string[] | undefined,
  opts: { issuer?: string; preferred?: string } = {},
): string {
  if (opts.preferred && !key.algorithms.includes(opts.preferred)) {
    throw new McpOAuthError('config_invalid', `The configured signing algorithm ${opts.preferred} cannot be used with the ${key.description} key (it can sign with ${key.algorithms.join(', ')}).`, {
      hint: 'remove the algorithm setting or use a key of the matching type',
    });
  }
  const candidates = opts.preferred ? [opts.preferred] : key.algorithms;
  // RFC 8414 §2: "none" MUST NOT be used; HS* would need the client secret (client_secret_jwt).
  const usable = supported?.filter((a) => a !== 'none' && !a.startsWith('HS'));
  if (!usable || usable.length === 0) return candidates[0];
  const chosen = candidates.find((a) => usable.includes(a));
  if (chosen) return chosen;
  const server = opts.issuer ? `the authorization server ${opts.issuer}` : 'the authorization server';
  throw new McpOAuthError(
    'config_invalid',
    `The signing key (${key.description}) can sign with ${candidates.join(', ')}, but ${server} accepts only ${usable.join(', ')} (token_endpoint_auth_signing_alg_values_supported).`,
    {
      hint: 'use a key of a type the server accepts (RSA for RS256/PS256, EC P-256 for ES256, Ed25519 for EdDSA) and register its public key for the client',
      details: { keyAlgorithms: candidates, serverAlgorithms: usable },
    },
  );
}

/**
 * Signs one client assertion (RFC 7523 §3): iss = sub = client_id (§3 items 1–2.B), aud = the AS
 * issuer (RFC 10070 §3: one string, the issuer identifier, not the token endpoint), a fresh random
 * `jti` (§3 item 7: the AS may refuse a replay), `iat`, and an `exp` 60 s later.
 */
export async function createClientAssertion(opts: {
  clientId: string;
  audience: string;
  key: SigningKey;
  alg: string;
  now: number;
  kid?: string;
  lifetimeSeconds?: number;
}): Promise<string> {
  const iat = Math.floor(opts.now / 1000);
  const kid = opts.kid ?? opts.key.kid;
  try {
    return await new SignJWT({})
      .setProtectedHeader({ alg: opts.alg, typ: CLIENT_ASSERTION_TYP, ...(kid ? { kid } : {}) })
      .setIssuer(opts.clientId)
      .setSubject(opts.clientId)
      .setAudience(opts.audience)
      .setJti(randomBytes(32).toString('base64url'))
      .setIssuedAt(iat)
      .setExpirationTime(iat + (opts.lifetimeSeconds ?? CLIENT_ASSERTION_LIFETIME_SECONDS))
      .sign(opts.key.key);
  } catch (cause) {
    throw new McpOAuthError('config_invalid', `Could not sign the client assertion with the ${opts.key.description} key and ${opts.alg}.`, {
      cause,
      hint: 'check the key and the configured algorithm',
    });
  }
}

/**
 * A `private_key_jwt` client for an authorization server: the algorithm chosen from its metadata,
 * the assertion audience its issuer.
 */
export function privateKeyJwtClient(opts: {
  clientId: string;
  key: SigningKey;
  /** The AS issuer (RFC 8414 `issuer`), the assertion's `aud`. */
  issuer: string;
  /** RFC 8414 `token_endpoint_auth_signing_alg_values_supported`. */
  signingAlgValuesSupported?: readonly string[];
  /** A configured algorithm; must be one the key can use and the AS lists. */
  alg?: string;
  kid?: string;
}): ClientAuth {
  const alg = chooseSigningAlg(opts.key, opts.signingAlgValuesSupported, { issuer: opts.issuer, preferred: opts.alg });
  return {
    clientId: opts.clientId,
    method: 'private_key_jwt',
    assertion: { key: opts.key, alg, audience: opts.issuer, ...(opts.kid ? { kid: opts.kid } : {}) },
  };
}

/**
 * DPoP, OAuth 2.0 Demonstrating Proof of Possession (RFC 9449): a key pair per credential, a
 * signed proof per HTTP request, and the server-provided nonces. Pure: the key is a JWK the caller
 * stores with the credential; fetch and the clock are the caller's. Keys, proofs and thumbprints
 * are jose's work — no hand-written crypto.
 */
import { createHash, randomBytes } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { McpOAuthError } from '../errors.ts';
import { parseTokenBody, readText } from './token-body.ts';
import { parseChallenges } from './www-authenticate.ts';

/** The asymmetric algorithms we sign proofs with (RFC 9449 §4.2: never "none" nor a MAC), preferred first. */
export const DPOP_ALGS = ['ES256', 'EdDSA', 'ES384', 'PS256', 'RS256'] as const;
export type DpopAlg = (typeof DPOP_ALGS)[number];

/** At most this many retries with a fresh nonce per request (RFC 9449 §8, §9: "use_dpop_nonce"). */
export const MAX_DPOP_NONCE_RETRIES = 2;

export interface DpopKey {
  /** Store this with the credential (keychain or file): it holds the private key. */
  privateJwk: JWK;
  /** What goes into each proof's `jwk` header (RFC 9449 §4.2): public members only. */
  publicJwk: JWK;
  alg: DpopAlg;
  /** RFC 7638 SHA-256 thumbprint: what the AS binds the tokens to (`cnf.jkt`, RFC 9449 §6). */
  thumbprint: string;
}

/** A stored private JWK, as the credential store hands it back. */
export type StoredJwk = Record<string, unknown>;

/** A new key pair for one credential. ES256 unless the AS cannot verify it (see chooseDpopAlg). */
export async function generateDpopKey(alg: DpopAlg = 'ES256'): Promise<DpopKey> {
  const pair =
    alg === 'EdDSA'
      ? await generateKeyPair('Ed25519', { extractable: true })
      : await generateKeyPair(alg, { extractable: true, ...(alg.startsWith('PS') || alg.startsWith('RS') ? { modulusLength: 2048 } : {}) });
  const privateJwk: JWK = { ...(await exportJWK(pair.privateKey)), alg };
  const publicJwk = publicJwkOf(privateJwk);
  return { privateJwk, publicJwk, alg, thumbprint: await dpopThumbprint(publicJwk) };
}

/** The public members of a key (RFC 7518 §6.2.1, §6.3.1, RFC 8037 §2): a private member in a
 * proof header would publish the key to every server and proxy on the way. */
export function publicJwkOf(jwk: StoredJwk): JWK {
  switch (jwk.kty) {
    case 'EC':
      return { kty: 'EC', crv: String(jwk.crv), x: String(jwk.x), y: String(jwk.y) };
    case 'OKP':
      return { kty: 'OKP', crv: String(jwk.crv), x: String(jwk.x) };
    case 'RSA':
      return { kty: 'RSA', n: String(jwk.n), e: String(jwk.e) };
    default:
      throw new McpOAuthError('dpop_error', `The stored DPoP key has an unsupported key type (${String(jwk.kty)}).`, {
        hint: 'sign in again to create a new key (mcp-oauth login NAME)',
      });
  }
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url): the same for the private and the public JWK. */
export async function dpopThumbprint(jwk: StoredJwk): Promise<string> {
  return calculateJwkThumbprint(publicJwkOf(jwk), 'sha256');
}

/** The algorithm a stored key signs with: its `alg`, else the one its type implies. */
function algOf(jwk: StoredJwk): DpopAlg {
  if (typeof jwk.alg === 'string' && (DPOP_ALGS as readonly string[]).includes(jwk.alg)) return jwk.alg as DpopAlg;
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'EC' && jwk.crv === 'P-384') return 'ES384';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  if (jwk.kty === 'RSA') return 'RS256';
  throw new McpOAuthError('dpop_error', 'The stored DPoP key cannot sign proofs (unsupported key type or curve).', {
    hint: 'sign in again to create a new key (mcp-oauth login NAME)',
  });
}

/**
 * The proof algorithm for an AS: the first of ours it lists in `dpop_signing_alg_values_supported`
 * (RFC 9449 §5.1). An absent list means the AS does not advertise DPoP; when DPoP is wanted anyway
 * (config), ES256 — the algorithm every implementation supports in practice.
 */
export function chooseDpopAlg(supported: readonly string[] | undefined, issuer?: string): DpopAlg {
  if (!supported || supported.length === 0) return 'ES256';
  const chosen = DPOP_ALGS.find((a) => supported.includes(a));
  if (chosen) return chosen;
  throw new McpOAuthError(
    'dpop_error',
    `${issuer ? `The authorization server ${issuer}` : 'The authorization server'} accepts DPoP proofs signed with ${supported.join(', ')} (dpop_signing_alg_values_supported), none of which mcp-oauth signs with (${DPOP_ALGS.join(', ')}).`,
    { hint: 'turn DPoP off for this server (dpop = "off"), or ask the operator to accept ES256', details: { serverAlgorithms: [...supported] } },
  );
}

/** RFC 9449 §4.2 `htu`: the target URI without query and fragment (and without userinfo, which
 * would put a password into a header sent on every request). */
export function dpopHtu(url: string | URL): string {
  const u = new URL(String(url));
  u.search = '';
  u.hash = '';
  u.username = '';
  u.password = '';
  return u.href;
}

/** RFC 9449 §4.2 `ath`: base64url of the SHA-256 of the ASCII access token. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

const imported = new WeakMap<object, Promise<CryptoKey | Uint8Array>>();

/**
 * One DPoP proof (RFC 9449 §4.2): header typ `dpop+jwt`, the algorithm, and the public `jwk`;
 * claims `jti` (random, §4.2 "at least 96 bits"), `htm`, `htu`, `iat`, `nonce` when the server gave
 * one (§8, §9), and `ath` when an access token is presented (§7). `body` adds `content_digest`
 * (MCP DPoP extension draft: RFC 9530 `sha-256=:…:` of the request body) for MCP requests.
 */
export async function createDpopProof(opts: {
  privateJwk: StoredJwk;
  htm: string;
  htu: string | URL;
  nonce?: string;
  accessToken?: string;
  body?: string | Uint8Array;
  now: number;
}): Promise<string> {
  const jwk = opts.privateJwk;
  if (typeof jwk.d !== 'string') {
    throw new McpOAuthError('dpop_error', 'The DPoP key is not a private key.', { hint: 'sign in again to create a new key (mcp-oauth login NAME)' });
  }
  const alg = algOf(jwk);
  let key = imported.get(jwk);
  if (!key) {
    key = importJWK(jwk as JWK, alg);
    imported.set(jwk, key);
  }
  const claims: Record<string, unknown> = {
    jti: randomBytes(16).toString('base64url'),
    htm: opts.htm.toUpperCase(),
    htu: dpopHtu(opts.htu),
    iat: Math.floor(opts.now / 1000),
  };
  if (opts.nonce !== undefined) claims.nonce = opts.nonce;
  if (opts.accessToken !== undefined) claims.ath = accessTokenHash(opts.accessToken);
  if (opts.body !== undefined) claims.content_digest = `sha-256=:${createHash('sha256').update(opts.body).digest('base64')}:`;
  try {
    return await new SignJWT(claims).setProtectedHeader({ alg, typ: 'dpop+jwt', jwk: publicJwkOf(jwk) }).sign(await key);
  } catch (cause) {
    if (cause instanceof McpOAuthError) throw cause;
    // A damaged stored key (jose's messages name the problem, never key material).
    throw new McpOAuthError('dpop_error', `The stored DPoP key cannot sign proofs: ${(cause as Error).message}.`, {
      cause,
      hint: 'sign in again to create a new key (mcp-oauth login NAME)',
    });
  }
}

/** RFC 9449 §8.1 `nonce = 1*NQCHAR` (%x21 / %x23-5B / %x5D-7E): anything else is ignored. */
const NONCE = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** The `DPoP-Nonce` header (RFC 9449 §8, §9), when present and well-formed. */
export function dpopNonceFrom(res: Response | Headers): string | undefined {
  const headers = res instanceof Headers ? res : res.headers;
  const value = headers.get('dpop-nonce')?.trim();
  return value && NONCE.test(value) ? value : undefined;
}

/** RFC 9449 §9: the resource server's `WWW-Authenticate: DPoP error="use_dpop_nonce"` (it may sit
 * next to a Bearer challenge in the same header, §7.2). */
export function isUseDpopNonceChallenge(header: string | null): boolean {
  if (!header) return false;
  return parseChallenges(header).some((c) => c.scheme === 'dpop' && c.params.error === 'use_dpop_nonce');
}

/**
 * True when a response asks for a (new) nonce: the authorization server's 400 with the JSON error
 * `use_dpop_nonce` (RFC 9449 §8), or the resource server's 401 DPoP challenge (§9). Reads a clone,
 * so the response's own body stays readable.
 */
export async function isUseDpopNonceError(res: Response): Promise<boolean> {
  if (res.status === 401 && isUseDpopNonceChallenge(res.headers.get('www-authenticate'))) return true;
  if (res.status !== 400 && res.status !== 401) return false;
  const body = parseTokenBody(await readText(res.clone()), res.headers.get('content-type'));
  return body?.error === 'use_dpop_nonce';
}

/**
 * Sends one request with a DPoP proof and follows the nonce protocol (RFC 9449 §8, §9): when the
 * server answers `use_dpop_nonce` with a fresh `DPoP-Nonce`, a new proof with that nonce is sent —
 * at most MAX_DPOP_NONCE_RETRIES times. The same nonce again, or a refusal after the last retry, is a nonce loop:
 * `dpop_error` naming the server. Every new nonce seen is reported through `onNonce` (servers may
 * rotate it on any response, §8.2) so the caller can keep it for the next request to that server.
 * `send` builds the whole request each time (a client assertion must not be replayed).
 */
export async function sendWithDpop(opts: {
  privateJwk: StoredJwk;
  htm: string;
  url: string | URL;
  nonce?: string;
  accessToken?: string;
  body?: string | Uint8Array;
  now: number;
  send: (proof: string) => Promise<Response>;
  onNonce?: (nonce: string) => void;
  /** For messages: "the token endpoint https://as.example/token", "the MCP server https://…". */
  server: string;
  maxRetries?: number;
}): Promise<Response> {
  const maxRetries = opts.maxRetries ?? MAX_DPOP_NONCE_RETRIES;
  let nonce = opts.nonce;
  for (let retries = 0; ; retries++) {
    const proof = await createDpopProof({ privateJwk: opts.privateJwk, htm: opts.htm, htu: opts.url, nonce, accessToken: opts.accessToken, body: opts.body, now: opts.now });
    const res = await opts.send(proof);
    const fresh = dpopNonceFrom(res);
    if (fresh !== undefined && fresh !== nonce) opts.onNonce?.(fresh);
    // Without a nonce to use the caller reads the refusal as any other error response.
    if (fresh === undefined || !(await isUseDpopNonceError(res))) return res;
    if (fresh === nonce || retries >= maxRetries) {
      await res.body?.cancel();
      throw new McpOAuthError(
        'dpop_error',
        `${capitalize(opts.server)} kept refusing the DPoP proof with use_dpop_nonce (${retries} ${retries === 1 ? 'retry' : 'retries'} with the nonces it supplied${fresh === nonce ? ', then the same nonce again' : ''}): a nonce loop.`,
        {
          oauthError: 'use_dpop_nonce',
          status: res.status,
          hint: 'the server does not accept its own DPoP nonces; report it to the server operator, or turn DPoP off for this server (dpop = "off") if it allows that',
          details: { server: opts.server, retries },
        },
      );
    }
    await res.body?.cancel();
    nonce = fresh;
  }
}

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

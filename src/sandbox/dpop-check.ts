// DPoP (RFC 9449) at the sandbox MCP server, the resource server: every request with
// `Authorization: DPoP <token>` must carry one valid proof (§4.3 "Checking DPoP Proofs", §7.1) for
// this request (htm, htu), this token (ath) and the token's key (cnf.jkt, §6.1), fresh (iat, jti
// once) and, with nonces on, with the server's current nonce (§9: 401 `use_dpop_nonce` and a
// `DPoP-Nonce` header; nonces rotate). A DPoP-bound token sent as a bearer token — a stolen token
// without its key — is refused (§7.2), and so is any bearer token when DPoP is required. Each
// refusal is counted by reason (`counters.dpop.rs`).
import { createHash, randomBytes } from 'node:crypto';
import { EmbeddedJWK, calculateJwkThumbprint, errors as joseErrors, jwtVerify } from 'jose';
import type { JWK, JWTPayload } from 'jose';
import type { SandboxState } from './types.ts';

export const SANDBOX_DPOP_MODES = ['off', 'optional', 'required'] as const;
export type SandboxDpop = (typeof SANDBOX_DPOP_MODES)[number];

export function isSandboxDpop(value: string): value is SandboxDpop {
  return (SANDBOX_DPOP_MODES as readonly string[]).includes(value);
}

/** oidc-provider's default `dPoPSigningAlgValues`: the same list at both servers unless configured. */
export const DEFAULT_DPOP_ALGS = ['ES256', 'Ed25519', 'EdDSA'];
/** §4.3 item 9 / §11.1: how far `iat` may be from now (oidc-provider's window is 300 s too). */
const IAT_PAST_SECONDS = 300;
const IAT_FUTURE_SECONDS = 60;

/** A rotating server nonce (§9): the current value, and the previous one while it is still accepted. */
export class NonceStore {
  current = randomBytes(16).toString('base64url');
  previous: string | undefined;
  /** keepPrevious: the old nonce stays valid and the new one is announced on the next answer; else it dies now. */
  rotate(keepPrevious = false): void {
    this.previous = keepPrevious ? this.current : undefined;
    this.current = randomBytes(16).toString('base64url');
  }
  accepts(nonce: string): boolean {
    return nonce === this.current || (this.previous !== undefined && nonce === this.previous);
  }
}

export interface DpopRefusal {
  reason: string;
  error: 'invalid_token' | 'invalid_dpop_proof' | 'use_dpop_nonce';
  description: string;
  /** The scheme of the challenge to answer with. */
  scheme: 'Bearer' | 'DPoP';
  /** A nonce to send in `DPoP-Nonce`. */
  nonce?: string;
}

export interface DpopCheckRequest {
  method: string;
  /** The request's absolute URL. */
  url: string;
  /** The DPoP header(s) as received. */
  proof: string | string[] | undefined;
  scheme: 'Bearer' | 'DPoP';
  token: string;
  /** The verified access token's claims. */
  payload: JWTPayload;
}

export interface DpopResourceCheck {
  mode: SandboxDpop | undefined;
  algs: string[];
  nonces: NonceStore | undefined;
  /** A refusal, or the nonce to announce on the answer (undefined: none). */
  check(req: DpopCheckRequest): Promise<{ refusal: DpopRefusal } | { announce?: string }>;
  /** The WWW-Authenticate value for a challenge with these parameters (RFC 6750 §3, RFC 9449 §7.1). */
  challengeHeader(params: Record<string, string>, failed?: 'Bearer' | 'DPoP'): string;
}

const quoted = (params: Record<string, string>) => Object.entries(params).map(([k, v]) => `${k}="${v.replace(/["\\]/g, '\\$&')}"`).join(', ');

/** The request URL without query and fragment (§4.3 item 9: "ignoring any query and fragment parts"). */
function htuOf(url: string): string | undefined {
  const parsed = URL.parse(url);
  if (!parsed) return undefined;
  parsed.search = '';
  parsed.hash = '';
  return parsed.href;
}

export function createDpopResourceCheck(opts: { mode?: SandboxDpop; nonce?: boolean; algs?: string[]; state: SandboxState }): DpopResourceCheck {
  const { mode, state } = opts;
  const algs = opts.algs ?? DEFAULT_DPOP_ALGS;
  const nonces = opts.nonce ? new NonceStore() : undefined;
  // §11.1: proofs are single use; jti remembered (per key) for as long as its iat is acceptable.
  const seen = new Map<string, number>();
  const counters = () => state.counters.dpop.rs;
  const refused = (refusal: DpopRefusal) => {
    const c = counters();
    if (refusal.error === 'use_dpop_nonce') c.nonceChallenges += 1;
    else c.refusals[refusal.reason] = (c.refusals[refusal.reason] ?? 0) + 1;
    return { refusal };
  };
  const proofError = (reason: string, description: string) => refused({ reason, error: 'invalid_dpop_proof', description, scheme: 'DPoP' });

  async function check(req: DpopCheckRequest): Promise<{ refusal: DpopRefusal } | { announce?: string }> {
    const jkt = (req.payload.cnf as { jkt?: unknown } | undefined)?.jkt;
    if (req.scheme === 'Bearer') {
      if (typeof jkt === 'string') {
        return refused({ reason: 'bound_token_as_bearer', error: 'invalid_token', scheme: 'DPoP',
          description: 'This access token is DPoP-bound (cnf.jkt): send it as "Authorization: DPoP" with a proof signed by its key (RFC 9449 §7.1)' });
      }
      if (mode === 'required') {
        return refused({ reason: 'bearer_refused', error: 'invalid_token', scheme: 'DPoP', description: 'This server accepts only DPoP-bound access tokens (RFC 9449)' });
      }
      return {};
    }
    if (mode === 'off') {
      return refused({ reason: 'dpop_off', error: 'invalid_token', scheme: 'Bearer', description: 'This server does not support DPoP; use a bearer token' });
    }
    if (req.proof === undefined) return proofError('missing_proof', 'A DPoP proof (the DPoP header) is required with the DPoP scheme');
    counters().proofs += 1;
    if (Array.isArray(req.proof) || req.proof.includes(',')) return proofError('several_proofs', 'Exactly one DPoP header is allowed (RFC 9449 §4.3)');
    let payload: JWTPayload;
    let jwk: JWK;
    try {
      const verified = await jwtVerify(req.proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: algs });
      payload = verified.payload;
      jwk = verified.protectedHeader.jwk as JWK;
    } catch (err) {
      if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'typ') return proofError('typ', 'The DPoP proof must have typ "dpop+jwt"');
      if (err instanceof joseErrors.JOSEAlgNotAllowed) return proofError('alg', `The DPoP proof's algorithm is not accepted here (accepted: ${algs.join(', ')})`);
      return proofError('invalid_signature', `The DPoP proof is not a JWT signed by the key in its header (${(err as Error).message})`);
    }
    if ('d' in jwk) return proofError('private_key', 'The DPoP proof header contains a private key');
    if (typeof payload.jti !== 'string' || !payload.jti) return proofError('jti', 'The DPoP proof has no jti');
    if (payload.htm !== req.method) return proofError('htm', `The DPoP proof is for ${String(payload.htm)}, not ${req.method} (htm)`);
    if (typeof payload.htu !== 'string' || htuOf(payload.htu) !== htuOf(req.url)) {
      return proofError('htu', `The DPoP proof is for ${String(payload.htu)}, not ${htuOf(req.url)} (htu)`);
    }
    const ath = createHash('sha256').update(req.token).digest('base64url');
    if (payload.ath !== ath) return proofError('ath', 'The DPoP proof is not for this access token (ath)');
    const thumbprint = await calculateJwkThumbprint(jwk);
    if (typeof jkt !== 'string') {
      return refused({ reason: 'token_not_bound', error: 'invalid_token', scheme: 'DPoP', description: 'This access token is not DPoP-bound: send it with the Bearer scheme' });
    }
    if (thumbprint !== jkt) {
      return refused({ reason: 'jkt_mismatch', error: 'invalid_token', scheme: 'DPoP', description: 'The DPoP proof is signed by another key than the one this access token is bound to (cnf.jkt)' });
    }
    if (nonces) {
      if (typeof payload.nonce !== 'string') {
        return refused({ reason: 'nonce_missing', error: 'use_dpop_nonce', scheme: 'DPoP', nonce: nonces.current, description: 'Resource server requires nonce in DPoP proof' });
      }
      if (!nonces.accepts(payload.nonce)) {
        return refused({ reason: 'nonce_stale', error: 'use_dpop_nonce', scheme: 'DPoP', nonce: nonces.current, description: 'The DPoP nonce is not (or no longer) valid: use the one in DPoP-Nonce' });
      }
    }
    const now = Math.floor(Date.now() / 1000);
    if (typeof payload.iat !== 'number' || payload.iat < now - IAT_PAST_SECONDS || payload.iat > now + IAT_FUTURE_SECONDS) {
      return proofError('iat', 'The DPoP proof is not recent (iat)');
    }
    for (const [key, until] of seen) if (until < now) seen.delete(key);
    const key = `${thumbprint}\u0000${payload.jti}`;
    if (seen.has(key)) return proofError('replay', 'This DPoP proof was already used (jti)');
    seen.set(key, payload.iat + IAT_PAST_SECONDS);
    counters().accepted += 1;
    return { announce: nonces && payload.nonce !== nonces.current ? nonces.current : undefined };
  }

  function challengeHeader(params: Record<string, string>, failed?: 'Bearer' | 'DPoP'): string {
    const dpop = { algs: algs.join(' ') };
    // Default mode: the sandbox as it always answered, unless the request itself used DPoP.
    if (failed === 'DPoP' || mode === 'required') return `DPoP ${quoted({ ...params, ...dpop })}`;
    if (mode === 'optional') return `Bearer ${quoted(params)}, DPoP ${quoted(dpop)}`;
    return `Bearer ${quoted(params)}`;
  }

  return { mode, algs, nonces, check, challengeHeader };
}

// The three oidc-provider (v9) internals the sandbox needs and its public API does not offer:
// - validateDpop / checkDpopReplay, so that the custom grants (grants.ts: jwt-bearer, token
//   exchange) check DPoP proofs exactly as the built-in grants do: same algorithms, same nonces,
//   same replay cache (RFC 9449 §4.3, §5);
// - swapping the DPoP nonce secret, so that `sandbox.rotateDpopNonces()` invalidates every nonce
//   the authorization server handed out (RFC 9449 §8) now, not a few minutes later.
// oidc-provider has no "exports" map, so these paths resolve; a major version that moves them
// fails here, at start-up, with this file's name in the stack.
import { randomBytes } from 'node:crypto';
import validateDpop, { checkDpopReplay } from 'oidc-provider/lib/helpers/validate_dpop.js';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';
import ServerChallenge from 'oidc-provider/lib/helpers/challenge.js';

export interface DpopProofResult {
  /** RFC 7638 thumbprint of the proof's key (the `jkt` to bind tokens to). */
  thumbprint: string;
  jti: string;
  iat: number;
}

/** The request's DPoP proof, checked like oidc-provider's own grants do; undefined without one. */
export async function dpopProofOf(provider: any, ctx: any): Promise<DpopProofResult | undefined> {
  return validateDpop(provider, ctx);
}

/** RFC 9449 §11.1: a proof's jti is used once per client. */
export async function assertDpopProofUnused(provider: any, ctx: any, proof: DpopProofResult, ErrorClass: unknown): Promise<void> {
  await checkDpopReplay(provider, ctx, proof, ctx.oidc.client.clientId, ErrorClass);
}

/** A new nonce secret: every nonce issued so far stops being accepted. No-op without nonces. */
export function rotateProviderDpopNonces(provider: any): boolean {
  const internals = instance(provider);
  if (!internals?.DPoPNonces) return false;
  internals.DPoPNonces = new ServerChallenge(randomBytes(32), 'DPoP');
  return true;
}

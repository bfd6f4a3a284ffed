// DPoP (RFC 9449) at the sandbox authorization server: oidc-provider's `features.dPoP` does the
// work (proofs at the token endpoint, `cnf.jkt` in JWT access tokens, refresh tokens of public
// clients bound to the key, nonces with `DPoP-Nonce` / `use_dpop_nonce` per §8). This file turns
// the sandbox options into its configuration and counts what it saw (`counters.dpop.as`).
import { randomBytes } from 'node:crypto';
import type { SandboxDpop } from './dpop-check.ts';
import type { SandboxState } from './types.ts';

export interface DpopAsOptions {
  mode?: SandboxDpop;
  nonce?: boolean;
  algs?: string[];
}

/** Changes the oidc-provider configuration; with no DPoP option at all, nothing (its defaults: on, no nonce). */
export function configureDpop(config: any, opts: DpopAsOptions): void {
  if (opts.mode === 'off') {
    config.features.dPoP = { enabled: false };
    return;
  }
  if (opts.nonce) {
    // §8: every proof must carry a nonce the server issued (oidc-provider's are HKDF-derived from this secret).
    config.features.dPoP = { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true };
  }
  if (opts.algs) config.enabledJWA = { ...config.enabledJWA, dPoPSigningAlgValues: opts.algs };
  // §5.2: clients (registered or dynamic) whose access tokens must be DPoP-bound.
  if (opts.mode === 'required') config.clientDefaults = { ...config.clientDefaults, dpop_bound_access_tokens: true };
}

/** Counter reason for an oidc-provider DPoP error description or detail. */
function reasonOf(text: unknown): string | undefined {
  const t = String(text ?? '');
  if (/replay/i.test(t)) return 'replay';
  if (/jkt|thumbprint/i.test(t)) return 'jkt_mismatch';
  if (/DPoP proof JWT not provided|missing DPoP proof/i.test(t)) return 'missing_proof';
  for (const claim of ['htm', 'htu', 'ath', 'iat', 'jti']) if (t.includes(`proof ${claim}`) || t.includes(`a ${claim}`)) return claim;
  if (/nonce/i.test(t)) return 'nonce';
  return undefined;
}

/** Counts proofs, nonce challenges, bound tokens and refusals (install with `extend`). */
export function countDpopAtAs(provider: any, state: SandboxState): void {
  const counters = () => state.counters.dpop.as;
  const refuse = (reason: string) => {
    const c = counters();
    c.refusals[reason] = (c.refusals[reason] ?? 0) + 1;
  };
  provider.use(async (ctx: any, next: () => Promise<void>) => {
    const withProof = Boolean(ctx.get('DPoP'));
    if (withProof) counters().proofs += 1;
    await next();
    const body = ctx.body && typeof ctx.body === 'object' ? ctx.body : undefined;
    if (body?.error === 'use_dpop_nonce') counters().nonceChallenges += 1;
    else if (body?.error === 'invalid_dpop_proof') refuse(reasonOf(body.error_description) ?? 'invalid_proof');
    else if (ctx.sandboxRefusal === 'dpop_required') refuse('missing_proof');
    else if (ctx.status === 200 && body?.token_type === 'DPoP') counters().boundTokens += 1;
  });
  // invalid_grant hides its detail from the body (oidc-provider's error_detail): read it here.
  provider.on('grant.error', (_ctx: unknown, err: { error?: string; error_detail?: string }) => {
    if (err?.error !== 'invalid_grant') return;
    const reason = reasonOf(err.error_detail);
    if (reason && /DPoP|jkt/i.test(String(err.error_detail))) refuse(reason);
  });
}

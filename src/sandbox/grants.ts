// The JWT bearer grant at the sandbox authorization server (RFC 7521 §4.1, RFC 7523 §2.1), as an
// oidc-provider custom grant type (`registerGrantType`). It accepts two kinds of assertion:
// - a workload identity assertion signed by the sandbox's workload issuer (workload.ts): RFC 7523
//   §3 — signature, `iss` trusted, `sub`, `aud` = this issuer or its token endpoint, `exp`, `jti`
//   not seen before;
// - an Identity Assertion JWT Authorization Grant (ID-JAG) from the enterprise IdP
//   (enterprise-idp.ts, draft-ietf-oauth-identity-assertion-authz-grant §4.3 "Processing Rules"):
//   typ `oauth-id-jag+jwt`, signed by the IdP (its JWKS), `aud` = this issuer, `client_id` = the
//   authenticated client, `jti` once.
// Tokens are JWT access tokens for the MCP server (RFC 8707 audience, RFC 9068), DPoP-bound when
// the request carries a proof (RFC 9449 §5), without a refresh token: the client presents a new
// assertion when the token expires. Every refusal is `invalid_grant` (RFC 7523 §3.1) with a
// description that says what to fix, and is counted by reason in `counters.grants`.
import { createRemoteJWKSet, decodeJwt, errors as joseErrors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { errors as oidcErrors } from './oidc-provider-quiet.ts';
import { assertDpopProofUnused, dpopProofOf } from './oidc-internals.ts';
import { JWT_BEARER_GRANT } from './grant-clients.ts';
import type { WorkloadIssuerInternal } from './workload.ts';
import type { SandboxState } from './types.ts';

export const ID_JAG_TYP = 'oauth-id-jag+jwt';

/** Thrown by the grant handlers: an OAuth error whose reason is counted. */
export function refuse(ctx: any, reason: string, description: string, error = 'invalid_grant'): never {
  ctx.sandboxRefusal = reason;
  throw new oidcErrors.CustomOIDCProviderError(error, description);
}

const iso = (seconds: unknown) => (typeof seconds === 'number' ? new Date(seconds * 1000).toISOString() : 'an unknown time');

/** What went wrong verifying a JWT, as a counter reason and a sentence. */
export function joseRefusal(err: unknown, what: string, expected: { issuer?: string; audience?: string[] }): { reason: string; description: string } {
  if (err instanceof joseErrors.JWTExpired) {
    return { reason: 'expired', description: `${what} expired at ${iso(err.payload.exp)} (exp): get a fresh one` };
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    const got = JSON.stringify(err.payload[err.claim] ?? null);
    switch (err.claim) {
      case 'aud':
        return { reason: 'wrong_audience', description: `${what} is for ${got} (aud); this authorization server accepts only ${expected.audience?.join(' or ')}` };
      case 'iss':
        return { reason: 'untrusted_issuer', description: `${what} was issued by ${got} (iss); expected ${expected.issuer}` };
      case 'nbf':
        return { reason: 'not_yet_valid', description: `${what} is not valid before ${iso(err.payload.nbf)} (nbf)` };
      case 'typ':
        return { reason: 'wrong_type', description: `${what} has the wrong JWT type (typ); expected ${ID_JAG_TYP}` };
      default:
        return { reason: `${err.reason === 'missing' ? 'missing' : 'invalid'}_${err.claim}`, description: `${what}: the "${err.claim}" claim is ${err.reason === 'missing' ? 'missing' : 'invalid'}` };
    }
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed || err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JOSEAlgNotAllowed) {
    return { reason: 'bad_signature', description: `${what} is not signed by a key of ${expected.issuer}` };
  }
  return { reason: 'malformed', description: `${what} is not a valid signed JWT (${(err as Error)?.message ?? 'unreadable'})` };
}

/** Counts each token request's outcome per grant type: `issued`, or `refused[reason]`. */
export function grantOutcomes(state: SandboxState, tokenPath = '/token') {
  return async (ctx: any, next: () => Promise<void>) => {
    if (ctx.method !== 'POST' || ctx.path !== tokenPath) return next();
    try {
      await next();
    } finally {
      const grantType = ctx.oidc?.params?.grant_type;
      if (typeof grantType === 'string') {
        const entry = (state.counters.grants[grantType] ??= { issued: 0, refused: {} });
        if (ctx.status === 200) entry.issued += 1;
        else {
          const reason: string = ctx.sandboxRefusal ?? (typeof ctx.body?.error === 'string' ? ctx.body.error : `http_${ctx.status}`);
          entry.refused[reason] = (entry.refused[reason] ?? 0) + 1;
        }
      }
    }
  };
}

export interface JwtBearerInit {
  /** This authorization server's issuer: the `aud` every assertion must carry. */
  issuer: string;
  /** The MCP server's resource (RFC 8707), the only one tokens are issued for. */
  resource: string;
  resourceScopes: string[];
  /** Workload identity assertions (the jwt_bearer mode). */
  workload?: WorkloadIssuerInternal;
  /** ID-JAGs of this IdP (the enterprise mode). */
  idp?: { issuer: string; jwksUri: string };
}

interface Verified {
  sub: string;
  /** Scopes the assertion grants (ID-JAG `scope`), or undefined: whatever the request asks. */
  scopes?: string[];
  /** Resources the assertion names (ID-JAG `resource`). */
  resources?: string[];
  replayKey?: string;
  exp: number;
}

const listOf = (value: unknown): string[] | undefined =>
  value === undefined ? undefined : (Array.isArray(value) ? value : [value]).map(String).flatMap((v) => v.split(' ')).filter(Boolean);

export function registerJwtBearerGrant(provider: any, init: JwtBearerInit): void {
  const idpKeys: JWTVerifyGetKey | undefined = init.idp ? createRemoteJWKSet(new URL(init.idp.jwksUri)) : undefined;
  // RFC 7523 §3 item 7 / RFC 7519 §4.1.7: one use per (iss, jti), remembered until it expires.
  const seen = new Map<string, number>();

  async function verifyWorkload(ctx: any, assertion: string, workload: WorkloadIssuerInternal): Promise<Verified> {
    const audience = [init.issuer, ctx.oidc.urlFor('token')];
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(assertion, workload.keys, { issuer: workload.issuer, audience, requiredClaims: ['sub', 'exp'], clockTolerance: 5 }));
    } catch (err) {
      const { reason, description } = joseRefusal(err, 'the workload assertion', { issuer: workload.issuer, audience });
      return refuse(ctx, reason, description);
    }
    if (!payload.jti && !workload.allowReplay) refuse(ctx, 'missing_jti', 'the workload assertion has no jti, so a replay could not be detected (RFC 7523 §3 item 7)');
    return { sub: String(payload.sub), replayKey: workload.allowReplay ? undefined : `${payload.iss}\u0000${payload.jti}`, exp: payload.exp! };
  }

  async function verifyIdJag(ctx: any, assertion: string, idp: { issuer: string }): Promise<Verified> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(assertion, idpKeys!, {
        issuer: idp.issuer, audience: init.issuer, typ: ID_JAG_TYP, requiredClaims: ['sub', 'client_id', 'jti', 'exp', 'iat'], clockTolerance: 5,
      }));
    } catch (err) {
      const { reason, description } = joseRefusal(err, 'the ID-JAG', { issuer: idp.issuer, audience: [init.issuer] });
      return refuse(ctx, reason, description);
    }
    // §4.3: "The client_id claim MUST identify the same client as the client authentication".
    if (payload.client_id !== ctx.oidc.client.clientId) {
      refuse(ctx, 'client_mismatch', `the ID-JAG was issued for client ${JSON.stringify(payload.client_id)}, but the request authenticated as ${ctx.oidc.client.clientId}`);
    }
    return { sub: String(payload.sub), scopes: listOf(payload.scope) ?? [], resources: listOf(payload.resource), replayKey: `${payload.iss}\u0000${payload.jti}`, exp: payload.exp! };
  }

  provider.registerGrantType(JWT_BEARER_GRANT, async (ctx: any) => {
    const params = ctx.oidc.params;
    const assertion: unknown = params.assertion;
    if (typeof assertion !== 'string' || !assertion) refuse(ctx, 'missing_assertion', 'the assertion parameter is required (RFC 7521 §4.1)', 'invalid_request');
    // Like the built-in grants: the DPoP proof first (RFC 9449 §5; errors are invalid_dpop_proof / use_dpop_nonce).
    const dPoP = await dpopProofOf(provider, ctx);
    let iss: unknown;
    try {
      iss = decodeJwt(assertion).iss;
    } catch {
      refuse(ctx, 'malformed', 'the assertion is not a JWT (RFC 7523 §2.1)');
    }
    const trusted = [init.workload?.issuer, init.idp?.issuer].filter(Boolean);
    const verified = init.idp && iss === init.idp.issuer
      ? await verifyIdJag(ctx, assertion, init.idp)
      : init.workload && iss === init.workload.issuer
        ? await verifyWorkload(ctx, assertion, init.workload)
        : refuse(ctx, 'untrusted_issuer', `the assertion's issuer ${JSON.stringify(iss ?? null)} is not trusted by this authorization server (trusted: ${trusted.join(', ') || 'none'})`);

    const now = Math.floor(Date.now() / 1000);
    for (const [key, exp] of seen) if (exp < now) seen.delete(key);
    if (verified.replayKey) {
      if (seen.has(verified.replayKey)) refuse(ctx, 'replayed', 'this assertion was already used (its jti was seen before): present a fresh one (RFC 7523 §3 item 7)');
    }

    // RFC 8707 §2: the one resource the token is for — the request's, else the ID-JAG's.
    const requested = listOf(params.resource) ?? [];
    if (requested.length > 1) refuse(ctx, 'several_resources', 'only one resource per token request', 'invalid_target');
    const target = requested[0] ?? verified.resources?.[0];
    if (!target) refuse(ctx, 'missing_resource', `send resource=${init.resource} (RFC 8707): tokens here are only for the MCP server`, 'invalid_target');
    if (target !== init.resource) refuse(ctx, 'unknown_resource', `unknown resource ${target}; this authorization server issues tokens for ${init.resource}`, 'invalid_target');
    if (verified.resources && !verified.resources.includes(target)) {
      refuse(ctx, 'resource_mismatch', `the ID-JAG is for ${verified.resources.join(', ')}, not ${target}`, 'invalid_target');
    }
    // RFC 6749 §3.3 (ID-JAG §4.3): what the assertion grants, narrowed to what the request asks.
    const asked = listOf(params.scope);
    const allowed = verified.scopes ?? init.resourceScopes;
    const scopes = (asked ?? allowed).filter((s) => allowed.includes(s) && init.resourceScopes.includes(s));

    const token = new provider.AccessToken({ accountId: verified.sub, client: ctx.oidc.client, gty: 'jwt_bearer', scope: scopes.join(' ') || undefined });
    token.resourceServer = new provider.ResourceServer(target, {
      scope: init.resourceScopes.join(' '), audience: target, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } },
    });
    if (dPoP) {
      await assertDpopProofUnused(provider, ctx, dPoP, oidcErrors.InvalidGrant);
      token.setThumbprint('jkt', dPoP.thumbprint);
    } else if (ctx.oidc.client.dpopBoundAccessTokens) {
      refuse(ctx, 'dpop_required', 'this client must send a DPoP proof: its tokens are DPoP-bound (dpop_bound_access_tokens, RFC 9449 §5.2)');
    }
    if (verified.replayKey) seen.set(verified.replayKey, verified.exp);
    const value: string = await token.save();
    ctx.body = { access_token: value, token_type: token.tokenType, expires_in: token.expiration, ...(token.scope ? { scope: token.scope } : {}) };
    if (iss === init.workload?.issuer) init.workload?.onAccepted?.();
  }, ['assertion', 'scope', 'resource'], ['resource']);
}

// Per-issuer counters of the sandbox's authorization servers: what each one received and issued,
// so a test can check that no token of one issuer ever reached the other (MCP 2026-07-28
// "Authorization Server Binding"). Installed as an oidc-provider middleware (after the main one
// in authorization-server.ts, so requests answered by the token-endpoint fault injection are not
// seen here). Secrets are kept only as fingerprints.
import { fingerprint } from '../secrets.ts';
import type { IssuerCounters, SandboxState } from './types.ts';

export function emptyIssuerCounters(): IssuerCounters {
  return { authorizeRequests: [], tokenRequests: [], issued: [], registrations: [] };
}

function countersFor(state: SandboxState, issuer: string): IssuerCounters {
  const all = state.counters.issuers;
  return (all[issuer] ??= emptyIssuerCounters());
}

/** Returns the function to pass as `extend` to createAuthorizationServer. */
export function issuerCounters(issuer: string, state: SandboxState, routes: Record<string, string> = {}): (provider: any) => void {
  const authorizePath = routes.authorization ?? '/auth';
  const tokenPath = routes.token ?? '/token';
  const registrationPath = routes.registration ?? '/reg';
  const revocationPath = routes.revocation ?? '/token/revocation';
  return (provider) => {
    provider.use(async (ctx: any, next: () => Promise<void>) => {
      if (ctx.path === authorizePath) {
        countersFor(state, issuer).authorizeRequests.push(Object.fromEntries(new URLSearchParams(ctx.querystring)));
        return next();
      }
      if (ctx.method !== 'POST' || ![tokenPath, registrationPath, revocationPath].includes(ctx.path)) return next();
      try {
        await next();
      } finally {
        const mine = countersFor(state, issuer);
        const body = ctx.body && typeof ctx.body === 'object' ? ctx.body : {};
        if (ctx.path === registrationPath) {
          if (ctx.status === 201 && typeof body.client_id === 'string') mine.registrations.push(body.client_id);
        } else {
          const params = ctx.oidc?.params ?? {};
          // RFC 7009 revocations are logged as grant type "revocation", presenting the revoked token.
          const grantType = ctx.path === revocationPath ? 'revocation' : String(params.grant_type ?? 'unknown');
          const presented = grantType === 'revocation' ? params.token : grantType === 'refresh_token' ? params.refresh_token : grantType === 'authorization_code' ? params.code
            // The grant modes (grants.ts, enterprise-idp.ts): the assertion / the ID token exchanged.
            : grantType.endsWith(':jwt-bearer') ? params.assertion : grantType.endsWith(':token-exchange') ? params.subject_token : undefined;
          mine.tokenRequests.push({
            grantType,
            clientId: ctx.oidc?.client?.clientId ?? (typeof params.client_id === 'string' ? params.client_id : undefined),
            presented: typeof presented === 'string' ? fingerprint(presented) : undefined,
            status: ctx.status,
          });
          for (const t of [body.access_token, body.refresh_token]) if (typeof t === 'string') mine.issued.push(fingerprint(t));
        }
      }
    });
  };
}

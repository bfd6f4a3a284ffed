// The sandbox's modes for sign-in without a person (issue 8), wired into the main authorization
// server: `startSandbox({ grant, dpop, dpopNonce })`, `mcp-oauth sandbox --grant NAME`.
// - client_credentials: oidc-provider's `features.clientCredentials` (RFC 6749 §4.4) and three
//   confidential clients, one per client authentication method (grant-clients.ts);
// - jwt_bearer: the RFC 7523 §2.1 grant (grants.ts) trusting the sandbox's workload issuer (workload.ts);
// - enterprise: an enterprise IdP (enterprise-idp.ts) whose ID-JAGs the same grant accepts (SEP-990);
// - DPoP at this authorization server (dpop-as.ts) — the MCP server's side is dpop-check.ts.
import { createGrantClients } from './grant-clients.ts';
import type { GrantClients, SandboxGrant } from './grant-clients.ts';
import { createWorkloadIssuer } from './workload.ts';
import type { WorkloadIssuerInternal } from './workload.ts';
import { startEnterpriseIdp } from './enterprise-idp.ts';
import type { EnterpriseIdp } from './enterprise-idp.ts';
import { grantOutcomes, registerJwtBearerGrant } from './grants.ts';
import { configureDpop, countDpopAtAs } from './dpop-as.ts';
import { rotateProviderDpopNonces } from './oidc-internals.ts';
import type { SandboxOptions, SandboxState } from './types.ts';

export interface GrantModes {
  grants: SandboxGrant[];
  clients: GrantClients;
  workload?: WorkloadIssuerInternal;
  idp?: EnterpriseIdp;
  /** The IdP was started here (not passed in as `enterpriseIdp`): closed and reset with the sandbox. */
  ownsIdp: boolean;
  /** For createAuthorizationServer's `configure`. */
  configure(config: any): void;
  /** For createAuthorizationServer's `extend`. */
  extend(provider: any): void;
  /** Every DPoP nonce the authorization server issued stops being accepted. */
  rotateAsNonces(): void;
  close(): Promise<void>;
}

export async function setupGrantModes(
  opts: SandboxOptions,
  init: { issuer: string; resource: string; resourceScopes: string[]; state: SandboxState; autoApprove: boolean; refreshTokenTtlSeconds: number },
): Promise<GrantModes> {
  const grants = [...new Set([opts.grant ?? []].flat())];
  const wanted = new Set(grants);
  const { clients, metadata } = await createGrantClients(wanted, { clientSecret: opts.clientSecret, signingAlgs: opts.tokenEndpointAuthSigningAlgs });
  const workload = wanted.has('jwt_bearer') ? await createWorkloadIssuer(init.issuer) : undefined;
  const ownsIdp = wanted.has('enterprise') && !opts.enterpriseIdp;
  const idp = wanted.has('enterprise')
    ? opts.enterpriseIdp ?? await startEnterpriseIdp({
        autoApprove: init.autoApprove, refreshTokenTtlSeconds: init.refreshTokenTtlSeconds, clientSecret: opts.clientSecret,
        idTokenTtlSeconds: opts.idTokenTtlSeconds, idJagTtlSeconds: opts.idJagTtlSeconds,
      })
    : undefined;
  if (idp && clients.enterprise) {
    // The trust the enterprise administrator set up: ID-JAGs for this authorization server name
    // the client by its id here (draft §5 "Cross-Domain Client ID Handling").
    idp.trust(init.issuer, { clientId: clients.enterprise.clientId, resource: init.resource, scopes: init.resourceScopes });
  }
  let provider: any;
  return {
    grants,
    clients,
    workload,
    idp,
    ownsIdp,
    configure(config) {
      config.clients.push(...metadata);
      if (wanted.has('client_credentials')) {
        config.features.clientCredentials = { enabled: true };
        config.ttl.ClientCredentials = config.ttl.AccessToken;
      }
      if (opts.tokenEndpointAuthSigningAlgs) config.enabledJWA = { ...config.enabledJWA, clientAuthSigningAlgValues: opts.tokenEndpointAuthSigningAlgs };
      configureDpop(config, { mode: opts.dpop, nonce: opts.dpopNonce, algs: opts.dpopSigningAlgs });
    },
    extend(p) {
      provider = p;
      p.use(grantOutcomes(init.state));
      countDpopAtAs(p, init.state);
      if (workload || idp) {
        registerJwtBearerGrant(p, {
          issuer: init.issuer, resource: init.resource, resourceScopes: init.resourceScopes, workload,
          idp: idp ? { issuer: idp.issuer, jwksUri: `${idp.issuer}/jwks` } : undefined,
        });
      }
    },
    rotateAsNonces() {
      if (provider) rotateProviderDpopNonces(provider);
    },
    async close() {
      if (ownsIdp) await idp?.close();
    },
  };
}

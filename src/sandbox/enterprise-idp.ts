// The enterprise identity provider of the `enterprise` grant mode (SEP-990, MCP "Enterprise-Managed
// Authorization"; draft-ietf-oauth-identity-assertion-authz-grant): a second oidc-provider on its
// own port and issuer. The user signs in to it once (OIDC authorization code + PKCE, refresh
// tokens; autoApprove like the main authorization server), and the client exchanges the ID token
// it got (RFC 8693 token exchange, a custom grant type here) for an Identity Assertion JWT
// Authorization Grant (ID-JAG) whose audience is the MCP authorization server. Which MCP
// authorization servers it trusts, and which client id each knows the client by, are registered
// with `trust()` (several sandboxes can share one IdP: one sign-in for several MCP servers).
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { SignJWT, createLocalJWKSet, importJWK, jwtVerify } from 'jose';
import type { JWK, JWTPayload } from 'jose';
import { createAuthorizationServer } from './authorization-server.ts';
import { recordingMetadataRequests } from './discovery-modes.ts';
import { issuerCounters } from './issuer-counters.ts';
import { TOKEN_EXCHANGE_GRANT } from './grant-clients.ts';
import type { SecretClient } from './grant-clients.ts';
import { ID_JAG_TYP, grantOutcomes, joseRefusal, refuse } from './grants.ts';
import { emptyCounters } from './types.ts';
import type { SandboxCounters, SandboxState } from './types.ts';

export const ID_JAG_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id-jag';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';

export interface EnterpriseIdp {
  issuer: string;
  /** mcp-oauth's client at the IdP, confidential (client_secret_basic): authorization code + PKCE,
   * refresh tokens, token exchange. Loopback redirect URIs on any port (RFC 8252 §7.3). */
  client: SecretClient;
  /** The same, as a public client (token_endpoint_auth_method "none"). */
  publicClient: { clientId: string };
  /** Policy: refuse every token exchange (invalid_grant), as an administrator who revoked access. */
  denyExchange: boolean;
  /** What the IdP received and issued: tokenRequests per grant type, grants[type] outcomes by reason,
   * issuers[issuer] (token fingerprints). */
  counters: SandboxCounters;
  /** ID-JAGs issued: their claims (decoded; the JWTs themselves are never kept). */
  issuedIdJags: JWTPayload[];
  resetCounters(): void;
  /** Trust an MCP authorization server: ID-JAGs for `audience` name `clientId` (the client's id there). */
  trust(audience: string, relation: { clientId: string; resource: string; scopes: string[] }): void;
  close(): Promise<void>;
}

export interface EnterpriseIdpOptions {
  autoApprove: boolean;
  refreshTokenTtlSeconds: number;
  /** ID token lifetime (default 3600). */
  idTokenTtlSeconds?: number;
  /** ID-JAG lifetime (default 300, the draft's example). */
  idJagTtlSeconds?: number;
  clientSecret?: string;
}

const IDP_CLIENT_IDS = { confidential: 'sandbox-idp-client', public: 'sandbox-idp-public-client' };

function idpClientMetadata(clientId: string, secret: string | undefined): Record<string, unknown> {
  return {
    client_id: clientId,
    ...(secret ? { client_secret: secret } : {}),
    client_name: `mcp-oauth at the sandbox enterprise IdP (${secret ? 'confidential' : 'public'})`,
    application_type: 'native',
    redirect_uris: ['http://127.0.0.1/callback', 'http://localhost/callback'],
    grant_types: ['authorization_code', 'refresh_token', TOKEN_EXCHANGE_GRANT],
    response_types: ['code'],
    token_endpoint_auth_method: secret ? 'client_secret_basic' : 'none',
  };
}

const listOf = (value: unknown): string[] | undefined =>
  value === undefined ? undefined : (Array.isArray(value) ? value : [value]).map(String).flatMap((v) => v.split(' ')).filter(Boolean);

export async function startEnterpriseIdp(opts: EnterpriseIdpOptions): Promise<EnterpriseIdp> {
  const http: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });
  const issuer = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const state: SandboxState = { counters: emptyCounters(), fault: undefined, revokedGrantIds: new Set() };
  const client = { clientId: IDP_CLIENT_IDS.confidential, clientSecret: opts.clientSecret ?? randomBytes(24).toString('base64url') };
  const trusted = new Map<string, { clientId: string; resource: string; scopes: string[] }>();
  const idJagTtl = opts.idJagTtlSeconds ?? 300;
  let signingJwk: JWK | undefined;
  const issuedIdJags: JWTPayload[] = [];

  const idp: EnterpriseIdp = {
    issuer,
    client,
    publicClient: { clientId: IDP_CLIENT_IDS.public },
    denyExchange: false,
    counters: state.counters,
    issuedIdJags,
    resetCounters() {
      Object.assign(state.counters, emptyCounters());
      issuedIdJags.length = 0;
    },
    trust(audience, relation) {
      trusted.set(audience, relation);
    },
    async close() {
      if (!http.listening) return;
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };

  try {
    const as = await createAuthorizationServer({
      issuer,
      mcpUrl: issuer, // the IdP protects no resource of its own here
      options: {
        accessTokenTtlSeconds: 3600, refreshTokenTtlSeconds: opts.refreshTokenTtlSeconds, rotateRefreshTokens: true, googleMode: false,
        autoApprove: opts.autoApprove, scopesSupported: ['offline_access'], deviceFlow: false,
      },
      state,
      configure(config: any) {
        signingJwk = config.jwks.keys[0];
        config.clients.push(idpClientMetadata(client.clientId, client.clientSecret), idpClientMetadata(IDP_CLIENT_IDS.public, undefined));
        config.features.registration = { enabled: false };
        config.ttl.IdToken = opts.idTokenTtlSeconds ?? 3600;
        // draft §6 "Authorization Server (IdP) Metadata" (from draft-ietf-oauth-identity-chaining).
        config.discovery = { ...config.discovery, identity_chaining_requested_token_types_supported: [ID_JAG_TOKEN_TYPE] };
      },
      extend(provider: any) {
        issuerCounters(issuer, state)(provider);
        provider.use(grantOutcomes(state));
        registerTokenExchange(provider);
      },
    });
    http.on('request', recordingMetadataRequests(issuer, () => state.counters, as.handle));
  } catch (err) {
    await idp.close();
    throw err;
  }
  const { d: _d, ...publicJwk } = signingJwk!;
  const ownKeys = createLocalJWKSet({ keys: [publicJwk] });
  const privateKey = await importJWK(signingJwk!, 'ES256');

  /** RFC 8693 §2.1–2.2 as profiled by draft-ietf-oauth-identity-assertion-authz-grant §4.3. */
  function registerTokenExchange(provider: any): void {
    provider.registerGrantType(TOKEN_EXCHANGE_GRANT, async (ctx: any) => {
      const p = ctx.oidc.params;
      const clientId: string = ctx.oidc.client.clientId;
      if (p.requested_token_type !== ID_JAG_TOKEN_TYPE) {
        refuse(ctx, 'unsupported_requested_token_type', `this IdP exchanges ID tokens for ID-JAGs only: requested_token_type must be ${ID_JAG_TOKEN_TYPE}`, 'invalid_request');
      }
      if (p.subject_token_type !== ID_TOKEN_TYPE) refuse(ctx, 'unsupported_subject_token_type', `subject_token_type must be ${ID_TOKEN_TYPE} (an ID token of this IdP)`, 'invalid_request');
      if (typeof p.subject_token !== 'string' || !p.subject_token) refuse(ctx, 'missing_subject_token', 'subject_token (the ID token) is required', 'invalid_request');
      if (p.actor_token !== undefined) refuse(ctx, 'actor_token', 'actor_token is not used in this profile (ID-JAG §4.3)', 'invalid_request');
      const audience = listOf(p.audience) ?? [];
      if (audience.length !== 1) refuse(ctx, 'missing_audience', 'audience is required: the issuer of the MCP server\'s authorization server (one value)', 'invalid_request');
      let idToken: JWTPayload;
      try {
        // §4.3 "Processing Rules": the subject token is valid, and its audience is the authenticated client.
        ({ payload: idToken } = await jwtVerify(p.subject_token, ownKeys, { issuer, audience: clientId, requiredClaims: ['sub', 'exp'], clockTolerance: 5 }));
      } catch (err) {
        const { reason, description } = joseRefusal(err, 'the ID token (subject_token)', { issuer, audience: [clientId] });
        const fix = reason === 'expired' ? '; refresh at the IdP or sign in again, then exchange the new ID token' : '';
        return refuse(ctx, reason, description + fix);
      }
      const relation = trusted.get(audience[0]);
      if (!relation) refuse(ctx, 'unknown_audience', `this IdP has no trust relationship with ${audience[0]}`, 'invalid_target');
      if (idp.denyExchange) {
        refuse(ctx, 'denied', `the enterprise IdP's policy does not allow ${clientId} to access ${audience[0]} on behalf of this user (ask its administrator)`);
      }
      const resource = listOf(p.resource);
      if (resource && (resource.length !== 1 || resource[0] !== relation.resource)) {
        refuse(ctx, 'unknown_resource', `the IdP knows ${audience[0]} only for the resource ${relation.resource}`, 'invalid_target');
      }
      const asked = listOf(p.scope);
      const scopes = (asked ?? relation.scopes).filter((s) => relation.scopes.includes(s));
      const now = Math.floor(Date.now() / 1000);
      const claims: JWTPayload = {
        client_id: relation.clientId,
        resource: relation.resource,
        ...(scopes.length ? { scope: scopes.join(' ') } : {}),
        ...(typeof idToken.auth_time === 'number' ? { auth_time: idToken.auth_time } : {}),
      };
      const jti = randomUUID();
      const idJag = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', typ: ID_JAG_TYP, kid: signingJwk!.kid })
        .setIssuer(issuer).setSubject(String(idToken.sub)).setAudience(audience[0]).setJti(jti).setIssuedAt(now).setExpirationTime(now + idJagTtl)
        .sign(privateKey);
      issuedIdJags.push({ ...claims, iss: issuer, sub: String(idToken.sub), aud: audience[0], jti, iat: now, exp: now + idJagTtl });
      // §4.3.1 "Response": not an access token, hence token_type N_A (RFC 8693 §2.2.1).
      ctx.body = {
        issued_token_type: ID_JAG_TOKEN_TYPE, access_token: idJag, token_type: 'N_A', expires_in: idJagTtl, ...(scopes.length ? { scope: scopes.join(' ') } : {}),
      };
    }, ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'resource', 'scope', 'actor_token', 'actor_token_type'], ['audience', 'resource']);
  }

  return idp;
}

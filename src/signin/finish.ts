/**
 * The steps every sign-in shares, whatever the grant (authorization code in flow.ts, device code
 * in device-flow.ts): discovery from the challenge, the issuer binding check and the provider's
 * requirements before anything is sent, the scopes and `resource` to ask for, and turning the
 * token response into the stored credential.
 */
import { McpOAuthError } from '../errors.ts';
import { canonicalResourceUri } from '../oauth/canonical.ts';
import { discoverAll, type AuthorizationServerMetadata, type DiscoveryResult } from '../oauth/discovery.ts';
import {
  acceptsMissingPkceMetadata,
  applyProviderScopes,
  appliedQuirks,
  authorizeParamsFor,
  explainMissingRefreshToken,
  providerFor,
  registrationRequirement,
  resourceParameterFor,
  type ProviderProfile,
} from '../oauth/quirks.ts';
import { selectScopes } from '../oauth/scopes.ts';
import { credentialFromTokenSet, type ClientAuth } from '../oauth/tokens.ts';
import type { BearerChallenge } from '../oauth/www-authenticate.ts';
import type { Clock, Credential, CredentialStore, FetchLike, Logger, ServerConfig, TokenSet } from '../types.ts';

/** What a sign-in knows before it asks anybody for anything. */
export interface SignInPlan {
  found: DiscoveryResult;
  issuer: string;
  metadata: AuthorizationServerMetadata;
  /** The canonical server URL: the credential key's `resource`. */
  keyResource: string;
  /** The RFC 8707 resource the server's metadata stands for. */
  resource: string;
  /** What is actually sent as `resource` (undefined where the provider refuses it: Entra ID). */
  sentResource: string | undefined;
  profile: ProviderProfile;
  /** The authorize request's extra parameters (provider defaults, then the config's). */
  authorizeParams: Record<string, string>;
  scopes: string[];
  /** This server's credentials from authorization servers it moved away from. */
  previous: Credential[];
}

/**
 * Discovery (from the 401's challenge when a request got one: MCP 2026-07-28 "Authorization
 * Server Discovery"), then every check that must pass before a registration or an authorization
 * request: the issuer binding, the provider's registration requirement. No MCP request is made.
 */
export async function planSignIn(opts: {
  server: ServerConfig;
  store: CredentialStore;
  fetch: FetchLike;
  challenge?: BearerChallenge;
  /** Explicit scopes (step-up: the union of granted and challenged scopes). */
  scopes?: string[];
  logger: Logger;
  /** A grant without a browser: the client is always a configured one (no registration). */
  machine?: boolean;
}): Promise<SignInPlan> {
  const { server, store, challenge } = opts;
  const keyResource = canonicalResourceUri(server.oauthResource ?? server.url);
  const found = await discoverAll({
    serverUrl: server.url,
    challenge,
    expectedResource: server.oauthResource,
    fetch: opts.fetch,
    pkceOptIn: (candidate) => acceptsMissingPkceMetadata(candidate, server.oauth),
  });
  const { issuer, authorizationServer: metadata, resource } = found;
  opts.logger.debug('discovered authorization server', { server: server.name, issuer, via: found.via });
  const previous = await otherIssuerCredentials(store, server.name, keyResource, issuer);
  assertClientBoundToIssuer(server, previous, issuer);
  // What this issuer's identity provider needs done differently (src/oauth/quirks.ts). A provider
  // without dynamic registration and no configured client fails here, naming the keys to set.
  const profile = providerFor(issuer, server.oauth.provider);
  const noRegistration = opts.machine ? undefined : registrationRequirement(profile, server);
  if (noRegistration) throw noRegistration;
  const scopes = applyProviderScopes(profile, opts.scopes ?? selectScopes({
    configScopes: server.scopes,
    challengeScope: challenge?.scope,
    scopesSupported: found.resourceMetadata?.scopes_supported,
    asScopesSupported: metadata.scopes_supported,
  }));
  return {
    found,
    issuer,
    metadata,
    keyResource,
    resource,
    sentResource: resourceParameterFor(profile, resource),
    profile,
    authorizeParams: authorizeParamsFor(profile, server.oauth.authorizeParams, { resource }),
    scopes,
    previous,
  };
}

/** This server's credentials from other authorization servers, newest first. */
export async function otherIssuerCredentials(store: CredentialStore, serverName: string, resource: string, issuer: string): Promise<Credential[]> {
  const all = await store.list();
  return all
    .filter((c) => c.key.serverName === serverName && c.key.resource === resource && c.key.issuer !== issuer)
    .sort((a, b) => b.obtainedAt - a.obtainedAt);
}

/**
 * MCP 2026-07-28 "Authorization Server Binding": pre-registered credentials belong to the
 * authorization server that issued them; when the server now names another one, surface an error
 * rather than present the old client id there. (Dynamic registrations are kept per issuer, so a
 * move simply registers again; a Client ID Metadata Document URL is portable.)
 */
export function assertClientBoundToIssuer(server: ServerConfig, previous: Credential[], issuer: string): void {
  const configured = server.oauth.clientId;
  const old = previous.find((c) => c.clientId === configured);
  if (!configured || !old || server.oauth.clientMetadataUrl) return;
  throw new McpOAuthError(
    'config_invalid',
    `${server.name} moved from the authorization server ${old.key.issuer} to ${issuer}, but the configured client_id was registered with ${old.key.issuer}; it is not sent to the new server.`,
    { hint: `register a client with ${issuer}, then set its id as client_id in [mcp_servers.${server.name}.oauth] (and its secret's variable as client_secret_env)`, details: { from: old.key.issuer, to: issuer } },
  );
}

/**
 * The credential a sign-in leaves behind, stored; the credentials of an authorization server the
 * server moved away from are deleted (their tokens are never sent anywhere again), and the move
 * is recorded for `status` and `doctor`.
 */
export async function storeSignedInCredential(opts: {
  server: ServerConfig;
  store: CredentialStore;
  plan: SignInPlan;
  tokens: TokenSet;
  client: ClientAuth;
  /** The parameters the authorize request carried (none for the device grant). */
  sentAuthorizeParams: Record<string, string>;
  /** Why there is no refresh token when nothing provider-specific explains it. */
  missingRefreshTokenReason: string;
  clock: Clock;
  logger: Logger;
  /** false: return the credential without storing it (a renewal the caller persists under its lock). */
  persist?: boolean;
  /** More fields for the credential (the grant, the DPoP key). */
  extra?: Partial<Credential>;
}): Promise<Credential> {
  const { server, store, plan, clock, logger } = opts;
  const { issuer, profile, scopes } = plan;
  const credential = credentialFromTokenSet({
    key: { serverName: server.name, resource: plan.keyResource, issuer },
    tokens: opts.tokens,
    requestedScopes: scopes,
    client: opts.client,
    tokenEndpoint: plan.metadata.token_endpoint,
    revocationEndpoint: plan.metadata.revocation_endpoint,
    now: clock(),
  });
  if (!credential.refreshToken) {
    credential.refreshTokenMissingReason = explainMissingRefreshToken(issuer, opts.sentAuthorizeParams, server.oauth.provider, scopes) ?? opts.missingRefreshTokenReason;
  }
  if (plan.resource !== plan.keyResource) credential.resourceIndicator = plan.resource;
  Object.assign(credential, opts.extra ?? {});
  if (profile.name !== 'generic') {
    credential.provider = profile.name;
    credential.quirksApplied = appliedQuirks(profile, { authorizeParams: opts.sentAuthorizeParams, scopes, resourceSent: plan.sentResource !== undefined });
  }
  if (opts.persist === false) return credential;
  // MCP 2026-07-28 "Authorization Server Binding": the server moved to another authorization
  // server. The new credential replaces the old issuer's (its tokens are never sent anywhere
  // again); the record of the move stays for `status` and `doctor`.
  const moved = plan.previous[0];
  if (moved) credential.migratedFrom = { issuer: moved.key.issuer, at: clock() };
  await store.put(credential);
  for (const old of plan.previous) await store.delete(old.key);
  if (moved) logger.info('the server moved to another authorization server; signed in there', { server: server.name, from: moved.key.issuer, to: issuer });
  logger.info('signed in', { server: server.name, issuer, refreshToken: credential.refreshToken ? 'yes' : 'no' });
  return credential;
}

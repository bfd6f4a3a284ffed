/**
 * Identity provider quirks, as data: one profile per provider with how it is recognised, what it
 * does differently (each quirk with the provider document that says so), and the knobs the sign-in
 * and refresh code read. Pure: no I/O. `confirmed` tells whether the provider's own documentation
 * states the quirk (true), states part of it ('partly', see `unconfirmed`), or not at all (false).
 */
import { McpOAuthError } from '../errors.ts';

export const PROVIDER_NAMES = ['google', 'entra', 'keycloak', 'atlassian', 'github', 'auth0', 'okta'] as const;
export type KnownProvider = (typeof PROVIDER_NAMES)[number];
export type ProviderName = KnownProvider | 'generic';

/** What the sign-in sent, to tell which quirks actually applied. */
export interface SentRequest {
  authorizeParams: Record<string, string>;
  scopes: string[];
  resourceSent: boolean;
}

export interface Quirk {
  id: string;
  summary: string;
  /** The provider's own page that documents it. */
  doc: string;
  confirmed: boolean | 'partly';
  /** What the document does not say, when `confirmed` is not true. */
  unconfirmed?: string;
  /** Only counted as applied when the sign-in request shows it (config may override a default). */
  appliedWhen?: (sent: SentRequest) => boolean;
}

export interface ProviderProfile {
  name: ProviderName;
  label: string;
  /** For the README and `doctor`. */
  recognisedBy: string;
  /** Set by providerFor: from the config's `provider`, from the issuer, or not recognised. */
  recognisedFrom?: 'config' | 'issuer';
  quirks: Quirk[];
  /** Extra authorization request parameters (config `authorize_params` win). */
  authorizeParams: Record<string, string>;
  /** Scopes never sent to this provider. */
  neverSendScopes: string[];
  /** Ask for `offline_access` even when the metadata does not list it (no refresh token without it). */
  wantsOfflineAccess: boolean;
  /** Send the RFC 8707 `resource` parameter. */
  sendsResource: boolean;
  /** Proceed although the metadata lacks `code_challenge_methods_supported` (PKCE S256 works). */
  acceptsMissingPkceMetadata: boolean;
  /** RFC 7591 dynamic registration exists; else a pre-registered client is required. */
  dynamicRegistration: boolean;
  /** A pre-registered client of this provider is confidential (has a secret). */
  needsClientSecret: boolean;
  /** Auth0: `audience=<the MCP server's resource URI>` on the authorization request. */
  audienceParameter: boolean;
  /** Why a sign-in may come back without a refresh token, for `status` / `doctor`. */
  missingRefreshTokenHint?: string;
}

/** Backwards-compatible name of the profile type. */
export type ProviderQuirks = ProviderProfile;

const GOOGLE_WEB_SERVER = 'https://developers.google.com/identity/protocols/oauth2/web-server';
const GOOGLE_OIDC = 'https://developers.google.com/identity/openid-connect/reference';
const ENTRA_SCOPES = 'https://learn.microsoft.com/entra/identity-platform/scopes-oidc';
const KEYCLOAK_ADMIN = 'https://www.keycloak.org/docs/latest/server_admin/';
const ATLASSIAN_REFRESH = 'https://developer.atlassian.com/cloud/oauth/getting-started/refresh-tokens';
const GITHUB_REFRESH = 'https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens';

const offlineAccess = (doc: string, extra = ''): Quirk => ({
  id: 'offline-access-scope',
  summary: `asks for the offline_access scope: no refresh token without it${extra}`,
  doc,
  confirmed: true,
  appliedWhen: (s) => s.scopes.includes('offline_access'),
});
const noDcr = (doc: string, summary: string, confirmed: Quirk['confirmed'] = true, unconfirmed?: string): Quirk => ({
  id: 'no-dynamic-registration',
  summary,
  doc,
  confirmed,
  ...(unconfirmed ? { unconfirmed } : {}),
});

const BASE = {
  authorizeParams: {},
  neverSendScopes: [],
  wantsOfflineAccess: false,
  sendsResource: true,
  acceptsMissingPkceMetadata: false,
  dynamicRegistration: true,
  needsClientSecret: false,
  audienceParameter: false,
} satisfies Partial<ProviderProfile>;

const PROFILES: Record<ProviderName, ProviderProfile> = {
  google: {
    ...BASE,
    name: 'google',
    label: 'Google',
    recognisedBy: 'issuer https://accounts.google.com',
    authorizeParams: { access_type: 'offline', prompt: 'consent' },
    neverSendScopes: ['offline_access'],
    dynamicRegistration: false,
    needsClientSecret: true,
    missingRefreshTokenHint:
      'Google only returns a refresh token when the sign-in request has access_type=offline, and only on the first consent ' +
      'unless prompt=consent is sent; sign in again with both (the Google defaults, unless oauth.authorize_params overrides them)',
    quirks: [
      { id: 'issuer-trailing-slash', summary: 'Google-hosted MCP servers list the issuer https://accounts.google.com/, its metadata says https://accounts.google.com: one issuer (discovery)', doc: GOOGLE_OIDC, confirmed: 'partly', unconfirmed: 'the document gives the issuer without the slash; the slash in the servers\' resource metadata is observed, not documented' },
      noDcr('https://developers.google.com/identity/protocols/oauth2', 'no dynamic client registration: a pre-registered client (client_id and secret) is required'),
      { id: 'no-offline-access-scope', summary: 'never sends the offline_access scope (Google answers invalid_scope)', doc: GOOGLE_WEB_SERVER, confirmed: 'partly', unconfirmed: 'the document asks for access_type=offline instead; the invalid_scope answer is observed' },
      { id: 'offline-access-params', summary: 'sends access_type=offline and prompt=consent: the only way to a refresh token (after the first consent)', doc: GOOGLE_WEB_SERVER, confirmed: true, appliedWhen: (s) => s.authorizeParams.access_type === 'offline' && (s.authorizeParams.prompt ?? '').split(/\s+/).includes('consent') },
      { id: 'refresh-token-not-rotated', summary: 'a refresh answer has no new refresh token: the one held stays valid and is kept', doc: GOOGLE_WEB_SERVER, confirmed: true },
    ],
  },
  entra: {
    ...BASE,
    name: 'entra',
    label: 'Microsoft Entra ID',
    recognisedBy: 'issuer https://login.microsoftonline.com/{tenant}/v2.0 (also .us, login.partner.microsoftonline.cn)',
    wantsOfflineAccess: true,
    sendsResource: false,
    acceptsMissingPkceMetadata: true,
    dynamicRegistration: false,
    quirks: [
      { id: 'tenant-issuer-path', summary: 'issuer with a tenant path (/{tenant}/v2.0), metadata only by OpenID Connect discovery', doc: 'https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc', confirmed: true },
      { id: 'pkce-not-advertised', summary: 'metadata without code_challenge_methods_supported although PKCE S256 works: accepted for Entra only (MCP says to refuse)', doc: 'https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow', confirmed: 'partly', unconfirmed: 'PKCE S256 is documented; its absence from the metadata is seen in the live document' },
      { id: 'no-resource-parameter', summary: 'no RFC 8707 resource parameter: v2 takes the resource in the scope (api://…/.default) and refuses a conflicting resource', doc: ENTRA_SCOPES, confirmed: 'partly', unconfirmed: 'scopes naming the resource are documented; the refusal (AADSTS9010010) is observed', appliedWhen: (s) => !s.resourceSent },
      offlineAccess(ENTRA_SCOPES),
      noDcr('https://learn.microsoft.com/entra/identity-platform/quickstart-register-app', 'no dynamic client registration: register the app in Entra and set its client id'),
      { id: 'no-revocation', summary: 'no revocation endpoint: logout forgets the tokens locally (Graph revokeSignInSessions revokes all of a user\'s)', doc: 'https://learn.microsoft.com/graph/api/user-revokesigninsessions', confirmed: 'partly', unconfirmed: 'the metadata has no revocation_endpoint; no page says there is none' },
    ],
  },
  keycloak: {
    ...BASE,
    name: 'keycloak',
    label: 'Keycloak',
    recognisedBy: 'an https issuer whose path is /realms/NAME (or /auth/realms/NAME)',
    wantsOfflineAccess: true,
    quirks: [
      { id: 'realm-issuer-path', summary: 'issuer with a realm path (/realms/NAME), metadata at {issuer}/.well-known/openid-configuration', doc: 'https://www.keycloak.org/securing-apps/oidc-layers', confirmed: true },
      offlineAccess(`${KEYCLOAK_ADMIN}#_offline-access`, ' that outlives the SSO session'),
      { id: 'refresh-token-reuse-limit', summary: 'refresh-token reuse limit: invalid_grant "Maximum allowed refresh token reuse exceeded" ends in sign in again (exit 4)', doc: `${KEYCLOAK_ADMIN}#_timeouts`, confirmed: 'partly', unconfirmed: 'the Revoke Refresh Token / Max Reuse settings are documented; the error text is from Keycloak\'s source' },
      { id: 'refresh-expires-in', summary: 'token responses carry refresh_expires_in (0 for offline tokens): status shows it and warns before it expires', doc: `${KEYCLOAK_ADMIN}#_timeouts`, confirmed: false, unconfirmed: 'the field is in every Keycloak token response but not in its documentation' },
    ],
  },
  atlassian: {
    ...BASE,
    name: 'atlassian',
    label: 'Atlassian',
    recognisedBy: 'issuer https://auth.atlassian.com',
    wantsOfflineAccess: true,
    quirks: [
      { id: 'rotating-refresh-tokens', summary: 'rotating refresh tokens with reuse detection: the new one is stored before it is used', doc: ATLASSIAN_REFRESH, confirmed: true },
      offlineAccess(ATLASSIAN_REFRESH),
      { id: 'dead-refresh-unauthorized-client', summary: 'an invalid refresh token is answered unauthorized_client ("refresh_token is invalid"): sign in again (exit 4)', doc: ATLASSIAN_REFRESH, confirmed: false, unconfirmed: 'the document names 403 invalid_grant "Unknown or invalid refresh token"; unauthorized_client is observed' },
    ],
  },
  github: {
    ...BASE,
    name: 'github',
    label: 'GitHub',
    recognisedBy: 'an https issuer on github.com (https://github.com/login/oauth)',
    dynamicRegistration: false,
    needsClientSecret: true,
    quirks: [
      noDcr('https://docs.github.com/en/apps/creating-github-apps/registering-a-github-app/registering-a-github-app', 'no dynamic client registration: register a GitHub App (client id and secret)'),
      { id: 'form-encoded-token-response', summary: 'the token endpoint answers form-encoded unless asked for JSON: Accept: application/json is sent and a form answer is read too', doc: 'https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps', confirmed: true },
      { id: 'errors-with-http-200', summary: 'token errors come with HTTP 200 and an error field (bad_refresh_token …): read as OAuth errors', doc: 'https://docs.github.com/en/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors', confirmed: 'partly', unconfirmed: 'the error bodies are documented, the 200 status is observed' },
      { id: 'single-use-refresh-tokens', summary: 'single-use refresh tokens with refresh_token_expires_in (six months): status shows the expiry', doc: GITHUB_REFRESH, confirmed: true },
    ],
  },
  auth0: {
    ...BASE,
    name: 'auth0',
    label: 'Auth0',
    recognisedBy: 'an https issuer on *.auth0.com',
    wantsOfflineAccess: true,
    audienceParameter: true,
    quirks: [
      offlineAccess('https://auth0.com/docs/secure/tokens/refresh-tokens/get-refresh-tokens'),
      { id: 'audience-parameter', summary: 'sends audience=<the MCP server URL>: without it Auth0 issues a token for its own userinfo, not for the API', doc: 'https://auth0.com/docs/secure/tokens/access-tokens/get-access-tokens', confirmed: true, appliedWhen: (s) => 'audience' in s.authorizeParams },
    ],
  },
  okta: {
    ...BASE,
    name: 'okta',
    label: 'Okta',
    recognisedBy: 'an https issuer on *.okta.com, *.oktapreview.com or *.okta-emea.com',
    wantsOfflineAccess: true,
    quirks: [
      { id: 'custom-as-issuer-path', summary: 'a custom authorization server has an issuer path (/oauth2/default), metadata at {issuer}/.well-known/…', doc: 'https://developer.okta.com/docs/api/openapi/okta-oauth/oauth/tag/CustomAS', confirmed: true },
      offlineAccess('https://developer.okta.com/docs/guides/refresh-tokens/main/'),
    ],
  },
  generic: { ...BASE, name: 'generic', label: 'generic', recognisedBy: 'any other issuer', quirks: [] },
};

const ENTRA_HOSTS = new Set(['login.microsoftonline.com', 'login.microsoftonline.us', 'login.partner.microsoftonline.cn']);

/** The provider an issuer belongs to. Only https issuers are recognised: a loopback (sandbox)
 * issuer gets a provider's quirks only through the config's `provider`. */
export function recogniseIssuer(issuer: string): ProviderName {
  // Google's ID tokens also use the bare host form (OIDC reference, "issuer").
  if (issuer === 'accounts.google.com') return 'google';
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return 'generic';
  }
  if (url.protocol !== 'https:') return 'generic';
  const host = url.hostname.toLowerCase();
  const path = url.pathname.replace(/\/+$/, '');
  if (host === 'accounts.google.com') return 'google';
  if (ENTRA_HOSTS.has(host) && /^\/[^/]+\/v2\.0$/.test(path)) return 'entra';
  if (host === 'auth.atlassian.com') return 'atlassian';
  if (host === 'github.com') return 'github';
  if (host.endsWith('.auth0.com')) return 'auth0';
  if (/\.(okta|oktapreview|okta-emea)\.com$/.test(host)) return 'okta';
  if (/^(\/auth)?\/realms\/[^/]+$/.test(path)) return 'keycloak';
  return 'generic';
}

function copy(profile: ProviderProfile, recognisedFrom?: 'config' | 'issuer'): ProviderProfile {
  return {
    ...profile,
    ...(recognisedFrom ? { recognisedFrom } : {}),
    authorizeParams: { ...profile.authorizeParams },
    neverSendScopes: [...profile.neverSendScopes],
    quirks: [...profile.quirks],
  };
}

/** Every profile but `generic`, for the README table test and `doctor`. */
export function providerProfiles(): ProviderProfile[] {
  return PROVIDER_NAMES.map((name) => copy(PROFILES[name]));
}

/**
 * The profile for an issuer. `override` (config `provider`) forces one ("google", …) or disables
 * quirks ("none"); an unknown name is a config error rather than a silent "no quirks".
 */
export function providerFor(issuer: string, override?: string): ProviderProfile {
  const forced = override?.trim().toLowerCase();
  if (forced === 'none') return copy(PROFILES.generic);
  if (forced) {
    if (!(PROVIDER_NAMES as readonly string[]).includes(forced)) {
      throw new McpOAuthError('config_invalid', `provider = "${override}" is not a provider mcp-oauth knows.`, {
        hint: `use one of ${PROVIDER_NAMES.map((n) => `"${n}"`).join(', ')} or "none" in [mcp_servers.NAME.oauth]`,
      });
    }
    return copy(PROFILES[forced as KnownProvider], 'config');
  }
  const recognised = recogniseIssuer(issuer);
  return copy(PROFILES[recognised], recognised === 'generic' ? undefined : 'issuer');
}

/** The profile a credential was signed in with (its recorded provider), without throwing. */
export function profileOf(provider: string | undefined): ProviderProfile {
  return copy(PROFILES[(PROVIDER_NAMES as readonly string[]).includes(provider ?? '') ? (provider as KnownProvider) : 'generic']);
}

/** Provider defaults, then the user's configured parameters, which win. An empty configured value
 * removes the parameter (e.g. `prompt = ""` to stop Google's forced consent screen). */
export function authorizeParamsFor(profile: ProviderProfile, configParams: Record<string, string>, ctx: { resource?: string } = {}): Record<string, string> {
  const merged: Record<string, string> = { ...profile.authorizeParams };
  // Auth0 "Get Access Tokens": the API is named by `audience`; an MCP server's API identifier is
  // its URL, the same value as the RFC 8707 resource.
  if (profile.audienceParameter && ctx.resource) merged.audience = ctx.resource;
  Object.assign(merged, configParams);
  for (const [k, v] of Object.entries(merged)) if (v === '') delete merged[k];
  return merged;
}

/** The scopes to send to this provider: without the ones it refuses, with `offline_access` when
 * it issues refresh tokens only for it. Never `offline_access` alone: an otherwise empty scope
 * list means the server's defaults, which `scope=offline_access` would replace. */
export function applyProviderScopes(profile: ProviderProfile, scopes: string[]): string[] {
  const kept = scopes.filter((s) => !profile.neverSendScopes.includes(s));
  if (profile.wantsOfflineAccess && kept.length > 0 && !kept.includes('offline_access')) kept.push('offline_access');
  return kept;
}

/** The RFC 8707 `resource` to send, or undefined when the provider refuses it (Entra v2). */
export function resourceParameterFor(profile: ProviderProfile, resource: string): string | undefined {
  return profile.sendsResource ? resource : undefined;
}

/** The `resource` for a refresh of this credential: the one sent at sign-in (or none). */
export function refreshResourceFor(credential: { provider?: string; resourceIndicator?: string; key: { resource: string } }): string | undefined {
  return resourceParameterFor(profileOf(credential.provider), credential.resourceIndicator ?? credential.key.resource);
}

/** Whether discovery may accept metadata without `code_challenge_methods_supported` for this
 * issuer: a recognised (or configured) provider known to support S256, or `assume_pkce = true`. */
export function acceptsMissingPkceMetadata(issuer: string, oauth: { provider?: string; assumePkce?: boolean }): boolean {
  if (oauth.assumePkce) return true;
  try {
    return providerFor(issuer, oauth.provider).acceptsMissingPkceMetadata;
  } catch {
    return false;
  }
}

/** A provider without dynamic registration and no configured client: the error saying exactly
 * what to set (instead of a registration attempt that cannot work). Undefined when fine. */
export function registrationRequirement(profile: ProviderProfile, server: { name: string; oauth: { clientId?: string; clientMetadataUrl?: string } }): McpOAuthError | undefined {
  if (profile.dynamicRegistration || server.oauth.clientId || server.oauth.clientMetadataUrl) return undefined;
  const keys = profile.needsClientSecret ? 'client_id and client_secret_env (the name of the variable holding its secret)' : 'client_id';
  return new McpOAuthError(
    'config_invalid',
    `${profile.label} has no dynamic client registration: ${server.name} needs a client registered with ${profile.label}, and none is configured.`,
    { hint: `register an OAuth client with ${profile.label} (loopback redirect http://127.0.0.1/callback), then set ${keys} in [mcp_servers.${server.name}.oauth]`, details: { provider: profile.name } },
  );
}

/** The ids of the profile's quirks this sign-in applied. */
export function appliedQuirks(profile: ProviderProfile, sent: SentRequest): string[] {
  return profile.quirks.filter((q) => !q.appliedWhen || q.appliedWhen(sent)).map((q) => q.id);
}

/**
 * OAuth errors on a refresh that mean the refresh token is dead, so the answer is "sign in again"
 * (exit 4), not a protocol violation. Recognised whatever the issuer: an MCP server's own
 * authorization server may front one of these providers without being recognisable.
 */
const DEAD_REFRESH_TOKEN_ERRORS: Record<string, string> = {
  invalid_grant: 'RFC 6749 §5.2 (Keycloak\'s reuse limit answers this too)',
  unauthorized_client: 'Atlassian: "refresh_token is invalid"',
  bad_refresh_token: 'GitHub: "The refresh token passed is incorrect or expired"',
};

export function isDeadRefreshTokenError(oauthError: string | undefined): boolean {
  return oauthError !== undefined && Object.hasOwn(DEAD_REFRESH_TOKEN_ERRORS, oauthError);
}

/**
 * A plain sentence explaining why no refresh token came back, when the cause is known from what
 * was sent; undefined when there is nothing provider-specific to say.
 */
export function explainMissingRefreshToken(issuer: string, sentParams: Record<string, string>, provider?: string, sentScopes?: string[]): string | undefined {
  let profile: ProviderProfile;
  try {
    profile = providerFor(issuer, provider);
  } catch {
    return undefined;
  }
  if (profile.name === 'google') return explainGoogle(sentParams);
  if (profile.wantsOfflineAccess && sentScopes && !sentScopes.includes('offline_access')) {
    return `${profile.label} issues a refresh token only for the offline_access scope, which this sign-in did not ask for ` +
      '(no scopes were requested, or the configured scopes left it out). Add "offline_access" to scopes and sign in again.';
  }
  return undefined;
}

function explainGoogle(sentParams: Record<string, string>): string | undefined {
  const reasons: string[] = [];
  if (sentParams.access_type !== 'offline') {
    reasons.push('the sign-in did not send access_type=offline, and Google issues refresh tokens only for offline access');
  }
  // `prompt` is a space-delimited list (OIDC Core §3.1.2.1), e.g. "consent select_account".
  if (!(sentParams.prompt ?? '').split(/\s+/).includes('consent')) {
    reasons.push('the sign-in did not send prompt=consent, and Google returns a refresh token only on the first consent without it');
  }
  if (reasons.length === 0) return undefined;
  return `Google returned no refresh token because ${reasons.join('; and ')}. Remove any oauth.authorize_params override of these and sign in again.`;
}

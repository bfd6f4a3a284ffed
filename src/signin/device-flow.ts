/**
 * Sign-in with the OAuth 2.0 Device Authorization Grant (RFC 8628), for a terminal with no browser
 * (an SSH session): discovery → client registration (with the device grant) → device authorization
 * → the user enters the code on any device → polling → credential persisted exactly as the
 * browser sign-in (flow.ts) persists it. The protocol steps live in src/oauth/device.ts.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { McpOAuthError, isMcpOAuthError } from '../errors.ts';
import type { BearerChallenge } from '../oauth/www-authenticate.ts';
import { resolveClientRegistration } from '../oauth/registration.ts';
import {
  DEVICE_CODE_GRANT, deviceAuthorizationEndpointOf, pollDeviceToken, requestDeviceAuthorization, type DeviceAuthorization, type PollEvent,
} from '../oauth/device.ts';
import { clientAuthFrom, preregisteredClient } from './flow.ts';
import { planSignIn, storeSignedInCredential } from './finish.ts';
import type { Clock, Credential, CredentialStore, FetchLike, Logger, ServerConfig } from '../types.ts';
import { silentLogger } from '../types.ts';

/** What the user must be shown to finish the sign-in elsewhere (RFC 8628 §3.3). */
export interface DeviceCodePrompt {
  serverName: string;
  verificationUri: string;
  verificationUriComplete?: string;
  userCode: string;
  /** epoch ms */
  expiresAt: number;
}

export interface DeviceSignInOptions {
  server: ServerConfig;
  store: CredentialStore;
  fetch: FetchLike;
  env: NodeJS.ProcessEnv;
  /** Shows the verification URI and the user code (the CLI prints them on stderr). */
  onUserCode: (prompt: DeviceCodePrompt) => void;
  onPoll?: (event: PollEvent) => void;
  logger?: Logger;
  clock?: Clock;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  signal?: AbortSignal;
  /** Explicit scopes (overrides config, challenge and metadata). */
  scopes?: string[];
  /** The 401 challenge that led here, when there was one. */
  challenge?: BearerChallenge;
  clientName?: string;
}

const realSleep = (ms: number, signal?: AbortSignal) => delay(ms, undefined, signal ? { signal } : undefined);

/**
 * The redirect URI a device-grant registration carries: the registration also allows the
 * authorization code grant, so that one client per issuer serves both sign-ins (flow.ts reuses it:
 * RFC 8252 §7.3, loopback redirects match on any port). The path is loopback.ts's callback path.
 */
function loopbackRedirectUri(port: number | undefined): string {
  return `http://127.0.0.1${port ? `:${port}` : ''}/callback`;
}

export async function deviceSignIn(opts: DeviceSignInOptions): Promise<Credential> {
  const { server, store, fetch, env } = opts;
  const logger = opts.logger ?? silentLogger;
  const clock = opts.clock ?? Date.now;
  const plan = await planSignIn({ server, store, fetch, challenge: opts.challenge, scopes: opts.scopes, logger });
  const { issuer, metadata, scopes, sentResource: resource } = plan;
  // RFC 8628 §4: the metadata names the device authorization endpoint when the grant is offered.
  // Checked before anything is registered or requested.
  const endpoint = deviceAuthorizationEndpointOf(metadata);
  if (!endpoint) throw deviceGrantNotOffered(server.name, issuer);

  const existing = await store.getRegistration(issuer);
  const registration = await resolveClientRegistration({
    issuer,
    metadata,
    preregistered: preregisteredClient(server, env),
    clientMetadataUrl: server.oauth.clientMetadataUrl,
    existing,
    redirectUri: loopbackRedirectUri(server.oauth.callbackPort),
    clientName: opts.clientName ?? 'mcp-oauth',
    fetch,
    now: clock(),
    serverName: server.name,
    extraGrantTypes: [DEVICE_CODE_GRANT],
  });
  if (registration.source === 'dynamic_registration' && registration !== existing) await store.putRegistration(registration);
  const client = clientAuthFrom(registration);
  // A registration the server no longer knows is redone on the next sign-in (as in flow.ts).
  const forgetRegistration = async (e: unknown) => {
    if (isMcpOAuthError(e) && e.oauthError === 'invalid_client' && registration.source === 'dynamic_registration') await store.deleteRegistration(issuer);
  };

  let authorization: DeviceAuthorization;
  try {
    authorization = await requestDeviceAuthorization({ endpoint, client, scopes, resource, fetch, now: clock() });
  } catch (e) {
    await forgetRegistration(e);
    // RFC 8628 §3.2 / RFC 6749 §5.2: this client may not use the grant (a pre-registered client
    // without it, or a server that dropped it from the registration).
    if (isMcpOAuthError(e, 'oauth_error') && e.oauthError === 'unauthorized_client') {
      throw new McpOAuthError('oauth_error', `${issuer} does not let this client use the device grant (unauthorized_client).`, {
        oauthError: e.oauthError,
        status: e.status,
        hint: `enable the device grant for the client, or sign in with mcp-oauth login ${server.name} --no-browser`,
        details: e.details,
      });
    }
    throw e;
  }
  opts.onUserCode({
    serverName: server.name,
    verificationUri: authorization.verificationUri,
    verificationUriComplete: authorization.verificationUriComplete,
    userCode: authorization.userCode,
    expiresAt: authorization.expiresAt,
  });

  let tokens;
  try {
    tokens = await pollDeviceToken({
      tokenEndpoint: metadata.token_endpoint,
      client,
      authorization,
      resource,
      fetch,
      clock,
      sleep: opts.sleep ?? realSleep,
      signal: opts.signal,
      onPoll: (event) => {
        if (event.type === 'retry') logger.warn('polling the token endpoint failed; retrying', { error: event.error.code, delayMs: event.delayMs });
        else if (event.type === 'slow_down') logger.debug('the authorization server asked to poll less often', { intervalMs: event.intervalMs });
        opts.onPoll?.(event);
      },
    });
  } catch (e) {
    await forgetRegistration(e);
    throw e;
  }

  return storeSignedInCredential({
    server,
    store,
    plan,
    tokens,
    client,
    sentAuthorizeParams: {},
    missingRefreshTokenReason: `${issuer} issued no refresh token with the device grant, so you will need to sign in again when the access token expires.`,
    clock,
    logger,
  });
}

/** Exit 2 (usage): the command asked for something this server cannot do; the other way works. */
export function deviceGrantNotOffered(serverName: string, issuer: string): McpOAuthError {
  return new McpOAuthError(
    'usage',
    `${serverName}'s authorization server (${issuer}) does not offer the device grant (its metadata has no device_authorization_endpoint).`,
    { hint: `use mcp-oauth login ${serverName} --no-browser instead`, details: { issuer } },
  );
}

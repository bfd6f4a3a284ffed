/**
 * The interactive sign-in: discovery → client registration → authorization code + PKCE on a
 * loopback redirect → code exchange → credential persisted. Each protocol step lives in
 * src/oauth/; this module only sequences them and talks to the edges (browser, loopback, store).
 */
import type { Readable, Writable } from 'node:stream';
import { McpOAuthError, loginCommand } from '../errors.ts';
import type { BearerChallenge } from '../oauth/www-authenticate.ts';
import { resolveClientRegistration } from '../oauth/registration.ts';
import { createPkce, createState, buildAuthorizationUrl, validateAuthorizationResponse } from '../oauth/authorize.ts';
import { exchangeAuthorizationCode, type ClientAuth } from '../oauth/tokens.ts';
import { planSignIn, storeSignedInCredential } from './finish.ts';
import { chooseGrant, isMachineGrant } from '../oauth/grant-choice.ts';
import { startCallbackServer } from './loopback.ts';
import { describeAuthorizationError } from './pages.ts';
import { canOpenBrowser, openBrowser } from './browser.ts';
import { readRedirectFromStdin } from './paste.ts';
import type { Clock, Credential, CredentialStore, FetchLike, Logger, ServerConfig } from '../types.ts';
import { silentLogger } from '../types.ts';

export interface SignInOptions {
  server: ServerConfig;
  store: CredentialStore;
  fetch: FetchLike;
  env: NodeJS.ProcessEnv;
  logger?: Logger;
  clock?: Clock;
  /**
   * 'open': open the browser ($BROWSER or the OS default) and wait for the loopback callback.
   * 'print': print the URL (for SSH sessions) and accept the callback or the redirected URL pasted
   * on `input`.
   */
  browser?: BrowserMode;
  /** Explicit scopes (step-up: the union of granted and challenged scopes). */
  scopes?: string[];
  /** The 401/403 challenge that led here, when there was one (saves a probe request). */
  challenge?: BearerChallenge;
  timeoutMs?: number;
  clientName?: string;
  /** Called with the authorize URL once it is known (the CLI prints a waiting line). */
  onAuthorizeUrl?: (url: string) => void;
}

/** How the user reaches the authorize URL. 'custom' is for embedders and the demo. */
export type BrowserMode =
  | {
      mode: 'open';
      /**
       * When no browser can be opened ($BROWSER or the system opener fails, or there is no display):
       * 'wait' (default) keeps waiting for the loopback callback (the user opens the URL, which
       * `onBrowserFailed` shows, by hand); `paste` also accepts the redirected URL on a terminal;
       * 'fail' gives up at once with signin_required (a script with no terminal must not hang).
       */
      whenNoBrowser?: 'wait' | 'fail' | { paste: { input: Readable; output: Writable } };
      /** Told why the browser did not open, with the URL to open by hand. */
      onBrowserFailed?: (reason: string, url: string) => void;
    }
  | { mode: 'print'; input: Readable; output: Writable }
  | { mode: 'custom'; open: (url: string) => Promise<void> };

export const DEFAULT_SIGNIN_TIMEOUT_MS = 5 * 60_000;

/** Client authentication for the token endpoint, from a registration (secret never from config). */
export function clientAuthFrom(registration: { clientId: string; clientSecret?: string; tokenEndpointAuthMethod: ClientAuth['method'] }): ClientAuth {
  return { clientId: registration.clientId, clientSecret: registration.clientSecret, method: registration.tokenEndpointAuthMethod };
}

/** A pre-registered client: id from config, secret from the environment variable it names. */
export function preregisteredClient(server: ServerConfig, env: NodeJS.ProcessEnv): { clientId: string; clientSecret?: string } | undefined {
  const { clientId, clientSecretEnvVar } = server.oauth;
  if (!clientId) return undefined;
  if (clientSecretEnvVar && !env[clientSecretEnvVar]) {
    throw new McpOAuthError('config_invalid', `The client secret for ${server.name} is read from $${clientSecretEnvVar}, which is not set.`, {
      hint: `export ${clientSecretEnvVar}=… and run the command again`,
    });
  }
  return { clientId, clientSecret: clientSecretEnvVar ? env[clientSecretEnvVar] : undefined };
}

export async function signIn(opts: SignInOptions): Promise<Credential> {
  const { server, store, fetch, env } = opts;
  const logger = opts.logger ?? silentLogger;
  const clock = opts.clock ?? Date.now;
  const mode = opts.browser ?? { mode: 'open' as const };
  // A script without a terminal and without any way to open a browser fails before any request
  // (no registration, no callback server): nothing could complete the sign-in.
  if (mode.mode === 'open' && mode.whenNoBrowser === 'fail' && !canOpenBrowser(env)) {
    throw noWayToSignIn(server.name, 'no browser can be opened here (no $BROWSER, no display)');
  }
  const plan = await planSignIn({ server, store, fetch, challenge: opts.challenge, scopes: opts.scopes, logger });
  const { issuer, metadata, scopes, sentResource, authorizeParams } = plan;
  // A confidential client at an authorization server that offers only client credentials: no
  // browser needed (src/oauth/grant-choice.ts).
  if (isMachineGrant(chooseGrant(server.oauth, metadata))) {
    const { machineSignIn } = await import('./machine.ts');
    return machineSignIn({ server, store, fetch, env, logger, clock, challenge: opts.challenge, scopes: opts.scopes, persist: true });
  }
  // RFC 9449: tokens bound to a key of this credential when the AS offers DPoP (or the config asks).
  const { dpopFor } = await import('./machine.ts');
  const dpop = await dpopFor(server, plan);

  const callback = await startCallbackServer({ port: server.oauth.callbackPort, timeoutMs: opts.timeoutMs ?? DEFAULT_SIGNIN_TIMEOUT_MS, logger });
  try {
    // Without the redirect URI: the loopback port changes per sign-in, and RFC 8252 §7.3 lets the
    // authorization server accept any port, so resolveClientRegistration decides on reuse.
    const existing = await store.getRegistration(issuer);
    const registration = await resolveClientRegistration({
      issuer,
      metadata,
      preregistered: preregisteredClient(server, env),
      clientMetadataUrl: server.oauth.clientMetadataUrl,
      existing,
      redirectUri: callback.redirectUri,
      clientName: opts.clientName ?? 'mcp-oauth',
      fetch,
      now: clock(),
    });
    // Registrations are kept per issuer and reused (MCP auth spec §"Dynamic Client Registration").
    if (registration.source === 'dynamic_registration' && registration !== existing) await store.putRegistration(registration);

    const pkce = createPkce();
    const state = createState();
    const authorizeUrl = buildAuthorizationUrl({
      metadata,
      clientId: registration.clientId,
      redirectUri: callback.redirectUri,
      scopes,
      resource: sentResource,
      state,
      codeChallenge: pkce.challenge,
      extraParams: authorizeParams,
    });
    opts.onAuthorizeUrl?.(authorizeUrl);

    const params = await waitForRedirect(opts, authorizeUrl, callback);
    const code = validatedCode(params, state, metadata);

    const client = clientAuthFrom(registration);
    let tokens;
    try {
      tokens = await exchangeAuthorizationCode({
        tokenEndpoint: metadata.token_endpoint,
        client,
        code,
        codeVerifier: pkce.verifier,
        redirectUri: callback.redirectUri,
        resource: sentResource,
        fetch,
        now: clock(),
        ...(dpop ? { dpop: { privateJwk: dpop.privateJwk } } : {}),
      });
    } catch (e) {
      // A registration the server no longer knows is redone on the next sign-in.
      if (e instanceof McpOAuthError && e.oauthError === 'invalid_client' && registration.source === 'dynamic_registration') {
        await store.deleteRegistration(issuer);
      }
      params.respond({ ok: false, message: e instanceof Error ? e.message : String(e) });
      throw e;
    }
    params.respond({ ok: true, serverName: server.name });

    return await storeSignedInCredential({
      server,
      store,
      plan,
      tokens,
      client,
      sentAuthorizeParams: authorizeParams,
      missingRefreshTokenReason:
        `${issuer} issued no refresh token, so you will need to sign in again when the access token expires. ` +
        `Some providers (Google among them) issue one only when the authorize request has access_type=offline and prompt=consent: ` +
        `if this server uses such a provider, set provider = "google" or authorize_params in [mcp_servers.${server.name}.oauth].`,
      clock,
      logger,
      extra: { grant: 'authorization_code', ...(dpop ? { dpop } : {}) },
    });
  } finally {
    await callback.close();
  }
}

/**
 * The authorization code of a redirect, after RFC 9207 `iss` and `state` checks; a refusal is
 * shown on the browser's page too. An `error=` redirect (RFC 6749 §4.1.2.1, e.g. the user clicked
 * Deny) gets plain words there; the iss/state refusals (no oauthError) keep their own message.
 */
export function validatedCode(redirect: Redirect, state: string, metadata: Parameters<typeof validateAuthorizationResponse>[0]['metadata']): string {
  try {
    return validateAuthorizationResponse({ params: redirect.params, expectedState: state, metadata }).code;
  } catch (e) {
    const plain = e instanceof McpOAuthError && e.oauthError ? describeAuthorizationError(redirect.params) : undefined;
    redirect.respond({ ok: false, message: plain ?? (e instanceof Error ? e.message : String(e)) });
    throw e;
  }
}

export type Redirect = { params: URLSearchParams; respond(result: { ok: true; serverName: string } | { ok: false; message: string }): void };

export async function waitForRedirect(opts: SignInOptions, url: string, callback: Awaited<ReturnType<typeof startCallbackServer>>): Promise<Redirect> {
  const mode = opts.browser ?? { mode: 'open' as const };
  if (mode.mode === 'custom') {
    const waiting = callback.waitForCallback();
    waiting.catch(() => {});
    // Do not wait for the opener first: an in-process "browser" finishes only once our callback
    // page is answered, which happens after this function returns. Its failure still ends the wait.
    return Promise.race([waiting, mode.open(url).then(() => waiting)]);
  }
  if (mode.mode === 'open') {
    const waiting = callback.waitForCallback();
    waiting.catch(() => {});
    const opening = openBrowser(url, { env: opts.env, logger: opts.logger }).then(
      () => waiting,
      (err: unknown) => {
        // Say so and show the URL (the user can still open it; the callback keeps listening).
        const reason = err instanceof Error ? err.message : String(err);
        mode.onBrowserFailed?.(reason, url);
        const fallback = mode.whenNoBrowser ?? 'wait';
        if (fallback === 'fail') throw noWayToSignIn(opts.server.name, reason);
        if (fallback === 'wait') return waiting;
        return waitForCallbackOrPaste(callback, fallback.paste.input, fallback.paste.output);
      },
    );
    return Promise.race([waiting, opening]);
  }
  // --no-browser: the user opens the URL wherever they have a browser. Either the callback
  // reaches us (same machine) or they paste the URL the browser was redirected to (SSH).
  mode.output.write(`Open this URL in a browser to sign in to ${opts.server.name}:\n\n  ${url}\n\n`);
  return waitForCallbackOrPaste(callback, mode.input, mode.output);
}

async function waitForCallbackOrPaste(callback: Awaited<ReturnType<typeof startCallbackServer>>, input: Readable, output: Writable): Promise<Redirect> {
  const abort = new AbortController();
  const pasted = readRedirectFromStdin({ input, output, redirectUri: callback.redirectUri, signal: abort.signal })
    .then((params): Redirect => ({ params, respond() {} }));
  const called = callback.waitForCallback(abort.signal);
  try {
    return await Promise.race([called, pasted]);
  } finally {
    abort.abort();
    called.catch(() => {});
    pasted.catch(() => {});
  }
}

/** A sign-in that nothing can complete: no browser, and no terminal to paste a redirect into. */
export function noWayToSignIn(serverName: string, reason: string): McpOAuthError {
  return new McpOAuthError('signin_required', `Sign-in required for ${serverName}, but ${reason.replace(/\.$/, '')} and there is no terminal to finish it in.`, {
    hint: `${loginCommand(serverName)} in a terminal (with --no-browser to open the URL on another machine, or --device)`,
    details: { server: serverName },
  });
}

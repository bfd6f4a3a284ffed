// The sandbox's OAuth 2.0 Device Authorization Grant (RFC 8628): oidc-provider's `deviceFlow`
// feature with plain HTML pages (enter the code → confirm it → the usual login/consent
// interaction, which autoApprove finishes → done). Plain forms, no script, so a person, a real
// browser and a test speaking HTTP all complete it the same way. Counters record what the device
// endpoints saw, so a test can check that the client polled and honoured the protocol.
import { escapeHtml, page } from './pages.ts';
import type { SandboxState } from './types.ts';

/** The `features.deviceFlow` configuration of oidc-provider. */
export function deviceFlowFeature(enabled: boolean) {
  return {
    enabled,
    // The verification page (RFC 8628 §3.3): `form` is oidc-provider's, with its xsrf field.
    userCodeInputSource: async (ctx: { body: unknown }, form: string, _out: unknown, err?: { name?: string; userCode?: string }) => {
      const message = !err
        ? 'Enter the code shown in your terminal.'
        : err.userCode || err.name === 'NoCodeError'
          ? 'That code is not valid (or was already used). Check it and try again.'
          : err.name === 'AbortedError'
            ? 'The sign-in was cancelled. Run the login again to get a new code.'
            : 'The sign-in could not be completed. Run the login again to get a new code.';
      ctx.body = page('Sign in a device to the mcp-oauth sandbox', `
<p${err ? ' role="alert"' : ''}>${escapeHtml(message)}</p>
${form}
<button type="submit" id="continue" form="op.deviceInputForm">Continue</button>`);
    },
    // RFC 8628 §5.4 (remote phishing): show the code and the client so the user can compare.
    userCodeConfirmSource: async (ctx: { body: unknown }, form: string, client: { clientName?: string; clientId: string }, _deviceInfo: unknown, userCode: string) => {
      ctx.body = page('Confirm the device sign-in', `
<p><strong>${escapeHtml(client.clientName ?? client.clientId)}</strong> asks to sign in with the code</p>
<p><code style="font-size:2em">${escapeHtml(userCode)}</code></p>
<p>Continue only if this is the code shown in your terminal.</p>
${form}
<button type="submit" id="approve" form="op.deviceConfirmForm">Continue</button>
<button type="submit" id="deny" form="op.deviceConfirmForm" name="abort" value="yes">Deny</button>`);
    },
    successSource: async (ctx: { body: unknown }) => {
      ctx.body = page('Device signed in', '<p>The sign-in is complete. You can close this page and return to your terminal.</p>');
    },
  };
}

/**
 * Records device authorizations and the errors of device-code token requests (authorization_pending,
 * slow_down, …), and sets the `interval` of the device authorization response when configured
 * (RFC 8628 §3.2; oidc-provider sends none, so clients use the default 5 s).
 */
export function deviceFlowMiddleware(state: SandboxState, opts: { intervalSeconds?: number; authorizationPath: string; tokenPath: string }) {
  return async (ctx: any, next: () => Promise<void>) => {
    if (ctx.method !== 'POST' || (ctx.path !== opts.authorizationPath && ctx.path !== opts.tokenPath)) return next();
    await next();
    const body = ctx.body && typeof ctx.body === 'object' ? ctx.body : undefined;
    const counters = state.counters.deviceFlow;
    if (ctx.path === opts.authorizationPath) {
      if (ctx.status === 200 && body?.device_code) {
        counters.authorizations += 1;
        if (opts.intervalSeconds !== undefined) body.interval = opts.intervalSeconds;
      }
      return;
    }
    if (ctx.oidc?.params?.grant_type !== 'urn:ietf:params:oauth:grant-type:device_code') return;
    const outcome = typeof body?.error === 'string' ? body.error : ctx.status === 200 ? 'tokens' : `http_${ctx.status}`;
    counters.polls[outcome] = (counters.polls[outcome] ?? 0) + 1;
  };
}

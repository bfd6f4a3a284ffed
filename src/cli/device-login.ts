/**
 * `mcp-oauth login NAME --device`: the device grant's terminal side. The code and the URL go to
 * stderr (stdout stays clean for --json); nothing is opened, nothing is read from stdin.
 */
import type { CliContext } from './context.ts';
import type { BearerChallenge } from '../oauth/www-authenticate.ts';
import type { Credential, CredentialStore, ServerConfig } from '../types.ts';

export async function deviceLogin(
  ctx: CliContext,
  session: { server: ServerConfig; store: CredentialStore },
  opts: { scopes?: string[]; challenge?: BearerChallenge },
): Promise<Credential> {
  const [{ deviceSignIn }, { withTimeout, httpTimeoutFrom }] = await Promise.all([
    import('../signin/device-flow.ts'),
    import('../oauth/http.ts'),
  ]);
  const { server } = session;
  return deviceSignIn({
    server,
    store: session.store,
    // Each request has the usual deadline; the polling as a whole ends at the code's expires_in.
    fetch: withTimeout(ctx.fetch, httpTimeoutFrom(ctx.env)),
    env: ctx.env,
    logger: ctx.logger,
    scopes: opts.scopes,
    challenge: opts.challenge,
    onUserCode: (prompt) => {
      const minutes = Math.max(1, Math.round((prompt.expiresAt - Date.now()) / 60_000));
      const lines = [`To sign in to ${prompt.serverName}, visit ${prompt.verificationUri} and enter the code ${prompt.userCode}`];
      if (prompt.verificationUriComplete) lines.push(`  (or open ${prompt.verificationUriComplete})`);
      lines.push(`Waiting for you to finish signing in… the code expires in ${minutes} min (Ctrl-C to cancel)`);
      ctx.note(lines.join('\n'));
    },
  });
}

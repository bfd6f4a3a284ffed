/**
 * Sign-in without a person (MCP authorization extensions): client credentials (RFC 6749 §4.4),
 * a JWT bearer assertion from the workload's identity (RFC 7523 §2.1), and enterprise-managed
 * authorization (SEP-990: an ID-JAG from the company's IdP, presented with the JWT bearer grant).
 * Each obtains a token directly, so "refreshing" such a credential means running its grant again.
 * The protocol steps are in src/oauth/grants.ts; this module picks the grant and reads the
 * material the config names (a key file, an assertion file, variable or command) — never inline.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { McpOAuthError, loginCommand } from '../errors.ts';
import type { AuthorizationServerMetadata } from '../oauth/discovery.ts';
import type { ClientAuth } from '../oauth/tokens.ts';
import type { BearerChallenge } from '../oauth/www-authenticate.ts';
import type { Clock, Credential, CredentialStore, FetchLike, Logger, ServerConfig, TokenSet } from '../types.ts';
import type { BrowserMode } from './flow.ts';
import { planSignIn, storeSignedInCredential, type SignInPlan } from './finish.ts';
import { chooseGrant, isMachineGrant } from '../oauth/grant-choice.ts';

export { chooseGrant, configuresMachineGrant, isMachineGrant } from '../oauth/grant-choice.ts';

/**
 * The token endpoint client authentication the config provides (RFC 6749 §2.3, RFC 7523 §2.2):
 * `client_auth` when set, else private_key_jwt with a key, else a secret by the method the AS
 * prefers, else none. Keys and secrets come from files or environment variables only.
 */
export async function machineClientAuth(server: ServerConfig, env: NodeJS.ProcessEnv, plan: Pick<SignInPlan, 'issuer' | 'metadata'>): Promise<ClientAuth | undefined> {
  const o = server.oauth;
  if (!o.clientId) return undefined;
  const hasKey = Boolean(o.privateKeyFile || o.privateKeyEnvVar);
  const secret = o.clientSecretEnvVar ? env[o.clientSecretEnvVar] : undefined;
  if (o.clientSecretEnvVar && !secret && !hasKey) {
    throw new McpOAuthError('config_invalid', `The client secret for ${server.name} is read from $${o.clientSecretEnvVar}, which is not set.`, { hint: `export ${o.clientSecretEnvVar}=… and run the command again` });
  }
  const supported = plan.metadata.token_endpoint_auth_methods_supported;
  const method = o.clientAuth ?? (hasKey ? 'private_key_jwt' : secret ? (supported?.includes('client_secret_basic') || !supported ? 'client_secret_basic' : 'client_secret_post') : 'none');
  if (method === 'private_key_jwt') {
    const { importSigningKey, privateKeyJwtClient } = await import('../oauth/client-assertion.ts');
    const { text, source } = await readKeyMaterial(server, env);
    return privateKeyJwtClient({
      clientId: o.clientId,
      key: importSigningKey(text, source),
      issuer: plan.issuer,
      signingAlgValuesSupported: plan.metadata.token_endpoint_auth_signing_alg_values_supported as string[] | undefined,
    });
  }
  if (method === 'none') return { clientId: o.clientId, method };
  if (!secret) {
    throw new McpOAuthError('config_invalid', `${server.name} uses ${method}, but no client secret is configured.`, { hint: `set client_secret_env in [mcp_servers.${server.name}.oauth] to the name of the variable that holds it` });
  }
  return { clientId: o.clientId, clientSecret: secret, method };
}

async function readKeyMaterial(server: ServerConfig, env: NodeJS.ProcessEnv): Promise<{ text: string; source: string }> {
  const o = server.oauth;
  if (o.privateKeyEnvVar) {
    const text = env[o.privateKeyEnvVar];
    if (!text) throw new McpOAuthError('config_invalid', `The private key for ${server.name} is read from $${o.privateKeyEnvVar}, which is not set.`, { hint: `export ${o.privateKeyEnvVar}=… (a PEM or JWK) and run the command again` });
    return { text, source: `$${o.privateKeyEnvVar}` };
  }
  if (!o.privateKeyFile) throw new McpOAuthError('config_invalid', `${server.name} uses private_key_jwt but names no key.`, { hint: `set private_key_file (a PEM or JWK file) in [mcp_servers.${server.name}.oauth]` });
  try {
    return { text: await readFile(o.privateKeyFile, 'utf8'), source: `the file ${o.privateKeyFile}` };
  } catch (err) {
    throw new McpOAuthError('config_invalid', `Could not read the private key file ${o.privateKeyFile} for ${server.name} (${(err as NodeJS.ErrnoException).code ?? String(err)}).`, { hint: 'check private_key_file: the path and its permissions', cause: err });
  }
}

/**
 * The assertion for the JWT bearer grant, read fresh for every token request (a Kubernetes
 * projected token or a CI job's OIDC token is rotated under us): a file, a variable, or the
 * output of a command run without a shell.
 */
export async function readAssertion(server: ServerConfig, env: NodeJS.ProcessEnv): Promise<{ assertion: string; source: string }> {
  const o = server.oauth;
  if (o.assertionFile) {
    try {
      return { assertion: (await readFile(o.assertionFile, 'utf8')).trim(), source: `the file ${o.assertionFile}` };
    } catch (err) {
      throw new McpOAuthError('assertion_invalid', `Could not read the assertion file ${o.assertionFile} for ${server.name} (${(err as NodeJS.ErrnoException).code ?? String(err)}).`, { hint: 'check assertion_file: the workload token must be mounted there and readable', cause: err });
    }
  }
  if (o.assertionEnvVar) {
    const value = env[o.assertionEnvVar]?.trim();
    if (!value) throw new McpOAuthError('assertion_invalid', `The assertion for ${server.name} is read from $${o.assertionEnvVar}, which is not set.`, { hint: `export ${o.assertionEnvVar}=<the workload's JWT>` });
    return { assertion: value, source: `$${o.assertionEnvVar}` };
  }
  if (o.assertionCommand?.length) {
    const [command, ...args] = o.assertionCommand;
    const source = `the command ${JSON.stringify(o.assertionCommand.join(' '))}`;
    const output = await new Promise<string>((resolve, reject) => {
      execFile(command!, args, { timeout: 30_000, maxBuffer: 64 * 1024, env }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    }).catch((err: NodeJS.ErrnoException & { code?: unknown }) => {
      throw new McpOAuthError('assertion_invalid', `${source} failed for ${server.name} (${err.code === 'ENOENT' ? 'command not found' : err.message.split('\n')[0]}).`, { hint: 'run the command yourself to see why; fix assertion_command in the config', cause: err });
    });
    return { assertion: output.trim(), source };
  }
  throw new McpOAuthError('config_invalid', `${server.name} uses the JWT bearer grant but names no assertion.`, { hint: `set assertion_file, assertion_env or assertion_command in [mcp_servers.${server.name}.oauth]` });
}

export interface MachineSignInOptions {
  server: ServerConfig;
  store: CredentialStore;
  fetch: FetchLike;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  clock?: Clock;
  challenge?: BearerChallenge;
  scopes?: string[];
  /** The credential being renewed (its DPoP key is reused: tokens stay bound to one key). */
  previous?: Credential;
  /** For the enterprise IdP's one browser sign-in; false: signin_required when it is needed. */
  interactive?: false | { browser: BrowserMode; timeoutMs?: number; onAuthorizeUrl?: (url: string) => void };
  /** Persist the result (a first sign-in) or leave that to the caller (a renewal under its lock). */
  persist: boolean;
}

/** Runs the server's non-interactive grant and returns the credential (stored when `persist`). */
export async function machineSignIn(opts: MachineSignInOptions): Promise<Credential> {
  const { server, store, fetch, env, logger } = opts;
  const clock = opts.clock ?? Date.now;
  const plan = await planSignIn({ server, store, fetch, challenge: opts.challenge, scopes: opts.scopes, logger, machine: true });
  const grant = chooseGrant(server.oauth, plan.metadata);
  if (!isMachineGrant(grant)) throw new McpOAuthError('signin_required', `Sign-in required for ${server.name}: it needs a browser sign-in.`, { hint: loginCommand(server.name) });
  const client = await machineClientAuth(server, env, plan);
  const dpop = await dpopFor(server, plan, opts.previous?.key.issuer === plan.issuer ? opts.previous : undefined);
  const grants = await import('../oauth/grants.ts');
  const common = { tokenEndpoint: plan.metadata.token_endpoint, scopes: plan.scopes, resource: plan.sentResource, fetch, now: clock(), ...(dpop ? { dpop: { privateJwk: dpop.privateJwk } } : {}) };
  let tokens: TokenSet;
  if (grant === 'client_credentials') {
    if (!client) throw new McpOAuthError('config_invalid', `${server.name} uses the client credentials grant but has no client_id.`, { hint: `set client_id and client_secret_env (or private_key_file) in [mcp_servers.${server.name}.oauth]` });
    tokens = await grants.requestClientCredentialsToken({ ...common, client });
  } else if (grant === 'jwt_bearer') {
    const { assertion, source } = await readAssertion(server, env);
    grants.checkAssertion(assertion, clock(), source);
    tokens = await grants.requestJwtBearerToken({ ...common, assertion, assertionSource: source, client });
  } else {
    const { obtainIdJag } = await import('./enterprise.ts');
    const idJag = await obtainIdJag({ server, store, fetch, env, logger, clock, mcpIssuer: plan.issuer, resource: plan.sentResource, scopes: plan.scopes, interactive: opts.interactive ?? false });
    tokens = await grants.requestJwtBearerToken({ ...common, assertion: idJag.assertion, assertionSource: `the ID-JAG from ${server.oauth.enterprise?.issuer}`, client });
  }
  const credential = await storeSignedInCredential({
    server,
    store,
    plan,
    tokens,
    client: client ?? { clientId: '', method: 'none' },
    sentAuthorizeParams: {},
    missingRefreshTokenReason: `the ${grant} grant issues no refresh token; mcp-oauth runs the grant again before the token expires`,
    clock,
    logger,
    persist: opts.persist,
    extra: { grant, ...(dpop ? { dpop } : {}) },
  });
  delete credential.refreshTokenMissingReason;
  return credential;
}

/**
 * RFC 9449: a DPoP key when both servers can use it, or the config requires it. `auto` needs the
 * authorization server to offer it (`dpop_signing_alg_values_supported`, RFC 9449 §5.1) and the MCP
 * server to take DPoP-bound tokens (its RFC 9728 §2 metadata lists `dpop_signing_alg_values_supported`
 * or sets `dpop_bound_access_tokens_required`): a bound token at a resource server that only knows
 * Bearer would be refused. `required` at a server that cannot is a clear error. The key of the
 * credential being renewed is kept: every process, and every renewal, proves possession with it.
 */
export async function dpopFor(server: ServerConfig, plan: Pick<SignInPlan, 'issuer' | 'metadata' | 'found'>, previous?: Credential): Promise<Credential['dpop'] | undefined> {
  const mode = server.oauth.dpop ?? 'auto';
  if (mode === 'off') return undefined;
  const algs = plan.metadata.dpop_signing_alg_values_supported as string[] | undefined;
  if (!algs?.length) {
    if (mode === 'required') {
      throw new McpOAuthError('dpop_error', `${server.name} requires DPoP (dpop = "required"), but its authorization server ${plan.issuer} does not offer it (no dpop_signing_alg_values_supported).`, {
        hint: `set dpop = "auto" in [mcp_servers.${server.name}.oauth] to use bearer tokens with this server, or ask its operator to enable DPoP`,
      });
    }
    return undefined;
  }
  const prm = plan.found.resourceMetadata as { dpop_signing_alg_values_supported?: unknown; dpop_bound_access_tokens_required?: unknown } | undefined;
  const resourceTakesDpop = Array.isArray(prm?.dpop_signing_alg_values_supported) || prm?.dpop_bound_access_tokens_required === true;
  if (mode === 'auto' && !resourceTakesDpop) return undefined;
  if (previous?.dpop) return previous.dpop;
  const { chooseDpopAlg, generateDpopKey } = await import('../oauth/dpop.ts');
  const key = await generateDpopKey(chooseDpopAlg(algs, plan.issuer));
  return { privateJwk: key.privateJwk as Record<string, unknown>, thumbprint: key.thumbprint };
}

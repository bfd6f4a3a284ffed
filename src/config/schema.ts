// zod/mini: the same schemas as classic zod, in its tree-shakable functional form. The config is
// read on every start of the proxy, whose start-up is on the MCP client's clock.
import * as z from 'zod/mini';
import type { ServerConfig } from '../types.ts';
import { PROVIDER_NAMES } from '../oauth/quirks.ts';

const PROVIDER_CHOICES: string[] = [...PROVIDER_NAMES, 'none'];
/** How a token is obtained (src/types.ts Grant). */
export const GRANTS = ['authorization_code', 'client_credentials', 'jwt_bearer', 'enterprise'] as const;
export const CLIENT_AUTH_METHODS = ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const;

/**
 * The config file's shape: the single source of truth for what `config.toml` may contain.
 *
 * Servers use Codex CLI's `[mcp_servers.NAME]` shape so one file serves both tools; unknown keys
 * there are ignored (Codex has many more). Our own `[mcp_servers.NAME.oauth]` and `[settings]`
 * tables are strict, so a typo is reported instead of silently ignored.
 */

const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const SERVER_NAME = /^[A-Za-z0-9_-]+$/;

const text = (what = 'a string') => z.string({ error: `must be ${what}` });
const envVarName = () =>
  text('an environment variable name').check(z.regex(ENV_VAR_NAME, { error: 'must be an environment variable name (letters, digits, _)' }));
const stringTable = (what: string) => z.record(z.string(), text(), { error: `must be a table of ${what}` });
const wholeNumber = (error: string, min: number, max?: number) =>
  z.number({ error }).check(z.int({ error }), z.minimum(min, { error }), ...(max === undefined ? [] : [z.maximum(max, { error })]));

export function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

export function isRedisUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === 'redis:' || u.protocol === 'rediss:';
  } catch {
    return false;
  }
}

function hasPassword(value: string): boolean {
  try {
    return new URL(value).password !== '';
  } catch {
    return false;
  }
}

const httpUrl = () => text('an http(s) URL').check(z.refine(isHttpUrl, { error: 'must be an http(s) URL' }));

export const oauthTableSchema = z.strictObject(
  {
    client_id: z.optional(text().check(z.minLength(1, { error: 'must not be empty' }))),
    client_secret_env: z.optional(envVarName()),
    client_metadata_url: z.optional(httpUrl()),
    callback_port: z.optional(wholeNumber('must be a number from 1 to 65535', 1, 65535)),
    authorize_params: z.optional(stringTable('strings')),
    // A provider whose quirks to apply (src/oauth/quirks.ts), or "none"; a typo is reported.
    provider: z.optional(text().check(z.refine((v) => PROVIDER_CHOICES.includes(v.trim().toLowerCase()), { error: `must be one of ${PROVIDER_CHOICES.map((n) => `"${n}"`).join(', ')}` }))),
    // MCP says to refuse an authorization server whose metadata does not advertise PKCE S256;
    // true proceeds anyway (the user knows it supports S256, as Microsoft Entra ID does).
    assume_pkce: z.optional(z.boolean({ error: 'must be true or false' })),
    transport: z.optional(z.enum(['streamable-http', 'sse'], { error: 'must be "streamable-http" or "sse"' })),
    // Sign-in without a person (MCP authorization extensions): which grant, and the material it
    // needs. Secrets and keys only by reference (a file or an environment variable), never inline.
    grant: z.optional(z.enum(GRANTS, { error: `must be one of ${GRANTS.map((g) => `"${g}"`).join(', ')}` })),
    client_auth: z.optional(z.enum(CLIENT_AUTH_METHODS, { error: `must be one of ${CLIENT_AUTH_METHODS.map((g) => `"${g}"`).join(', ')}` })),
    private_key_file: z.optional(text('a file path').check(z.minLength(1, { error: 'must not be empty' }))),
    private_key_env: z.optional(envVarName()),
    assertion_file: z.optional(text('a file path').check(z.minLength(1, { error: 'must not be empty' }))),
    assertion_env: z.optional(envVarName()),
    assertion_command: z.optional(z.array(text(), { error: 'must be an array of strings (the command and its arguments)' }).check(z.minLength(1, { error: 'must name a command' }))),
    dpop: z.optional(z.enum(['auto', 'required', 'off'], { error: 'must be "auto", "required" or "off"' })),
    enterprise: z.optional(z.strictObject(
      {
        issuer: httpUrl(),
        client_id: text().check(z.minLength(1, { error: 'must not be empty' })),
        client_secret_env: z.optional(envVarName()),
        scopes: z.optional(z.array(text(), { error: 'must be an array of strings' })),
      },
      { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not a known enterprise setting' : 'must be a table with issuer and client_id') },
    )),
    // Refused with a clear message rather than "not a known setting": a secret must never be inline.
    private_key: z.optional(z.never({ error: 'keys are never written in the config: use private_key_file or private_key_env' })),
    assertion: z.optional(z.never({ error: 'assertions are never written in the config: use assertion_file, assertion_env or assertion_command' })),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not a known oauth setting' : 'must be a table') },
);

export const serverTableSchema = z.looseObject(
  {
    url: z.optional(httpUrl()),
    /** Codex stdio servers: not ours, but must not break parsing. */
    command: z.optional(text()),
    bearer_token_env_var: z.optional(envVarName()),
    http_headers: z.optional(stringTable('header = value strings')),
    env_http_headers: z.optional(z.record(z.string(), envVarName(), { error: 'must be a table of header = ENV_VAR_NAME' })),
    scopes: z.optional(z.array(text(), { error: 'must be an array of strings' })),
    oauth_resource: z.optional(httpUrl()),
    oauth: z.optional(oauthTableSchema),
  },
  { error: 'must be a table' },
);

export const settingsSchema = z.strictObject(
  {
    store: z.optional(z.enum(['auto', 'keychain', 'file', 'redis'], { error: 'must be "auto", "keychain", "file" or "redis"' })),
    // The shared Redis/Valkey store. A password never sits in the config file (it is read by
    // everyone who can read the config, and copied between hosts): MCP_OAUTH_REDIS_URL carries it.
    redis_url: z.optional(
      text('a redis:// or rediss:// URL').check(
        z.refine(isRedisUrl, { error: 'must be a redis:// or rediss:// URL' }),
        z.refine((v) => !hasPassword(v), {
          error: 'must not contain a password: put the whole URL with its password in the environment variable MCP_OAUTH_REDIS_URL instead',
        }),
      ),
    ),
    redis_key_file: z.optional(text('a file path')),
    refresh_margin_seconds: z.optional(wholeNumber('must be a whole number of seconds >= 0', 0)),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not a known setting' : 'must be a table') },
);

/**
 * `[gateway]`: where `mcp-oauth serve` listens. Loopback unless TLS is configured too (a bearer
 * secret in clear text must not cross a network; MCP spec "Transports: Security Warning": local
 * servers SHOULD bind only to localhost).
 */
export const gatewaySchema = z.strictObject(
  {
    host: z.optional(text('a host name or IP address').check(z.minLength(1, { error: 'must not be empty' }))),
    port: z.optional(wholeNumber('must be a TCP port (1-65535)', 1, 65535)),
    tls_cert_file: z.optional(text('a file path')),
    tls_key_file: z.optional(text('a file path')),
    /** Extra Host header names to accept (e.g. the name a TLS certificate is for). */
    allowed_hosts: z.optional(z.array(text(), { error: 'must be an array of host names' })),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not a known gateway setting' : 'must be a table') },
);

export const configFileSchema = z.looseObject({
  mcp_servers: z.optional(z.record(z.string(), serverTableSchema, { error: 'must be a table of servers' })),
  settings: z.optional(settingsSchema),
  gateway: z.optional(gatewaySchema),
});

export type ServerTable = z.infer<typeof serverTableSchema>;
export type ConfigFile = z.infer<typeof configFileSchema>;

/** A validated server table → the shared `ServerConfig` (only defined keys are set). */
export function toServerConfig(
  name: string,
  table: ServerTable,
  source: 'config' | 'codex',
  configFile: string,
): ServerConfig {
  const o = table.oauth ?? {};
  const oauth: ServerConfig['oauth'] = { authorizeParams: { ...(o.authorize_params ?? {}) } };
  if (o.client_id !== undefined) oauth.clientId = o.client_id;
  if (o.client_secret_env !== undefined) oauth.clientSecretEnvVar = o.client_secret_env;
  if (o.client_metadata_url !== undefined) oauth.clientMetadataUrl = o.client_metadata_url;
  if (o.callback_port !== undefined) oauth.callbackPort = o.callback_port;
  if (o.provider !== undefined) oauth.provider = o.provider;
  if (o.assume_pkce !== undefined) oauth.assumePkce = o.assume_pkce;
  if (o.transport !== undefined) oauth.transport = o.transport;
  if (o.grant !== undefined) oauth.grant = o.grant;
  if (o.client_auth !== undefined) oauth.clientAuth = o.client_auth;
  if (o.private_key_file !== undefined) oauth.privateKeyFile = o.private_key_file;
  if (o.private_key_env !== undefined) oauth.privateKeyEnvVar = o.private_key_env;
  if (o.assertion_file !== undefined) oauth.assertionFile = o.assertion_file;
  if (o.assertion_env !== undefined) oauth.assertionEnvVar = o.assertion_env;
  if (o.assertion_command !== undefined) oauth.assertionCommand = [...o.assertion_command];
  if (o.dpop !== undefined) oauth.dpop = o.dpop;
  if (o.enterprise !== undefined) {
    oauth.enterprise = { issuer: o.enterprise.issuer, clientId: o.enterprise.client_id };
    if (o.enterprise.client_secret_env !== undefined) oauth.enterprise.clientSecretEnvVar = o.enterprise.client_secret_env;
    if (o.enterprise.scopes !== undefined) oauth.enterprise.scopes = [...o.enterprise.scopes];
  }
  const config: ServerConfig = {
    name,
    url: table.url as string,
    source,
    configFile,
    httpHeaders: { ...(table.http_headers ?? {}) },
    envHttpHeaders: { ...(table.env_http_headers ?? {}) },
    oauth,
  };
  if (table.bearer_token_env_var !== undefined) config.bearerTokenEnvVar = table.bearer_token_env_var;
  if (table.scopes !== undefined) config.scopes = [...table.scopes];
  if (table.oauth_resource !== undefined) config.oauthResource = table.oauth_resource;
  return config;
}

/** A ServerConfig (or `add` options) → the TOML table written to config.toml. */
export function toServerTable(config: Omit<ServerConfig, 'source' | 'configFile'>): ServerTable {
  const table: Record<string, unknown> = { url: config.url };
  if (config.bearerTokenEnvVar) table.bearer_token_env_var = config.bearerTokenEnvVar;
  if (config.scopes) table.scopes = config.scopes;
  if (config.oauthResource) table.oauth_resource = config.oauthResource;
  if (Object.keys(config.httpHeaders).length) table.http_headers = config.httpHeaders;
  if (Object.keys(config.envHttpHeaders).length) table.env_http_headers = config.envHttpHeaders;
  const o = config.oauth;
  const oauth: Record<string, unknown> = {};
  if (o.clientId) oauth.client_id = o.clientId;
  if (o.clientSecretEnvVar) oauth.client_secret_env = o.clientSecretEnvVar;
  if (o.clientMetadataUrl) oauth.client_metadata_url = o.clientMetadataUrl;
  if (o.callbackPort !== undefined) oauth.callback_port = o.callbackPort;
  if (o.provider) oauth.provider = o.provider;
  if (o.assumePkce) oauth.assume_pkce = true;
  if (o.transport) oauth.transport = o.transport;
  if (Object.keys(o.authorizeParams).length) oauth.authorize_params = o.authorizeParams;
  if (Object.keys(oauth).length) table.oauth = oauth;
  return table as ServerTable;
}

import { join } from 'node:path';
import { parse, stringify } from 'smol-toml';
import { McpOAuthError } from '../errors.ts';
import { writeFileAtomic } from '../store/atomic-write.ts';
import { withFileLock } from '../store/lock.ts';
import { readConfigFile } from './parse.ts';
import { formatKeyPath } from './locate-key.ts';
import { configFilePath, mcpOAuthHome } from './paths.ts';
import { isHttpUrl, SERVER_NAME, serverTableSchema, toServerTable } from './schema.ts';

/**
 * Writes to our config.toml (never to Codex's). The file is parsed and re-serialized with
 * smol-toml: all entries and keys are kept, but COMMENTS AND FORMATTING ARE NOT PRESERVED — the
 * header line written at the top says so.
 */
const HEADER = '# mcp-oauth config. `mcp-oauth add` / `remove` rewrite this file: comments are not kept.\n\n';

export interface AddServerOptions {
  env: NodeJS.ProcessEnv;
  name: string;
  url: string;
  scopes?: string[];
  clientId?: string;
  clientSecretEnv?: string;
  clientMetadataUrl?: string;
  callbackPort?: number;
  authorizeParams?: Record<string, string>;
  provider?: string;
  bearerTokenEnvVar?: string;
  force?: boolean;
}

/** Adds (or with `force`, replaces) `[mcp_servers.NAME]`. `created` is false when an entry was replaced. */
export async function addServer(opts: AddServerOptions): Promise<{ file: string; created: boolean }> {
  if (!SERVER_NAME.test(opts.name)) {
    throw new McpOAuthError('usage', `invalid server name ${JSON.stringify(opts.name)}: use letters, digits, "-" and "_"`, {
      hint: `mcp-oauth add my-server ${opts.url}`,
    });
  }
  if (!isHttpUrl(opts.url)) {
    throw new McpOAuthError('usage', `invalid URL ${JSON.stringify(opts.url)}: the server URL must be http(s)`, {
      hint: `mcp-oauth add ${opts.name} https://example.com/mcp`,
    });
  }
  const table = toServerTable({
    name: opts.name,
    url: opts.url,
    httpHeaders: {},
    envHttpHeaders: {},
    ...(opts.scopes ? { scopes: opts.scopes } : {}),
    ...(opts.bearerTokenEnvVar ? { bearerTokenEnvVar: opts.bearerTokenEnvVar } : {}),
    oauth: {
      authorizeParams: opts.authorizeParams ?? {},
      clientId: opts.clientId,
      clientSecretEnvVar: opts.clientSecretEnv,
      clientMetadataUrl: opts.clientMetadataUrl,
      callbackPort: opts.callbackPort,
      provider: opts.provider,
    },
  });
  const checked = serverTableSchema.safeParse(table);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new McpOAuthError('usage', `${formatKeyPath(['mcp_servers', opts.name, ...issue.path])} ${issue.message}`, {
      hint: 'mcp-oauth add --help',
    });
  }
  return editConfig(opts.env, (servers, file) => {
    const existed = Object.hasOwn(servers, opts.name);
    if (existed && !opts.force) {
      throw new McpOAuthError('usage', `${file} already has a server named ${opts.name}`, {
        hint: `pass --force to replace it, or choose another name`,
      });
    }
    servers[opts.name] = table;
    return { created: !existed };
  });
}

/** Removes `[mcp_servers.NAME]` from our config; false when there was no such entry. */
export async function removeServer(opts: { env: NodeJS.ProcessEnv; name: string }): Promise<boolean> {
  const { removed } = await editConfig(opts.env, (servers) => {
    if (!Object.hasOwn(servers, opts.name)) return { removed: false, unchanged: true };
    delete servers[opts.name];
    return { removed: true };
  });
  return removed;
}

/** Read-modify-write of config.toml under a lock, so two concurrent `add`s keep both entries. */
async function editConfig<R extends object>(
  env: NodeJS.ProcessEnv,
  edit: (servers: Record<string, unknown>, file: string) => R,
): Promise<R & { file: string }> {
  const file = configFilePath(env);
  const home = mcpOAuthHome(env);
  return withFileLock(join(home, 'locks'), `config\0${file}`, async () => {
    // Validate first: never rewrite (and so silently "fix" or mangle) a file we cannot read.
    const current = await readConfigFile(file, 'ours');
    const raw = (current.exists ? parse(current.text) : {}) as Record<string, unknown>;
    const servers = (raw.mcp_servers ?? {}) as Record<string, unknown>;
    const result = edit(servers, file);
    if (!(result as { unchanged?: boolean }).unchanged) {
      if (Object.keys(servers).length) raw.mcp_servers = servers;
      else delete raw.mcp_servers;
      try {
        await writeFileAtomic(file, HEADER + stringify(raw) + '\n');
      } catch (e) {
        throw new McpOAuthError('config_invalid', `cannot write ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
          hint: `check that ${home} is writable`,
          cause: e,
        });
      }
    }
    return { ...result, file };
  });
}

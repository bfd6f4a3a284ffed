import { parse, requirePositional, type CliContext } from '../context.ts';
import { printJson } from '../output.ts';
import { McpOAuthError } from '../../errors.ts';

const USAGE =
  'mcp-oauth add NAME URL [--scopes a,b] [--client-id ID] [--client-secret-env VAR] [--client-metadata-url URL] [--callback-port N] [--authorize-param KEY=VALUE]... [--provider google] [--bearer-token-env-var VAR] [--force]';

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(
    ctx,
    argv,
    {
      scopes: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret-env': { type: 'string' },
      'client-metadata-url': { type: 'string' },
      'callback-port': { type: 'string' },
      'authorize-param': { type: 'string', multiple: true },
      provider: { type: 'string' },
      'bearer-token-env-var': { type: 'string' },
      force: { type: 'boolean' },
    },
    USAGE,
  );
  if (!args) return 0;
  const name = requirePositional(args.positionals, 0, 'NAME', USAGE);
  const url = requirePositional(args.positionals, 1, 'URL', USAGE);
  const v = args.values as Record<string, string | string[] | boolean | undefined>;
  const authorizeParams: Record<string, string> = {};
  for (const pair of (v['authorize-param'] as string[] | undefined) ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new McpOAuthError('usage', `--authorize-param takes KEY=VALUE, got "${pair}"`, { hint: `usage: ${USAGE}` });
    authorizeParams[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  let callbackPort: number | undefined;
  if (v['callback-port'] !== undefined) {
    callbackPort = Number(v['callback-port']);
    if (!Number.isInteger(callbackPort) || callbackPort < 1 || callbackPort > 65535) {
      throw new McpOAuthError('usage', `--callback-port must be a number from 1 to 65535, got "${v['callback-port']}"`);
    }
  }
  const { addServer } = await import('../../config/config.ts');
  const result = await addServer({
    env: ctx.env,
    name,
    url,
    scopes: typeof v.scopes === 'string' ? v.scopes.split(/[\s,]+/).filter(Boolean) : undefined,
    clientId: v['client-id'] as string | undefined,
    clientSecretEnv: v['client-secret-env'] as string | undefined,
    clientMetadataUrl: v['client-metadata-url'] as string | undefined,
    callbackPort,
    authorizeParams: Object.keys(authorizeParams).length ? authorizeParams : undefined,
    provider: v.provider as string | undefined,
    bearerTokenEnvVar: v['bearer-token-env-var'] as string | undefined,
    force: Boolean(v.force),
  });
  if (ctx.json) {
    printJson(ctx, { server: name, url, file: result.file, created: result.created });
    return 0;
  }
  ctx.out(`✓ ${result.created ? 'Added' : 'Updated'} ${name} (${url}) in ${result.file}.`);
  ctx.out(`Next: mcp-oauth login ${name}`);
  return 0;
}

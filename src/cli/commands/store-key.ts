/**
 * `mcp-oauth store-key create|import|export|status`: the encryption key of the Redis store
 * (src/store/redis-key.ts), one verb per intent. The key never passes through argv (other users
 * see it in `ps`) nor stderr/logs: `import` reads it from stdin, `export` writes it to stdout only.
 */
import { dirname, resolve } from 'node:path';
import { parse, type CliContext } from '../context.ts';
import { printJson } from '../output.ts';
import { McpOAuthError } from '../../errors.ts';
import { fsPromises } from '../../builtins.ts';
import type { RedisKey } from '../../store/redis-crypto.ts';
import type { KeychainSlot, RedisKeySource } from '../../store/redis-key.ts';

const USAGE = [
  'mcp-oauth store-key create [--keychain | --file PATH] [--force] [--json]  a new 256-bit key for the Redis store',
  '  mcp-oauth store-key import [--keychain | --file PATH] [--force] [--json]  store a key read from stdin (base64), from `export` on another host',
  '  mcp-oauth store-key export [--json]                                     print the key in use (base64) on stdout, to copy to other hosts',
  '  mcp-oauth store-key status [--json]                                     where the key comes from and its id (never the key)',
].join('\n');

const OPTIONS = {
  keychain: { type: 'boolean' },
  file: { type: 'string' },
  force: { type: 'boolean' },
} as const;

type KeyModule = typeof import('../../store/redis-key.ts');

export async function run(ctx: CliContext, argv: string[]): Promise<number> {
  const args = parse(ctx, argv, OPTIONS, USAGE);
  if (!args) return 0;
  const [verb, extra] = args.positionals;
  if (extra !== undefined) throw new McpOAuthError('usage', `unexpected argument "${extra}"`, { hint: `usage: ${USAGE}` });
  const keys = await import('../../store/redis-key.ts');
  const { keychain, file, force } = args.values;
  switch (verb) {
    case 'create':
    case 'import': {
      const text = verb === 'create' ? keys.generateRedisKeyText() : await readKeyFromStdin(ctx, keys);
      return write(ctx, keys, verb, text, { keychain: keychain === true, file, force: force === true });
    }
    case 'export':
    case 'status':
      if (keychain || file !== undefined || force) {
        throw new McpOAuthError('usage', `store-key ${verb} reads the key from where the store reads it; --keychain, --file and --force are for create and import`, { hint: `usage: ${USAGE}` });
      }
      return verb === 'export' ? exportKey(ctx, keys) : status(ctx, keys);
    default:
      throw new McpOAuthError('usage', verb ? `unknown store-key command "${verb}"` : 'missing a store-key command', { hint: `usage: ${USAGE}` });
  }
}

/** The id reported for an existing file that is not a readable key. */
const UNREADABLE = 'unknown: not a readable key';

interface Target {
  source: RedisKeySource;
  read(): Promise<Pick<RedisKey, 'id'> | undefined>;
  write(text: string): Promise<void>;
}

/** --file PATH, --keychain, else where the store would look first: redis_key_file when set, else the keychain. */
async function targetOf(ctx: CliContext, keys: KeyModule, opts: { keychain: boolean; file?: string }): Promise<Target> {
  if (opts.keychain && opts.file !== undefined) {
    throw new McpOAuthError('usage', 'choose one place for the key: --keychain or --file PATH', { hint: `usage: ${USAGE}` });
  }
  const path = opts.file !== undefined ? resolve(opts.file) : opts.keychain ? undefined : (await ctx.settings()).redisKeyFile;
  if (path !== undefined) return fileTarget(keys, path);
  const slot: KeychainSlot = keys.osKeychainSlot(ctx.env);
  return {
    source: keys.KEYCHAIN_SOURCE,
    async read() {
      const found = await slot.read();
      return 'value' in found ? keys.parseRedisKey(found.value, keys.describeKeySource(keys.KEYCHAIN_SOURCE)) : undefined;
    },
    write: (text) => slot.write(text),
  };
}

function fileTarget(keys: KeyModule, path: string): Target {
  return {
    source: { kind: 'file', path },
    async read() {
      try {
        await fsPromises().stat(path);
      } catch {
        return undefined;
      }
      // Exists but unreadable or not a key: still something not to overwrite silently.
      return keys.readKeyFile(path).catch(() => ({ id: UNREADABLE }));
    },
    async write(text) {
      // A new directory is owner-only; an existing one (a project dir, /etc/...) is left as it is.
      await fsPromises().mkdir(dirname(path), { recursive: true, mode: 0o700 });
      const { writeFileAtomic } = await import('../../store/atomic-write.ts');
      await writeFileAtomic(path, `${text}\n`, { mode: 0o600, privateDir: false });
    },
  };
}

async function write(ctx: CliContext, keys: KeyModule, verb: 'create' | 'import', text: string, opts: { keychain: boolean; file?: string; force: boolean }): Promise<number> {
  const target = await targetOf(ctx, keys, opts);
  const where = keys.describeKeySource(target.source);
  const existing = await target.read();
  const key = keys.parseRedisKey(text, verb === 'import' ? 'stdin' : 'the new key');
  if (existing && existing.id === key.id) {
    if (ctx.json) printJson(ctx, { action: 'unchanged', key_id: key.id, source: target.source });
    else ctx.out(`✓ ${where} already holds this key (id ${key.id}).`);
    return 0;
  }
  if (existing && !opts.force) {
    throw new McpOAuthError('usage', `${where} already holds a Redis store key (id ${existing.id}); not replacing it`, {
      hint: `add --force to replace it: values already in Redis that were sealed with key ${existing.id} can then no longer be read, and need a new sign-in`,
    });
  }
  await target.write(text);
  const notes = await precedenceNotes(ctx, keys, target.source);
  if (ctx.json) {
    printJson(ctx, { action: verb === 'create' ? 'created' : 'imported', key_id: key.id, source: target.source, ...(existing ? { replaced_key_id: existing.id } : {}), notes });
    return 0;
  }
  ctx.out(`✓ ${verb === 'create' ? 'Created a 256-bit key' : 'Imported the key'} (id ${key.id}) in ${where}${existing ? `, replacing key ${existing.id}` : ''}.`);
  for (const n of notes) ctx.out(`  ${n}`);
  if (verb === 'create') ctx.out('Every host that shares the Redis store needs this key: mcp-oauth store-key export | ssh HOST mcp-oauth store-key import');
  return 0;
}

/** What would still keep this key from being used: a source that wins over it, or a file not configured. */
async function precedenceNotes(ctx: CliContext, keys: KeyModule, source: RedisKeySource): Promise<string[]> {
  const notes: string[] = [];
  const settings = await ctx.settings();
  if (ctx.env[keys.REDIS_KEY_ENV]) notes.push(`${keys.REDIS_KEY_ENV} is set in this environment and wins over this key.`);
  if (source.kind === 'keychain' && settings.redisKeyFile) notes.push(`[settings] redis_key_file (${settings.redisKeyFile}) wins over the OS keychain.`);
  if (source.kind === 'file' && settings.redisKeyFile !== source.path) {
    const { configFilePath } = await import('../../config/paths.ts');
    notes.push(`To use it, set redis_key_file = ${JSON.stringify(source.path)} under [settings] in ${configFilePath(ctx.env)}.`);
  }
  return notes;
}

async function readKeyFromStdin(ctx: CliContext, keys: KeyModule): Promise<string> {
  const stdin = ctx.stdin as NodeJS.ReadStream;
  if (stdin.isTTY) ctx.note('Paste the key (base64, from `mcp-oauth store-key export` on another host), then press Ctrl-D:');
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  const raw = Buffer.concat(chunks);
  if (raw.toString('utf8').trim() === '') {
    throw new McpOAuthError('usage', 'no key on stdin', { hint: 'mcp-oauth store-key export | ssh HOST mcp-oauth store-key import' });
  }
  // Normalised to base64 text (a file may also hold the 32 raw bytes).
  return keys.parseRedisKey(raw, 'stdin').key.toString('base64');
}

async function exportKey(ctx: CliContext, keys: KeyModule): Promise<number> {
  const settings = await ctx.settings();
  const k = await keys.loadRedisKey({ env: ctx.env, keyFile: settings.redisKeyFile });
  // stdout only: this is the one place the key is printed, on purpose (as `mcp-oauth token`).
  if (ctx.json) printJson(ctx, { key: k.key.toString('base64'), key_id: k.id, source: k.source });
  else ctx.out(k.key.toString('base64'));
  return 0;
}

interface SourceState {
  source: RedisKeySource | { kind: 'file'; path?: undefined };
  state: 'present' | 'absent' | 'invalid' | 'unavailable';
  key_id?: string;
  reason?: string;
}

async function status(ctx: CliContext, keys: KeyModule): Promise<number> {
  const settings = await ctx.settings();
  const attempt = async (source: SourceState['source'], load: () => Promise<RedisKey | string>): Promise<SourceState> => {
    try {
      const r = await load();
      return typeof r === 'string' ? { source, state: 'absent', reason: r } : { source, state: 'present', key_id: r.id };
    } catch (e) {
      const err = e as McpOAuthError;
      return { source, state: err.code === 'keychain_unavailable' ? 'unavailable' : 'invalid', reason: err.message };
    }
  };
  const envValue = ctx.env[keys.REDIS_KEY_ENV];
  const sources: SourceState[] = [
    await attempt({ kind: 'env', variable: keys.REDIS_KEY_ENV }, async () => (envValue ? keys.parseRedisKey(envValue, keys.REDIS_KEY_ENV) : 'not set')),
    await attempt({ kind: 'file', path: settings.redisKeyFile }, async () => (settings.redisKeyFile ? keys.readKeyFile(settings.redisKeyFile) : 'not set')),
    await attempt(keys.KEYCHAIN_SOURCE, async () => {
      const found = await keys.osKeychainSlot(ctx.env).read();
      return 'value' in found ? keys.parseRedisKey(found.value, keys.describeKeySource(keys.KEYCHAIN_SOURCE)) : found.absent;
    }),
  ];
  let inUse;
  try {
    inUse = await keys.loadRedisKey({ env: ctx.env, keyFile: settings.redisKeyFile });
  } catch (e) {
    if (!ctx.json) for (const s of sources) ctx.out(sourceLine(keys, s, undefined));
    throw e;
  }
  if (ctx.json) {
    printJson(ctx, { key_id: inUse.id, source: inUse.source, sources });
    return 0;
  }
  ctx.out(`Redis store key ${inUse.id}, from ${keys.describeKeySource(inUse.source)}.`);
  for (const s of sources) ctx.out(sourceLine(keys, s, inUse.source.kind));
  const others = sources.filter((s) => s.state === 'present' && s.key_id !== inUse.id);
  if (others.length > 0) ctx.out('⚠ another source holds a different key; only the one in use decrypts the store.');
  return 0;
}

function sourceLine(keys: KeyModule, s: SourceState, inUseKind: string | undefined): string {
  const name = s.source.kind === 'env' ? keys.REDIS_KEY_ENV : s.source.kind === 'file' ? `redis_key_file${s.source.path ? ` ${s.source.path}` : ''}` : 'OS keychain';
  const what = s.state === 'present' ? `key ${s.key_id}${s.source.kind === inUseKind ? ' (in use)' : ''}` : s.state === 'absent' ? `none (${s.reason})` : `${s.state}: ${s.reason}`;
  return `  ${name}: ${what}`;
}

import { basename, dirname, join } from 'node:path';
import { crypto, fsPromises } from '../builtins.ts';

/**
 * Creates `dir` (and parents) owner-only (0700); tightens an existing dir that is group- or
 * world-accessible, because it holds credentials and lock files.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  const { chmod, mkdir, stat } = fsPromises();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (process.platform === 'win32') return;
  const st = await stat(dir);
  if ((st.mode & 0o077) !== 0) await chmod(dir, 0o700);
}

/**
 * Replaces `file` with `data` so that a reader (or a crash) sees either the old or the new
 * content, never a torn write: temp file in the same directory (same filesystem, so rename is
 * atomic) created with its final mode from the start (no window where a secret is readable by
 * others), fsync, rename, fsync of the directory so the rename itself is durable.
 *
 * Defaults are for our own secrets: mode 0600 in an owner-only (0700) directory. Other programs'
 * files (an MCP client's config) pass their existing `mode` and `privateDir: false`.
 */
export async function writeFileAtomic(file: string, data: string, opts: { mode?: number; privateDir?: boolean } = {}): Promise<void> {
  const { chmod, mkdir, open, rename, unlink } = fsPromises();
  const dir = dirname(file);
  const mode = opts.mode ?? 0o600;
  if (opts.privateDir === false) await mkdir(dir, { recursive: true });
  else await ensurePrivateDir(dir);
  const temp = join(dir, `.${basename(file)}.${process.pid}.${crypto().randomBytes(6).toString('hex')}.tmp`);
  let renamed = false;
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      // open()'s mode is filtered by the umask; chmod sets the exact bits.
      if (process.platform !== 'win32') await handle.chmod(mode);
      await handle.writeFile(data, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
    renamed = true;
    await syncDir(dir);
  } finally {
    if (!renamed) await unlink(temp).catch(() => {});
  }
}

async function syncDir(dir: string): Promise<void> {
  const { open } = fsPromises();
  if (process.platform === 'win32') return;
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename has still happened.
  } finally {
    await handle?.close();
  }
}

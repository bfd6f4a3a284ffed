import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, copyFile, mkdir, open, realpath, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { McpOAuthError } from '../errors.ts';
import { writeFileAtomic } from '../store/atomic-write.ts';

/**
 * Reading, backing up and atomically rewriting an MCP client's config file.
 *
 * Not `writeFileAtomic` from src/store/atomic-write.ts: that one is for our credential files and
 * forces 0600 and a 0700 parent directory (it would chmod e.g. ~/.config/Code/User). A client's
 * config keeps its own mode and its directory is left alone.
 */

export interface ExistingFile {
  text: string;
  /** Permission bits of the current file (kept on rewrite and on the backup). */
  mode: number;
  /** The file behind any symlink: dotfile managers often symlink client configs; we replace the target, not the link. */
  realPath: string;
}

/** Mode of a config file we create: owner-only, because MCP configs often hold API keys in `env`. */
export const NEW_FILE_MODE = 0o600;

export async function readExisting(file: string): Promise<ExistingFile | undefined> {
  let realPath: string;
  try {
    realPath = await realpath(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw cannot('read', file, e);
  }
  try {
    const handle = await open(realPath, 'r');
    try {
      const st = await handle.stat();
      const text = await handle.readFile('utf8');
      return { text, mode: st.mode & 0o7777, realPath };
    } finally {
      await handle.close();
    }
  } catch (e) {
    throw cannot('read', file, e);
  }
}

/** `<file>.bak-<UTC timestamp>` next to `file`, same mode; never overwrites an older backup. */
export async function backupFile(file: string, existing: ExistingFile, now: Date): Promise<string> {
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  for (let n = 0; ; n++) {
    const backup = `${file}.bak-${stamp}${n ? `-${n}` : ''}`;
    try {
      await copyFile(existing.realPath, backup, constants.COPYFILE_EXCL);
      await chmod(backup, existing.mode);
      return backup;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && n < 100) continue;
      throw cannot('back up', file, e);
    }
  }
}

/**
 * Replaces the file so that the client (which may read it at any moment) sees the old or the new
 * content, never a torn write, with the mode the old file had. Missing parent directories are
 * created (a fresh machine has no ~/.cursor yet), with default permissions: they are the client's.
 */
export async function writeFileKeepingMode(target: string, text: string, mode: number): Promise<void> {
  try {
    await writeFileAtomic(target, text, { mode, privateDir: false });
  } catch (e) {
    throw cannot('write', target, e);
  }
}

function cannot(action: string, file: string, e: unknown): McpOAuthError {
  if (e instanceof McpOAuthError) return e;
  const code = (e as NodeJS.ErrnoException).code ?? 'error';
  return new McpOAuthError('config_invalid', `cannot ${action} ${file} (${code})`, {
    hint: `check the permissions of ${file} and its directory, or pass --config-file PATH`,
    cause: e,
  });
}

/**
 * Which of our child processes owns a TCP connection to 127.0.0.1, from the client's port as the
 * server saw it (Linux /proc: the socket's inode in /proc/net/tcp{,6}, then the process whose
 * /proc/PID/fd links to `socket:[inode]`). The kill run uses it to kill exactly the process whose
 * refresh the fault layer holds. Elsewhere it finds nothing and the kill run says so.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';

/** `0100007F:1F90` → 8080. */
function portOf(address: string): number {
  return parseInt(address.split(':')[1] ?? '', 16);
}

async function inodeOf(localPort: number, remotePort: number): Promise<string | undefined> {
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      if (portOf(fields[1]!) === localPort && portOf(fields[2]!) === remotePort) return fields[9];
    }
  }
  return undefined;
}

/** The pid among `candidates` holding the connection from `clientPort` to `serverPort`, if any. */
export async function pidOwningConnection(clientPort: number, serverPort: number, candidates: number[]): Promise<number | undefined> {
  const inode = await inodeOf(clientPort, serverPort);
  if (!inode || inode === '0') return undefined;
  const link = `socket:[${inode}]`;
  for (const pid of candidates) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === link) return pid;
    }
  }
  return undefined;
}

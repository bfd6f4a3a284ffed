/**
 * The MCP stdio transport, server side (MCP spec "Transports: stdio"): newline-delimited JSON-RPC
 * on stdin and stdout. stdout carries protocol messages and nothing else.
 */
import type { Readable, Writable } from 'node:stream';

/** Calls `onLine` for every line of `input`; resolves when the input ends (the client went away). */
export function readLines(input: Readable, onLine: (line: string) => void): Promise<void> {
  // Not `import … from 'node:readline'`: its ESM facade also loads readline/promises, on the
  // proxy's start-up clock.
  const { createInterface } = process.getBuiltinModule('node:readline');
  return new Promise((resolve) => {
    const lines = createInterface({ input, crlfDelay: Infinity, terminal: false });
    lines.on('line', (line) => {
      if (line.trim()) onLine(line);
    });
    lines.once('close', () => resolve());
  });
}

export interface LineWriter {
  write(line: string): void;
}

/**
 * Writes one line per message. A broken pipe (the client died) is reported once through
 * `onBroken`, never thrown: the proxy shuts down instead of crashing.
 */
export function createLineWriter(output: Writable, onBroken: (err: Error) => void): LineWriter {
  let broken = false;
  output.on('error', (err) => {
    if (broken) return;
    broken = true;
    onBroken(err);
  });
  return {
    write(line) {
      if (broken) return;
      output.write(line + '\n');
    },
  };
}

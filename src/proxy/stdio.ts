/**
 * The MCP stdio transport, server side (MCP spec "Transports: stdio"): newline-delimited JSON-RPC
 * on stdin and stdout. stdout carries protocol messages and nothing else.
 */
import type { Readable, Writable } from 'node:stream';

/**
 * Calls `onLine` for every line of `input`; resolves when the input ends (the client went away).
 * A hand-rolled splitter rather than node:readline: MCP's stdio framing is exactly "one message
 * per line, no embedded newlines", and readline drags in its REPL history, keypress and promise
 * modules on the proxy's start-up clock.
 */
export function readLines(input: Readable, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve) => {
    let pending = '';
    const emit = (line: string) => {
      const text = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (text.trim()) onLine(text);
    };
    input.setEncoding('utf8');
    input.on('data', (chunk: string) => {
      pending += chunk;
      let start = 0;
      for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n', start)) {
        emit(pending.slice(start, nl));
        start = nl + 1;
      }
      pending = pending.slice(start);
    });
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      if (pending) emit(pending);
      pending = '';
      resolve();
    };
    input.once('end', finish);
    input.once('close', finish);
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

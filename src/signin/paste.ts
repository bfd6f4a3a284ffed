import { createInterface } from 'node:readline';
import { McpOAuthError } from '../errors.ts';
import { parseRedirectedUrl } from './loopback.ts';

/**
 * The --no-browser path (RFC 8252 §7.3 still applies: the redirect goes to our loopback URI; when
 * the browser runs elsewhere, that page fails to load and the user pastes its address here).
 * The caller races this against the callback server and aborts the loser via `signal`.
 */
export interface ReadRedirectOptions {
  input: NodeJS.ReadableStream;
  /** Where the prompt goes: stderr in the CLI (stdout may be a protocol stream). */
  output: NodeJS.WritableStream;
  redirectUri: string;
  signal?: AbortSignal;
}

export function readRedirectFromStdin(opts: ReadRedirectOptions): Promise<URLSearchParams> {
  const { input, output, redirectUri, signal } = opts;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<URLSearchParams>((resolve, reject) => {
    const rl = createInterface({ input, terminal: false, crlfDelay: Infinity });
    let done = false;
    const finish = (fn: () => void): void => {
      if (done) return;
      done = true;
      signal?.removeEventListener('abort', onAbort);
      rl.close();
      // Stop reading and let the process exit: an open stdin pipe (the user's terminal, or a
      // parent process that keeps it open) would otherwise keep the event loop alive forever.
      (input as { pause?: () => void }).pause?.();
      (input as { unref?: () => void }).unref?.();
      fn();
    };
    const onAbort = (): void => finish(() => reject(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });

    const prompt = (): void => {
      output.write(`Paste the URL your browser was redirected to (it starts with ${redirectUri}):\n`);
    };

    rl.on('line', (line) => {
      if (done) return;
      if (!line.trim()) return; // stray Enter: keep waiting quietly
      try {
        const params = parseRedirectedUrl(line, redirectUri);
        finish(() => resolve(params));
      } catch (err) {
        // Say why (never echoing the line: it may hold a code) and ask again.
        const why = err instanceof McpOAuthError ? err.message : String(err);
        output.write(`That did not work: ${why}.\n`);
        prompt();
      }
    });
    rl.on('close', () =>
      finish(() =>
        reject(
          new McpOAuthError('signin_timeout', 'no URL was pasted (input ended)', {
            hint: 'run the command again and paste the address your browser was redirected to',
          }),
        ),
      ),
    );
    prompt();
  });
}

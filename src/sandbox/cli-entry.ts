// `mcp-oauth sandbox` / `npm run demo`: start the sandbox and say how to use it.
import { startSandbox } from './index.ts';
import type { Sandbox, SandboxOptions } from './types.ts';

export async function runSandboxCommand(opts: SandboxOptions, out: (line: string) => void): Promise<Sandbox> {
  const sandbox = await startSandbox(opts);
  out(`Authorization server: ${sandbox.issuer}`);
  out(`MCP server:           ${sandbox.mcpUrl}`);
  if (sandbox.googleClient) {
    out(`Pre-registered client (googleMode): client_id ${sandbox.googleClient.clientId} (secret shown only via the API)`);
  }
  if (opts.autoApprove === false) out('Sign in with username "demo" and password "demo", then approve.');
  out(`Next: mcp-oauth login ${sandbox.mcpUrl}   (Ctrl-C stops the sandbox)`);
  return sandbox;
}

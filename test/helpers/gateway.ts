// The gateway (`mcp-oauth serve`) as a child process, and MCP clients that reach it over HTTP.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { request } from 'node:http';
import { Client } from '@modelcontextprotocol/client';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { cliPath, makeHome, ok, runCli, writeConfig, type TestHome } from './e2e.ts';
import { startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/index.ts';
import { FileCredentialStore } from '../../src/store/file-store.ts';
import { gatewaySecret } from '../../src/gateway/secret.ts';

export interface RunningServe {
  child: ChildProcessWithoutNullStreams;
  url: string;
  pid: number;
  servers: string[];
  stderr(): string;
  stop(): Promise<number | null>;
}

/** Starts `mcp-oauth serve --port 0 --json` and resolves when it listens. */
export function startServe(env: NodeJS.ProcessEnv, args: string[] = []): Promise<RunningServe> {
  const child = spawn(process.execPath, [cliPath, 'serve', '--port', '0', '--json', ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start\n${stderr}`)), 30_000);
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}\n${stderr}`)));
    child.stdout.on('data', (d) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl === -1) return;
      clearTimeout(timer);
      const info = JSON.parse(stdout.slice(0, nl)) as { url: string; pid: number; servers: string[] };
      resolve({
        child,
        ...info,
        stderr: () => stderr,
        async stop() {
          if (child.exitCode === null) child.kill('SIGTERM');
          return exited;
        },
      });
    });
  });
}

/** The gateway secret of a test home (file store). */
export async function secretOf(home: string): Promise<string> {
  return (await gatewaySecret(new FileCredentialStore(home), { create: true }))!;
}

export function endpoint(base: string, name: string): string {
  return `${base}/servers/${name}/mcp`;
}

/** An SDK v2 client through the gateway; mode 'legacy' speaks 2025-11-25 (initialize, a session). */
export async function gatewayClient(url: string, secret: string, mode: 'auto' | 'legacy' = 'auto', name = 'gateway-test') {
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${secret}` } } });
  const client = new Client({ name, version: '1.0.0' }, { capabilities: { elicitation: {} }, versionNegotiation: { mode } });
  client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { answer: 'green' } }));
  await client.connect(transport);
  return { client, transport };
}

/** A raw HTTP request, with any Host / Origin header (fetch may not set Host). */
export function rawRequest(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'POST', headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface GatewayOnSandbox {
  sb: Sandbox;
  h: TestHome;
  serve: RunningServe;
  secret: string;
  close(): Promise<void>;
}

/** A sandbox configured as server `demo` in a test home, signed in or not, and a gateway serving it. */
export async function gatewayOnSandbox(opts: { sandbox?: SandboxOptions; env?: NodeJS.ProcessEnv; login?: boolean; serveArgs?: string[] } = {}): Promise<GatewayOnSandbox> {
  const sb = await startSandbox(opts.sandbox);
  const h = await makeHome(opts.env);
  await writeConfig(h.home, `[mcp_servers.demo]\nurl = "${sb.mcpUrl}"\n`);
  if (opts.login) ok(await runCli(['login', 'demo'], { env: h.env }), 'login');
  const serve = await startServe(h.env, opts.serveArgs);
  return {
    sb,
    h,
    serve,
    secret: await secretOf(h.home),
    async close() {
      await serve.stop();
      await h.cleanup();
      await sb.close();
    },
  };
}

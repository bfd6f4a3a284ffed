// Bundles the command line into dist/bundle/ (esbuild, ESM, code-split so each command still loads
// lazily). Why a bundle: the proxy's start-up is on the MCP client's clock, and loading ~180
// modules one by one (zod alone pulls in every locale it ships) costs more than Node's own boot.
// Bundling tree-shakes zod to what our schemas use. The library keeps tsc's per-file output
// (dist/index.js + .d.ts); only bin/mcp-oauth.js runs the bundle.
import { build } from 'esbuild';
import { rm } from 'node:fs/promises';

const outdir = new URL('../dist/bundle/', import.meta.url).pathname;
await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: [new URL('../src/cli/main.ts', import.meta.url).pathname],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  // Native addons, the sandbox's authorization server and the MCP SDKs stay ordinary imports:
  // they are loaded lazily by the commands that need them, never on the proxy's hot path.
  external: ['@napi-rs/keyring', 'oidc-provider', 'playwright-core', '@modelcontextprotocol/*', 'open', 'jose'],
  // jsonc-parser's default entry is UMD with runtime require()s of its own files; use its ESM build.
  alias: { 'jsonc-parser': 'jsonc-parser/lib/esm/main.js' },
  // proper-lockfile and its helpers are CommonJS and call require() for Node built-ins.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
});

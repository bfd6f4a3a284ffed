#!/usr/bin/env node
// mcp-oauth needs Node.js 22.18+. It runs the bundle in dist/bundle/ (built by `npm install`
// through the `prepare` script, or `npm run build`): loading the TypeScript sources one by one
// through Node's type stripping costs several hundred ms per start, and the stdio proxy's clients
// wait for its start-up.
// MCP_OAUTH_SOURCE=1 runs the TypeScript sources directly (development without a build).
// Built-ins through getBuiltinModule, not ESM imports: `import … from 'node:fs'` evaluates every
// export of fs, `fs.promises` included, which loads readline and the REPL history on each start.
const { existsSync } = process.getBuiltinModule('node:fs');
const module = process.getBuiltinModule('node:module');

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`mcp-oauth needs Node.js 22.18 or newer; this is ${process.versions.node}.\n`);
  process.exit(1);
}
// Node's on-disk compile cache (V8 code cache) skips re-parsing our modules and zod on every start.
module.enableCompileCache?.();
const compiled = new URL('../dist/bundle/main.js', import.meta.url);
const entry = process.env.MCP_OAUTH_SOURCE !== '1' && existsSync(compiled) ? compiled.href : new URL('../src/cli/main.ts', import.meta.url).href;
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));

#!/usr/bin/env node
// mcp-oauth needs Node.js 22.18+ (TypeScript sources run with Node's type stripping).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`mcp-oauth needs Node.js 22.18 or newer; this is ${process.versions.node}.\n`);
  process.exit(1);
}
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));

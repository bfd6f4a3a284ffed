// Tests run on the Node.js that the `node` devDependency provides (npm puts it first on PATH in
// scripts). Fail early, with the fix, when an older Node is picked up instead.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(`mcp-oauth needs Node.js 22.18 or newer (found ${process.versions.node}). Run \`npm install\` so that npm scripts use the bundled Node 24.`);
  process.exit(1);
}

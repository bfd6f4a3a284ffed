// The README's quick start: `npm run demo` signs in to the sandbox headlessly and keeps calling a
// tool across several token expiries, refreshing before each expiry, with no failed call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeHome, runCli } from './helpers/e2e.ts';

test('demo: headless sign-in, calls across expiries, each refresh reported, ends with status', async () => {
  const home = await makeHome();
  try {
    const r = await runCli(['demo', '--seconds', '9', '--access-ttl', '3', '--interval', '1'], { env: home.env, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /✓ signed in/);
    const refreshLines = r.stdout.split('\n').filter((l) => l.includes('↻'));
    assert.ok(refreshLines.length >= 2, `expected at least 2 refreshes in 9 s of 3-s tokens:\n${r.stdout}`);
    assert.match(r.stdout, /\d+ calls, 0 failed/);
    // A 401 can still happen on a loaded machine (a 3-s token that expires in flight); it is then
    // refreshed and retried, which the "0 failed" above proves. The count is reported either way.
    assert.match(r.stdout, /the MCP server answered \d+ × 401/);
    assert.match(r.stdout, /\$ mcp-oauth status sandbox[\s\S]*Refresh token:\s+sha256:/);
    assert.doesNotMatch(r.stderr, /oidc-provider WARNING/);
  } finally {
    await home.cleanup();
  }
});

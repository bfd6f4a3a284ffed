/**
 * The CLI's own MCP client across both eras (issue "Speak MCP 2026-07-28 on the wire", item 2):
 * `tools`, `call` and `doctor` negotiate 2026-07-28 with a server that offers it and fall back to
 * 2025-11-25 with one that does not; `doctor` shows the era and the headers it sent.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startSandbox } from '../src/sandbox/index.ts';
import { makeHome, ok, runCli } from './helpers/e2e.ts';

for (const protocol of ['2026-07-28', '2025-11-25'] as const) {
  describe(`against a ${protocol}-only server`, () => {
    it('tools, call and doctor work, in that era', async () => {
      const sb = await startSandbox({ protocol });
      const h = await makeHome();
      try {
        const from = sb.counters.mcpLog.length;
        const tools = JSON.parse(ok(await runCli(['tools', sb.mcpUrl, '--json'], { env: h.env }), 'tools').stdout);
        const names: string[] = tools.tools.map((t: { name: string }) => t.name);
        assert.ok(names.includes('echo') && names.includes('route'));
        const call = ok(await runCli(['call', sb.mcpUrl, 'route', '{"region":"ap-south","dryRun":true}'], { env: h.env }), 'call');
        assert.match(call.stdout, /ap-south/);
        const doctor = JSON.parse(ok(await runCli(['doctor', sb.mcpUrl, '--json'], { env: h.env }), 'doctor').stdout);
        const connect = doctor.steps.find((s: { step: string }) => s.step.startsWith('connect'));
        assert.equal(connect.data.protocol_version, protocol);
        assert.equal(connect.data.era, protocol === '2026-07-28' ? 'modern' : 'legacy');
        const headers = doctor.steps.find((s: { step: string }) => s.step === 'tools/list').data.headers_sent;
        assert.equal(headers['mcp-protocol-version'], protocol);
        assert.equal(headers['mcp-method'], protocol === '2026-07-28' ? 'tools/list' : undefined);
        const seen = sb.counters.mcpLog.slice(from).filter((e) => e.authorization);
        // The era probe (server/discover) is the one request a 2025 server refuses; nothing else is.
        const refused = seen.filter((e) => e.status >= 400 && !(protocol === '2025-11-25' && e.rpcMethods[0] === 'server/discover'));
        assert.deepEqual(refused, []);
        if (protocol === '2026-07-28') {
          const routed = seen.find((e) => e.reachedTool === 'route')!;
          assert.equal(routed.mcpHeaders['mcp-param-region'], 'ap-south');
          assert.equal(routed.mcpHeaders['mcp-param-dry-run'], 'true');
        }
      } finally {
        await h.cleanup();
        await sb.close();
      }
    });
  });
}

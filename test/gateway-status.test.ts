/**
 * `list`, `status NAME` and `doctor NAME` show the gateway (issue 9): not running (no state file,
 * or one left by a process that is gone), and running — the real `mcp-oauth serve --port 0 --json`
 * against the sandbox, whose own JSON line gives the URL and pid the commands must report.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { makeHome, runCli, writeConfig, type TestHome } from './helpers/e2e.ts';
import { startServe, type RunningServe } from './helpers/gateway.ts';

async function json(h: TestHome, args: string[]): Promise<any> {
  const r = await runCli([...args, '--json'], { env: h.env });
  assert.ok(r.stdout.trim().startsWith('{'), `${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function human(h: TestHome, args: string[]): Promise<string> {
  return (await runCli(args, { env: h.env })).stdout;
}

describe('status, list and doctor show the gateway', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await startSandbox();
  });
  after(async () => {
    await sb?.close();
  });

  async function home(): Promise<TestHome> {
    const h = await makeHome();
    await writeConfig(h.home, `[mcp_servers.demo]\nurl = "${sb.mcpUrl}"\n\n[mcp_servers.other]\nurl = "${sb.mcpUrl}"\n`);
    return h;
  }

  it('not running: list, status and doctor say so and how to start it; doctor does not fail on it', async () => {
    const h = await home();
    try {
      const listed = await json(h, ['list']);
      assert.deepEqual(listed.gateway, { running: false, url: null, pid: null, servers: [], detail: 'not running (start it with: mcp-oauth serve)' });
      assert.match(await human(h, ['list']), /^Gateway: not running \(start it with: mcp-oauth serve\)$/m);

      const status = await json(h, ['status', 'demo']);
      assert.deepEqual(status.gateway, { running: false, served: false, endpoint: null, url: null, pid: null, detail: 'not running (start it with: mcp-oauth serve)' });
      assert.match(await human(h, ['status', 'demo']), /^ {2}Gateway: +not running \(start it with: mcp-oauth serve\); only clients installed with --gateway need it$/m);

      const doctor = await json(h, ['doctor', 'demo']);
      const step = doctor.steps.find((s: { step: string }) => s.step === 'gateway');
      assert.equal(step.ok, 'skip', 'informational: not a failure');
      assert.match(step.detail, /not running/);
      assert.equal(step.data.running, false);

      // A state file left by a gateway that died is not taken for a running one.
      await writeFile(join(h.home, 'gateway.json'), JSON.stringify({ pid: 2 ** 22 + 12345, url: 'http://127.0.0.1:1', startedAt: new Date().toISOString(), servers: ['demo'], tls: false }));
      const stale = await json(h, ['list']);
      assert.equal(stale.gateway.running, false);
      assert.match(stale.gateway.detail, /process \d+ is gone/);
      assert.deepEqual(stale.gateway.servers, []);
    } finally {
      await h.cleanup();
    }
  });

  describe('running: the real `mcp-oauth serve`', () => {
    let h: TestHome;
    let serve: RunningServe;
    before(async () => {
      h = await home();
      serve = await startServe(h.env);
    });
    after(async () => {
      await serve?.stop();
      await h?.cleanup();
    });

    it('list: its URL, pid and the servers it serves (--json and human)', async () => {
      const listed = await json(h, ['list']);
      assert.deepEqual(listed.gateway, { running: true, url: serve.url, pid: serve.pid, servers: ['demo', 'other'], detail: `running at ${serve.url} (pid ${serve.pid})` });
      assert.ok((await human(h, ['list'])).includes(`Gateway: running at ${serve.url} (pid ${serve.pid}), serving demo, other`));
    });

    it('status NAME: served, at its endpoint; a bare URL is not served', async () => {
      const endpoint = `${serve.url}/servers/demo/mcp`;
      const status = await json(h, ['status', 'demo']);
      assert.deepEqual(status.gateway, { running: true, served: true, endpoint, url: serve.url, pid: serve.pid, detail: `serves demo at ${endpoint} (gateway pid ${serve.pid})` });
      assert.ok((await human(h, ['status', 'demo'])).includes(`  Gateway:        serves demo at ${endpoint}`));
      const bare = await json(h, ['status', sb.mcpUrl]);
      assert.equal(bare.gateway.running, true);
      assert.equal(bare.gateway.served, false);
      assert.equal(bare.gateway.endpoint, null);
      assert.match(bare.gateway.detail, /mcp-oauth add NAME/);
    });

    it('doctor NAME: a passing "gateway" step with the endpoint', async () => {
      const doctor = await json(h, ['doctor', 'other']);
      const step = doctor.steps.find((s: { step: string }) => s.step === 'gateway');
      assert.equal(step.ok, true);
      assert.equal(step.data.endpoint, `${serve.url}/servers/other/mcp`);
      assert.equal(step.data.pid, serve.pid);
      assert.match(await human(h, ['doctor', 'other']), new RegExp(`^✓ gateway: serves other at ${serve.url.replace(/\./g, '\\.')}/servers/other/mcp`, 'm'));
    });
  });
});

// The benchmark harness end to end with tiny counts: the bench server, the four targets (no
// proxy, `mcp-oauth proxy`, the `mcp-oauth serve` gateway, mcp-remote), every figure set including
// the fleet (many client connections: one gateway versus a process each), the tables and the JSON,
// in both protocol eras. No timing or memory figure is asserted; what is asserted is that every
// figure was measured, that in the 2025-11-25 era the proxy and the gateway opened exactly one
// upstream session per client and ended it with a DELETE when the client went, and that in the
// 2026-07-28 era both spoke to a strict server without a refused request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './helpers/e2e.ts';
import { startBenchServer } from '../bench/server.ts';

const FIGURES = [
  'coldInitializeMs',
  'coldToolsListMs',
  'latencyP50Ms',
  'latencyP99Ms',
  'throughputCallsPerSecond',
  'bigResultMs',
  'idleRssMiB',
  'sessionsPerStart',
  'deletesPerExit',
];

test('the bench server checks the bearer token and counts sessions and DELETEs', async () => {
  const server = await startBenchServer({ token: 'right-token' });
  try {
    const initialize = (auth: string) =>
      fetch(server.url, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
      });
    const denied = await initialize('Bearer wrong-token');
    assert.equal(denied.status, 401);
    assert.match(denied.headers.get('www-authenticate') ?? '', /^Bearer /);
    const ok = await initialize('Bearer right-token');
    assert.equal(ok.status, 200);
    await ok.text();
    const sessionId = ok.headers.get('mcp-session-id');
    assert.ok(sessionId, 'a session id');
    const deleted = await fetch(server.url, { method: 'DELETE', headers: { authorization: 'Bearer right-token', 'mcp-session-id': sessionId } });
    assert.equal(deleted.status, 200);
    const stats = await server.stats();
    assert.equal(stats.unauthorized, 1);
    assert.equal(stats.sessionsCreated, 1);
    assert.equal(stats.deletes, 1);
  } finally {
    await server.close();
  }
});

test('the bench server with protocol 2026-07-28 is strict: server/discover with SEP-2243 headers served, initialize refused with -32022', async () => {
  const server = await startBenchServer({ token: 't', protocol: '2026-07-28' });
  try {
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      fetch(server.url, {
        method: 'POST',
        headers: { authorization: 'Bearer t', 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
        body: JSON.stringify(body),
      });
    const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 't', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };
    const discover = await post({ jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: meta } }, { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'server/discover' });
    assert.equal(discover.status, 200);
    assert.equal(discover.headers.get('mcp-session-id'), null);
    await discover.text();
    const bare = await post({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: meta } });
    assert.equal(bare.status, 400);
    assert.equal(((await bare.json()) as any).error.code, -32020, 'headers missing');
    const init = await post({ jsonrpc: '2.0', id: 3, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
    assert.equal(init.status, 400);
    assert.equal(((await init.json()) as any).error.code, -32022);
    const stats = await server.stats();
    assert.equal(stats.modernRequests, 3);
    assert.equal(stats.rejected, 2);
    assert.equal(stats.sessionsCreated, 0);
  } finally {
    await server.close();
  }
});

test('npm run bench runs end to end with tiny counts and writes the table and JSON', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-oauth-bench-smoke-'));
  try {
    const out = join(dir, 'latest.json');
    const env = {
      ...process.env,
      BENCH_COLD_RUNS: '1',
      BENCH_CALLS: '20',
      BENCH_THROUGHPUT_CALLS: '40',
      BENCH_CONCURRENCY: '4',
      BENCH_BIG_RUNS: '2',
      BENCH_BIG_KB: '16',
      BENCH_IDLE_MS: '50',
      BENCH_WARMUP: '2',
      BENCH_ROUNDS: '2',
      BENCH_FLEET_CLIENTS: '2',
      BENCH_FLEET_SERVERS: '2',
      BENCH_FLEET_CALLS: '1',
      BENCH_OUT: out,
    };
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [join(repoRoot, 'bench', 'run.ts')], { env, cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
      let o = '';
      let e = '';
      child.stdout.on('data', (d) => (o += d));
      child.stderr.on('data', (d) => (e += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      child.on('error', reject);
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve({ code: c, stdout: o, stderr: e });
      });
    });
    assert.equal(code, 0, stderr);
    for (const label of ['MCP 2025-11-25', 'MCP 2026-07-28', 'mcp-oauth gateway', 'cold start → initialize', 'echo latency p50', 'throughput, 4 in flight', '16 KB result round trip', 'process CPU per call', 'idle RSS', 'target met?', '2 clients × 2 servers = 4 client connections', 'total RSS', 'mcp-oauth proxy × 4', 'gateway/proxies']) {
      assert.ok(stdout.includes(label), `the table has "${label}":\n${stdout}`);
    }

    const json = JSON.parse(await readFile(out, 'utf8'));
    assert.equal(json.machine.node, process.version);
    assert.equal(json.machine.loadAverageAtStart.length, 3);
    for (const target of ['floor', 'mcp-oauth', 'gateway', 'mcp-remote']) {
      for (const figure of FIGURES) {
        assert.ok(Number.isFinite(json.figures[target][figure]), `${target}.${figure} measured: ${json.figures[target][figure]}`);
      }
    }
    for (const target of ['mcp-oauth', 'gateway', 'mcp-remote']) {
      assert.ok(Number.isFinite(json.figures[target].addedLatencyP50Ms), `${target} added latency`);
      if (process.platform === 'linux') {
        assert.ok(json.figures[target].cpuMsPerCall >= 0, `${target} CPU per call`);
        assert.ok(json.figures[target].peakRssMiB > 0, `${target} peak RSS`);
      }
    }
    // Issue 5's five proxy targets and issue 9's gateway memory target.
    assert.deepEqual(json.targets.map((t: { key: string }) => t.key), ['addedLatencyP50Ms', 'cpuMsPerCall', 'throughputCallsPerSecond', 'coldInitializeMs', 'idleRssMiB', 'fleetTotalRssMiB']);
    // One upstream session per start (the gateway: per new client), ended with DELETE when the client goes (no probe session).
    for (const target of ['mcp-oauth', 'gateway']) {
      assert.equal(json.figures[target].sessionsPerStart, 1, `${target} sessions per start`);
      assert.equal(json.figures[target].deletesPerExit, 1, `${target} DELETEs per exit`);
      assert.equal(json.figures[target].extraRequestsPerStart, 0, `${target} probes`);
    }
    assert.equal(json.figures.gateway.exitMs, null, 'the gateway has no process to exit per client');

    // The 2026-07-28 era: a strict server, no session to open or end, no request refused.
    const modern = json.eras['2026-07-28'];
    assert.equal(json.eras['2025-11-25'].figures['mcp-oauth'].sessionsPerStart, 1);
    for (const target of ['floor', 'mcp-oauth', 'gateway']) {
      for (const figure of FIGURES) assert.ok(Number.isFinite(modern.figures[target][figure]), `2026-07-28 ${target}.${figure} measured: ${modern.figures[target][figure]}`);
      assert.equal(modern.figures[target].sessionsPerStart, 0, `${target}: no session in 2026-07-28`);
      assert.equal(modern.figures[target].rejectedPerStart, 0, `${target}: no request refused by the strict server`);
    }
    assert.equal(modern.figures['mcp-oauth'].deletesPerExit, 0);
    // mcp-remote is measured if it can speak 2026-07-28, else reported with the reason.
    assert.ok(Number.isFinite(modern.figures['mcp-remote'].latencyP50Ms) || typeof modern.unavailable['mcp-remote'] === 'string');

    // The fleet, both eras: one gateway process for every connection, a proxy process each.
    for (const era of ['2025-11-25', '2026-07-28']) {
      const fleet = json.eras[era].fleet;
      assert.equal(fleet.sides.gateway.processes, 1, `${era}: one gateway`);
      assert.equal(fleet.sides.gateway.connections, 4, `${era}: four connections through it`);
      assert.equal(fleet.sides['mcp-oauth'].processes, 4, `${era}: a proxy per connection`);
      for (const side of ['gateway', 'mcp-oauth']) assert.ok(Number.isFinite(fleet.sides[side].firstToolsListMs), `${era} ${side} first tools/list`);
      if (process.platform === 'linux') {
        for (const side of ['gateway', 'mcp-oauth']) assert.ok(fleet.sides[side].totalRssMiB > 0, `${era} ${side} RSS`);
        assert.ok(Number.isFinite(fleet.check.ratio), `${era}: the gateway's RSS against the proxies'`);
      }
      assert.ok(fleet.sides['mcp-remote']?.processes === 4 || typeof fleet.unavailable['mcp-remote'] === 'string', `${era}: mcp-remote measured or said why not`);
    }
    const markdown = await readFile(join(dir, 'latest.md'), 'utf8');
    assert.match(markdown, /^\| figure \| floor \| mcp-oauth proxy \| mcp-oauth gateway \| mcp-remote \|/m);
    assert.match(markdown, /^\| figure \| mcp-oauth gateway \(1 process\) \| mcp-oauth proxy × 4 \|/m);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// The soak (`npm run soak`, soak/run.ts) end to end with tiny counts (`--quick`: 2-second tokens,
// a few processes, a few seconds per run), so the script keeps working. No timing is asserted.
// What is asserted, on real counts: it exits 0 and prints every run's figures; refreshes went
// through the fault layer to the authorization server; the runs without kills lost no sign-in,
// saw no reuse detection and no sign-in error; steady runs failed no call; during the token
// endpoint's stretches no call failed while a valid token existed; Redis came back with the
// credential intact and every process recovered; and a kill before the AS answered lost nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runNodeScript } from './helpers/e2e.ts';
import { redisSkipReason } from './helpers/redis-server.ts';
import { RUNS } from '../soak/options.ts';
import type { RunResult } from '../soak/measure.ts';

const NEEDS_REDIS = new Set(['redis', 'kills', 'redis-restart']);
const STEADY = ['file', 'redis', 'gateway'];
const WITHOUT_KILLS = RUNS.filter((r) => r !== 'kills');

test('npm run soak -- --quick: every run prints its figures; no sign-in lost and no reuse detected without kills', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mcp-oauth-soak-smoke-'));
  try {
    const out = join(dir, 'soak.json');
    const { code, stdout, stderr } = await runNodeScript(join(repoRoot, 'soak', 'run.ts'), ['--quick', '--out', out], { cwd: repoRoot, timeoutMs: 200_000, what: 'the soak' });
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    const report = JSON.parse(await readFile(out, 'utf8')) as { runs: RunResult[] };
    const byId = new Map(report.runs.map((r) => [r.id, r]));
    assert.deepEqual([...byId.keys()], [...RUNS]);
    const redisSkip = redisSkipReason();

    for (const id of RUNS) {
      const r = byId.get(id)!;
      assert.match(stdout, new RegExp(`^== ${id}: `, 'm'), `the ${id} block is printed`);
      if (redisSkip && NEEDS_REDIS.has(id)) {
        assert.ok(r.skipped, `${id} is skipped without redis-server`);
        continue;
      }
      assert.equal(r.skipped, undefined, `${id} ran: ${r.skipped}`);
      t.diagnostic(`${id}: ${r.calls.made} calls, ${r.calls.failed} failed, ${r.refreshes} refreshes for ${r.expiries} expiries, ${r.reuseDetections} reuse, ${r.signInsLost} lost`);
      assert.deepEqual(r.connectFailures, [], `${id}: every client connected`);
      assert.deepEqual(r.crashes, [], `${id}: no client's proxy died on its own`);
      assert.ok(r.calls.made > 0, `${id}: calls were made`);
      assert.ok(r.refreshes > 0, `${id}: the AS saw refreshes`);
      assert.ok(r.refreshAttempts > 0, `${id}: refreshes went through the fault layer (the advertised token_endpoint)`);
      if (id !== 'kills') assert.equal(r.maxConcurrentTokenRequests, 1, `${id}: never two token requests at once`);
      for (const label of ['calls made / failed', 'refreshes at the AS', 'reuse detections', 'sign-ins lost', 'latency p50 / p99 / max']) {
        assert.ok(stdout.split(`== ${id}: `)[1]?.includes(label), `${id} prints "${label}"`);
      }
    }
    assert.match(stdout, /^Summary /m);

    for (const id of WITHOUT_KILLS) {
      const r = byId.get(id)!;
      if (r.skipped) continue;
      assert.equal(r.signInsLost, 0, `${id}: no sign-in lost`);
      assert.equal(r.reuseDetections, 0, `${id}: no reuse detection`);
      assert.equal(r.signInErrors, 0, `${id}: no call failed with sign-in required`);
      assert.equal(r.browserLaunches, 0, `${id}: nothing tried to sign in`);
    }
    for (const id of STEADY) {
      const r = byId.get(id)!;
      if (!r.skipped) assert.equal(r.calls.failed, 0, `${id}: no call failed: ${r.calls.sampleFailures.join(' | ')}`);
    }

    const faults = byId.get('faults')!;
    assert.equal(faults.details.callsFailedWithValidToken, 0, 'no call failed while a valid token existed');
    const stretches = faults.details.stretches as Array<{ refreshesFailed: number }>;
    assert.ok(stretches.length >= 2 && stretches.every((s) => s.refreshesFailed > 0), 'every stretch made refreshes fail');

    const restart = byId.get('redis-restart')!;
    if (!restart.skipped) {
      assert.equal(restart.details.credentialIntact, true, 'the credential survived the Redis restart');
      assert.equal(restart.details.processesNotRecovered, 0, 'every process that failed while Redis was down called again');
    }

    const kills = byId.get('kills')!;
    if (!kills.skipped) {
      const before = kills.details.killedBeforeTheAsAnswered as { kills: number; signInsLost: number; reuseDetections: number; missed: number };
      assert.ok(before.kills >= 1 && before.missed === 0, 'a process was killed while its refresh was held before the AS');
      assert.equal(before.signInsLost, 0, 'a kill before the AS answered loses nothing');
      assert.equal(before.reuseDetections, 0);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

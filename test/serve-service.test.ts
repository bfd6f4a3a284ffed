/**
 * `mcp-oauth serve --service [--print]` (issue 9): the systemd user unit and the launchd agent as
 * pure text from their inputs, and the real CLI with a fake `systemctl` on PATH that records its
 * argv (CI has no user systemd; the fake stands in for the service manager only). Secrets in the
 * environment never reach the unit, the plist or the output: they go to a 0600 env file.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliPath, runCli } from './helpers/e2e.ts';
import { envFileText, servicePlan, type ServiceInputs } from '../src/gateway/service-unit.ts';
import { isMcpOAuthError } from '../src/errors.ts';

const REDIS_PASSWORD = 'pw-7f3c9e-not-in-units';
const REDIS_KEY = 'S2V5LWJ5dGVzLWZvci10aGUtdGVzdC0zMi1ieXRlcyE=';

const linux = (env: NodeJS.ProcessEnv = {}, over: Partial<ServiceInputs> = {}): ServiceInputs => ({
  platform: 'linux',
  env: { HOME: '/home/u', ...env },
  home: '/home/u/.config/mcp-oauth',
  userHome: '/home/u',
  execPath: '/opt/node 24/bin/node',
  cliPath: '/opt/mcp-oauth/bin/mcp-oauth.js',
  uid: 1000,
  ...over,
});

describe('serve --service: what is written (pure)', () => {
  it('Linux: a systemd user unit running this Node and this CLI, with the non-secret environment', () => {
    const plan = servicePlan(linux({ MCP_OAUTH_HOME: '/data/mcp 100%', MCP_OAUTH_STORE: 'keychain', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/run/user/1000/bus', PATH: '/x' }, { home: '/data/mcp 100%' }));
    assert.equal(plan.kind, 'systemd');
    assert.equal(plan.file, '/home/u/.config/systemd/user/mcp-oauth-gateway.service');
    assert.deepEqual(plan.exec, ['/opt/node 24/bin/node', '/opt/mcp-oauth/bin/mcp-oauth.js', 'serve']);
    const lines = plan.text.split('\n');
    // Quoted (a space in the path), % doubled (a systemd specifier otherwise).
    assert.ok(lines.includes('ExecStart="/opt/node 24/bin/node" "/opt/mcp-oauth/bin/mcp-oauth.js" "serve"'), plan.text);
    assert.ok(lines.includes('Environment="MCP_OAUTH_HOME=/data/mcp 100%%"'), plan.text);
    assert.ok(lines.includes('Environment="MCP_OAUTH_STORE=keychain"'));
    assert.ok(lines.includes('Environment="DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus"'));
    assert.ok(lines.includes('Restart=on-failure'));
    assert.ok(lines.includes('WantedBy=default.target'));
    assert.ok(!plan.text.includes('PATH=/x'), 'only the variables that matter');
    assert.equal(plan.envFile, undefined);
    assert.deepEqual(plan.commands.map((c) => c.argv), [['systemctl', '--user', 'daemon-reload'], ['systemctl', '--user', 'enable', '--now', 'mcp-oauth-gateway.service']]);
    assert.deepEqual(plan.restart.map((c) => c.argv), [['systemctl', '--user', 'restart', 'mcp-oauth-gateway.service']]);
  });

  it('Linux: XDG_CONFIG_HOME places the unit (and pins MCP_OAUTH_HOME); a relative one is ignored; $ is escaped', () => {
    const xdg = servicePlan(linux({ XDG_CONFIG_HOME: '/xdg' }, { home: '/xdg/mcp-oauth', cliPath: '/opt/$HOME/mcp-oauth.js' }));
    assert.equal(xdg.file, '/xdg/systemd/user/mcp-oauth-gateway.service');
    assert.ok(xdg.text.includes('Environment="MCP_OAUTH_HOME=/xdg/mcp-oauth"'), xdg.text);
    assert.ok(xdg.text.includes('"/opt/$$HOME/mcp-oauth.js"'), 'no variable expansion by systemd');
    assert.equal(servicePlan(linux({ XDG_CONFIG_HOME: 'rel' })).file, '/home/u/.config/systemd/user/mcp-oauth-gateway.service');
    // Nothing set: the service's own HOME gives the same default home; no Environment= at all.
    assert.ok(!servicePlan(linux()).text.includes('Environment='));
  });

  it('secrets (MCP_OAUTH_REDIS_URL with a password, MCP_OAUTH_REDIS_KEY) go to the env file, never into the unit', () => {
    const plan = servicePlan(linux({ MCP_OAUTH_REDIS_URL: `redis://:${REDIS_PASSWORD}@10.0.0.5:6379/0`, MCP_OAUTH_REDIS_KEY: REDIS_KEY, MCP_OAUTH_STORE: 'redis' }));
    assert.ok(!plan.text.includes(REDIS_PASSWORD) && !plan.text.includes(REDIS_KEY));
    assert.ok(!plan.text.includes('MCP_OAUTH_REDIS_URL'));
    assert.deepEqual(plan.envFile?.names, ['MCP_OAUTH_REDIS_URL', 'MCP_OAUTH_REDIS_KEY']);
    assert.equal(plan.envFile?.path, '/home/u/.config/mcp-oauth/gateway.env');
    assert.deepEqual(plan.exec, ['/opt/node 24/bin/node', '--env-file=/home/u/.config/mcp-oauth/gateway.env', '/opt/mcp-oauth/bin/mcp-oauth.js', 'serve']);
    assert.ok(plan.envFile?.text.includes(REDIS_PASSWORD));
  });

  it('macOS: a launchd agent plist (ProgramArguments, EnvironmentVariables, RunAtLoad, KeepAlive) and bootout + bootstrap', () => {
    const plan = servicePlan(linux(
      { MCP_OAUTH_STORE: 'file', DBUS_SESSION_BUS_ADDRESS: 'unix:x', MCP_OAUTH_REDIS_KEY: REDIS_KEY },
      { platform: 'darwin', userHome: '/Users/u', home: '/Users/u/.config/mcp-oauth', cliPath: '/opt/a&b/bin/mcp-oauth.js', uid: 501 },
    ));
    assert.equal(plan.kind, 'launchd');
    assert.equal(plan.file, '/Users/u/Library/LaunchAgents/dev.mcp-oauth.gateway.plist');
    const t = plan.text;
    assert.match(t, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<!DOCTYPE plist PUBLIC "-\/\/Apple\/\/DTD PLIST 1\.0\/\/EN"/);
    assert.match(t, /<key>Label<\/key>\n {2}<string>dev\.mcp-oauth\.gateway<\/string>/);
    assert.ok(t.includes([
      '  <key>ProgramArguments</key>', '  <array>', '    <string>/opt/node 24/bin/node</string>',
      '    <string>--env-file=/Users/u/.config/mcp-oauth/gateway.env</string>', '    <string>/opt/a&amp;b/bin/mcp-oauth.js</string>',
      '    <string>serve</string>', '  </array>',
    ].join('\n')), t);
    assert.ok(t.includes('  <key>EnvironmentVariables</key>\n  <dict>\n    <key>MCP_OAUTH_STORE</key>\n    <string>file</string>\n  </dict>'), t);
    assert.ok(!t.includes('DBUS_SESSION_BUS_ADDRESS'), 'no session bus on macOS');
    assert.ok(!t.includes(REDIS_KEY));
    assert.match(t, /<key>RunAtLoad<\/key>\n {2}<true\/>/);
    assert.match(t, /<key>KeepAlive<\/key>\n {2}<dict>\n {4}<key>SuccessfulExit<\/key>\n {4}<false\/>/);
    assert.deepEqual(plan.commands, [
      { argv: ['launchctl', 'bootout', 'gui/501/dev.mcp-oauth.gateway'], mayFail: true },
      { argv: ['launchctl', 'bootstrap', 'gui/501', '/Users/u/Library/LaunchAgents/dev.mcp-oauth.gateway.plist'] },
    ]);
    // Every tag opened is closed, in order (a well-formed document).
    const stack: string[] = [];
    for (const [, close, name, self] of t.matchAll(/<(\/?)(\w+)[^>]*?(\/?)>/g)) {
      if (self) continue;
      if (close) assert.equal(stack.pop(), name);
      else stack.push(name!);
    }
    assert.deepEqual(stack, []);
  });

  it('other platforms: usage error naming what is supported', () => {
    assert.throws(() => servicePlan(linux({}, { platform: 'win32' })), (e: unknown) => isMcpOAuthError(e, 'usage') && /systemd.*launchd/.test(e.message));
  });

  it('the env file reads back through Node\'s own --env-file exactly (#, $, quotes, backslashes)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mcp-oauth-envfile-'));
    try {
      const values: Array<[string, string]> = [
        ['MCP_OAUTH_REDIS_URL', `redis://:p#a$s"s\\n@h:6379/0`],
        ['MCP_OAUTH_REDIS_KEY', "it's # $HOME \\t"],
      ];
      const file = join(dir, 'gateway.env');
      await writeFile(file, envFileText(values));
      const r = spawnSync(process.execPath, [`--env-file=${file}`, '-e', 'process.stdout.write(JSON.stringify([process.env.MCP_OAUTH_REDIS_URL, process.env.MCP_OAUTH_REDIS_KEY]))'], { env: {}, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), values.map(([, v]) => v));
      assert.throws(() => envFileText([['X', "both ' and `"]]), (e: unknown) => isMcpOAuthError(e, 'usage'));
      assert.throws(() => envFileText([['X', 'a\nb']]), (e: unknown) => isMcpOAuthError(e, 'usage'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('serve --service through the real CLI, with a fake systemctl', { concurrency: 3 }, () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mcp-oauth-service-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  let n = 0;
  /** A user home with a fake `systemctl` (exit code and stderr chosen) that logs its argv. */
  async function setup(systemctl: { exit: number; stderr?: string } | 'missing') {
    const dir = join(root, String(++n));
    const bin = join(dir, 'bin');
    const log = join(dir, 'systemctl.log');
    await mkdir(bin, { recursive: true });
    if (systemctl !== 'missing') {
      const script = `#!/bin/sh\necho "$*" >> '${log}'\n${systemctl.stderr ? `echo '${systemctl.stderr}' >&2\n` : ''}exit ${systemctl.exit}\n`;
      await writeFile(join(bin, 'systemctl'), script);
      await chmod(join(bin, 'systemctl'), 0o755);
    }
    const env: NodeJS.ProcessEnv = {
      // Only the fake's directory: a real systemctl elsewhere on PATH must not be found.
      PATH: bin,
      HOME: dir,
      XDG_CONFIG_HOME: join(dir, 'xdg'),
      MCP_OAUTH_HOME: join(dir, 'mcp-oauth'),
      MCP_OAUTH_STORE: 'redis',
      MCP_OAUTH_REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:1/0`,
      NO_COLOR: '1',
    };
    const unit = join(dir, 'xdg', 'systemd', 'user', 'mcp-oauth-gateway.service');
    const calls = async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    return { dir, env, unit, envFile: join(dir, 'mcp-oauth', 'gateway.env'), calls };
  }

  const noSecret = (...outs: string[]) => outs.forEach((o) => assert.ok(!o.includes(REDIS_PASSWORD), 'the Redis password is not printed'));

  it('writes the unit and the 0600 env file, runs daemon-reload and enable --now; again → restart too', async () => {
    const s = await setup({ exit: 0 });
    const r = await runCli(['serve', '--service'], { env: s.env });
    assert.equal(r.code, 0, r.stderr);
    noSecret(r.stdout, r.stderr);
    assert.deepEqual(await s.calls(), ['--user daemon-reload', '--user enable --now mcp-oauth-gateway.service']);
    const unit = await readFile(s.unit, 'utf8');
    assert.ok(unit.includes(`ExecStart="${process.execPath}" "--env-file=${s.envFile}" "${cliPath}" "serve"`), unit);
    assert.ok(unit.includes(`Environment="MCP_OAUTH_HOME=${s.env.MCP_OAUTH_HOME}"`));
    assert.ok(unit.includes('Environment="MCP_OAUTH_STORE=redis"'));
    noSecret(unit);
    assert.equal((await stat(s.unit)).mode & 0o777, 0o644);
    assert.equal((await stat(s.envFile)).mode & 0o777, 0o600);
    assert.ok((await readFile(s.envFile, 'utf8')).includes(`MCP_OAUTH_REDIS_URL='${s.env.MCP_OAUTH_REDIS_URL}'`));
    assert.ok(r.stdout.includes(s.unit), r.stdout);
    assert.match(r.stdout, /does not answer yet; its output: journalctl --user -u mcp-oauth-gateway\.service/);
    assert.match(r.stdout, /loginctl enable-linger/);

    // A second run rewrites the unit and restarts the running gateway so it takes the new one.
    const again = await runCli(['serve', '--service', '--json'], { env: s.env });
    assert.equal(again.code, 0, again.stderr);
    noSecret(again.stdout, again.stderr);
    const out = JSON.parse(again.stdout);
    assert.equal(out.written, true);
    assert.deepEqual(out.env_file, { path: s.envFile, variables: ['MCP_OAUTH_REDIS_URL'] });
    assert.deepEqual(out.gateway, { running: false, url: null, pid: null });
    assert.deepEqual((await s.calls()).slice(2), ['--user daemon-reload', '--user enable --now mcp-oauth-gateway.service', '--user restart mcp-oauth-gateway.service']);
  });

  it('--print shows the unit and the commands and writes nothing, runs nothing', async () => {
    const s = await setup({ exit: 0 });
    const p = await runCli(['serve', '--service', '--print'], { env: s.env });
    assert.equal(p.code, 0, p.stderr);
    noSecret(p.stdout, p.stderr);
    assert.match(p.stdout, /^# The mcp-oauth gateway/);
    assert.ok(p.stdout.includes(`ExecStart="${process.execPath}"`));
    assert.match(p.stderr, /nothing written; serve --service would create it/);
    assert.match(p.stderr, /#   systemctl --user daemon-reload\n#   systemctl --user enable --now mcp-oauth-gateway\.service/);
    assert.match(p.stderr, /gateway\.env \(0600, never printed\): MCP_OAUTH_REDIS_URL/);
    const j = JSON.parse((await runCli(['serve', '--service', '--print', '--json'], { env: s.env })).stdout);
    assert.equal(j.written, false);
    assert.equal(j.text, p.stdout);
    assert.deepEqual(j.commands, [['systemctl', '--user', 'daemon-reload'], ['systemctl', '--user', 'enable', '--now', 'mcp-oauth-gateway.service']]);
    await assert.rejects(stat(s.unit), { code: 'ENOENT' });
    await assert.rejects(stat(s.envFile), { code: 'ENOENT' });
    assert.deepEqual(await s.calls(), []);
  });

  it('systemctl fails (no user bus, as in a container): exit 6, the unit written anyway, the hint says how to start by hand', async () => {
    const s = await setup({ exit: 1, stderr: 'Failed to connect to bus: No medium found' });
    const r = await runCli(['serve', '--service'], { env: s.env });
    assert.equal(r.code, 6, r.stderr);
    assert.match(r.stderr, /`systemctl --user daemon-reload` failed: Failed to connect to bus: No medium found/);
    assert.match(r.stderr, /next: the unit is written \(.*mcp-oauth-gateway\.service\); run `mcp-oauth serve` yourself/);
    await stat(s.unit);
    assert.deepEqual(await s.calls(), ['--user daemon-reload']);
  });

  it('systemctl missing: exit 2, the unit written anyway, the same hint', async () => {
    const s = await setup('missing');
    const r = await runCli(['serve', '--service', '--json'], { env: s.env });
    assert.equal(r.code, 2, r.stderr);
    const err = JSON.parse(r.stdout).error;
    assert.match(err.message, /systemctl was not found/);
    assert.match(err.hint, /mcp-oauth serve/);
    await stat(s.unit);
  });
});

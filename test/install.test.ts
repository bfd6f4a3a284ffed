/**
 * `mcp-oauth install CLIENT NAME` (issue 3 §2, test 6): for each client the real CLI writes a valid
 * file (parsed back) that starts the proxy, keeps other entries, backs the old file up, never
 * touches a malformed file, replaces an existing entry only with --force, and --print writes
 * nothing. Every run gets its own HOME / XDG_CONFIG_HOME / APPDATA / CODEX_HOME under a temp dir.
 */
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { jsonc, rejectsWith, toml } from './helpers/install.ts';
import { runCli } from './helpers/e2e.ts';
import { CLI_SCRIPT_PATH, clientFor } from '../src/install/install.ts';
import { resolveServer } from '../src/config/config.ts';
import { assertProxyEntry, backupsOf, CASES, fileIn, install, pathOf, sandbox } from './fixtures/install-cases.ts';

describe('install into each client', () => {
  for (const c of CASES) {
    describe(c.id, () => {
      it('writes a valid new file at the default path, creating parent dirs, 0600, no backup', async () => {
        const sb = await sandbox();
        const file = pathOf(c.id, sb);
        const r = await install(sb, c.id, 'demo');
        assert.equal(r.status, 'created');
        assert.equal(r.file, file);
        assertProxyEntry(c, c.read(await readFile(file, 'utf8')), 'demo', 'demo', sb.mcpHome);
        if (process.platform !== 'win32') assert.equal((await stat(file)).mode & 0o777, 0o600);
        assert.deepEqual(await backupsOf(file), []);
      });

      it('keeps the other entries and settings, backs the old file up with its mode, keeps the mode; again → unchanged', async () => {
        const sb = await sandbox();
        const before = c.existing('keep-me');
        const file = await fileIn(sb, 'project', c, before);
        await chmod(file, 0o664);
        const r = await install(sb, c.id, 'demo', { configFile: file });
        assert.equal(r.status, 'created');
        const doc = c.read(await readFile(file, 'utf8'));
        assertProxyEntry(c, doc, 'demo', 'demo', sb.mcpHome);
        assert.deepEqual(doc[c.container]['keep-me'], { command: 'old-command', args: ['x'] });
        if (c.id === 'codex') {
          assert.equal(doc.model, 'o3');
          assert.match(await readFile(file, 'utf8'), /^# my codex settings\n/, 'comments kept');
        } else {
          assert.equal(doc.other, true);
          // Only an insertion: the old text is the new one's head and tail, byte for byte.
          const text = await readFile(file, 'utf8');
          const tail = '\n  }\n}\n';
          assert.ok(text.startsWith(before.slice(0, -tail.length)) && text.endsWith(tail), text);
        }
        assert.equal(r.commentsDropped, false);
        const backups = await backupsOf(file);
        assert.equal(backups.length, 1);
        assert.equal(r.backup, join(dirname(file), backups[0]));
        assert.equal(await readFile(r.backup!, 'utf8'), before);
        if (process.platform !== 'win32') {
          assert.equal((await stat(r.backup!)).mode & 0o777, 0o664);
          assert.equal((await stat(file)).mode & 0o777, 0o664);
        }
        const after = await readFile(file, 'utf8');
        const again = await install(sb, c.id, 'demo', { configFile: file });
        assert.equal(again.status, 'unchanged');
        assert.equal(await readFile(file, 'utf8'), after);
        assert.equal((await backupsOf(file)).length, 1);
      });

      it('--print returns the entry text and writes nothing (no file, no backup, same mtime)', async () => {
        const sb = await sandbox();
        const p1 = await install(sb, c.id, 'demo', { print: true });
        assert.equal(p1.status, 'printed');
        await assert.rejects(stat(pathOf(c.id, sb)), { code: 'ENOENT' });
        assertProxyEntry(c, c.read(p1.entryText), 'demo', 'demo', sb.mcpHome);

        const file = await fileIn(sb, 'existing', c, c.existing('demo'));
        const past = new Date(Date.now() - 3600_000);
        await utimes(file, past, past);
        const mtime = (await stat(file)).mtimeMs;
        // --print predicts the real outcome: an existing, different entry is the same refusal (exit 2)…
        await assert.rejects(install(sb, c.id, 'demo', { print: true, configFile: file }), rejectsWith(2, /--force/));
        // …and with --force it shows the entry that would replace it. Print never writes.
        const p2 = await install(sb, c.id, 'demo', { print: true, force: true, configFile: file });
        assert.equal(p2.status, 'printed');
        assert.equal(p2.wouldBe, 'replaced');
        assert.equal(await readFile(file, 'utf8'), c.existing('demo'));
        assert.equal((await stat(file)).mtimeMs, mtime);
        assert.deepEqual(await backupsOf(file), []);
        // A malformed file: the same exit 3 as install, nothing written.
        const bad = await fileIn(sb, 'bad-print', c, c.id === 'codex' ? '[x\n' : '{ x');
        await assert.rejects(install(sb, c.id, 'demo', { print: true, force: true, configFile: bad }), rejectsWith(3, /left unchanged/));
      });

      it('an existing, different entry: exit 2 naming --force and the file unchanged; --force replaces it', async () => {
        const sb = await sandbox();
        const before = c.existing('demo');
        const file = await fileIn(sb, 'p', c, before);
        await assert.rejects(install(sb, c.id, 'demo', { configFile: file }), rejectsWith(2, /--force/));
        assert.equal(await readFile(file, 'utf8'), before);
        assert.deepEqual(await backupsOf(file), []);

        const forced = await install(sb, c.id, 'demo', { configFile: file, force: true });
        assert.equal(forced.status, 'replaced');
        const doc = c.read(await readFile(file, 'utf8'));
        assertProxyEntry(c, doc, 'demo', 'demo', sb.mcpHome);
        assert.deepEqual(Object.keys(doc[c.container]), ['demo']);
        if (c.id === 'codex') assert.match(await readFile(file, 'utf8'), /^# my codex settings\nmodel = "o3"\n/);
        else assert.equal(doc.other, true);
        assert.equal((await backupsOf(file)).length, 1);
      });

      it('a malformed file: exit 3 naming the file (without quoting it), never overwritten, no backup', async () => {
        const sb = await sandbox();
        const broken = c.id === 'codex' ? '[mcp_servers.x\nurl = "secret-ish"\n' : '{ "mcpServers": { "x": { "command": "secret-ish" } ';
        const file = await fileIn(sb, 'bad', c, broken);
        await assert.rejects(install(sb, c.id, 'demo', { configFile: file, force: true }), (e) => {
          rejectsWith(3, /left unchanged/)(e);
          assert.ok((e as Error).message.includes(file));
          if (c.id !== 'codex') assert.match((e as Error).message, /line 1, column \d+/);
          assert.ok(!(e as Error).message.includes('secret-ish'));
          return true;
        });
        assert.equal(await readFile(file, 'utf8'), broken);
        assert.deepEqual(await backupsOf(file), []);
      });
    });
  }

  it('client names and aliases; an unknown client is exit 2 listing the known ones; "claude" is never guessed', () => {
    assert.equal(clientFor('Claude-Code').id, 'claude-code');
    assert.equal(clientFor('claude-desktop').id, 'claude-desktop');
    assert.equal(clientFor('code').id, 'vscode');
    assert.throws(() => clientFor('notepad'), rejectsWith(2, /codex, claude-code, claude-desktop, cursor, vscode/));
    assert.throws(() => clientFor('claude'), rejectsWith(2, /install claude-code NAME .*install claude-desktop NAME/));
  });

  it('an unknown server name fails before anything is written', async () => {
    const sb = await sandbox();
    await assert.rejects(install(sb, 'cursor', 'nope'), rejectsWith(3, /nope/));
    await assert.rejects(stat(pathOf('cursor', sb)), { code: 'ENOENT' });
  });

  it('a bare URL: the entry is named by the host, the proxy is given the URL; --as renames', async () => {
    const sb = await sandbox();
    const url = 'https://mcp.example.org:8443/mcp';
    assert.equal((await install(sb, 'claude-desktop', url)).entryName, 'mcp-example-org-8443');
    await install(sb, 'claude-desktop', 'demo', { as: 'demo-via-proxy' });
    await assert.rejects(install(sb, 'claude-desktop', 'demo', { as: 'bad name' }), rejectsWith(2, /--as/));
    const doc = JSON.parse(await readFile(pathOf('claude-desktop', sb), 'utf8'));
    assert.deepEqual(doc.mcpServers['mcp-example-org-8443'].args, [CLI_SCRIPT_PATH, 'proxy', url]);
    assert.deepEqual(doc.mcpServers['demo-via-proxy'].args, [CLI_SCRIPT_PATH, 'proxy', 'demo']);
  });

  it('vscode: a JSONC file keeps its comments, trailing commas and other keys byte for byte; only the entry is added', async () => {
    const sb = await sandbox();
    const head =
      '// my comment\n{\n  "servers": {\n    /* block */ "keep-me": { "type": "http", "url": "https://x.example/mcp", },';
    const tail = '\n    // "old": { "command": "x" },\n  },\n  "inputs": [], // prompts\n}\n';
    const before = head + tail;
    const file = await fileIn(sb, 'ws/.vscode', CASES[3], before);
    const r = await install(sb, 'vscode', 'demo', { configFile: file });
    assert.equal(r.status, 'created');
    assert.equal(r.commentsDropped, false);
    assert.equal(await readFile(r.backup!, 'utf8'), before);
    const after = await readFile(file, 'utf8');
    assert.ok(after.startsWith(head), after);
    assert.ok(after.endsWith(tail), after);
    const inserted = after.slice(head.length, after.length - tail.length);
    assert.match(inserted, /^\n    "demo": \{\n      "type": "stdio",\n/, 'laid out in the file\'s indentation');
    const doc = jsonc(after);
    assert.deepEqual(doc.servers['keep-me'], { type: 'http', url: 'https://x.example/mcp' });
    assert.deepEqual(Object.keys(doc.servers), ['keep-me', 'demo']);
    assert.deepEqual(doc.inputs, []);
    assertProxyEntry(CASES[3], doc, 'demo', 'demo', sb.mcpHome);

    // --force on a different entry: only its value changes; the comments around it stay.
    const forcedBefore = '{\n  // mine\n  "servers": {\n    "demo": { "command": "old" }, // was here\n    /* next */ "b": 1,\n  }\n}\n';
    await writeFile(file, forcedBefore);
    const forced = await install(sb, 'vscode', 'demo', { configFile: file, force: true });
    assert.equal(forced.status, 'replaced');
    const forcedAfter = await readFile(file, 'utf8');
    const [pre, post] = forcedBefore.split('{ "command": "old" }');
    assert.ok(forcedAfter.startsWith(pre) && forcedAfter.endsWith(post), forcedAfter);
    const forcedDoc = jsonc(forcedAfter);
    assertProxyEntry(CASES[3], forcedDoc, 'demo', 'demo', sb.mcpHome);
    assert.equal(forcedDoc.servers.b, 1);
  });

  it('a symlinked config file: the target is rewritten, the link kept', async () => {
    const sb = await sandbox();
    const real = await fileIn(sb, 'dotfiles', CASES[2], '{}');
    const link = pathOf('cursor', sb);
    await mkdir(dirname(link), { recursive: true });
    await symlink(real, link);
    await install(sb, 'cursor', 'demo');
    assert.ok((await lstat(link)).isSymbolicLink());
    assertProxyEntry(CASES[2], JSON.parse(await readFile(real, 'utf8')), 'demo', 'demo', sb.mcpHome);
  });
});

describe('install through the real CLI', { concurrency: 3 }, () => {
  for (const c of CASES) {
    it(`${c.id}: writes the default file and says what to do next`, async () => {
      const sb = await sandbox();
      const file = pathOf(c.id, sb);
      const r = await runCli(['install', c.id, 'demo'], { env: sb.env });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.includes(file), 'names the file written');
      assert.match(r.stdout, /restart/i);
      assert.match(r.stdout, /mcp-oauth login demo/);
      assertProxyEntry(c, c.read(await readFile(file, 'utf8')), 'demo', 'demo', sb.mcpHome);
    });
  }

  it('--print: stdout is exactly the entry, nothing written; --json', async () => {
    const sb = await sandbox();
    const r = await runCli(['install', 'codex', 'demo', '--print'], { env: sb.env });
    assert.equal(r.code, 0, r.stderr);
    assertProxyEntry(CASES[0], toml(r.stdout), 'demo', 'demo', sb.mcpHome);
    await assert.rejects(stat(pathOf('codex', sb)), { code: 'ENOENT' });
    const j = await runCli(['install', 'cursor', 'demo', '--print', '--json'], { env: sb.env });
    assert.equal(j.code, 0, j.stderr);
    const out = JSON.parse(j.stdout);
    assert.equal(out.status, 'printed');
    assert.equal(out.written, false);
    assertProxyEntry(CASES[2], JSON.parse(out.text), 'demo', 'demo', sb.mcpHome);
    await assert.rejects(stat(pathOf('cursor', sb)), { code: 'ENOENT' });
  });

  it('exit 2 for an existing entry without --force, exit 3 for a malformed file; files unchanged', async () => {
    const sb = await sandbox();
    const existing = await fileIn(sb, 'a', CASES[1], CASES[1].existing('demo'));
    const r2 = await runCli(['install', 'claude-desktop', 'demo', '--config-file', existing], { env: sb.env });
    assert.equal(r2.code, 2, r2.stderr);
    assert.match(r2.stderr, /--force/);
    assert.equal(await readFile(existing, 'utf8'), CASES[1].existing('demo'));
    const bad = await fileIn(sb, 'b', CASES[3], '{ nope');
    const r3 = await runCli(['install', 'vscode', 'demo', '--config-file', bad], { env: sb.env });
    assert.equal(r3.code, 3, r3.stderr);
    assert.ok(r3.stderr.includes(bad));
    assert.equal(await readFile(bad, 'utf8'), '{ nope');
  });

  it('vscode --json on a JSONC file: written, comments_dropped false, the comments still in the file', async () => {
    const sb = await sandbox();
    const before = '// my comment\n{\n  /* block */\n  "servers": {},\n}\n';
    const file = await fileIn(sb, 'c/.vscode', CASES[3], before);
    const r = await runCli(['install', 'vscode', 'demo', '--config-file', file, '--json'], { env: sb.env });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.written, true);
    assert.equal(out.comments_dropped, false);
    const after = await readFile(file, 'utf8');
    assert.ok(after.startsWith('// my comment\n{\n  /* block */\n  "servers": {\n    "demo": {\n'), after);
    assert.ok(after.endsWith('\n  },\n}\n'), after);
    assertProxyEntry(CASES[3], jsonc(after), 'demo', 'demo', sb.mcpHome);
  });

  it("codex: refuses (even with --force) to replace the url entry the proxy itself reads; --as works", async () => {
    const sb = await sandbox();
    const file = pathOf('codex', sb);
    await mkdir(dirname(file), { recursive: true });
    const before = '[mcp_servers.notion]\nurl = "https://mcp.notion.example/mcp"\n';
    await writeFile(file, before);
    const r = await runCli(['install', 'codex', 'notion', '--force'], { env: sb.env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--as notion-oauth/);
    assert.equal(await readFile(file, 'utf8'), before);
    await assert.rejects(install(sb, 'codex', 'notion'), rejectsWith(2, /--as notion-oauth/));
    const ok = await runCli(['install', 'codex', 'notion', '--as', 'notion-oauth'], { env: sb.env });
    assert.equal(ok.code, 0, ok.stderr);
    const doc = toml(await readFile(file, 'utf8'));
    assert.equal(doc.mcp_servers.notion.url, 'https://mcp.notion.example/mcp');
    assert.deepEqual(doc.mcp_servers['notion-oauth'].args, [CLI_SCRIPT_PATH, 'proxy', 'notion']);
    // The proxy must find the server where it lives: CODEX_HOME is passed along.
    assert.equal(doc.mcp_servers['notion-oauth'].env.CODEX_HOME, sb.env.CODEX_HOME);
    assert.equal((await resolveServer('notion', { env: sb.env })).url, 'https://mcp.notion.example/mcp');
  });
});

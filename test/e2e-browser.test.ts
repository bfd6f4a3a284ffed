/**
 * E2E with a real browser: `mcp-oauth login` opens headless Chromium as $BROWSER
 * (test/fixtures/chromium-browser.ts, driven by playwright-core), which goes through the sandbox's
 * real HTML login and consent pages (autoApprove: false) and lands on our loopback callback page.
 * Approve → exit 0, the page says "Signed in" in plain words, the credential is stored.
 * Deny → the page says the user declined, nothing is stored, exit 4 (signin_denied).
 *
 * Needs Chromium (CHROMIUM_PATH, default /usr/bin/chromium; Debian: apt-get install -y chromium).
 * Skipped without it, except under CI (CI set), where it fails so the coverage cannot silently go.
 * Set E2E_ARTIFACTS_DIR to keep the screenshots of the callback pages.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startSandbox, type Sandbox } from '../src/sandbox/index.ts';
import { assertNoSecretsPrinted, makeHome, readStore, repoRoot, runCli, waitForFile, type CliResult, type TestHome } from './helpers/e2e.ts';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const chromiumFixture = join(repoRoot, 'test', 'fixtures', 'chromium-browser.ts');
const unsupported = existsSync(chromiumPath) ? undefined : `no Chromium at ${chromiumPath} (apt-get install -y chromium, or set CHROMIUM_PATH)`;
if (unsupported && process.env.CI) throw new Error(`the browser e2e test cannot run under CI: ${unsupported}`);

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

interface BrowserRun {
  cli: CliResult;
  home: TestHome;
  /** What the browser saw on the callback page. */
  status: number;
  title: string;
  callbackPath: string;
  text: string;
  screenshot: Buffer;
}

// The two cases run concurrently (a Chromium each, a sandbox each) to keep the file fast.
describe('sign-in through a real browser (headless Chromium)', { skip: unsupported, timeout: 90_000, concurrency: true }, () => {
  const sandboxes: Sandbox[] = [];
  const homes: TestHome[] = [];

  after(async () => {
    for (const s of sandboxes) await s.close();
    for (const h of homes) await h.cleanup();
  });

  /** The sandbox with its real HTML login and consent pages (no auto-approve). */
  async function interactiveSandbox(): Promise<Sandbox> {
    const sandbox = await startSandbox({ autoApprove: false });
    sandboxes.push(sandbox);
    return sandbox;
  }

  /** `mcp-oauth login` with Chromium as $BROWSER; waits for both the CLI and the browser. */
  async function loginWithChromium(sandbox: Sandbox, decision: 'approve' | 'deny'): Promise<BrowserRun> {
    const home = await makeHome();
    homes.push(home);
    const out = dirname(home.home);
    const files = { text: join(out, 'page.txt'), screenshot: join(out, 'page.png'), result: join(out, 'browser.json') };
    const env = {
      ...home.env,
      BROWSER: `${process.execPath} ${chromiumFixture}`,
      BROWSER_DECISION: decision,
      CHROMIUM_PATH: chromiumPath,
      BROWSER_PAGE_TEXT: files.text,
      BROWSER_SCREENSHOT: files.screenshot,
      BROWSER_RESULT: files.result,
    };
    const cli = runCli(['login', sandbox.mcpUrl], { env, timeoutMs: 40_000 });
    cli.catch(() => {}); // awaited below; a browser failure must not leave it unhandled
    // The browser reports through a file ($BROWSER runs detached); a browser failure surfaces here
    // instead of as a CLI that waits for a callback that never comes.
    const result = JSON.parse(await waitForFile(files.result, 40_000));
    assert.equal(result.error, undefined, `the browser failed: ${result.error}`);
    const run: BrowserRun = {
      cli: await cli,
      home,
      ...result,
      text: await readFile(files.text, 'utf8'),
      screenshot: await readFile(files.screenshot),
    };
    if (process.env.E2E_ARTIFACTS_DIR) {
      await mkdir(process.env.E2E_ARTIFACTS_DIR, { recursive: true });
      await copyFile(files.screenshot, join(process.env.E2E_ARTIFACTS_DIR, `callback-${decision}.png`));
    }
    return run;
  }

  it('approve: the CLI signs in, our page says so in plain words, the credential is stored', async () => {
    const sandbox = await interactiveSandbox();
    const run = await loginWithChromium(sandbox, 'approve');
    assert.equal(run.cli.code, 0, run.cli.stderr);
    assert.match(run.cli.stdout, /Signed in to /);

    // Our loopback page, not the authorization server's.
    assert.equal(run.callbackPath, '/callback');
    assert.equal(run.status, 200);
    assert.equal(run.title, 'Signed in');
    assert.match(run.text, /^Signed in\s/);
    assert.match(run.text, /Signed in to \S+\. You can close this tab and return to /);
    assert.doesNotMatch(run.text, /error|did not complete|code=|state=/i);
    assert.ok(run.screenshot.subarray(0, 8).equals(PNG_SIGNATURE), 'a PNG screenshot of the page');

    // The browser went through the authorization endpoint once; the stored credential works.
    assert.equal(sandbox.counters.authorizeRequests.length, 1);
    const { credentials } = await readStore(run.home.home);
    const stored = Object.values(credentials);
    assert.equal(stored.length, 1);
    assert.equal(stored[0].key.issuer, sandbox.issuer);
    assert.equal(typeof stored[0].accessToken, 'string');
    await assertNoSecretsPrinted(run.home.home, run.cli.stdout, run.cli.stderr, run.text);
    const call = await runCli(['call', sandbox.mcpUrl, 'echo', '{"text":"hello from chromium"}', '--no-browser'], { env: run.home.env });
    assert.equal(call.code, 0, call.stderr);
    assert.equal(call.stdout.trim(), 'hello from chromium');
  });

  it('deny: our page says the user declined, nothing is stored, exit 4', async () => {
    const sandbox = await interactiveSandbox();
    const run = await loginWithChromium(sandbox, 'deny');
    assert.equal(run.cli.code, 4, `signin_denied: ${run.cli.stderr}`);
    assert.match(run.cli.stderr, /denied/i);
    assert.equal(sandbox.counters.tokenRequests.authorization_code ?? 0, 0, 'no code was exchanged');

    assert.equal(run.callbackPath, '/callback');
    assert.equal(run.status, 400);
    assert.equal(run.title, 'Sign-in did not complete');
    assert.match(run.text, /^Sign-in did not complete\s/);
    assert.match(run.text, /You declined access, so you are not signed in\./);
    assert.doesNotMatch(run.text, /Signed in to /);
    assert.ok(run.screenshot.subarray(0, 8).equals(PNG_SIGNATURE), 'a PNG screenshot of the page');

    assert.deepEqual((await readStore(run.home.home)).credentials, {}, 'no credential after a declined sign-in');
  });
});

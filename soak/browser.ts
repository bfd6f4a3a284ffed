// The soak's $BROWSER. Every launch is logged (SOAK_BROWSER_LOG). SOAK_BROWSER_MODE=follow signs
// in headlessly (the sandbox auto-approves): the soak's own `mcp-oauth login`. Any other mode
// refuses (exit 1): a proxy that needs a browser lost its sign-in, and the soak must see that
// instead of a silent new sign-in.
import { appendFileSync } from 'node:fs';
import { followAuthorizeUrl } from '../src/sandbox/headless-browser.ts';

const url = process.argv[2] ?? '';
const mode = process.env.SOAK_BROWSER_MODE ?? 'refuse';
if (process.env.SOAK_BROWSER_LOG) appendFileSync(process.env.SOAK_BROWSER_LOG, `${Date.now()} ${mode}\n`);
if (mode !== 'follow') process.exit(1);
const result = await followAuthorizeUrl(url);
if (result.status !== 200) process.exit(1);

/**
 * A "browser" for the sandbox's auto-approve mode: follows the authorize URL's redirects (with
 * cookies) until the loopback callback, then delivers it. Used by the demo and by `$BROWSER`
 * scripts in the tests. It does not render pages; with the sandbox's login pages enabled, use a
 * real browser (see test/browser.test.ts).
 */
export async function followAuthorizeUrl(url: string, opts: { fetch?: typeof fetch; maxHops?: number } = {}): Promise<{ finalUrl: string; status: number; body: string }> {
  const f = opts.fetch ?? fetch;
  const cookies = new Map<string, string>();
  let current = new URL(url);
  for (let hop = 0; hop < (opts.maxHops ?? 20); hop++) {
    const cookieHeader = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await f(current, { redirect: 'manual', headers: cookieHeader ? { cookie: cookieHeader } : {} });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      if (eq > 0) cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      current = new URL(location, current);
      continue;
    }
    return { finalUrl: current.href, status: res.status, body: await res.text() };
  }
  throw new Error(`too many redirects following ${new URL(url).origin}`);
}

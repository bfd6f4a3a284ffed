// Minimal HTML for the interactive (autoApprove: false) sandbox: a login form and a consent page.
// Plain forms so a real browser (Chromium via playwright) can sign in and approve.

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:sans-serif;max-width:28em;margin:3em auto}label,input,button{display:block;margin:.5em 0}</style>
</head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

export function loginPage(uid: string, clientName: string, error?: string): string {
  return page('Sign in to the mcp-oauth sandbox', `
<p>Client <strong>${escapeHtml(clientName)}</strong> wants you to sign in. Use <code>demo</code> / <code>demo</code>.</p>
${error ? `<p role="alert" style="color:#b00">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${encodeURIComponent(uid)}/login">
  <label>Username <input name="username" autocomplete="username" autofocus required></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
  <button type="submit" id="login">Sign in</button>
</form>`);
}

export function consentPage(uid: string, clientName: string, scopes: string[], resources: string[]): string {
  const items = scopes.map((s) => `<li><code>${escapeHtml(s)}</code></li>`).join('');
  const res = resources.map((r) => `<li><code>${escapeHtml(r)}</code></li>`).join('');
  return page('Authorize access', `
<p><strong>${escapeHtml(clientName)}</strong> asks for:</p><ul>${items || '<li>(no scopes)</li>'}</ul>
${res ? `<p>for the resource(s):</p><ul>${res}</ul>` : ''}
<form method="post" action="/interaction/${encodeURIComponent(uid)}/confirm">
  <button type="submit" id="approve" name="approve" value="yes">Approve</button>
</form>
<form method="post" action="/interaction/${encodeURIComponent(uid)}/abort">
  <button type="submit" id="deny">Deny</button>
</form>`);
}

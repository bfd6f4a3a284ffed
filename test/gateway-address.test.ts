// The gateway's pure rules: which Host / Origin values are its own, where it may listen, how the
// secret is checked, and which paths are endpoints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkListenSettings, gatewayBaseUrl, gatewayEndpoint, isAllowedHost, isAllowedOrigin, serverNameFromPath } from '../src/gateway/address.ts';
import { secretCheck } from '../src/gateway/secret.ts';
import { headerMismatch } from '../src/gateway/header-check.ts';

const local = { host: '127.0.0.1', port: 7319, allowedHosts: [] as string[] };

test('Host: loopback names on the gateway port only, plus allowed_hosts', () => {
  for (const h of ['127.0.0.1:7319', 'localhost:7319', '[::1]:7319', 'LOCALHOST:7319', '127.0.0.1']) assert.ok(isAllowedHost(h, 7319, local), h);
  for (const h of [undefined, '', 'evil.example:7319', '127.0.0.1:80', 'localhost.evil.example:7319', '127.0.0.1:7319:1', 'attacker@127.0.0.1:7319']) assert.ok(!isAllowedHost(h, 7319, local), String(h));
  assert.ok(isAllowedHost('gw.internal:7319', 7319, { ...local, allowedHosts: ['gw.internal'] }));
});

test('Origin: absent, or a local / allowed http(s) origin', () => {
  assert.ok(isAllowedOrigin(undefined, local));
  assert.ok(isAllowedOrigin('http://localhost:3000', local));
  assert.ok(isAllowedOrigin('https://[::1]', local));
  for (const o of ['null', 'http://evil.example', 'file:///etc/passwd', 'chrome-extension://abc', 'not a url']) assert.ok(!isAllowedOrigin(o, local), o);
  assert.ok(isAllowedOrigin('https://gw.internal', { ...local, allowedHosts: ['gw.internal'] }));
});

test('listening beyond loopback needs both TLS files', () => {
  assert.doesNotThrow(() => checkListenSettings(local));
  assert.throws(() => checkListenSettings({ ...local, host: '0.0.0.0' }), /not a loopback address/);
  assert.throws(() => checkListenSettings({ ...local, host: '0.0.0.0', tlsCertFile: 'c.pem' }), /both tls_cert_file and tls_key_file/);
  assert.doesNotThrow(() => checkListenSettings({ ...local, host: '10.0.0.7', tlsCertFile: 'c.pem', tlsKeyFile: 'k.pem' }));
  assert.equal(gatewayBaseUrl({ host: '10.0.0.7', port: 443, tlsCertFile: 'c.pem' }), 'https://10.0.0.7:443');
  assert.equal(gatewayBaseUrl({ host: '::1', port: 7319 }), 'http://[::1]:7319');
});

test('endpoints: /servers/NAME/mcp and nothing else', () => {
  assert.equal(gatewayEndpoint('http://127.0.0.1:7319/', 'notion'), 'http://127.0.0.1:7319/servers/notion/mcp');
  assert.equal(serverNameFromPath('/servers/notion/mcp'), 'notion');
  assert.equal(serverNameFromPath('/servers/notion/mcp/'), 'notion');
  for (const p of ['/servers/notion', '/servers//mcp', '/servers/a/b/mcp', '/mcp', '/servers/%E0%A4%A/mcp']) assert.equal(serverNameFromPath(p), undefined, p);
});

test('the secret: Bearer only, exact, not empty', () => {
  const check = secretCheck('s3cret-value-0123456789');
  assert.ok(check('Bearer s3cret-value-0123456789'));
  assert.ok(check('bearer  s3cret-value-0123456789 '));
  for (const a of [undefined, '', 'Bearer ', 'Bearer s3cret-value-012345678', 'Basic s3cret-value-0123456789', 's3cret-value-0123456789', 'Bearer s3cret-value-0123456789x']) assert.ok(!check(a), String(a));
});

test('SEP-2243 headers a client sent must agree with the body (2026-07-28 requests only)', () => {
  const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' };
  const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: {}, _meta: meta } };
  assert.equal(headerMismatch(call, {}), undefined);
  assert.equal(headerMismatch(call, { 'mcp-method': 'tools/call', 'mcp-name': 'echo', 'mcp-protocol-version': '2026-07-28' }), undefined);
  assert.match(headerMismatch(call, { 'mcp-method': 'tools/list' }) ?? '', /mcp-method/);
  assert.match(headerMismatch(call, { 'mcp-name': 'other' }) ?? '', /mcp-name/);
  assert.match(headerMismatch(call, { 'mcp-protocol-version': '2025-11-25' }) ?? '', /mcp-protocol-version/);
  const old = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo' } };
  assert.equal(headerMismatch(old, { 'mcp-method': 'whatever' }), undefined, 'a 2025 request is not checked');
});

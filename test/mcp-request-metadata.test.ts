/** SEP-2243 request metadata headers (MCP 2026-07-28 "Streamable HTTP: Request Metadata"), pure. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeHeaderValue, encodeHeaderValue, metaProtocolVersion, requestMetadataHeaders, toolParamHeaders } from '../src/mcp/request-metadata.ts';

describe('encodeHeaderValue', () => {
  it('passes plain ASCII and Base64-encodes what is not safe, as the spec examples show', () => {
    assert.equal(encodeHeaderValue('us-west1'), 'us-west1');
    assert.equal(encodeHeaderValue('Hello, 世界'), '=?base64?SGVsbG8sIOS4lueVjA==?=');
    assert.equal(encodeHeaderValue(' padded '), '=?base64?IHBhZGRlZCA=?=');
    assert.equal(encodeHeaderValue('line1\nline2'), '=?base64?bGluZTEKbGluZTI=?=');
    assert.equal(encodeHeaderValue('=?base64?literal?='), '=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=');
    assert.equal(encodeHeaderValue('a\tb'), 'a\tb');
    assert.equal(encodeHeaderValue('\x7f'), '=?base64?fw==?=');
  });
  it('round-trips through decodeHeaderValue', () => {
    for (const v of ['x', 'Hello, 世界', ' padded ', 'a\r\nb', '=?base64?literal?=', '']) assert.equal(decodeHeaderValue(encodeHeaderValue(v)), v);
    assert.equal(decodeHeaderValue('=?base64?!!!?='), undefined);
  });
});

describe('toolParamHeaders', () => {
  const schema = (properties: Record<string, unknown>) => ({ type: 'object', properties });
  it('collects annotations reachable through properties, nested objects included', () => {
    const r = toolParamHeaders(schema({ region: { type: 'string', 'x-mcp-header': 'Region' }, opts: { type: 'object', properties: { dry: { type: 'boolean', 'x-mcp-header': 'Dry-Run' } } }, q: { type: 'string' } }));
    assert.deepEqual(r, { ok: true, headers: [{ path: ['region'], name: 'Region' }, { path: ['opts', 'dry'], name: 'Dry-Run' }] });
  });
  it('refuses empty names, bad characters, non-primitive or number types, duplicates and unreachable annotations', () => {
    const bad: unknown[] = [
      schema({ a: { type: 'string', 'x-mcp-header': '' } }),
      schema({ a: { type: 'string', 'x-mcp-header': 'Bad Name' } }),
      schema({ a: { type: 'string', 'x-mcp-header': 'Bad\r\nName' } }),
      schema({ a: { type: 'object', 'x-mcp-header': 'Obj' } }),
      schema({ a: { type: 'number', 'x-mcp-header': 'Num' } }),
      schema({ a: { type: 'string', 'x-mcp-header': 'Dup' }, b: { type: 'string', 'x-mcp-header': 'dup' } }),
      schema({ a: { type: 'array', items: { type: 'string', 'x-mcp-header': 'Item' } } }),
      { type: 'object', anyOf: [{ properties: { a: { type: 'string', 'x-mcp-header': 'A' } } }] },
      { type: 'string', 'x-mcp-header': 'Root' },
    ];
    for (const s of bad) assert.equal(toolParamHeaders(s).ok, false, JSON.stringify(s));
  });
});

describe('requestMetadataHeaders', () => {
  const call = (args: unknown, meta = '2026-07-28') => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'run', arguments: args, _meta: { 'io.modelcontextprotocol/protocolVersion': meta } } });
  const annotations = [{ path: ['region'], name: 'Region' }, { path: ['n'], name: 'N' }, { path: ['flag'], name: 'Flag' }, { path: ['gone'], name: 'Gone' }];
  it('modern era: version, method, name and params (null and absent omitted; numbers and booleans as text)', () => {
    const h = requestMetadataHeaders(call({ region: ' eu ', n: -7, flag: false, gone: null }), '2026-07-28', annotations);
    assert.deepEqual(h, { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'run', 'mcp-param-region': '=?base64?IGV1IA==?=', 'mcp-param-n': '-7', 'mcp-param-flag': 'false' });
  });
  it('resources/read names the URI; other methods carry only the method', () => {
    assert.equal(requestMetadataHeaders({ method: 'resources/read', params: { uri: 'file:///a b' } }, '2026-07-28')['mcp-name'], 'file:///a b');
    assert.deepEqual(requestMetadataHeaders({ method: 'tools/list', params: {} }, '2026-07-28'), { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' });
  });
  it('the 2025 era gets only the protocol version header', () => {
    assert.deepEqual(requestMetadataHeaders(call({ region: 'x' }), '2025-11-25', annotations), { 'mcp-protocol-version': '2025-11-25' });
    assert.deepEqual(requestMetadataHeaders({ method: 'initialize' }, undefined), {});
  });
  it('metaProtocolVersion reads the request _meta', () => {
    assert.equal(metaProtocolVersion(call({})), '2026-07-28');
    assert.equal(metaProtocolVersion({ method: 'x' }), undefined);
  });
});

// The proxy's stdio framing: one JSON-RPC message per line, whatever the chunking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { readLines } from '../src/proxy/stdio.ts';

test('readLines splits across chunk boundaries, drops CR and blank lines, keeps a last unterminated line', async () => {
  const input = new PassThrough();
  const lines: string[] = [];
  const done = readLines(input, (l) => lines.push(l));
  input.write('{"a":1}\n{"b"');
  input.write(':2}\r\n\n   \n{"c":"é');
  input.write(Buffer.from('😀"}\n').subarray(0, 2));
  input.write(Buffer.from('😀"}\n').subarray(2));
  input.end('{"d":4}');
  await done;
  assert.deepEqual(lines, ['{"a":1}', '{"b":2}', '{"c":"é😀"}', '{"d":4}']);
});

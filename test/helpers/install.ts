// Shared by the install tests: read back what `install` wrote, and match its errors.
import assert from 'node:assert/strict';
import { parse as parseJsonc, type ParseError } from 'jsonc-parser';
import { parse as parseToml } from 'smol-toml';
import { isMcpOAuthError } from '../../src/errors.ts';

/** JSONC → plain data, as VS Code reads it; a parse error fails the test. */
export function jsonc(text: string): Record<string, any> {
  const errors: ParseError[] = [];
  const doc = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
  assert.deepEqual(errors, [], 'parses as JSONC');
  return JSON.parse(JSON.stringify(doc));
}

/** TOML → plain JSON data (smol-toml's tables have a null prototype, which deepStrictEqual minds). */
export function toml(text: string): Record<string, any> {
  return JSON.parse(JSON.stringify(parseToml(text)));
}

/** An assert.rejects predicate: an McpOAuthError with this exit code whose message or hint matches. */
export function rejectsWith(exitCode: number, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(isMcpOAuthError(e), String(e));
    assert.equal(e.exitCode, exitCode);
    assert.match(`${e.message} ${e.hint ?? ''}`, pattern);
    return true;
  };
}

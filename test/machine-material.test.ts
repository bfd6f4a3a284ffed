/**
 * Where a workload's assertion and a client's key come from (src/signin/machine.ts): a file, a
 * variable or a command's output, read fresh each time; never inline. Each failure names its
 * source and what to fix.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAssertion } from '../src/signin/machine.ts';
import { chooseGrant } from '../src/oauth/grant-choice.ts';
import { isMcpOAuthError } from '../src/errors.ts';
import type { ServerConfig } from '../src/types.ts';

const server = (oauth: Partial<ServerConfig['oauth']>): ServerConfig => ({ name: 'pod', url: 'https://mcp.example.com/mcp', source: 'config', httpHeaders: {}, envHttpHeaders: {}, oauth: { authorizeParams: {}, ...oauth } });

describe('readAssertion', () => {
  it('reads a file, a variable, or a command (no shell), fresh each time', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mcp-oauth-assertion-'));
    try {
      const file = join(dir, 'token');
      await writeFile(file, 'eyJ.first\n');
      assert.deepEqual(await readAssertion(server({ assertionFile: file }), {}), { assertion: 'eyJ.first', source: `the file ${file}` });
      await writeFile(file, 'eyJ.rotated\n');
      assert.equal((await readAssertion(server({ assertionFile: file }), {})).assertion, 'eyJ.rotated');
      assert.equal((await readAssertion(server({ assertionEnvVar: 'CI_OIDC' }), { CI_OIDC: ' eyJ.env ' })).assertion, 'eyJ.env');
      const fromCommand = await readAssertion(server({ assertionCommand: [process.execPath, '-e', 'process.stdout.write("eyJ.cmd $HOME")'] }), {});
      assert.equal(fromCommand.assertion, 'eyJ.cmd $HOME', 'the arguments reach the command as they are: no shell expansion');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an unreadable file, an unset variable, a failing command: assertion_invalid naming the source', async () => {
    const cases: Array<[Partial<ServerConfig['oauth']>, RegExp]> = [
      [{ assertionFile: '/nonexistent/mcp-token' }, /\/nonexistent\/mcp-token/],
      [{ assertionEnvVar: 'NOT_SET_HERE' }, /NOT_SET_HERE/],
      [{ assertionCommand: ['/nonexistent/print-token'] }, /print-token.*command not found/],
      [{ assertionCommand: [process.execPath, '-e', 'process.exit(3)'] }, /failed/],
    ];
    for (const [oauth, pattern] of cases) {
      await assert.rejects(readAssertion(server(oauth), {}), (e) => isMcpOAuthError(e, 'assertion_invalid') && pattern.test(e.message) && !!e.hint);
    }
  });
});

describe('chooseGrant', () => {
  it('the config first, then what it provides, then what the metadata offers', () => {
    const md = (grants: string[]) => ({ issuer: 'https://as', authorization_endpoint: 'https://as/a', token_endpoint: 'https://as/t', grant_types_supported: grants });
    assert.equal(chooseGrant({ authorizeParams: {}, grant: 'client_credentials' }), 'client_credentials');
    assert.equal(chooseGrant({ authorizeParams: {}, enterprise: { issuer: 'https://idp', clientId: 'c' } }), 'enterprise');
    assert.equal(chooseGrant({ authorizeParams: {}, assertionEnvVar: 'T' }), 'jwt_bearer');
    const confidential = { authorizeParams: {}, clientId: 'c', clientSecretEnvVar: 'S' };
    assert.equal(chooseGrant(confidential, md(['client_credentials'])), 'client_credentials');
    assert.equal(chooseGrant(confidential, md(['authorization_code', 'client_credentials'])), 'authorization_code', 'a browser-capable client is not silently turned into a robot');
    assert.equal(chooseGrant({ authorizeParams: {} }, md(['client_credentials'])), 'authorization_code');
  });
});

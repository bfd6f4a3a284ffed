// `mcp-oauth sandbox --grant NAME [--dpop MODE] [--dpop-nonce]`: what a user configures to use the
// grant modes, printed without any secret. Client secrets come from `--client-secret-env VAR` (or
// are random and printed nowhere); the private_key_jwt key and the workload assertion are written
// to 0600 files in a 0700 temporary directory, removed when the sandbox stops. The assertion file is
// rewritten before it expires and after each use (the sandbox refuses a replayed assertion), like a
// Kubernetes projected service-account token.
import { chmod, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sandbox } from './types.ts';

export interface GrantCliOutput {
  lines: string[];
  /** For --json. */
  json: Record<string, unknown>;
  /** A stdin command of the grant modes: the note to print, or undefined when it is not one. */
  command(cmd: string): string | undefined;
  close(): Promise<void>;
}

async function writePrivate(file: string, text: string): Promise<void> {
  const temp = `${file}.tmp`;
  await writeFile(temp, text, { mode: 0o600 });
  await chmod(temp, 0o600);
  await rename(temp, file);
}

export async function grantCliOutput(sandbox: Sandbox, opts: { secretEnv?: string; dpopNonce?: boolean; assertionTtlSeconds?: number }): Promise<GrantCliOutput> {
  const lines: string[] = [];
  const json: Record<string, unknown> = { grants: sandbox.grants };
  const secret = opts.secretEnv ? `$${opts.secretEnv}` : 'random, printed nowhere (choose it with --client-secret-env VAR)';
  const tokenEndpoint = `${sandbox.issuer}/token`;
  const needsDir = sandbox.grantClients.privateKeyJwt || sandbox.workload;
  const dir = needsDir ? await mkdtemp(join(tmpdir(), 'mcp-oauth-sandbox-')) : undefined;
  if (dir) await chmod(dir, 0o700);
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();

  if (sandbox.grants.length) {
    lines.push(`  token endpoint        ${tokenEndpoint}   (resource ${sandbox.resource})`);
  }
  const c = sandbox.grantClients;
  if (c.clientSecretBasic && c.clientSecretPost && c.privateKeyJwt && dir) {
    const pem = join(dir, 'private-key.pem');
    const jwk = join(dir, 'private-key.jwk.json');
    await writePrivate(pem, c.privateKeyJwt.privateKeyPem);
    await writePrivate(jwk, JSON.stringify(c.privateKeyJwt.privateJwk, null, 2) + '\n');
    lines.push('  client_credentials (RFC 6749 §4.4), one client per authentication method:');
    lines.push(`    client_secret_basic  client_id ${c.clientSecretBasic.clientId}   secret ${secret}`);
    lines.push(`    client_secret_post   client_id ${c.clientSecretPost.clientId}    secret ${secret}`);
    lines.push(`    private_key_jwt      client_id ${c.privateKeyJwt.clientId}       key ${pem} (0600; as a JWK: ${jwk}), alg ${c.privateKeyJwt.alg}`);
    json.client_credentials = {
      client_secret_basic: c.clientSecretBasic.clientId, client_secret_post: c.clientSecretPost.clientId,
      private_key_jwt: { client_id: c.privateKeyJwt.clientId, key_pem_file: pem, key_jwk_file: jwk, alg: c.privateKeyJwt.alg },
    };
  }
  if (c.jwtBearer && sandbox.workload && dir) {
    const workload = sandbox.workload;
    const file = join(dir, 'workload-token.jwt');
    const ttl = opts.assertionTtlSeconds ?? 600;
    const refresh = () => (writing = writing.then(async () => writePrivate(file, await workload.mint({ ttlSeconds: ttl }))).catch(() => undefined));
    await refresh();
    timer = setInterval(refresh, (ttl * 1000) / 2);
    timer.unref();
    workload.onAccepted = () => void refresh();
    lines.push('  jwt_bearer (RFC 7523 §2.1, workload identity):');
    lines.push(`    client_id ${c.jwtBearer.clientId} (public: the assertion is the credential)`);
    lines.push(`    assertion file ${file} (0600; rewritten every ${Math.round(ttl / 2)} s and after each use), issuer ${workload.issuer}`);
    json.jwt_bearer = { client_id: c.jwtBearer.clientId, assertion_file: file, issuer: workload.issuer };
  }
  if (c.enterprise && sandbox.idp) {
    const idp = sandbox.idp;
    lines.push('  enterprise (SEP-990: IdP sign-in, token exchange for an ID-JAG, JWT bearer grant):');
    lines.push(`    enterprise IdP       ${idp.issuer}`);
    lines.push(`    client at the IdP    client_id ${idp.client.clientId}   secret ${secret}   (public alternative: ${idp.publicClient.clientId})`);
    lines.push(`    client at the MCP authorization server   client_id ${c.enterprise.clientId}   secret ${secret}`);
    json.enterprise = { idp_issuer: idp.issuer, idp_client_id: idp.client.clientId, idp_public_client_id: idp.publicClient.clientId, client_id: c.enterprise.clientId };
  }
  if (sandbox.dpop || opts.dpopNonce) {
    lines.push(`  DPoP (RFC 9449)       ${sandbox.dpop ?? 'offered'}${opts.dpopNonce && sandbox.dpop !== 'off' ? ', nonces required at both servers ("rotate-nonces" rotates them)' : ''}`);
  }
  json.dpop = sandbox.dpop ?? null;
  json.dpop_nonce = Boolean(opts.dpopNonce);

  return {
    lines,
    json,
    command(cmd) {
      if (cmd === 'rotate-nonces') {
        sandbox.rotateDpopNonces();
        return 'DPoP nonces rotated at both servers';
      }
      if ((cmd === 'deny-exchange' || cmd === 'allow-exchange') && sandbox.idp) {
        sandbox.idp.denyExchange = cmd === 'deny-exchange';
        return sandbox.idp.denyExchange ? 'the IdP now refuses every token exchange' : 'the IdP allows token exchanges again';
      }
      return undefined;
    },
    async close() {
      if (timer) clearInterval(timer);
      await writing;
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

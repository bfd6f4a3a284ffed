// The sandbox's "workload issuer": what signs the assertions of RFC 7523 §2.1 (workload identity
// federation) — a Kubernetes service-account token issuer, a CI job's OIDC provider, a cloud
// metadata server. The authorization server trusts its keys (in memory; the issuer URL is an
// identifier, never fetched) and the tests mint assertions with it, fresh or broken on purpose.
import { randomUUID } from 'node:crypto';
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';

export const WORKLOAD_ISSUER = 'https://workload-issuer.sandbox.invalid';
export const DEFAULT_WORKLOAD_SUBJECT = 'system:serviceaccount:sandbox:mcp-agent';

export interface WorkloadMintOptions {
  /** Default `system:serviceaccount:sandbox:mcp-agent`. */
  sub?: string;
  /** From now; ≤ 0 mints an assertion that has already expired. Default 600. */
  ttlSeconds?: number;
  /** Default: the sandbox authorization server's issuer (RFC 7523 §3 item 3). */
  audience?: string | string[];
  /** Default WORKLOAD_ISSUER; another value is an issuer the authorization server does not trust. */
  issuer?: string;
  /** Sign with a key the authorization server does not know (a forged or foreign assertion). */
  untrustedKey?: boolean;
  /** Leave out `jti` (RFC 7523 makes it optional; the sandbox needs it to detect replays). */
  omitJti?: boolean;
}

export interface WorkloadIssuer {
  issuer: string;
  /** Public keys the authorization server trusts. */
  jwks: JSONWebKeySet;
  /** A signed assertion, like a projected service-account token. */
  mint(opts?: WorkloadMintOptions): Promise<string>;
  /** RFC 7523 §3 item 7: replays of a `jti` are refused unless this is set (Kubernetes tokens, read
   * again from a file until they rotate, are reusable at many real authorization servers). */
  allowReplay: boolean;
  /** Called after the authorization server accepted an assertion (the CLI writes a fresh one). */
  onAccepted?: () => void;
}

export interface WorkloadIssuerInternal extends WorkloadIssuer {
  keys: JWTVerifyGetKey;
}

export async function createWorkloadIssuer(defaultAudience: string): Promise<WorkloadIssuerInternal> {
  const trusted = await generateKeyPair('ES256', { extractable: true });
  const foreign = await generateKeyPair('ES256');
  const kid = randomUUID();
  const jwks: JSONWebKeySet = { keys: [{ ...(await exportJWK(trusted.publicKey)), kid, alg: 'ES256', use: 'sig' }] };
  return {
    issuer: WORKLOAD_ISSUER,
    jwks,
    keys: createLocalJWKSet(jwks),
    allowReplay: false,
    async mint(opts = {}) {
      const now = Math.floor(Date.now() / 1000);
      const ttl = opts.ttlSeconds ?? 600;
      const jwt = new SignJWT({ ...(opts.omitJti ? {} : { jti: randomUUID() }) })
        .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid })
        .setIssuer(opts.issuer ?? WORKLOAD_ISSUER)
        .setSubject(opts.sub ?? DEFAULT_WORKLOAD_SUBJECT)
        .setAudience(opts.audience ?? defaultAudience)
        .setIssuedAt(Math.min(now, now + ttl - 1))
        .setExpirationTime(now + ttl);
      return jwt.sign(opts.untrustedKey ? foreign.privateKey : trusted.privateKey);
    },
  };
}

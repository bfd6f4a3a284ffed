/**
 * MCP 2026-07-28 "Authorization Server Binding": after a 401, the server's resource metadata may
 * name another authorization server than the one the credential comes from. Then the credential
 * (and this client's registration) belong to the old one and are never presented to the new one.
 */
import type { BearerChallenge } from '../oauth/www-authenticate.ts';
import type { Credential } from '../types.ts';

/** The issuer the server names instead of the credential's, when it moved; else undefined. A
 * metadata read that fails is no migration (the refresh goes on as before). */
export async function issuerMovedTo(
  current: Credential,
  challenge: BearerChallenge | undefined,
  authorizationServers: ((challenge?: BearerChallenge) => Promise<string[] | undefined>) | undefined,
  onReadFailed: (err: unknown) => void,
): Promise<string | undefined> {
  if (!authorizationServers) return undefined;
  let listed: string[] | undefined;
  try {
    listed = await authorizationServers(challenge);
  } catch (err) {
    onReadFailed(err);
    return undefined;
  }
  if (!listed?.length) return undefined;
  const { sameIssuer } = await import('../oauth/discovery.ts');
  return listed.some((issuer) => sameIssuer(issuer, current.key.issuer)) ? undefined : listed[0];
}

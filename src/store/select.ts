/**
 * Which stored credential a server uses (pure). A credential is keyed by the server's NAME and its
 * canonical resource URI (src/types.ts CredentialKey); a sign-in made with a bare URL is stored
 * under the URL's canonical form as its name.
 */
import { canonicalResourceUri } from '../oauth/canonical.ts';
import type { Credential, ServerConfig } from '../types.ts';

/**
 * The credentials a server signs its requests with, newest first: its own, else the ones stored
 * for the same canonical URL under the bare-URL name. Never another NAMED entry's: two entries
 * with the same URL may be two accounts (or two scope sets) on purpose.
 */
export function selectCredentials(all: Credential[], server: ServerConfig): Credential[] {
  const own = ownCredentials(all, server);
  const bare = bareUrlName(server.url);
  if (own.length > 0 || server.name === bare) return own;
  // The bare URL has no oauth_resource: only a server whose resource is its own URL can share it.
  const resource = canonicalResourceUri(server.oauthResource ?? server.url);
  if (resource !== bare) return [];
  return newestFirst(all.filter((c) => c.key.serverName === bare && c.key.resource === resource));
}

/** The name a sign-in made with a bare URL is stored under: the URL's canonical form. */
export function bareUrlName(url: string): string {
  return canonicalResourceUri(url);
}


export function ownCredentials(all: Credential[], server: ServerConfig): Credential[] {
  const resource = canonicalResourceUri(server.oauthResource ?? server.url);
  return newestFirst(all.filter((c) => c.key.serverName === server.name && c.key.resource === resource));
}

export function newestFirst(list: Credential[]): Credential[] {
  return [...list].sort((a, b) => b.obtainedAt - a.obtainedAt);
}

/**
 * Which stored credentials belong to a server. A credential is keyed by the server's NAME and its
 * canonical resource URI (src/types.ts CredentialKey); a sign-in made with a bare URL is stored
 * under the URL's canonical form as its name (config.ts resolveServer).
 */
import type { Credential, CredentialStore, ServerConfig } from '../types.ts';
import { newestFirst, ownCredentials, selectCredentials } from '../store/select.ts';

export { bareUrlName, selectCredentials } from '../store/select.ts';

/** The server's own credentials (one per issuer), newest first. */
export async function credentialsFor(store: CredentialStore, server: ServerConfig): Promise<Credential[]> {
  return ownCredentials(await store.list(), server);
}

/**
 * The credential a named server signs its requests with: its own, else one stored for the same
 * canonical URL under the bare-URL name (a `mcp-oauth login https://…` made before the entry was
 * named, or by a client that was given the URL). Never another NAMED entry's credential: two
 * entries with the same URL may be two accounts (or two scope sets) on purpose.
 * Newest first, as credentialsFor.
 */
export async function credentialsInUse(store: CredentialStore, server: ServerConfig): Promise<Credential[]> {
  return selectCredentials(await store.list(), server);
}

/**
 * The bare-URL sign-ins among `all`: credentials whose server name is an http(s) URL (never a
 * config name: those cannot contain ":" or "/"), one entry per name, newest credential first.
 */
export function bareUrlCredentials(all: Credential[]): Map<string, Credential[]> {
  const byName = new Map<string, Credential[]>();
  for (const c of all) {
    if (!/^https?:\/\//i.test(c.key.serverName) || c.key.resource !== c.key.serverName) continue;
    byName.set(c.key.serverName, [...(byName.get(c.key.serverName) ?? []), c]);
  }
  for (const [name, list] of byName) byName.set(name, newestFirst(list));
  return byName;
}

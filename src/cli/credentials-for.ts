/** Finds the stored credentials of one server (one per issuer), newest first. */
import { canonicalResourceUri } from '../oauth/canonical.ts';
import type { Credential, CredentialStore, ServerConfig } from '../types.ts';

export async function credentialsFor(store: CredentialStore, server: ServerConfig): Promise<Credential[]> {
  const resource = canonicalResourceUri(server.oauthResource ?? server.url);
  const all = await store.list();
  return all
    .filter((c) => c.key.serverName === server.name && c.key.resource === resource)
    .sort((a, b) => b.obtainedAt - a.obtainedAt);
}

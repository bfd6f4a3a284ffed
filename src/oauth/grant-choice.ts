/**
 * Which grant a server's tokens come from (pure: config and metadata in, a grant out). Small and
 * free of I/O so the proxy's start-up can ask without loading the grant code.
 */
import type { AuthorizationServerMetadata } from './discovery.ts';
import type { Grant, ServerConfig } from '../types.ts';

/** Grants that need nobody at a browser: their credentials are renewed by running the grant again. */
export function isMachineGrant(grant: Grant | undefined): grant is Exclude<Grant, 'authorization_code'> {
  return grant === 'client_credentials' || grant === 'jwt_bearer' || grant === 'enterprise';
}

/**
 * The grant for a server (issue: "When it is absent, the choice comes from what the config
 * provides and what the metadata offers"): the configured one; else an enterprise IdP or an
 * assertion source in the config says so; else a confidential client (secret or key) at an
 * authorization server that offers client_credentials but not the authorization code grant;
 * else the authorization code grant with a browser.
 */
export function chooseGrant(oauth: ServerConfig['oauth'], metadata?: AuthorizationServerMetadata): Grant {
  if (oauth.grant) return oauth.grant;
  if (oauth.enterprise) return 'enterprise';
  if (oauth.assertionFile || oauth.assertionEnvVar || oauth.assertionCommand) return 'jwt_bearer';
  const confidential = Boolean(oauth.clientId && (oauth.clientSecretEnvVar || oauth.privateKeyFile || oauth.privateKeyEnvVar));
  const offered = metadata?.grant_types_supported;
  if (confidential && offered?.includes('client_credentials') && !offered.includes('authorization_code')) return 'client_credentials';
  return 'authorization_code';
}

/** True when the config alone says the grant needs no browser (no discovery needed to know). */
export function configuresMachineGrant(oauth: ServerConfig['oauth']): boolean {
  return isMachineGrant(chooseGrant(oauth));
}


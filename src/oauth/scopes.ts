/**
 * Which scopes to ask for. MCP spec 2025-11-25 "Scope Selection Strategy": the `scope` of the
 * 401 challenge first, else all of the Protected Resource Metadata `scopes_supported`, else no
 * `scope` parameter at all. Explicit configuration beats both (the user knows the server).
 */
export function selectScopes(opts: {
  configScopes?: string[];
  challengeScope?: string[];
  scopesSupported?: string[];
  asScopesSupported?: string[];
}): string[] {
  const chosen = firstNonEmpty(opts.configScopes, opts.challengeScope, opts.scopesSupported) ?? [];
  const scopes = unique(chosen);
  // Refresh tokens are what keep a client signed in. Many authorization servers (OIDC Core §11)
  // only issue one for `offline_access`, so ask for it when the AS says it knows it. Never when
  // the list is empty: `scope=offline_access` alone would replace the server's default scopes.
  if (scopes.length > 0 && opts.asScopesSupported?.includes('offline_access') && !scopes.includes('offline_access')) {
    scopes.push('offline_access');
  }
  return scopes;
}

/**
 * Step-up authorization (MCP spec "Scope Challenge Handling"): ask for what was granted plus what
 * the `insufficient_scope` challenge names, so the new token does not lose earlier permissions.
 */
export function stepUpScopes(granted: string[], challenged: string[]): string[] {
  return unique([...granted, ...challenged]);
}

function firstNonEmpty(...lists: Array<string[] | undefined>): string[] | undefined {
  return lists.find((l) => l !== undefined && l.length > 0);
}

function unique(list: string[]): string[] {
  return [...new Set(list.filter((s) => s.length > 0))];
}

/**
 * Provider-specific authorization request parameters. Only what a provider documents as needed
 * for a refresh token lives here; everything can be overridden by `oauth.authorize_params`.
 */

export interface ProviderQuirks {
  name: string;
  /** Extra parameters for the authorization request. */
  authorizeParams: Record<string, string>;
  /** Why a sign-in may come back without a refresh token, for `status` / `doctor`. */
  missingRefreshTokenHint?: string;
}

const GOOGLE_HOST = 'accounts.google.com';

/*
 * Google's "Using OAuth 2.0 for Web Server Applications" documents that a refresh token is only
 * returned when the authorization request has `access_type=offline`, and only the first time the
 * user consents; `prompt=consent` makes Google ask again and so return a refresh token again.
 */
const GOOGLE: ProviderQuirks = {
  name: 'google',
  authorizeParams: { access_type: 'offline', prompt: 'consent' },
  missingRefreshTokenHint:
    'Google only returns a refresh token when the sign-in request has access_type=offline, and only on the first consent ' +
    'unless prompt=consent is sent; sign in again with both (the Google defaults, unless oauth.authorize_params overrides them)',
};

const GENERIC: ProviderQuirks = { name: 'generic', authorizeParams: {} };

/**
 * The quirks for an issuer. `override` forces a provider ("google") or disables quirks ("none").
 * Other providers get no extra parameters: `prompt=consent` by default would make every sign-in
 * show a consent screen.
 */
export function providerFor(issuer: string, override?: string): ProviderQuirks {
  const forced = override?.trim().toLowerCase();
  if (forced === 'none') return copy(GENERIC);
  if (forced === 'google' || (!forced && isGoogleIssuer(issuer))) return copy(GOOGLE);
  return copy(GENERIC);
}

/** Provider defaults, then the user's configured parameters, which win. An empty configured value
 * removes the parameter (e.g. `prompt = ""` to stop Google's forced consent screen). */
export function authorizeParamsFor(quirks: ProviderQuirks, configParams: Record<string, string>): Record<string, string> {
  const merged: Record<string, string> = { ...quirks.authorizeParams, ...configParams };
  for (const [k, v] of Object.entries(merged)) if (v === '') delete merged[k];
  return merged;
}

/**
 * A plain sentence explaining why no refresh token came back, when the cause is known from the
 * parameters that were sent; undefined when there is nothing provider-specific to say.
 */
export function explainMissingRefreshToken(issuer: string, sentParams: Record<string, string>, provider?: string): string | undefined {
  if (providerFor(issuer, provider).name !== 'google') return undefined;
  const reasons: string[] = [];
  if (sentParams.access_type !== 'offline') {
    reasons.push('the sign-in did not send access_type=offline, and Google issues refresh tokens only for offline access');
  }
  // `prompt` is a space-delimited list (OIDC Core §3.1.2.1), e.g. "consent select_account".
  if (!(sentParams.prompt ?? '').split(/\s+/).includes('consent')) {
    reasons.push('the sign-in did not send prompt=consent, and Google returns a refresh token only on the first consent without it');
  }
  if (reasons.length === 0) return undefined;
  return `Google returned no refresh token because ${reasons.join('; and ')}. Remove any oauth.authorize_params override of these and sign in again.`;
}

function isGoogleIssuer(issuer: string): boolean {
  // Google's issuer is "https://accounts.google.com"; its ID tokens also use the bare host form.
  if (issuer === GOOGLE_HOST) return true;
  try {
    const url = new URL(issuer);
    return url.protocol === 'https:' && url.hostname === GOOGLE_HOST;
  } catch {
    return false;
  }
}

function copy(q: ProviderQuirks): ProviderQuirks {
  return { ...q, authorizeParams: { ...q.authorizeParams } };
}

/**
 * Parsing of the `WWW-Authenticate` response header (RFC 9110 §11.6.1 syntax) for the Bearer
 * scheme (RFC 6750 §3) with the RFC 9728 §5.1 `resource_metadata` parameter.
 *
 * A header can carry several challenges ("Basic realm=x, Bearer scope=\"a b\""), parameters are
 * separated by the same commas as challenges, and quoted strings may contain commas and
 * backslash-escaped quotes, so this is a small tokenizer rather than a regular expression.
 * Servers in the wild also send unquoted URLs; we accept them leniently.
 */

export interface BearerChallenge {
  /** RFC 6750 §3.1: invalid_request | invalid_token | insufficient_scope (or anything else). */
  error?: string;
  errorDescription?: string;
  /** RFC 6750 §3: space-delimited scopes the resource needs; undefined when absent or empty. */
  scope?: string[];
  /** RFC 9728 §5.1: where the Protected Resource Metadata lives. */
  resourceMetadata?: string;
  realm?: string;
}

interface RawChallenge {
  scheme: string;
  params: Record<string, string>;
  token68?: string;
}

/** Returns the first Bearer challenge of the header, or undefined when there is none. */
export function parseBearerChallenge(header: string | null): BearerChallenge | undefined {
  if (!header) return undefined;
  // RFC 9449 §7.1: a resource server that takes DPoP-bound tokens challenges with the DPoP
  // scheme, with the same parameters (error, scope, resource_metadata). Bearer is preferred.
  const challenges = parseChallenges(header);
  const bearer = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'dpop');
  if (!bearer) return undefined;
  const p = bearer.params;
  const challenge: BearerChallenge = {};
  if (p.error !== undefined) challenge.error = p.error;
  if (p.error_description !== undefined) challenge.errorDescription = p.error_description;
  if (p.realm !== undefined) challenge.realm = p.realm;
  if (p.resource_metadata) challenge.resourceMetadata = p.resource_metadata;
  if (p.scope !== undefined) {
    // RFC 6750 §3 / RFC 6749 §3.3: scope is a space-delimited list. An empty list is treated as
    // absent so that the MCP "Scope Selection Strategy" fallback applies.
    const scopes = p.scope.split(/\s+/).filter((s) => s.length > 0);
    if (scopes.length > 0) challenge.scope = scopes;
  }
  return challenge;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
// token68 (RFC 9110 §11.2) additionally allows "/" and trailing "=".
const TOKEN68_CHAR = /[A-Za-z0-9\-._~+/]/;

// Folded header lines (obsolete, RFC 9112 §5.2) and copied examples contain CR/LF: treat as space.
const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';

/** All challenges of a header, scheme names lowercased, parameter names lowercased. */
export function parseChallenges(header: string): RawChallenge[] {
  const s = header;
  const challenges: RawChallenge[] = [];
  let current: RawChallenge | undefined;
  let i = 0;
  // True right after a scheme name (only whitespace since): a bare token here is a token68.
  let afterScheme = false;

  const skipSpaces = (): void => {
    while (i < s.length && isSpace(s[i])) i++;
  };
  const readWhile = (re: RegExp): string => {
    const start = i;
    while (i < s.length && re.test(s[i])) i++;
    return s.slice(start, i);
  };
  // Resynchronise after garbage: skip to the next comma.
  const skipToComma = (): void => {
    while (i < s.length && s[i] !== ',') i++;
  };

  while (i < s.length) {
    skipSpaces();
    if (s[i] === ',') {
      afterScheme = false;
      i++;
      continue;
    }
    if (i >= s.length) break;

    const start = i;
    const token = readWhile(TCHAR);
    if (!token) {
      skipToComma();
      afterScheme = false;
      continue;
    }
    if (afterScheme && current && s[i] === '/') {
      // A token68 containing "/" ("Negotiate YII/ab=="): not a tchar, so re-read it as token68.
      i = start;
      current.token68 = readWhile(TOKEN68_CHAR) + readWhile(/=/);
      afterScheme = false;
      continue;
    }
    skipSpaces();

    if (s[i] === '=' && current) {
      // Either `name=value` or a token68 ending in "=" padding ("Basic dXNlcg==").
      let j = i;
      while (s[j] === '=') j++;
      let k = j;
      while (k < s.length && isSpace(s[k])) k++;
      if (afterScheme && (j - i > 1 || k >= s.length || s[k] === ',')) {
        current.token68 = token + s.slice(i, j);
        i = j;
        afterScheme = false;
        continue;
      }
      i++; // past "="
      skipSpaces();
      const value = s[i] === '"' ? readQuotedString() : readUnquotedValue();
      const name = token.toLowerCase();
      // RFC 6750 §3: parameters MUST NOT appear more than once; keep the first.
      if (!(name in current.params)) current.params[name] = value;
      afterScheme = false;
      continue;
    }

    if (afterScheme && current && (i >= s.length || s[i] === ',')) {
      // `Scheme token68` without padding.
      i = start;
      current.token68 = readWhile(TOKEN68_CHAR);
      afterScheme = false;
      continue;
    }

    if (s[i] === '=') {
      // "name=value" before any scheme: garbage.
      skipToComma();
      continue;
    }

    current = { scheme: token.toLowerCase(), params: {} };
    challenges.push(current);
    afterScheme = true;
  }
  return challenges;

  function readQuotedString(): string {
    // RFC 9110 §5.6.4: quoted-string with backslash quoted-pair. Unterminated → rest of header.
    i++; // opening quote
    let out = '';
    while (i < s.length && s[i] !== '"') {
      if (s[i] === '\\' && i + 1 < s.length) i++;
      out += s[i];
      i++;
    }
    i++; // closing quote (or past the end)
    return out;
  }

  function readUnquotedValue(): string {
    // Lenient: RFC 9110 wants a token here, but servers send bare URLs (with "/" and ":").
    const start = i;
    while (i < s.length && s[i] !== ',' && !isSpace(s[i])) i++;
    return s.slice(start, i);
  }
}

import { crypto } from './builtins.ts';

/**
 * Secrets never appear in logs, errors, argv or test output. Where a user needs to tell two tokens
 * apart, show this short SHA-256 fingerprint instead.
 */
export function fingerprint(secret: string | undefined): string {
  if (!secret) return '(none)';
  return 'sha256:' + crypto().createHash('sha256').update(secret).digest('hex').slice(0, 12);
}

/** Replaces every occurrence of the given secrets in `text` by their fingerprints. */
export function redact(text: string, secrets: Array<string | undefined>): string {
  let out = text;
  for (const s of secrets) {
    if (s && s.length >= 8) out = out.split(s).join(fingerprint(s));
  }
  return out;
}

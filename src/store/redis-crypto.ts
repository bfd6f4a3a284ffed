/**
 * Encryption at rest for the Redis credential store: AES-256-GCM (NIST SP 800-38D) with a random
 * 96-bit IV per value (SP 800-38D §8.2.2: random IVs of 96 bits, never reused with one key), and
 * the key id plus the Redis field the value belongs to as additional authenticated data, so a value
 * copied to another credential's field (or sealed under another key) fails authentication instead
 * of being read as that credential. The key never comes from Redis (src/store/redis-key.ts: the
 * environment, a file or the OS keychain of this host), so whoever can read Redis (its dump files,
 * a replica, a MONITOR) sees only ciphertext.
 */
import { McpOAuthError } from '../errors.ts';
import { crypto } from '../builtins.ts';

/** Format version of a sealed value; part of the AAD so a future format cannot be confused with it. */
const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface RedisKey {
  key: Buffer;
  /** A short, non-secret id derived from the key: tells "sealed with another key" apart from tampering. */
  id: string;
}

/** The key and its id: a hash of the key under a fixed label, identifying it without revealing anything usable. */
export function redisKeyFromBytes(key: Buffer): RedisKey {
  const id = crypto().createHash('sha256').update('mcp-oauth redis key id\0').update(key).digest('hex').slice(0, 12);
  return { key, id };
}

function aad(keyId: string, field: string): Buffer {
  return Buffer.from(`mcp-oauth/redis/${VERSION}|${keyId}|${field}`, 'utf8');
}

/** `v1.<key id>.<iv>.<ciphertext||tag>` (base64url). `field` names what the value is (the AAD). */
export function seal(k: RedisKey, field: string, value: unknown): string {
  const iv = crypto().randomBytes(IV_BYTES);
  const cipher = crypto().createCipheriv('aes-256-gcm', k.key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(k.id, field));
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return [VERSION, k.id, iv.toString('base64url'), body.toString('base64url')].join('.');
}

/** Decrypts and authenticates a sealed value; `store_error` when it was sealed with another key or altered. */
export function unseal<T>(k: RedisKey, field: string, sealed: string, where: string): T {
  const [version, keyId, ivText, bodyText] = sealed.split('.');
  if (version !== VERSION || !keyId || !ivText || !bodyText) {
    throw new McpOAuthError('store_error', `a value in the Redis store at ${where} is not an mcp-oauth encrypted value`, {
      hint: 'something else writes to the mcp-oauth: keys of this Redis database; use a database of its own (redis_url .../N)',
    });
  }
  if (keyId !== k.id) {
    throw new McpOAuthError('store_error', `a credential in the Redis store at ${where} was encrypted with another key (key id ${keyId}; this host's key is ${k.id})`, {
      hint: 'give every host the same key: `mcp-oauth store-key export` on a host that reads these values, `mcp-oauth store-key import` here',
    });
  }
  try {
    const body = Buffer.from(bodyText, 'base64url');
    const decipher = crypto().createDecipheriv('aes-256-gcm', k.key, Buffer.from(ivText, 'base64url'), { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(k.id, field));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    const plain = Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as T;
  } catch (e) {
    throw new McpOAuthError('store_error', `a credential in the Redis store at ${where} failed authentication (altered, or moved from another entry)`, {
      hint: 'sign in again to replace it: mcp-oauth login NAME',
      cause: e,
    });
  }
}

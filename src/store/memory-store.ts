import type { ClientRegistration, Credential, CredentialKey, CredentialStore } from '../types.ts';
import { credentialId, registrationMatches } from './credential-id.ts';

/**
 * Credentials in this process's memory: for tests, and for library users who persist elsewhere.
 * Values are deep-copied in and out so callers cannot mutate the stored state by accident.
 * `withLock` is in-process only (there is no other process that could see this store).
 */
export class MemoryCredentialStore implements CredentialStore {
  readonly kind = 'memory' as const;
  readonly #credentials = new Map<string, Credential>();
  readonly #registrations = new Map<string, ClientRegistration>();
  readonly #locks = new Map<string, Promise<void>>();

  async get(key: CredentialKey): Promise<Credential | undefined> {
    const c = this.#credentials.get(credentialId(key));
    return c && structuredClone(c);
  }

  async put(credential: Credential): Promise<void> {
    this.#credentials.set(credentialId(credential.key), structuredClone(credential));
  }

  async delete(key: CredentialKey): Promise<void> {
    this.#credentials.delete(credentialId(key));
  }

  async list(): Promise<Credential[]> {
    return [...this.#credentials.values()].map((c) => structuredClone(c));
  }

  async getRegistration(issuer: string, redirectUri?: string): Promise<ClientRegistration | undefined> {
    const r = this.#registrations.get(issuer);
    return r && registrationMatches(r.redirectUris, redirectUri) ? structuredClone(r) : undefined;
  }

  async putRegistration(registration: ClientRegistration): Promise<void> {
    this.#registrations.set(registration.issuer, structuredClone(registration));
  }

  async deleteRegistration(issuer: string): Promise<void> {
    this.#registrations.delete(issuer);
  }

  async withLock<T>(key: CredentialKey, fn: () => Promise<T>): Promise<T> {
    const id = credentialId(key);
    const previous = this.#locks.get(id) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const tail = previous.then(() => mine);
    this.#locks.set(id, tail);
    try {
      await previous;
      return await fn();
    } finally {
      done();
      if (this.#locks.get(id) === tail) this.#locks.delete(id);
    }
  }
}

/**
 * Node built-ins that are compiled on first use instead of at start-up. A static ESM import
 * compiles the whole module (node:crypto is large) even when the run never calls it, and the
 * proxy's start-up is on the MCP client's clock.
 */
export const crypto = (): typeof import('node:crypto') => process.getBuiltinModule('node:crypto');

/** The synchronous fs API: small reads (config, credentials file) at start-up use it, because
 * `node:fs/promises` drags in readline, REPL history and the fs watchers (~10 builtins). */
export const fs = (): typeof import('node:fs') => process.getBuiltinModule('node:fs');

/** `node:fs/promises`, loaded only when something is written. */
export const fsPromises = (): typeof import('node:fs/promises') => process.getBuiltinModule('node:fs/promises');

export const os = (): typeof import('node:os') => process.getBuiltinModule('node:os');

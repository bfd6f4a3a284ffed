/**
 * Node built-ins that are compiled on first use instead of at start-up. A static ESM import
 * compiles the whole module (node:crypto is large) even when the run never calls it, and the
 * proxy's start-up is on the MCP client's clock.
 */
export const crypto = (): typeof import('node:crypto') => process.getBuiltinModule('node:crypto');

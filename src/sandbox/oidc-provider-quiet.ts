/**
 * oidc-provider, minus two start-up warnings that are expected in a loopback sandbox and would
 * only confuse a demo's reader: the in-memory adapter (on purpose: the sandbox is throwaway), and
 * "unsupported runtime" (the npm registry's Node 24 builds predate 24's LTS tag). Every other
 * oidc-provider warning still reaches stderr.
 */
const EXPECTED = [/Unsupported runtime/, /in-memory adapter is used/];
const originalWarn = console.warn;
console.warn = (...args: unknown[]) => {
  const first = args[0];
  if (typeof first === 'string' && first.includes('oidc-provider WARNING') && EXPECTED.some((re) => re.test(first))) return;
  originalWarn(...args);
};
const mod = await import('oidc-provider');
export default mod.default;
export const errors = mod.errors;

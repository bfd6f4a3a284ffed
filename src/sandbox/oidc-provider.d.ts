// Minimal ambient types for `oidc-provider` (it ships none). The sandbox only touches a small
// surface of it; everything else stays `any` on purpose.
declare module 'oidc-provider' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const Provider: any;
  export default Provider;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export const errors: any;
}

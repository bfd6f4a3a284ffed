// Ambient types for the few oidc-provider internals the sandbox reaches (oidc-internals.ts).
declare module 'oidc-provider/lib/helpers/validate_dpop.js' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export default function validateDpop(provider: any, ctx: any, accessToken?: string): Promise<{ thumbprint: string; jti: string; iat: number } | undefined>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export function checkDpopReplay(provider: any, ctx: any, dPoP: { thumbprint: string; jti: string; iat: number }, clientId: string, ErrorClass?: any): Promise<void>;
}
declare module 'oidc-provider/lib/helpers/weak_cache.js' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export default function instance(provider: any): any;
}
declare module 'oidc-provider/lib/helpers/challenge.js' {
  export default class ServerChallenge {
    constructor(secret: Buffer, info: string);
    nextChallenge(): string;
    checkChallenge(challenge: string): boolean;
  }
}

/** proper-lockfile (and graceful-fs under it) is loaded on first lock: reads never lock, and a
 * process that only reads (the proxy's start-up) should not pay ~40 ms for it. */
let lockfileModule: Promise<typeof import('proper-lockfile')> | undefined;

export function properLockfile(): Promise<typeof import('proper-lockfile')> {
  lockfileModule ??= import('proper-lockfile').then((m) => (m as { default?: typeof import('proper-lockfile') }).default ?? m);
  return lockfileModule;
}

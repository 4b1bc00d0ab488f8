// The wallet's clock, §2's `ts`: the server's time at the last sync plus the time elapsed since.
// While the page that synced lives, elapsed time is `performance.now()` (monotonic: the wall
// clock may jump, it does not). A reloaded page has no monotonic clock left from the sync: it
// takes the wall clock plus the offset measured at the last sync, once at load, and counts
// elapsed time from there.

let base = null; // {server: seconds, perf: performance.now() at that moment}

/** Before and after a request: the wall clock and the monotonic one. */
export function mark() {
  return { wall: Date.now() / 1000, perf: performance.now() };
}

/** The server answered `serverTime` between `before` and `after`: the sample to store
 * ({server, wall}) and, for this page's life, the monotonic base. */
export function synced(serverTime, before, after) {
  const wall = (before.wall + after.wall) / 2;
  base = { server: serverTime, perf: (before.perf + after.perf) / 2 };
  return { server: serverTime, wall };
}

/** At load: the stored sample's offset applied to the wall clock (none yet: the wall clock). */
export function loaded(sample) {
  const offset = sample ? sample.server - sample.wall : 0;
  base = { server: Date.now() / 1000 + offset, perf: performance.now() };
}

/** The server's time now as this page knows it, in whole Unix seconds. */
export function now() {
  if (base === null) return Math.floor(Date.now() / 1000);
  return Math.floor(base.server + (performance.now() - base.perf) / 1000);
}

/** The offset (server minus wall clock, seconds) of a stored sample. */
export function offsetOf(sample) {
  return sample ? Math.round(sample.server - sample.wall) : null;
}

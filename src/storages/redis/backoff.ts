/** The first retry's delay, doubled after each failure up to the cap. */
const FIRST_DELAY_MS = 25;
const MAX_DELAY_MS = 1000;

/**
 * How long to wait before retrying after `failures` failures in a row: quick
 * first retries, then at most one a second; `jitterMs` spreads instances that
 * fail together, so they do not retry in step.
 */
export function backoffDelay(failures: number, jitterMs = 0): number {
  const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** failures);
  return jitterMs === 0 ? delay : delay + Math.floor(Math.random() * jitterMs);
}

/** Waits `ms`; the timer never keeps a process alive by itself. */
export function sleep(ms: number): Promise<void> {
  // A deadline already past is no wait (Node 24 warns of a negative timeout).
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)).unref());
}

/**
 * Waiting in tests, always bounded, never a sleep standing in for an event.
 *
 * - {@link Conditions}: what a recorder (an observer, a logger) lets a test
 *   await; the recorder calls `wake()` after each change, so a wait ends as
 *   soon as its condition holds.
 * - {@link pollUntil}: only for states nothing announces (a Redis server's
 *   client list, say), checked again every `intervalMs`; {@link untilResolves}
 *   is the same for a call that fails until that state comes (a ping while a
 *   client reconnects on its own schedule).
 * - {@link within}: bounds a promise that should settle by itself.
 *
 * Each rejects with what it waited for (and, when given, what it saw) once its
 * bound has passed, so a failure says why.
 */
// Not the globals: a test on jest's fake timers must not freeze the bounds.
import { clearTimeout, setTimeout } from 'node:timers';

/** The bound of a wait unless a test names another: below jest's per-test timeouts in the suites that wait. */
export const WAIT_TIMEOUT_MS = 10_000;

/** What a wait was for: text, or a function called when it times out, so that it can describe what was seen by then. */
export type WaitingFor = string | (() => string);

function timedOut(what: WaitingFor, timeoutMs: number): Error {
  return new Error(`Timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
}

interface Waiter {
  readonly check: () => boolean;
  readonly resolve: () => void;
}

/** Conditions awaited on a recorder's state; the recorder calls {@link wake} after every change. */
export class Conditions {
  private waiters: Waiter[] = [];

  /** Resolves once `check()` holds (at once if it does); rejects after `timeoutMs`. */
  until(check: () => boolean, what: WaitingFor, timeoutMs = WAIT_TIMEOUT_MS): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((other) => other !== waiter);
        reject(timedOut(what, timeoutMs));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Settles every wait whose condition now holds. */
  wake(): void {
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((waiter) => waiter.check());
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((waiter) => !ready.includes(waiter));
    for (const waiter of ready) waiter.resolve();
  }
}

/**
 * Calls `check` until it returns true, `intervalMs` apart, for at most
 * `timeoutMs`; then rejects. Only where nothing announces the state awaited.
 */
export async function pollUntil(
  check: () => boolean | Promise<boolean>,
  what: WaitingFor,
  { timeoutMs = WAIT_TIMEOUT_MS, intervalMs = 20 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) throw timedOut(what, timeoutMs);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * The result of the first call of `call` that resolves, tried `intervalMs`
 * apart for at most `timeoutMs` (a {@link pollUntil} on a call); the
 * rejection after the bound names the last failure.
 */
export async function untilResolves<T>(
  call: () => Promise<T>,
  what: string,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  let result: { value: T } | undefined;
  let failure: unknown;
  await pollUntil(
    () => call().then(
      (value) => ((result = { value }), true),
      (error: unknown) => ((failure = error), false),
    ),
    () => `${what}; last failure: ${String(failure)}`,
    options,
  );
  return result!.value;
}

/** `promise`, unless it takes longer than `timeoutMs`: then a rejection naming `what`. */
export async function within<T>(promise: Promise<T>, what: WaitingFor, timeoutMs = WAIT_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(timedOut(what, timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

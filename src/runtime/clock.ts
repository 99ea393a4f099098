// The runtime's view of time: a reading and a one-shot timer, passed in so that queues, rate
// limiters and restart back-off can be tested with a manual clock and no real sleeps.
//
// Contract of `realClock`:
// - `now()` is monotonic milliseconds (performance.now): only differences are meaningful. It
//   never jumps when the wall clock is stepped, and it agrees with setTimeout, which is driven by
//   the same monotonic clock, so a delay measured with `now()` and a timer never disagree.
// - `setTimer(ms, fn)` calls `fn` once, no earlier than `ms` from now, however large `ms` is:
//   Node's setTimeout fires after 1 ms for anything above 2^31-1 ms (about 24.8 days), so a
//   long delay is split into chained timers. The returned function cancels it; calling it after
//   the timer fired, or twice, does nothing.
// - It does not promise promptness: a busy event loop fires timers late.

export interface Clock {
  now(): number;
  setTimer(ms: number, fn: () => void): Cancel;
}

export type Cancel = () => void;

/** The largest delay Node's setTimeout honours; anything larger fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The timer primitives a Clock is built on (Node's, or fakes in tests). */
export interface TimerPrimitives<H> {
  now: () => number;
  setTimeout: (fn: () => void, ms: number) => H;
  clearTimeout: (handle: H) => void;
}

/** A Clock over timer primitives; long delays are chained below MAX_TIMER_MS. */
export function timerClock<H>(p: TimerPrimitives<H>): Clock {
  return {
    now: p.now,
    setTimer(ms, fn) {
      const due = p.now() + Math.max(0, ms);
      let handle: H | undefined;
      const arm = (): void => {
        // setTimeout may fire a fraction of a millisecond early against `now`: re-arm for the
        // rest rather than fire early.
        const remaining = due - p.now();
        if (remaining <= 0) {
          handle = undefined;
          fn();
          return;
        }
        handle = p.setTimeout(arm, Math.min(Math.ceil(remaining), MAX_TIMER_MS));
      };
      handle = p.setTimeout(arm, Math.min(Math.ceil(Math.max(0, ms)), MAX_TIMER_MS));
      return () => {
        if (handle !== undefined) p.clearTimeout(handle);
        handle = undefined;
      };
    },
  };
}

export const realClock: Clock = timerClock<NodeJS.Timeout>({
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => {
    clearTimeout(h);
  },
});

/** Resolves after `ms` on `clock`, or at once when `signal` aborts (it never rejects). */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      cancel();
      resolve();
    };
    const cancel = clock.setTimer(ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

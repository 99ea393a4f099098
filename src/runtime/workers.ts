// Runs reconcile workers over a rate-limiting work queue: controller-runtime's
// reconcileHandler loop (pkg/internal/controller/controller.go), with bounded concurrency.
//
// Guarantees:
// - At most `concurrency` reconciles run at once, plus at most `dueConcurrency` more of keys
//   handed out from the due lane (workers that take due keys only: a tick's claims and creates
//   may overlap further than the follow-up work); never two for the same key (the queue is
//   stingy).
// - After each reconcile, exactly one of:
//   - it threw            → `onError(key, err)`, then `addRateLimited(key)` (per-key back-off),
//                            in the lane the key was handed out from (a failed claim at a tick
//                            is retried as due work);
//   - `{ requeueAfterMs }` → `forget(key)`, then `addAfter(key, requeueAfterMs, lane)`; 0 or less
//                            requeues at once (unlike controller-runtime, where RequeueAfter 0
//                            means "not set": here an absent field says that); `lane` defaults
//                            to 'normal';
//   - nothing             → `forget(key)`.
//   `done(key)` always follows, so a key re-added during its reconcile runs again afterwards.
// - A `requeueAfterMs` that is not a finite number is reported through `onError` and retried
//   with back-off, rather than becoming an immediate requeue loop (NaN) or a key that never
//   runs again (Infinity).
// - When `signal` aborts: the queue is shut down, the signal (passed to every reconcile) tells
//   in-flight reconciles to stop, keys still queued are dropped without being reconciled, and
//   errors of reconciles cut short are not reported.
// - The returned promise resolves once the queue is shut down (by `signal` or by anyone) and
//   every worker has finished; it rejects only for an invalid
//   `concurrency` (a programming error).
//
// - Between two keys each worker returns to the event loop (`setImmediate`), so timers and I/O
//   (the lease's renewal) run however long a stretch of reconciles that never wait on I/O is.
//
// It does not time out a reconcile that ignores its signal: shutdown waits for it.

import type { Lane } from './queue.ts';
import type { RateLimitingQueue } from './rate-limiting-queue.ts';

// `void` is the natural "nothing to say" of an async function; eslint's no-invalid-void-type
// would prefer undefined, which an async arrow without a return statement does not satisfy.
// eslint-disable-next-line @typescript-eslint/no-invalid-void-type
export type ReconcileResult = { requeueAfterMs?: number; lane?: Lane } | undefined | void;

export type Reconcile = (key: string, signal: AbortSignal) => Promise<ReconcileResult>;

export interface RunWorkersOptions {
  concurrency: number;
  /** Workers beyond `concurrency` that take due keys only; 0 when absent. */
  dueConcurrency?: number;
  signal: AbortSignal;
  /** Told of every failed reconcile (for logs and metrics); whatever it throws is ignored. */
  onError: (key: string, err: unknown) => void;
}

export async function runWorkers(
  queue: RateLimitingQueue,
  reconcile: Reconcile,
  options: RunWorkersOptions,
): Promise<void> {
  const { concurrency, signal, onError } = options;
  const dueConcurrency = options.dueConcurrency ?? 0;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new Error(`runWorkers: concurrency must be a positive integer, got ${concurrency}`);
  }
  if (!Number.isInteger(dueConcurrency) || dueConcurrency < 0) {
    throw new Error(`runWorkers: dueConcurrency must be a non-negative integer, got ${dueConcurrency}`);
  }
  const report = (key: string, err: unknown): void => {
    try {
      onError(key, err);
    } catch {
      // A broken error hook must not stop a worker.
    }
  };

  // A function, not the property: TypeScript would otherwise narrow `signal.aborted` to false
  // across the await below.
  const aborted = (): boolean => signal.aborted;

  const worker = async (only?: 'due'): Promise<void> => {
    for (;;) {
      const key = await queue.get(only);
      if (key === undefined) return;
      const lane = queue.laneOf(key);
      try {
        if (aborted()) continue;
        let result: ReconcileResult;
        try {
          result = await reconcile(key, signal);
        } catch (err) {
          if (aborted()) continue;
          report(key, err);
          queue.addRateLimited(key, lane);
          continue;
        }
        const after = result?.requeueAfterMs;
        if (after === undefined) {
          queue.forget(key);
        } else if (!Number.isFinite(after)) {
          report(key, new Error(`reconcile returned a requeueAfterMs that is not finite: ${after}`));
          queue.addRateLimited(key);
        } else {
          queue.forget(key);
          queue.addAfter(key, after, result?.lane);
        }
      } finally {
        queue.done(key);
      }
      // A reconcile that waits on nothing but settled promises (a first pass of jobs with nothing
      // to write) never returns to the event loop, and neither would its worker: 10,000 of them
      // in a row starved the lease renewal past its deadline, and every term ended in its own
      // first pass. Each worker lets timers and I/O in between keys.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };

  const onAbort = (): void => {
    queue.shutDown();
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.all([
      ...Array.from({ length: concurrency }, () => worker()),
      ...Array.from({ length: dueConcurrency }, () => worker('due')),
    ]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

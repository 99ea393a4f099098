/**
 * Graceful shutdown on SIGTERM (the kubelet) and SIGINT (Ctrl-C).
 *
 * Guarantees:
 * - The first signal runs the handler once; when it resolves, the process exits 0.
 * - The handler is time-boxed (default 20 s, inside Kubernetes' default 30 s grace period, so we
 *   exit on our own terms before the kubelet's SIGKILL): past it, or if the handler rejects, the
 *   process exits 1.
 * - A second signal while the handler runs exits 1 at once (an impatient operator pressing
 *   Ctrl-C twice).
 *
 * Does not give: ordering inside the handler. The caller decides it; for this operator: stop
 * reconciling (cancel the term's work), release the Lease so a follower takes over within a second,
 * close the servers and the database pool, flush logs.
 */
import type { Logger } from './log.ts';

/** The part of `process` this module uses; tests pass an EventEmitter. */
export interface SignalSource {
  on(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface ShutdownOptions {
  readonly timeoutMs?: number;
  readonly logger?: Logger;
  readonly exit?: (code: number) => void;
  readonly source?: SignalSource;
}

/** Registers the handler; returns a function that unregisters it (for tests). */
export function onShutdown(
  signals: readonly NodeJS.Signals[],
  handler: (signal: NodeJS.Signals) => Promise<void>,
  options: ShutdownOptions = {},
): () => void {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const source = options.source ?? process;
  const log = options.logger;
  let started = false;

  const listener = (signal: NodeJS.Signals): void => {
    if (started) {
      log?.warn({ signal }, 'second signal, exiting now');
      exit(1);
      return;
    }
    started = true;
    log?.info({ signal, timeoutMs }, 'shutting down');
    // Not unref'd: it must fire even if the handler waits on nothing that keeps the loop alive.
    const timer = setTimeout(() => {
      log?.error({ timeoutMs }, 'shutdown timed out');
      exit(1);
    }, timeoutMs);
    handler(signal).then(
      () => {
        clearTimeout(timer);
        log?.info({}, 'shut down');
        exit(0);
      },
      (error: unknown) => {
        clearTimeout(timer);
        log?.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };

  for (const signal of signals) source.on(signal, listener);
  return () => {
    for (const signal of signals) source.off(signal, listener);
  };
}

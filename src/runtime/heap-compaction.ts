/**
 * One full, compacting collection of V8's heap that hands the freed pages back to the system
 * (docs/adr/0018-heap-compaction.md).
 *
 * Why: V8 grows its old space to fit the start's peak (the informers' lists, the first reconcile
 * of every job) and keeps it. A steady operator at 10,000 jobs held 123 MiB of old space for
 * 61 MiB used; one such collection took its RSS from 254 to 205 MiB (docs/benchmarks.md).
 *
 * How: `HeapProfiler.collectGarbage` through an in-process inspector session, the call a
 * debugger's "collect garbage" button makes. It needs no flag and opens no port. `--expose-gc`'s
 * plain `gc()` was measured to free the heap but leave its pages resident; its memory-reducing
 * flavour needs the flag in every way the operator is started.
 *
 * The collection stops the process for its length (0.2 to 0.35 s at 10,000 jobs), so the caller
 * runs it only when no work is queued.
 */
export interface Compaction {
  readonly rssBeforeBytes: number;
  readonly rssAfterBytes: number;
  readonly heapTotalBeforeBytes: number;
  readonly heapTotalAfterBytes: number;
  readonly durationMs: number;
}

let running: Promise<Compaction> | undefined;

/** Collects and compacts the heap; a call while one runs shares it. */
export function compactHeap(): Promise<Compaction> {
  running ??= collect().finally(() => {
    running = undefined;
  });
  return running;
}

async function collect(): Promise<Compaction> {
  // Loaded when used: a Node.js built without the inspector refuses the module, not the process.
  const { Session } = await import('node:inspector/promises');
  const before = process.memoryUsage();
  const start = performance.now();
  const session = new Session();
  session.connect();
  try {
    await session.post('HeapProfiler.collectGarbage');
  } finally {
    session.disconnect();
  }
  const durationMs = performance.now() - start;
  const after = process.memoryUsage();
  return {
    rssBeforeBytes: before.rss,
    rssAfterBytes: after.rss,
    heapTotalBeforeBytes: before.heapTotal,
    heapTotalAfterBytes: after.heapTotal,
    durationMs,
  };
}

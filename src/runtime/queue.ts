// A deduplicating FIFO work queue keyed by string, with client-go's workqueue semantics
// (k8s.io/client-go/util/workqueue, queue.go).
//
// Guarantees:
// - Fair: keys are handed out in the order they were first added.
// - Stingy: a key is never handed to two workers at once, and a key added several times before a
//   worker takes it is handed out once.
// - A key added while a worker is processing it is handed out again after that worker calls
//   `done(key)` (the change that arrived during processing is not lost).
// - After `shutDown()`, `add` is ignored; keys already queued are still handed out, then every
//   `get()` resolves to undefined. `shutDownWithDrain()` also waits until every key handed out
//   has been marked `done`.
// - Two lanes (docs/adr/0012-tick-lane.md): a key added to the 'due' lane (work due at a tick) is
//   handed out before any key of the 'normal' lane, FIFO within each lane. A key queued in the
//   normal lane and added to the due lane moves to the due lane; never the other way. A key
//   re-added while being processed is queued again, on `done`, in the highest lane it was
//   re-added to. `onDueDrained` is told each time the due lane empties and no due key is
//   being processed any more. `onIdle` is told each time the queue has emptied: nothing queued
//   in either lane and nothing being processed (keys waiting in a delaying queue do not count).
// - `get('due')` hands out due keys only (it waits while only normal keys are queued): the extra
//   workers that claim and create at a tick take no follow-up work.
//
// It does not:
// - retry or delay (see delaying-queue.ts and rate-limiting-queue.ts, which wrap this one);
// - notice a worker that never calls `done`: its key stays blocked forever, as in client-go.

/** 'due': claims and creates of a tick; 'normal': everything else (records, Events, cleanup). */
export type Lane = 'due' | 'normal';

export interface Queue {
  add(key: string, lane?: Lane): void;
  /**
   * Resolves with the next key, or undefined once the queue is shut down and empty (of the due
   * lane, with `only` 'due').
   */
  get(only?: 'due'): Promise<string | undefined>;
  /** Marks the end of processing of a key returned by `get`. */
  done(key: string): void;
  /** Keys waiting to be handed out (not those being processed). */
  len(): number;
  shutDown(): void;
  shutDownWithDrain(): Promise<void>;
  shuttingDown(): boolean;
  /** The lane a key being processed was handed out from; undefined when it is not processing. */
  laneOf(key: string): Lane | undefined;
  /** Due keys queued or being processed. */
  dueCount(): number;
  /** Subscribes to the moments the due lane has drained (queued and processing); returns the unsubscriber. */
  onDueDrained(fn: () => void): () => void;
  /** Subscribes to the moments the queue has emptied (queued and processing); returns the unsubscriber. */
  onIdle(fn: () => void): () => void;
}

export function createQueue(): Queue {
  return new WorkQueue();
}

class WorkQueue implements Queue {
  // One FIFO per lane; `head` avoids the O(n) cost of Array.shift on a long queue. An entry whose
  // key has moved to the due lane since is stale and skipped.
  readonly #lanes: Record<Lane, { order: { key: string; seq: number }[]; head: number }> = {
    due: { order: [], head: 0 },
    normal: { order: [], head: 0 },
  };
  // Keys that need processing, with their lane: queued, or re-added while being processed.
  #dirty = new Map<string, Lane>();
  // The sequence number of each queued key's live entry; any other entry of the key is stale.
  #live = new Map<string, number>();
  #seq = 0;
  #processing = new Map<string, Lane>();
  #queued: Record<Lane, number> = { due: 0, normal: 0 };
  #dueProcessing = 0;
  // Workers waiting for any key (only while nothing is queued), and for a due key (only while no
  // due key is queued).
  #waiters: ((key: string | undefined) => void)[] = [];
  #dueWaiters: ((key: string | undefined) => void)[] = [];
  #shuttingDown = false;
  #drainWaiters: (() => void)[] = [];
  #dueDrained = new Set<() => void>();
  #idle = new Set<() => void>();

  add(key: string, lane: Lane = 'normal'): void {
    if (this.#shuttingDown) return;
    const dirty = this.#dirty.get(key);
    if (dirty === 'due' || dirty === lane) return;
    this.#dirty.set(key, lane);
    if (this.#processing.has(key)) return;
    if (dirty === 'normal') this.#queued.normal--; // promoted: its normal entry is now stale
    this.#push(key, lane);
  }

  get(only?: 'due'): Promise<string | undefined> {
    const key = this.#pop(only === 'due' ? ['due'] : ['due', 'normal']);
    if (key !== undefined) return Promise.resolve(this.#begin(key));
    if (this.#shuttingDown) return Promise.resolve(undefined);
    const waiters = only === 'due' ? this.#dueWaiters : this.#waiters;
    return new Promise((resolve) => waiters.push(resolve));
  }

  done(key: string): void {
    const lane = this.#processing.get(key);
    if (lane === undefined) return;
    this.#processing.delete(key);
    if (lane === 'due') this.#dueProcessing--;
    const again = this.#dirty.get(key);
    if (again !== undefined) this.#push(key, again);
    if (this.#processing.size === 0) this.#notifyDrained();
    if (lane === 'due' && this.dueCount() === 0) tell(this.#dueDrained);
    if (this.#processing.size === 0 && this.len() === 0) tell(this.#idle);
  }

  len(): number {
    return this.#queued.due + this.#queued.normal;
  }

  laneOf(key: string): Lane | undefined {
    return this.#processing.get(key);
  }

  dueCount(): number {
    return this.#queued.due + this.#dueProcessing;
  }

  onDueDrained(fn: () => void): () => void {
    this.#dueDrained.add(fn);
    return () => this.#dueDrained.delete(fn);
  }

  onIdle(fn: () => void): () => void {
    this.#idle.add(fn);
    return () => this.#idle.delete(fn);
  }

  shutDown(): void {
    this.#shuttingDown = true;
    // Waiters only exist while there is nothing for them, so each of them is told it is over.
    const waiters = [...this.#waiters, ...this.#dueWaiters];
    this.#waiters = [];
    this.#dueWaiters = [];
    for (const w of waiters) w(undefined);
  }

  shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.#processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  #push(key: string, lane: Lane): void {
    const waiter = this.#waiters.shift() ?? (lane === 'due' ? this.#dueWaiters.shift() : undefined);
    if (waiter !== undefined) {
      // A waiter exists only when nothing it may take is queued, so handing the key over directly
      // keeps FIFO. A normal entry the key may have (promoted to a due-only waiter) is stale now.
      this.#live.delete(key);
      waiter(this.#begin(key));
      return;
    }
    const seq = this.#seq++;
    this.#lanes[lane].order.push({ key, seq });
    this.#live.set(key, seq);
    this.#queued[lane]++;
  }

  #pop(lanes: readonly Lane[]): string | undefined {
    for (const lane of lanes) {
      const q = this.#lanes[lane];
      while (q.head < q.order.length) {
        const entry = q.order[q.head];
        q.head++;
        if (q.head > 1024 && q.head * 2 > q.order.length) {
          q.order = q.order.slice(q.head);
          q.head = 0;
        }
        // Stale: the key moved to the due lane after it was queued here.
        if (entry === undefined || this.#live.get(entry.key) !== entry.seq) continue;
        this.#live.delete(entry.key);
        this.#queued[lane]--;
        return entry.key;
      }
    }
    return undefined;
  }

  #begin(key: string): string {
    const lane = this.#dirty.get(key) ?? 'normal';
    this.#dirty.delete(key);
    this.#processing.set(key, lane);
    if (lane === 'due') this.#dueProcessing++;
    return key;
  }

  #notifyDrained(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }
}

function tell(subscribers: ReadonlySet<() => void>): void {
  for (const fn of [...subscribers]) {
    try {
      fn();
    } catch {
      // A subscriber's failure is its own; the queue goes on.
    }
  }
}

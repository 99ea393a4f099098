// A work queue that can also add a key later (client-go's delaying_queue.go), layered on a
// plain `Queue`.
//
// Guarantees, on top of the queue's:
// - `addAfter(key, ms)` adds the key to the queue no earlier than `ms` from now on the injected
//   clock; `ms <= 0` (or NaN) adds it at once.
// - A key waits at most once: when it is already waiting, the EARLIER ready time wins and the
//   later request is dropped (a reconcile asking to look again in a day must not postpone a
//   retry due in a second). It is added in the lane of the request that won; at equal ready
//   times the due lane wins.
// - One timer, for the earliest waiting key. A timer never asks the clock for more than
//   2^31-1 ms (setTimeout's limit); a longer wait is re-armed when that timer fires, so a
//   daily tick is fine.
// - `shutDown` drops every waiting key and cancels the timer.
//
// It does not:
// - remove a key from the waiting room when the key is added directly with `add` (as in
//   client-go, the waiting copy is added again when due; the queue's deduplication absorbs it
//   if the key has not been handed out by then);
// - fire early when the clock jumps: `now()` is expected to be monotonic.

import { MAX_TIMER_MS, realClock } from './clock.ts';
import type { Cancel, Clock } from './clock.ts';
import { createQueue } from './queue.ts';
import type { Lane, Queue } from './queue.ts';
import { ReadyHeap } from './ready-heap.ts';

export interface DelayingQueue extends Queue {
  addAfter(key: string, ms: number, lane?: Lane): void;
  /** Keys waiting for their ready time (not yet in the queue). */
  waiting(): number;
}

export interface DelayingQueueOptions {
  clock?: Clock;
  /** The queue to feed; a new `createQueue()` when absent. */
  queue?: Queue;
}

export function createDelayingQueue(options: DelayingQueueOptions = {}): DelayingQueue {
  return new DelayingWorkQueue(options.queue ?? createQueue(), options.clock ?? realClock);
}

class DelayingWorkQueue implements DelayingQueue {
  readonly #queue: Queue;
  readonly #clock: Clock;
  readonly #heap = new ReadyHeap();
  /** The lane of each waiting key that waits for the due lane; the others wait for 'normal'. */
  readonly #dueWaiting = new Set<string>();
  #cancelTimer: Cancel | undefined;
  #timerFor: number | undefined;

  constructor(queue: Queue, clock: Clock) {
    this.#queue = queue;
    this.#clock = clock;
  }

  add(key: string, lane?: Lane): void {
    this.#queue.add(key, lane);
  }

  get(only?: 'due'): Promise<string | undefined> {
    return this.#queue.get(only);
  }

  done(key: string): void {
    this.#queue.done(key);
  }

  len(): number {
    return this.#queue.len();
  }

  laneOf(key: string): Lane | undefined {
    return this.#queue.laneOf(key);
  }

  dueCount(): number {
    return this.#queue.dueCount();
  }

  onDueDrained(fn: () => void): () => void {
    return this.#queue.onDueDrained(fn);
  }

  onIdle(fn: () => void): () => void {
    return this.#queue.onIdle(fn);
  }

  waiting(): number {
    return this.#heap.size;
  }

  shuttingDown(): boolean {
    return this.#queue.shuttingDown();
  }

  shutDown(): void {
    this.#stopWaiting();
    this.#queue.shutDown();
  }

  shutDownWithDrain(): Promise<void> {
    this.#stopWaiting();
    return this.#queue.shutDownWithDrain();
  }

  addAfter(key: string, ms: number, lane: Lane = 'normal'): void {
    if (this.#queue.shuttingDown()) return;
    if (!(ms > 0)) {
      this.#queue.add(key, lane);
      return;
    }
    const readyAt = this.#clock.now() + ms;
    const current = this.#heap.readyAt(key);
    if (current !== undefined && current < readyAt) return;
    if (current === readyAt) {
      if (lane === 'due') this.#dueWaiting.add(key);
      return;
    }
    if (lane === 'due') this.#dueWaiting.add(key);
    else this.#dueWaiting.delete(key);
    this.#heap.set(key, readyAt);
    this.#arm();
  }

  #stopWaiting(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    this.#timerFor = undefined;
    this.#heap.clear();
    this.#dueWaiting.clear();
  }

  // Keeps exactly one timer, aimed at the earliest ready time (or at MAX_TIMER_MS from now).
  #arm(): void {
    const top = this.#heap.peek();
    if (top === undefined) {
      this.#cancelTimer?.();
      this.#cancelTimer = undefined;
      this.#timerFor = undefined;
      return;
    }
    if (this.#cancelTimer !== undefined && this.#timerFor === top.readyAt) return;
    this.#cancelTimer?.();
    const delay = Math.min(Math.max(0, top.readyAt - this.#clock.now()), MAX_TIMER_MS);
    this.#timerFor = top.readyAt;
    this.#cancelTimer = this.#clock.setTimer(delay, () => {
      this.#cancelTimer = undefined;
      this.#timerFor = undefined;
      this.#fire();
    });
  }

  #fire(): void {
    const now = this.#clock.now();
    for (let top = this.#heap.peek(); top !== undefined && top.readyAt <= now; top = this.#heap.peek()) {
      this.#heap.pop();
      const due = this.#dueWaiting.delete(top.key);
      this.#queue.add(top.key, due ? 'due' : 'normal');
    }
    this.#arm();
  }
}

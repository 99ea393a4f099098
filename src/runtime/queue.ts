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
//
// It does not:
// - retry or delay (see delaying-queue.ts and rate-limiting-queue.ts, which wrap this one);
// - notice a worker that never calls `done`: its key stays blocked forever, as in client-go.

export interface Queue {
  add(key: string): void;
  /** Resolves with the next key, or undefined once the queue is shut down and empty. */
  get(): Promise<string | undefined>;
  /** Marks the end of processing of a key returned by `get`. */
  done(key: string): void;
  /** Keys waiting to be handed out (not those being processed). */
  len(): number;
  shutDown(): void;
  shutDownWithDrain(): Promise<void>;
  shuttingDown(): boolean;
}

export function createQueue(): Queue {
  return new WorkQueue();
}

class WorkQueue implements Queue {
  // FIFO of keys; `#head` avoids the O(n) cost of Array.shift on a long queue.
  #order: string[] = [];
  #head = 0;
  // Keys that need processing: queued, or re-added while being processed.
  #dirty = new Set<string>();
  #processing = new Set<string>();
  #waiters: ((key: string | undefined) => void)[] = [];
  #shuttingDown = false;
  #drainWaiters: (() => void)[] = [];

  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    this.#push(key);
  }

  get(): Promise<string | undefined> {
    const key = this.#pop();
    if (key !== undefined) return Promise.resolve(this.#begin(key));
    if (this.#shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  done(key: string): void {
    if (!this.#processing.delete(key)) return;
    if (this.#dirty.has(key)) this.#push(key);
    if (this.#processing.size === 0) this.#notifyDrained();
  }

  len(): number {
    return this.#order.length - this.#head;
  }

  shutDown(): void {
    this.#shuttingDown = true;
    // Waiters only exist while the queue is empty, so each of them is told it is over.
    const waiters = this.#waiters;
    this.#waiters = [];
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

  #push(key: string): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      // A waiter exists only when nothing is queued, so handing the key over directly keeps FIFO.
      waiter(this.#begin(key));
      return;
    }
    this.#order.push(key);
  }

  #pop(): string | undefined {
    if (this.#head >= this.#order.length) return undefined;
    const key = this.#order[this.#head];
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
    return key;
  }

  #begin(key: string): string {
    this.#dirty.delete(key);
    this.#processing.add(key);
    return key;
  }

  #notifyDrained(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }
}

// An indexed binary min-heap of (key, readyAt): the waiting room of the delaying queue.
//
// Each key appears at most once; `set` can move a key earlier or later in O(log n) because the
// heap keeps every key's position. Ties are broken by insertion order, so keys that become
// ready at the same instant leave in the order they were scheduled (the work queue is FIFO).
//
// Written here rather than taken from a library: the small well-kept heaps on npm (tinyqueue,
// heap-js) have no decrease-key, and the lazy-deletion workaround leaves a stale entry behind
// for as long as the later time it replaced (a day, for a daily tick).

interface Entry {
  readonly key: string;
  readyAt: number;
  seq: number;
}

export class ReadyHeap {
  #entries: Entry[] = [];
  #index = new Map<string, number>();
  #seq = 0;

  get size(): number {
    return this.#entries.length;
  }

  /** The ready time of `key`, or undefined when it is not waiting. */
  readyAt(key: string): number | undefined {
    const i = this.#index.get(key);
    return i === undefined ? undefined : this.#entries[i]?.readyAt;
  }

  /** Inserts `key`, or moves it to `readyAt` when it is already waiting. */
  set(key: string, readyAt: number): void {
    const i = this.#index.get(key);
    if (i === undefined) {
      this.#entries.push({ key, readyAt, seq: this.#seq++ });
      this.#index.set(key, this.#entries.length - 1);
      this.#up(this.#entries.length - 1);
      return;
    }
    const entry = this.#at(i);
    const earlier = readyAt < entry.readyAt;
    entry.readyAt = readyAt;
    entry.seq = this.#seq++;
    if (earlier) this.#up(i);
    else this.#down(i);
  }

  peek(): { key: string; readyAt: number } | undefined {
    const top = this.#entries[0];
    return top === undefined ? undefined : { key: top.key, readyAt: top.readyAt };
  }

  pop(): { key: string; readyAt: number } | undefined {
    const top = this.#entries[0];
    if (top === undefined) return undefined;
    const last = this.#entries.pop();
    this.#index.delete(top.key);
    if (last !== undefined && last !== top) {
      this.#entries[0] = last;
      this.#index.set(last.key, 0);
      this.#down(0);
    }
    return { key: top.key, readyAt: top.readyAt };
  }

  clear(): void {
    this.#entries = [];
    this.#index.clear();
  }

  #at(i: number): Entry {
    const e = this.#entries[i];
    if (e === undefined) throw new Error(`ready-heap: no entry at ${i}`);
    return e;
  }

  #less(a: number, b: number): boolean {
    const x = this.#at(a);
    const y = this.#at(b);
    return x.readyAt < y.readyAt || (x.readyAt === y.readyAt && x.seq < y.seq);
  }

  #swap(a: number, b: number): void {
    const x = this.#at(a);
    const y = this.#at(b);
    this.#entries[a] = y;
    this.#entries[b] = x;
    this.#index.set(y.key, a);
    this.#index.set(x.key, b);
  }

  #up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(i, parent)) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(i: number): void {
    const n = this.#entries.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < n && this.#less(l, smallest)) smallest = l;
      if (r < n && this.#less(r, smallest)) smallest = r;
      if (smallest === i) return;
      this.#swap(i, smallest);
      i = smallest;
    }
  }
}

// Fakes for the elector's unit tests: a clock that moves only when told, and an in-memory API
// server holding one Lease with the API server's write rules (uid, resourceVersion
// preconditions, 409s), seen by each candidate through a LeaseClient of its own. No I/O.

import type { Cancel, Clock } from '../../../src/runtime/clock.ts';
import { ManualClock } from '../runtime/manual-clock.ts';
import type { Lease, LeaseClient, LeaseRef, LeaseSpec, WriteResult } from '../../../src/election/lease.ts';

/** Lets every pending promise callback run (the fakes answer at once, so one turn is plenty). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** The unit tests' ManualClock, advanced so that promise chains run between timers. */
export class FakeClock implements Clock {
  readonly #clock = new ManualClock();

  now(): number {
    return this.#clock.now();
  }

  setTimer(ms: number, fn: () => void): Cancel {
    return this.#clock.setTimer(ms, fn);
  }

  advance(ms: number): Promise<void> {
    return this.#clock.advanceSettling(ms, flush);
  }

  /** Moves time forward without running any timer: a process that was paused. */
  jump(ms: number): void {
    this.#clock.jump(ms);
  }
}

export type Op = 'get' | 'create' | 'replace';

export interface Call {
  readonly by: string;
  readonly op: Op;
  readonly at: number;
  /** What the call answered: 'written', 'conflict', 'absent', 'found', or 'error'. */
  result?: string;
}

/** What to do with a call instead of serving it. */
export type Fault = 'error' | 'hang' | undefined;

const REF_KEY = (ref: LeaseRef): string => `${ref.namespace}/${ref.name}`;

/** An API server with one Lease. */
export class FakeLeaseServer {
  readonly clock: FakeClock;
  lease: Lease | undefined;
  /** Every version the Lease had, oldest first. */
  readonly history: Lease[] = [];
  readonly calls: Call[] = [];
  #rv = 100;
  #uid = 0;
  readonly #watchers = new Set<{ by: string; onChange: (lease: Lease | undefined) => void }>();
  /** Watch events are not delivered to these candidates (their watch is broken). */
  readonly deafWatchers = new Set<string>();
  /** Decides whether a call fails or hangs instead of being served. */
  fault: (by: string, op: Op) => Fault = () => undefined;
  /** Runs right before a write is applied: lets a test slip another writer in. */
  beforeWrite: ((by: string, op: Op) => void) | undefined;
  ref: LeaseRef | undefined;

  constructor(clock: FakeClock) {
    this.clock = clock;
  }

  client(by: string): LeaseClient {
    return {
      get: (ref, signal) =>
        this.#serve(by, 'get', ref, signal, () => {
          const lease = this.lease;
          return { value: lease === undefined ? undefined : copy(lease), result: lease ? 'found' : 'absent' };
        }),
      create: (ref, spec, signal) =>
        this.#serve(by, 'create', ref, signal, () => {
          this.beforeWrite?.(by, 'create');
          if (this.lease !== undefined) return conflict();
          return this.#written(this.#store(spec, true));
        }),
      replace: (ref, lease, signal) =>
        this.#serve(by, 'replace', ref, signal, () => {
          this.beforeWrite?.(by, 'replace');
          const current = this.lease;
          if (
            current === undefined ||
            current.metadata.uid !== lease.metadata.uid ||
            current.metadata.resourceVersion !== lease.metadata.resourceVersion
          ) {
            return conflict();
          }
          return this.#written(this.#store(lease.spec, false));
        }),
      watch: (ref, onChange, signal) => {
        this.#checkRef(ref);
        const watcher = { by, onChange };
        this.#watchers.add(watcher);
        signal.addEventListener('abort', () => this.#watchers.delete(watcher), { once: true });
        // A new watch reports the current state first, as a list would.
        const lease = this.lease;
        if (lease !== undefined) this.#deliver(watcher, lease);
      },
    };
  }

  /** Another process writes the spec (creating the Lease if there is none). */
  put(spec: LeaseSpec): Lease {
    return this.#store(spec, this.lease === undefined);
  }

  /** Someone changes the object without touching its spec (a label, say). */
  touch(): Lease {
    const current = this.lease;
    if (current === undefined) throw new Error('no Lease to touch');
    return this.#store(current.spec, false);
  }

  remove(): void {
    this.lease = undefined;
    this.#notify();
  }

  /** Delivers `lease` to a candidate's watch as if it were news (a late, stale event). */
  deliverTo(by: string, lease: Lease | undefined): void {
    for (const w of this.#watchers) if (w.by === by) this.#deliver(w, lease);
  }

  callsBy(by: string, op?: Op): Call[] {
    return this.calls.filter((c) => c.by === by && (op === undefined || c.op === op));
  }

  #checkRef(ref: LeaseRef): void {
    this.ref ??= ref;
    if (REF_KEY(this.ref) !== REF_KEY(ref)) throw new Error(`one Lease only, asked for ${REF_KEY(ref)}`);
  }

  #serve<T>(
    by: string,
    op: Op,
    ref: LeaseRef,
    signal: AbortSignal | undefined,
    serve: () => { value: T; result: string },
  ): Promise<T> {
    this.#checkRef(ref);
    const call: Call = { by, op, at: this.clock.now() };
    this.calls.push(call);
    const fault = this.fault(by, op);
    if (fault === 'hang') {
      call.result = 'hang';
      return new Promise((_, reject) => {
        const fail = (): void => {
          reject(new DOMException('This operation was aborted', 'AbortError'));
        };
        if (signal?.aborted === true) fail();
        else signal?.addEventListener('abort', fail, { once: true });
      });
    }
    if (fault === 'error') {
      call.result = 'error';
      return Promise.reject(Object.assign(new Error('HTTP 500'), { code: 500 }));
    }
    const { value, result } = serve();
    call.result = result;
    return Promise.resolve(value);
  }

  #written(lease: Lease): { value: WriteResult; result: string } {
    return { value: { kind: 'written', lease: copy(lease) }, result: 'written' };
  }

  #store(spec: LeaseSpec, fresh: boolean): Lease {
    const uid = fresh || this.lease === undefined ? `uid-${++this.#uid}` : this.lease.metadata.uid;
    this.lease = {
      metadata: { name: this.ref?.name ?? 'lease', uid, resourceVersion: String(++this.#rv) },
      spec: { ...spec },
    };
    this.history.push(copy(this.lease));
    this.#notify();
    return this.lease;
  }

  #notify(): void {
    const lease = this.lease === undefined ? undefined : copy(this.lease);
    for (const w of this.#watchers) this.#deliver(w, lease);
  }

  #deliver(w: { by: string; onChange: (lease: Lease | undefined) => void }, lease: Lease | undefined): void {
    if (this.deafWatchers.has(w.by)) return;
    // Asynchronously: here before the writer has its answer, the harder order for the writer.
    queueMicrotask(() => {
      if (this.#watchers.has(w) && !this.deafWatchers.has(w.by)) w.onChange(lease);
    });
  }
}

function conflict(): { value: WriteResult; result: string } {
  return { value: { kind: 'conflict' }, result: 'conflict' };
}

function copy(lease: Lease): Lease {
  return { metadata: { ...lease.metadata }, spec: { ...lease.spec } };
}

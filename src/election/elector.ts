// Leader election on a coordination.k8s.io/v1 Lease: client-go's tools/leaderelection algorithm,
// written again for this operator, with a watch added so that followers act the moment the
// Lease is released or expires instead of at their next jittered retry.
//
// Usage: `new Elector(options).run(onLead, signal)` runs for the life of the process. It loops
// follower → leader → follower: on each acquisition it calls `onLead` with a fresh Term, and when
// that term ends it goes back to following without exiting. `release()` is the graceful end.
//
// What it guarantees:
// - Timings are checked up front, as client-go does: lease duration > renew deadline >
//   1.2 × retry period, all positive, and the lease duration in whole seconds (a Lease stores
//   `leaseDurationSeconds`). Otherwise the constructor throws a RangeError.
// - Every write to the Lease is guarded by its resourceVersion. A 409 means that someone else
//   wrote: the elector reads the Lease again and decides from what it finds; it never
//   overwrites a write it has not seen, so two candidates cannot both acquire one record.
// - Terms (term.ts): each acquisition increments `spec.leaseTransitions` and the new value is the
//   term's number; renewals keep it. A Lease this elector creates starts at 1, so no term is
//   numbered 0. The term carries the Lease's UID: a Lease deleted and created again gives new
//   terms under the new UID.
// - Only the local monotonic clock measures time. A follower judges a Lease expired when its
//   duration (the holder's own `leaseDurationSeconds`, or this elector's lease duration when the
//   record has none) has passed on its own clock since it last saw the record change (a new
//   UID or resourceVersion). `renewTime` and `acquireTime` are written for people, never read.
//   How the nodes' clocks are set is therefore irrelevant; only how fast they run matters.
// - The leader renews every retry period and ends its term as soon as no renewal has succeeded
//   within the renew deadline, counted from when the last successful renewal was *sent* (the
//   earliest moment a follower may have seen it). The deadline is shorter than the lease
//   duration, so the leader stops before any follower may take over, with lease duration −
//   renew deadline to spare. A renewal still in flight at the deadline is aborted.
// - Followers watch the Lease. Once it is released (holderIdentity cleared) or deleted they
//   try at once; otherwise they schedule their attempt for the moment the Lease they saw
//   expires. A jittered attempt every retry period × [1, 2.2] (client-go's pace) stays as a
//   safety net, so a broken watch only slows them down. A crashed leader is thus replaced
//   within the lease duration (plus the delay before a follower saw its last renewal) plus one
//   request; a released one within one watch delivery plus one request.
// - A term ends, and its signal aborts at once, when: the renew deadline passes; the Lease shows
//   another holder or another term, or is gone (checked by a fresh read after a 409, or after
//   the watch shows a change not made by this term); `term.end(cause)` is called, or `onLead`
//   throws or rejects; `release()` is called, or run's signal aborts. The elector then waits
//   for the promise `onLead` returned (at most the renew deadline), clears holderIdentity if the
//   caller ended the term and the Lease still shows it, and follows again. It stays out of the
//   election for one retry period after a term ends, so that other candidates get the first
//   chance. A later term of the same process is a new term with a new number, even when it
//   takes back a Lease that still names it (say, after the API server was unreachable).
// - `release()` (and run's signal, unless releaseOnCancel is false) stops renewing, ends the
//   term, waits for its work as above, then clears holderIdentity (guarded by resourceVersion;
//   `leaseTransitions` is kept, `leaseDurationSeconds` set to 1 as client-go does), so that a
//   watching follower takes over within about a second.
// - Callbacks (`onEvent`) and `onLead` that throw are logged; they never stop the elector.
//
// What it does not guarantee:
// - Fencing. Like client-go's, this election does not make sure that only one process acts as
//   leader. A process that was paused (a long garbage collection, SIGSTOP, a frozen node) runs
//   none of its timers: it finds `term.valid()` false as soon as it wakes and checks, but a
//   request it had sent, or sends between its check and the request, still lands. The term
//   number on ledger writes and the Pod admission policy (DESIGN.md, invariant 3) stop those;
//   callers check `term.valid()` before each side effect and stop when `term.signal` aborts.
// - Tolerance of clock *rates*: if a follower's clock runs faster than the leader's by more
//   than lease duration / renew deadline, it may take over while the leader's term is still
//   valid locally.
// - That the Lease shows the term for as long as `valid()` is true: after a failed renewal, a
//   term is locally valid for up to the renew deadline while the Lease is not being renewed.
// - Promptness on a busy event loop: timers fire late. `valid()` reads the clock and is right
//   whenever it is called; the timers only make an ended term visible through the signal.
// - Safety with shared identities: identities must be unique per process (the default
//   `--identity` is), or two processes would take each other's Lease for their own.
// - A release after the work has stopped: if `onLead`'s work outlives the renew deadline the
//   Lease is released anyway; the local fence closed when the term ended.

import { realClock, sleep } from '../runtime/clock.ts';
import type { Cancel, Clock } from '../runtime/clock.ts';
import { classify } from '../runtime/kube-errors.ts';
import {
  declaredDurationMs,
  describeLease,
  holderOf,
  microTime,
  transitionsOf,
  type Lease,
  type LeaseClient,
  type LeaseRef,
  type LeaseSpec,
  type WriteResult,
} from './lease.ts';
import { createTerm, type Term, type TermControl, type TermEndReason } from './term.ts';

/** client-go's JitterFactor: the renew deadline must exceed it times the retry period. */
export const JITTER_FACTOR = 1.2;

/** leaseTransitions of a Lease this elector creates: its first term. */
export const FIRST_TERM_NUMBER = 1;

export interface ElectionTimings {
  /** How long followers wait, since they last saw the Lease change, before taking it over. */
  readonly leaseDurationMs: number;
  /** How long the leader keeps trying to renew before it ends its term. */
  readonly renewDeadlineMs: number;
  /** Time between two attempts (renewals, and the followers' safety-net attempts). */
  readonly retryPeriodMs: number;
}

/** client-go's rule (leaderelection.NewLeaderElector); throws a RangeError when it is broken. */
export function checkElectionTimings(t: ElectionTimings): void {
  const timings: [keyof ElectionTimings, number][] = [
    ['leaseDurationMs', t.leaseDurationMs],
    ['renewDeadlineMs', t.renewDeadlineMs],
    ['retryPeriodMs', t.retryPeriodMs],
  ];
  for (const [name, value] of timings) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new RangeError(`${name} must be a positive number of milliseconds, got ${value}`);
    }
  }
  if (t.leaseDurationMs % 1000 !== 0) {
    throw new RangeError(
      `leaseDurationMs must be whole seconds (a Lease stores leaseDurationSeconds), got ${t.leaseDurationMs}`,
    );
  }
  if (t.leaseDurationMs <= t.renewDeadlineMs) {
    throw new RangeError(
      `leaseDurationMs (${t.leaseDurationMs}) must be greater than renewDeadlineMs (${t.renewDeadlineMs})`,
    );
  }
  if (t.renewDeadlineMs <= JITTER_FACTOR * t.retryPeriodMs) {
    throw new RangeError(
      `renewDeadlineMs (${t.renewDeadlineMs}) must be greater than ${JITTER_FACTOR} × retryPeriodMs (${t.retryPeriodMs})`,
    );
  }
}

export type LogFields = Readonly<Record<string, unknown>>;

/** A pino-like logger. */
export interface ElectorLogger {
  debug?(fields: LogFields, msg: string): void;
  info(fields: LogFields, msg: string): void;
  warn(fields: LogFields, msg: string): void;
  error(fields: LogFields, msg: string): void;
}

/** What the elector reports, for metrics and logs. */
export type ElectorEvent =
  | {
      readonly kind: 'started';
      readonly term: Term;
      /** The holder this process last saw write the Lease before it took over, if any. */
      readonly previousHolder: string | undefined;
      /**
       * Failover time: from the moment this process last saw the previous holder write the
       * Lease (its last renewal, or its release) to this acquisition. Undefined without one.
       */
      readonly failoverMs: number | undefined;
    }
  | { readonly kind: 'stopped'; readonly term: Term; readonly reason: TermEndReason }
  | {
      /** The Lease was seen with another holder (undefined: nobody, or no Lease). */
      readonly kind: 'holderChanged';
      readonly holder: string | undefined;
      readonly leaseTransitions: number | undefined;
    };

export interface ElectorOptions extends ElectionTimings {
  readonly lease: LeaseRef;
  /** Unique per process: a restarted process must never take its predecessor's term for its own. */
  readonly identity: string;
  readonly client: LeaseClient;
  /** Monotonic time and timers; realClock (performance.now) unless told. */
  readonly clock?: Clock;
  /** Wall time for the Lease's informational renewTime and acquireTime. */
  readonly wallClock?: () => Date;
  readonly logger?: ElectorLogger;
  /** For the safety net's jitter; Math.random unless told. */
  readonly random?: () => number;
  /** Whether run's signal releases the Lease, as client-go's ReleaseOnCancel; true unless told. */
  readonly releaseOnCancel?: boolean;
  readonly onEvent?: (event: ElectorEvent) => void;
}

export type OnLead = (term: Term) => void | Promise<void>;

interface Observation {
  readonly lease: Lease | undefined;
  /** uid/resourceVersion, '' for no Lease: a new key is a change. */
  readonly key: string;
  /** Monotonic time this process first saw this state. */
  readonly at: number;
  /** Numbers the states seen, so that "seen since the last attempt" needs no clock tick. */
  readonly seq: number;
}

const silent: ElectorLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export class Elector {
  readonly #lease: LeaseRef;
  readonly #leaseText: string;
  readonly #identity: string;
  readonly #timings: ElectionTimings;
  readonly #client: LeaseClient;
  readonly #clock: Clock;
  readonly #wallClock: () => Date;
  readonly #log: ElectorLogger;
  readonly #random: () => number;
  readonly #releaseOnCancel: boolean;
  readonly #onEvent: ((event: ElectorEvent) => void) | undefined;

  #observed: Observation | undefined;
  /** The holder this process last saw write the Lease before its own acquisition. */
  #previous: { holder: string; at: number } | undefined;
  #reported: { holder: string | undefined } | undefined;
  /** The current (or last) term, and the Lease as this term last wrote or confirmed it. */
  #control: TermControl | undefined;
  #held: Lease | undefined;
  #deadlineTimer: Cancel | undefined;
  #lastAttemptAt = -Infinity;
  /** The `seq` of the state seen last when the last attempt started: later ones are news. */
  #attemptSeq = 0;
  #seq = 0;
  #safetyAt = -Infinity;
  #cooldownUntil = -Infinity;
  #wake: (() => void) | undefined;
  #stop: AbortController | undefined;
  #releaseOnStop = false;
  #done: Promise<boolean> = Promise.resolve(false);

  constructor(options: ElectorOptions) {
    checkElectionTimings(options);
    if (options.identity.trim() === '') throw new RangeError('identity must not be empty');
    if (options.lease.namespace === '' || options.lease.name === '') {
      throw new RangeError('the Lease needs a namespace and a name');
    }
    this.#lease = { namespace: options.lease.namespace, name: options.lease.name };
    this.#leaseText = describeLease(this.#lease);
    this.#identity = options.identity;
    this.#timings = {
      leaseDurationMs: options.leaseDurationMs,
      renewDeadlineMs: options.renewDeadlineMs,
      retryPeriodMs: options.retryPeriodMs,
    };
    this.#client = options.client;
    this.#clock = options.clock ?? realClock;
    this.#wallClock = options.wallClock ?? (() => new Date());
    this.#log = options.logger ?? silent;
    this.#random = options.random ?? Math.random;
    this.#releaseOnCancel = options.releaseOnCancel ?? true;
    this.#onEvent = options.onEvent;
  }

  get identity(): string {
    return this.#identity;
  }

  /** Whether this process holds a term that is valid now. */
  isLeader(): boolean {
    return this.#control?.term.valid() === true;
  }

  /** The current term while it has not ended (it may already be past its deadline: check valid()). */
  currentTerm(): Term | undefined {
    const control = this.#control;
    return control !== undefined && control.endReason() === undefined ? control.term : undefined;
  }

  /** The holder the Lease showed when this process last saw it; undefined for none. */
  observedHolder(): string | undefined {
    const lease = this.#observed?.lease;
    const holder = lease === undefined ? '' : holderOf(lease);
    return holder === '' ? undefined : holder;
  }

  /**
   * Leads whenever it can until `signal` aborts or `release()` is called; resolves once stopped
   * (after releasing the Lease when asked to). Rejects only when this elector is already running.
   */
  async run(onLead: OnLead, signal?: AbortSignal): Promise<void> {
    if (this.#stop !== undefined) throw new Error('Elector.run is already running');
    const stop = new AbortController();
    this.#stop = stop;
    this.#releaseOnStop = false;
    let finished: (released: boolean) => void = () => undefined;
    this.#done = new Promise((resolve) => {
      finished = resolve;
    });
    const onAbort = (): void => {
      this.#requestStop(this.#releaseOnCancel);
    };
    if (signal?.aborted === true) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });

    this.#log.info({ lease: this.#leaseText, identity: this.#identity }, 'joining the leader election');
    try {
      this.#client.watch(
        this.#lease,
        (lease) => {
          this.#onWatch(lease);
        },
        stop.signal,
      );
    } catch (err) {
      this.#log.warn({ lease: this.#leaseText, err: classify(err) }, 'lease watch not started');
    }

    let released = false;
    let last: { control: TermControl; work: Promise<void> } | undefined;
    try {
      while (!aborted(stop.signal)) {
        const control = await this.#acquire(stop.signal);
        if (control === undefined) break;
        if (aborted(stop.signal)) {
          // Acquired while stopping: give it straight back without starting any work.
          last = { control, work: Promise.resolve() };
          break;
        }
        const work = this.#startWork(onLead, control);
        last = { control, work };
        await this.#lead(control, stop.signal);
        if (aborted(stop.signal)) break;
        await this.#settle(work);
        if (control.endReason() === 'EndedByCaller') await this.#releaseLease();
        last = undefined;
      }
    } finally {
      if (last !== undefined) {
        last.control.finish(this.#releasing() ? 'Released' : 'Stopped', 'the elector is stopping');
        await this.#settle(last.work);
      }
      if (this.#releasing() && this.#control !== undefined) released = await this.#releaseLease();
      this.#clearDeadline();
      signal?.removeEventListener('abort', onAbort);
      this.#stop = undefined;
      this.#log.info({ lease: this.#leaseText, released }, 'left the leader election');
      finished(released);
    }
  }

  /**
   * Graceful shutdown: stops run (ending the term, waiting up to the renew deadline for its
   * work) and clears holderIdentity if the Lease shows this process. Resolves to whether it
   * released the Lease.
   */
  async release(): Promise<boolean> {
    if (this.#stop === undefined) return this.#control === undefined ? false : this.#releaseLease();
    this.#requestStop(true);
    return this.#done;
  }

  /**
   * Reads the Lease now and ends `term` if it shows another holder, another term or no Lease
   * (for a caller refused in a way that may mean it was fenced). Resolves to whether the term
   * is still current and valid; rejects when the Lease cannot be read.
   */
  async confirm(term: Term): Promise<boolean> {
    const control = this.#control;
    if (control?.term !== term || control.endReason() !== undefined) return false;
    const lease = await this.#client.get(this.#lease, term.signal);
    this.#observe(lease);
    this.#judge(control, lease);
    return term.valid();
  }

  // ---------------------------------------------------------------------------------------------
  // Following.

  async #acquire(stop: AbortSignal): Promise<TermControl | undefined> {
    for (;;) {
      if (aborted(stop)) return undefined;
      const at = this.#nextAttemptAt();
      if (this.#now() < at) {
        await this.#pause(at, stop);
        continue;
      }
      const control = await this.#tryAcquire(stop);
      if (control !== undefined) return control;
    }
  }

  #nextAttemptAt(): number {
    let at = this.#safetyAt;
    const ready = this.#readyAt();
    if (ready !== undefined) at = Math.min(at, ready);
    return Math.max(at, this.#cooldownUntil);
  }

  /**
   * When the Lease as last seen may be taken: at once if it is free and that is news since the
   * last attempt, else when it expires unless an attempt has been made since. Each is acted on
   * once; after that the safety net paces the attempts, so a failing write cannot spin.
   */
  #readyAt(): number | undefined {
    const o = this.#observed;
    if (o === undefined) return undefined;
    if (o.lease === undefined || this.#free(o.lease)) return o.seq > this.#attemptSeq ? o.at : undefined;
    const expiry = o.at + this.#durationOf(o.lease);
    return expiry > this.#lastAttemptAt ? expiry : undefined;
  }

  /** Nobody's, or this process's from a term that has ended. */
  #free(lease: Lease): boolean {
    const holder = holderOf(lease);
    return holder === '' || (holder === this.#identity && this.currentTerm() === undefined);
  }

  #durationOf(lease: Lease): number {
    return declaredDurationMs(lease) ?? this.#timings.leaseDurationMs;
  }

  async #tryAcquire(stop: AbortSignal): Promise<TermControl | undefined> {
    const start = this.#now();
    this.#lastAttemptAt = start;
    this.#attemptSeq = this.#seq;
    this.#safetyAt = start + this.#timings.retryPeriodMs * (1 + this.#random() * JITTER_FACTOR);
    let lease: Lease | undefined;
    try {
      lease = await this.#client.get(this.#lease, stop);
    } catch (err) {
      if (!aborted(stop)) this.#log.warn({ lease: this.#leaseText, err: classify(err) }, 'lease not read');
      return undefined;
    }
    this.#observe(lease);
    if (aborted(stop)) return undefined;
    if (lease !== undefined && !this.#free(lease)) {
      const o = this.#observed;
      if (o === undefined || this.#now() < o.at + this.#durationOf(lease)) return undefined;
      this.#log.info(
        { lease: this.#leaseText, holder: holderOf(lease), unchangedForMs: this.#now() - o.at },
        'lease expired; taking it over',
      );
    }

    const now = microTime(this.#wallClock());
    const spec: LeaseSpec = {
      ...(lease?.spec ?? {}),
      holderIdentity: this.#identity,
      leaseDurationSeconds: this.#timings.leaseDurationMs / 1000,
      leaseTransitions: lease === undefined ? FIRST_TERM_NUMBER : transitionsOf(lease) + 1,
      acquireTime: now,
      renewTime: now,
    };
    const sentAt = this.#now();
    let result: WriteResult;
    try {
      result =
        lease === undefined
          ? await this.#client.create(this.#lease, spec, stop)
          : await this.#client.replace(this.#lease, { metadata: lease.metadata, spec }, stop);
    } catch (err) {
      if (!aborted(stop)) {
        this.#log.warn({ lease: this.#leaseText, err: classify(err) }, 'lease not acquired: write failed');
      }
      return undefined;
    }
    if (result.kind === 'conflict') {
      // Someone else wrote first: see what they wrote, and time the next attempt by it.
      this.#log.debug?.({ lease: this.#leaseText }, 'lease changed before it could be acquired');
      try {
        this.#observe(await this.#client.get(this.#lease, stop));
      } catch (err) {
        if (!aborted(stop)) this.#log.warn({ lease: this.#leaseText, err: classify(err) }, 'lease not read');
      }
      return undefined;
    }
    return this.#begin(result.lease, sentAt);
  }

  #begin(lease: Lease, sentAt: number): TermControl {
    const previous = this.#previous;
    this.#previous = undefined;
    this.#held = lease;
    this.#observe(lease);
    const control: TermControl = createTerm({
      leaseUid: lease.metadata.uid,
      number: transitionsOf(lease),
      holder: this.#identity,
      renewDeadlineMs: this.#timings.renewDeadlineMs,
      acquiredAt: sentAt,
      now: () => this.#now(),
      onEnd: (reason, message) => {
        this.#ended(control, reason, message);
      },
    });
    this.#control = control;
    this.#armDeadline(control);
    const failoverMs = previous === undefined ? undefined : Math.round(this.#now() - previous.at);
    this.#log.info(
      {
        lease: this.#leaseText,
        term: control.term.number,
        leaseUid: control.term.leaseUid,
        previousHolder: previous?.holder,
        failoverMs,
      },
      'became leader',
    );
    this.#emit({ kind: 'started', term: control.term, previousHolder: previous?.holder, failoverMs });
    return control;
  }

  // ---------------------------------------------------------------------------------------------
  // Leading.

  async #lead(control: TermControl, stop: AbortSignal): Promise<void> {
    // Requests of the term give up when it ends (the deadline included) or the elector stops.
    const signal = AbortSignal.any([control.term.signal, stop]);
    while (control.endReason() === undefined && !aborted(stop)) {
      const at = this.#nextRenewAt(control);
      if (this.#now() < at) {
        await this.#pause(at, stop);
        continue;
      }
      await this.#renew(control, signal);
    }
  }

  #nextRenewAt(control: TermControl): number {
    const at = this.#lastAttemptAt + this.#timings.retryPeriodMs;
    const o = this.#observed;
    // The watch showed a change this term did not make: find out now, by renewing (a 409 re-reads).
    if (o !== undefined && o.seq > this.#attemptSeq && !this.#showsTerm(o.lease, control.term)) {
      return Math.min(at, o.at);
    }
    return at;
  }

  async #renew(control: TermControl, signal: AbortSignal): Promise<void> {
    const start = this.#now();
    this.#lastAttemptAt = start;
    this.#attemptSeq = this.#seq;
    const held = this.#held;
    if (held === undefined) throw new Error('a term without a Lease');
    const renewed = (lease: Lease): void => {
      this.#held = lease;
      this.#observe(lease);
      control.renewed(start);
    };
    try {
      const result = await this.#client.replace(this.#lease, this.#renewal(held, control.term), signal);
      if (result.kind === 'written') {
        renewed(result.lease);
        return;
      }
      const current = await this.#client.get(this.#lease, signal);
      this.#observe(current);
      if (!this.#judge(control, current) || current === undefined) return;
      // Still this term: someone else touched the object (a label, say). Renew on their version.
      this.#held = current;
      const retry = await this.#client.replace(this.#lease, this.#renewal(current, control.term), signal);
      if (retry.kind === 'written') renewed(retry.lease);
    } catch (err) {
      if (aborted(signal)) return;
      this.#log.warn(
        {
          lease: this.#leaseText,
          term: control.term.number,
          err: classify(err),
          sinceRenewalMs: Math.round(this.#now() - control.renewedAt()),
        },
        'lease not renewed',
      );
    }
  }

  #renewal(base: Lease, term: Term): Lease {
    return {
      metadata: base.metadata,
      spec: {
        ...base.spec,
        holderIdentity: this.#identity,
        leaseDurationSeconds: this.#timings.leaseDurationMs / 1000,
        leaseTransitions: term.number,
        renewTime: microTime(this.#wallClock()),
      },
    };
  }

  /** Ends the term when a fresh read of the Lease shows it is over; returns whether it holds. */
  #judge(control: TermControl, lease: Lease | undefined): boolean {
    const term = control.term;
    if (lease === undefined) {
      control.finish('LeaseDeleted', 'the Lease was deleted');
      return false;
    }
    if (lease.metadata.uid !== term.leaseUid) {
      control.finish('LeaseDeleted', 'the Lease was deleted and created again');
      return false;
    }
    if (!this.#showsTerm(lease, term)) {
      const holder = holderOf(lease);
      control.finish(
        'Superseded',
        `the Lease shows holder "${holder}" at leaseTransitions ${transitionsOf(lease)}`,
      );
      return false;
    }
    return true;
  }

  #showsTerm(lease: Lease | undefined, term: Term): boolean {
    return (
      lease !== undefined &&
      lease.metadata.uid === term.leaseUid &&
      holderOf(lease) === term.holder &&
      transitionsOf(lease) === term.number
    );
  }

  #armDeadline(control: TermControl): void {
    this.#clearDeadline();
    const at = control.renewedAt() + this.#timings.renewDeadlineMs;
    this.#deadlineTimer = this.#clock.setTimer(at - this.#now(), () => {
      this.#deadlineTimer = undefined;
      if (control.endReason() !== undefined) return;
      if (this.#now() >= control.renewedAt() + this.#timings.renewDeadlineMs) {
        control.finish(
          'RenewDeadline',
          `no renewal succeeded within the renew deadline (${this.#timings.renewDeadlineMs} ms)`,
        );
      } else {
        this.#armDeadline(control);
      }
    });
  }

  #clearDeadline(): void {
    this.#deadlineTimer?.();
    this.#deadlineTimer = undefined;
  }

  #ended(control: TermControl, reason: TermEndReason, message: string): void {
    this.#clearDeadline();
    this.#cooldownUntil = this.#now() + this.#timings.retryPeriodMs;
    const fields = { lease: this.#leaseText, term: control.term.number, reason, detail: message };
    if (reason === 'Released' || reason === 'Stopped') this.#log.info(fields, 'term ended');
    else this.#log.warn(fields, 'term ended; following again');
    this.#emit({ kind: 'stopped', term: control.term, reason });
    this.#ring();
  }

  #startWork(onLead: OnLead, control: TermControl): Promise<void> {
    const failed = (err: unknown): void => {
      if (control.endReason() !== undefined) {
        this.#log.debug?.({ lease: this.#leaseText, err: errorText(err) }, 'term work ended with an error');
        return;
      }
      this.#log.error(
        { lease: this.#leaseText, term: control.term.number, err: errorText(err) },
        'term work failed; ending the term',
      );
      control.finish('EndedByCaller', `the term's work failed: ${errorText(err)}`);
    };
    try {
      return Promise.resolve(onLead(control.term)).then(() => undefined, failed);
    } catch (err) {
      failed(err);
      return Promise.resolve();
    }
  }

  /** Waits for a term's work to settle, at most the renew deadline. */
  async #settle(work: Promise<void>): Promise<void> {
    const done = new AbortController();
    const settled = await Promise.race([
      work.then(() => true),
      sleep(this.#clock, this.#timings.renewDeadlineMs, done.signal).then(() => false),
    ]);
    done.abort();
    if (!settled) {
      this.#log.warn(
        { lease: this.#leaseText, waitedMs: this.#timings.renewDeadlineMs },
        "the ended term's work has not finished; going on without it",
      );
    }
  }

  /** Clears holderIdentity if the Lease shows this process; resolves to whether it did. */
  async #releaseLease(): Promise<boolean> {
    const timeout = new AbortController();
    const cancel = this.#clock.setTimer(this.#timings.renewDeadlineMs, () => {
      timeout.abort();
    });
    try {
      // A conflict means someone wrote meanwhile: read again, and stop once it is not ours.
      for (let attempt = 0; attempt < 5 && !aborted(timeout.signal); attempt++) {
        const lease = await this.#client.get(this.#lease, timeout.signal);
        this.#observe(lease);
        if (lease === undefined || holderOf(lease) !== this.#identity) return false;
        const now = microTime(this.#wallClock());
        const spec: LeaseSpec = {
          ...lease.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          acquireTime: now,
          renewTime: now,
        };
        const result = await this.#client.replace(
          this.#lease,
          { metadata: lease.metadata, spec },
          timeout.signal,
        );
        if (result.kind === 'written') {
          this.#observe(result.lease);
          this.#log.info(
            { lease: this.#leaseText, leaseTransitions: transitionsOf(result.lease) },
            'lease released',
          );
          return true;
        }
      }
    } catch (err) {
      this.#log.warn({ lease: this.#leaseText, err: classify(err) }, 'lease not released');
    } finally {
      cancel();
    }
    return false;
  }

  // ---------------------------------------------------------------------------------------------
  // Observing.

  #onWatch(lease: Lease | undefined): void {
    if (this.#stop === undefined) return;
    if (this.#observe(lease)) this.#ring();
  }

  /** Records the Lease as seen now; returns whether it changed since it was last seen. */
  #observe(lease: Lease | undefined): boolean {
    const key = lease === undefined ? '' : `${lease.metadata.uid}/${lease.metadata.resourceVersion}`;
    const before = this.#observed;
    if (before?.key === key) return false;
    const at = this.#now();
    this.#observed = { lease, key, at, seq: ++this.#seq };

    const holder = lease === undefined ? '' : holderOf(lease);
    const priorHolder = before?.lease === undefined ? '' : holderOf(before.lease);
    if (holder !== '' && holder !== this.#identity) this.#previous = { holder, at };
    else if (lease !== undefined && holder === '' && priorHolder !== '' && priorHolder !== this.#identity) {
      this.#previous = { holder: priorHolder, at }; // its release: the last it wrote
    }

    const shown = holder === '' ? undefined : holder;
    if (this.#reported === undefined || this.#reported.holder !== shown) {
      this.#reported = { holder: shown };
      this.#log.info(
        { lease: this.#leaseText, holder: shown ?? null, self: shown === this.#identity },
        'lease holder observed',
      );
      this.#emit({
        kind: 'holderChanged',
        holder: shown,
        leaseTransitions: lease === undefined ? undefined : transitionsOf(lease),
      });
    }
    return true;
  }

  // ---------------------------------------------------------------------------------------------

  // A method, not the field: the type checker would keep the field narrowed across awaits.
  #releasing(): boolean {
    return this.#releaseOnStop;
  }

  #requestStop(release: boolean): void {
    if (release) this.#releaseOnStop = true;
    this.#stop?.abort();
  }

  /** Sleeps until `at`, or until woken (a change seen, a term ended) or stopped. */
  #pause(at: number, stop: AbortSignal): Promise<void> {
    if (aborted(stop)) return Promise.resolve();
    return new Promise((resolve) => {
      let woken = false;
      const wake = (): void => {
        if (woken) return;
        woken = true;
        cancel();
        stop.removeEventListener('abort', wake);
        if (this.#wake === wake) this.#wake = undefined;
        resolve();
      };
      const cancel = this.#clock.setTimer(at - this.#now(), wake);
      stop.addEventListener('abort', wake, { once: true });
      this.#wake = wake;
    });
  }

  #ring(): void {
    this.#wake?.();
  }

  #now(): number {
    return this.#clock.now();
  }

  #emit(event: ElectorEvent): void {
    if (this.#onEvent === undefined) return;
    try {
      this.#onEvent(event);
    } catch (err) {
      this.#log.warn({ lease: this.#leaseText, event: event.kind, err: errorText(err) }, 'onEvent failed');
    }
  }
}

// A call, not the property: the type checker keeps `signal.aborted` narrowed across awaits,
// though another task may abort the signal meanwhile.
function aborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// A term: one leadership of the leader Lease by one process (DESIGN.md, invariant 3).
//
// What a Term guarantees:
// - It names the leadership: the Lease's UID (`leaseUid`), the Lease's `spec.leaseTransitions`
//   when this process acquired it (`number`) and this process's identity (`holder`). Two terms
//   of one Lease never share a number; a Lease deleted and created again has another UID, so a
//   term of the new Lease is never confused with one of the old, whatever its number.
// - `valid()` is the local fence, the first of DESIGN.md's three layers: true only while the term
//   has not ended and the monotonic clock has not yet reached the renew deadline counted from
//   the last successful renewal (from when that renewal's request was sent, not answered). It
//   reads the clock on every call, so a process that was paused past its deadline sees false at
//   once on waking, before any timer of its own has had a chance to run. Call it right before
//   each side effect.
// - `signal` aborts exactly once, when the term ends, with a TermEnded whose `reason` says why.
//   Once ended a term never becomes valid again: leading again is a new term.
// - `end(cause)` ends the term from the caller's side (for instance on a FencedError from the
//   ledger); ending a term that has already ended does nothing.
//
// What it does not guarantee:
// - That no other process is leading: `valid()` is a local judgement. A request that passed the
//   check just before the deadline, or a process that paused between the check and the request,
//   still reaches the API server or the database. The ledger's term check and the Pod admission
//   policy are the layers that stop those.
// - That the Lease still shows this term: the Lease may already show a successor while `valid()`
//   is true for up to `leaseDuration - renewDeadline` (this process's renewal failed and it has
//   not given up yet). Followers wait the full lease duration, so they cannot take over while a
//   leader's `valid()` is still true unless the clocks' rates differ by more than the ratio
//   lease duration / renew deadline.

/** Why a term ended. */
export type TermEndReason =
  /** No renewal succeeded within the renew deadline. */
  | 'RenewDeadline'
  /** The Lease shows another holder or another term. */
  | 'Superseded'
  /** The Lease was deleted, or deleted and created again (another UID). */
  | 'LeaseDeleted'
  /** The process is shutting down and gives the Lease up (`Elector.release`, or run's signal). */
  | 'Released'
  /** The process stops without giving the Lease up (run's signal with releaseOnCancel false). */
  | 'Stopped'
  /** The caller ended it (`term.end`), or the term's work failed. */
  | 'EndedByCaller';

/** The abort reason of a term's signal. */
export class TermEnded extends Error {
  override readonly name = 'TermEnded';
  readonly reason: TermEndReason;

  constructor(reason: TermEndReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

export interface Term {
  /** UID of the leader Lease this term holds. */
  readonly leaseUid: string;
  /** The Lease's `spec.leaseTransitions` at acquisition: the term number. */
  readonly number: number;
  /** This process's identity, the Lease's holderIdentity during the term. */
  readonly holder: string;
  /** Aborts when the term ends; its reason is a TermEnded. */
  readonly signal: AbortSignal;
  /** Whether the term is still within its renew deadline on the local monotonic clock. */
  valid(): boolean;
  /** Ends the term (idempotent). `cause` is logged. */
  end(cause: string): void;
}

/** The elector's side of a term: what only the elector may do to it. */
export interface TermControl {
  readonly term: Term;
  /** The monotonic time the last successful renewal (or the acquisition) was sent. */
  renewedAt(): number;
  /**
   * Records a successful renewal sent at `sentAt`; ignored once the term has ended, and it ends
   * the term instead (RenewDeadline) when the deadline has already passed.
   */
  renewed(sentAt: number): void;
  /** Ends the term; the first call wins. Returns whether this call ended it. */
  finish(reason: TermEndReason, message: string): boolean;
  /** The reason it ended, or undefined while it runs. */
  endReason(): TermEndReason | undefined;
}

export interface TermSpec {
  readonly leaseUid: string;
  readonly number: number;
  readonly holder: string;
  readonly renewDeadlineMs: number;
  /** When the acquiring request was sent, on `now`'s clock. */
  readonly acquiredAt: number;
  readonly now: () => number;
  /** Called once, synchronously, right after the term has ended (signal already aborted). */
  readonly onEnd: (reason: TermEndReason, message: string) => void;
}

export function createTerm(spec: TermSpec): TermControl {
  const controller = new AbortController();
  let renewedAt = spec.acquiredAt;
  let reason: TermEndReason | undefined;

  const finish = (why: TermEndReason, message: string): boolean => {
    if (reason !== undefined) return false;
    reason = why;
    controller.abort(new TermEnded(why, message));
    spec.onEnd(why, message);
    return true;
  };

  const term: Term = Object.freeze({
    leaseUid: spec.leaseUid,
    number: spec.number,
    holder: spec.holder,
    signal: controller.signal,
    valid: () => reason === undefined && spec.now() < renewedAt + spec.renewDeadlineMs,
    end: (cause: string) => {
      finish('EndedByCaller', cause);
    },
  });

  return {
    term,
    renewedAt: () => renewedAt,
    renewed: (sentAt) => {
      if (reason !== undefined) return;
      // Past the deadline the term is over even if the deadline's timer has not run yet (a busy
      // or paused event loop): a late success must not revive a term `valid()` already denied.
      if (spec.now() >= renewedAt + spec.renewDeadlineMs) {
        finish('RenewDeadline', 'the renew deadline passed before the renewal was answered');
        return;
      }
      if (sentAt > renewedAt) renewedAt = sentAt;
    },
    finish,
    endReason: () => reason,
  };
}

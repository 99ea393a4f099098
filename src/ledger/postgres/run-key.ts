// runKey: a run's identity as one string, the primary key of `ssj.runs`.
//
// Guarantees: two identities get the same key exactly when they are the same run (same job
// UID, kind, tick second or token, and attempt); the key is readable
// (`s/<job uid>/<tick unix seconds>/<attempt>`, `m/<job uid>/<token>/<attempt>`, free text
// percent-encoded so no component can forge a separator). Does not guarantee a bounded length:
// a manual token is stored as given.

import type { RunIdentity } from './model.ts';

export function runKey(run: RunIdentity): string {
  if (run.jobUid === '') throw new RangeError('runKey: jobUid is empty');
  if (!Number.isSafeInteger(run.attempt) || run.attempt < 1) {
    throw new RangeError(`runKey: attempt must be an integer >= 1, got ${run.attempt}`);
  }
  const job = encodeURIComponent(run.jobUid);
  switch (run.kind) {
    case 'scheduled':
      return `s/${job}/${tickSeconds(run.tick)}/${run.attempt}`;
    case 'manual':
      if (run.manualToken === '') throw new RangeError('runKey: manualToken is empty');
      return `m/${job}/${encodeURIComponent(run.manualToken)}/${run.attempt}`;
    default: {
      const unexpected: never = run;
      throw new TypeError(`runKey: unknown run kind ${JSON.stringify(unexpected)}`);
    }
  }
}

/** A tick's Unix seconds; a tick that is not a whole second is a caller's bug. */
export function tickSeconds(tick: Date): number {
  const ms = tick.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('tick is an invalid Date');
  if (ms % 1000 !== 0) throw new RangeError(`tick must be a whole second, got ${tick.toISOString()}`);
  return ms / 1000;
}

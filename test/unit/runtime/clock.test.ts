import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_TIMER_MS, sleep, timerClock } from '../../../src/runtime/clock.ts';
import { ManualClock, settle } from './manual-clock.ts';

// Fake timer primitives: records every setTimeout and lets the test fire them.
function fakePrimitives() {
  let now = 0;
  let nextId = 0;
  const timers = new Map<number, { at: number; fn: () => void; ms: number }>();
  const asked: number[] = [];
  return {
    asked,
    timers,
    primitives: {
      now: () => now,
      setTimeout: (fn: () => void, ms: number) => {
        asked.push(ms);
        const id = nextId++;
        timers.set(id, { at: now + ms, fn, ms });
        return id;
      },
      clearTimeout: (id: number) => {
        timers.delete(id);
      },
    },
    advance(ms: number) {
      const target = now + ms;
      for (;;) {
        const due = [...timers.entries()]
          .filter(([, t]) => t.at <= target)
          .sort(([, a], [, b]) => a.at - b.at)[0];
        if (due === undefined) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = target;
    },
  };
}

describe('timer clock', () => {
  it('fires a 40-day timer once, after 40 days, never asking setTimeout for more than 2^31-1 ms', () => {
    const f = fakePrimitives();
    const clock = timerClock(f.primitives);
    let fired = 0;
    const forty = 40 * 24 * 3600 * 1000;
    clock.setTimer(forty, () => fired++);
    f.advance(forty - 1);
    assert.equal(fired, 0);
    f.advance(1);
    assert.equal(fired, 1);
    assert.ok(f.asked.length >= 2, 'chained');
    assert.ok(f.asked.every((ms) => ms <= MAX_TIMER_MS));
    f.advance(forty);
    assert.equal(fired, 1);
  });

  it('cancels a chained timer in the middle of its chain', () => {
    const f = fakePrimitives();
    const clock = timerClock(f.primitives);
    let fired = 0;
    const cancel = clock.setTimer(3 * MAX_TIMER_MS, () => fired++);
    f.advance(MAX_TIMER_MS + 10);
    cancel();
    cancel();
    f.advance(10 * MAX_TIMER_MS);
    assert.equal(fired, 0);
    assert.equal(f.timers.size, 0);
  });

  it('re-arms instead of firing when setTimeout fires early against now()', () => {
    let now = 0;
    const fns: (() => void)[] = [];
    const clock = timerClock({
      now: () => now,
      setTimeout: (fn: () => void) => fns.push(fn),
      clearTimeout: () => undefined,
    });
    let fired = false;
    clock.setTimer(100, () => (fired = true));
    now = 99.5;
    fns.shift()!();
    assert.equal(fired, false);
    now = 100;
    fns.shift()!();
    assert.equal(fired, true);
  });
});

describe('sleep', () => {
  it('resolves after the delay on the given clock', async () => {
    const clock = new ManualClock();
    let done = false;
    void sleep(clock, 50).then(() => (done = true));
    clock.advance(49);
    await settle();
    assert.equal(done, false);
    clock.advance(1);
    await settle();
    assert.equal(done, true);
  });

  it('resolves at once, and cancels its timer, when the signal aborts', async () => {
    const clock = new ManualClock();
    const ac = new AbortController();
    const p = sleep(clock, 10_000, ac.signal);
    ac.abort();
    await p;
    assert.equal(clock.pending(), 0);
    await sleep(clock, 10_000, ac.signal); // already aborted: immediate
  });
});

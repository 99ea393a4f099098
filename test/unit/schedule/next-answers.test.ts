// A schedule keeps its recent answers of next() (the tick after x is the same for every x up to
// that tick): asked any sequence of questions, it answers exactly as a schedule that keeps none.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { parseSchedule, type Schedule } from '../../../src/schedule/index.ts';
import { simpleCron, ZONES } from './reference.ts';

function schedule(expression: string, timeZone: string): Schedule {
  const result = parseSchedule(expression, timeZone);
  if (!result.ok) throw new Error(result.error.message);
  return result.schedule;
}

const START = Date.UTC(2026, 2, 1);

describe('next() with kept answers', () => {
  it('property: the same answers as a fresh schedule, for any questions in any order', () => {
    fc.assert(
      fc.property(
        fc.boolean().chain((withSeconds) => simpleCron(withSeconds)),
        fc.constantFrom(...ZONES),
        // Questions clustered around a few instants (as reconciles ask), at millisecond precision.
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: -3_600, max: 3_600 })), {
          minLength: 1,
          maxLength: 120,
        }),
        (cron, zone, questions) => {
          const kept = schedule(cron.expression, zone);
          for (const [base, offset] of questions) {
            const at = new Date(START + base * 7 * 86_400_000 + offset * 1000 + (offset % 997));
            const expected = schedule(cron.expression, zone).next(at);
            assert.deepEqual(kept.next(at), expected, `${cron.expression} ${zone} after ${at.toISOString()}`);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('answers the tick itself as "after" with the tick after it', () => {
    const s = schedule('0 * * * *', 'UTC');
    const first = s.next(new Date('2026-12-01T10:30:00Z'));
    assert.equal(first?.toISOString(), '2026-12-01T11:00:00.000Z');
    assert.equal(s.next(new Date('2026-12-01T10:59:59.999Z'))?.toISOString(), '2026-12-01T11:00:00.000Z');
    assert.equal(s.next(new Date('2026-12-01T11:00:00Z'))?.toISOString(), '2026-12-01T12:00:00.000Z');
  });
});

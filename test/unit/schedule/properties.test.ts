import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { parseSchedule, ticksBetween, type Schedule } from '../../../src/schedule/index.ts';
import { referenceTicks, referenceTransitions, simpleCron, ZONES, type SimpleCron } from './reference.ts';

function schedule(expression: string, timeZone: string): Schedule {
  const result = parseSchedule(expression, timeZone);
  if (!result.ok) throw new Error(result.error.message);
  return result.schedule;
}

/** The ticks in (from, to] by repeated next(), in Unix seconds. */
function walk(s: Schedule, from: number, to: number): number[] {
  const out: number[] = [];
  let cursor: Date | null = new Date(from * 1000);
  for (;;) {
    cursor = s.next(cursor);
    if (cursor === null || cursor.getTime() > to * 1000) return out;
    out.push(cursor.getTime() / 1000);
  }
}

const YEARS = { from: Date.UTC(2019, 0, 1) / 1000, to: Date.UTC(2028, 0, 1) / 1000 };

// Offset changes per zone over YEARS, found by the reference's own scan (cached: a few ms per zone).
const transitionCache = new Map<string, number[]>();
function transitionsOf(zone: string): number[] {
  let found = transitionCache.get(zone);
  if (found === undefined) {
    found = referenceTransitions(zone, YEARS.from, YEARS.to);
    transitionCache.set(zone, found);
  }
  return found;
}

/** An instant near a clock shift of the zone (or anywhere in YEARS for a zone without shifts). */
const nearShift = (zone: string): fc.Arbitrary<number> => {
  const shifts = transitionsOf(zone);
  if (shifts.length === 0) return fc.integer({ min: YEARS.from, max: YEARS.to });
  return fc
    .tuple(fc.constantFrom(...shifts), fc.integer({ min: -6 * 3600, max: 6 * 3600 }))
    .map(([at, delta]) => at + delta);
};

const zoneAndInstant = fc
  .constantFrom(...ZONES)
  .chain((zone) => nearShift(zone).map((instant) => ({ zone, instant })));

const describeCase = (cron: SimpleCron, zone: string, from: number, to: number): string =>
  `${cron.expression} in ${zone}, (${new Date(from * 1000).toISOString()}, ${new Date(to * 1000).toISOString()}]`;

describe('Schedule.next agrees with an independent scan of the wall clock (reference.ts)', () => {
  it('for 5-field schedules in windows around clock shifts, minute by minute', () => {
    fc.assert(
      fc.property(
        simpleCron(false),
        zoneAndInstant,
        fc.integer({ min: 1, max: 8 }),
        (cron, { zone, instant }, hours) => {
          const from = Math.floor((instant - hours * 1800) / 60) * 60 + 17; // not on a minute
          const to = instant + hours * 1800;
          const expected = referenceTicks(cron, zone, from, to, 60);
          assert.deepEqual(
            walk(schedule(cron.expression, zone), from, to),
            expected,
            describeCase(cron, zone, from, to),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('for 6-field schedules in windows around clock shifts, second by second', () => {
    fc.assert(
      fc.property(simpleCron(true), zoneAndInstant, (cron, { zone, instant }) => {
        const from = instant - 40 * 60;
        const to = instant + 40 * 60;
        const expected = referenceTicks(cron, zone, from, to, 1);
        assert.deepEqual(
          walk(schedule(cron.expression, zone), from, to),
          expected,
          describeCase(cron, zone, from, to),
        );
      }),
      { numRuns: 20 },
    );
  });
});

describe('Schedule.next in every zone this Node knows', () => {
  const allZones = Intl.supportedValuesOf('timeZone');

  it('gives whole-second ticks that strictly increase, so no tick is produced twice', () => {
    fc.assert(
      fc.property(
        simpleCron(false),
        fc.constantFrom(...allZones),
        fc.integer({ min: Date.UTC(1970, 0, 2) / 1000, max: Date.UTC(2100, 0, 1) / 1000 }),
        (cron, zone, start) => {
          const s = schedule(cron.expression, zone);
          let previous = new Date(start * 1000);
          for (let i = 0; i < 30; i++) {
            const tick = s.next(previous);
            assert.ok(tick !== null, `${cron.expression} in ${zone} stopped`);
            assert.equal(tick.getTime() % 1000, 0, `${tick.toISOString()} is not a whole second`);
            assert.ok(tick > previous, `${tick.toISOString()} does not follow ${previous.toISOString()}`);
            previous = tick;
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('passes each clock shift of 2026 without losing or repeating a tick, half-hourly in every zone', () => {
    for (const zone of allZones) {
      const s = schedule('0,30 * * * *', zone);
      const shifts = referenceTransitions(zone, Date.UTC(2026, 0, 1) / 1000, Date.UTC(2027, 0, 1) / 1000);
      for (const at of shifts) {
        const a = at - 2 * 3600;
        const b = at + 2 * 3600;
        const cron: SimpleCron = {
          expression: '0,30 * * * *',
          seconds: [0],
          minutes: [0, 30],
          hours: null,
          daysOfMonth: null,
          daysOfWeek: null,
        };
        assert.deepEqual(
          walk(s, a, b),
          referenceTicks(cron, zone, a, b, 60),
          `${zone} at ${new Date(at * 1000).toISOString()}`,
        );
      }
    }
  });
});

describe('ticksBetween agrees with repeated next()', () => {
  const spanFor = (cron: SimpleCron): number =>
    cron.seconds !== null && cron.seconds.length === 1 ? 86_400 : 3 * 3600;

  it('on spans around clock shifts, for the listed, latest and before-latest ticks and the count', () => {
    fc.assert(
      fc.property(
        fc.boolean().chain((withSeconds) => simpleCron(withSeconds)),
        zoneAndInstant,
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 30 }),
        (cron, { zone, instant }, share, limit) => {
          const span = spanFor(cron);
          const from = instant - Math.floor(span * share);
          const to = from + span;
          const s = schedule(cron.expression, zone);
          const all = walk(s, from, to);
          const got = ticksBetween(s, new Date(from * 1000), new Date(to * 1000), limit);
          const label = describeCase(cron, zone, from, to);
          assert.deepEqual(
            {
              first: got.first.map((d) => d.getTime() / 1000),
              latest: got.latest === null ? null : got.latest.getTime() / 1000,
              beforeLatest: got.beforeLatest === null ? null : got.beforeLatest.getTime() / 1000,
              count: got.count,
            },
            {
              first: all.slice(0, limit),
              latest: all.at(-1) ?? null,
              beforeLatest: all.at(-2) ?? null,
              count: all.length,
            },
            label,
          );
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('macros are their expansions', () => {
  const expansions: [string, string][] = [
    ['@yearly', '0 0 1 1 *'],
    ['@annually', '0 0 1 1 *'],
    ['@monthly', '0 0 1 * *'],
    ['@weekly', '0 0 * * 0'],
    ['@daily', '0 0 * * *'],
    ['@midnight', '0 0 * * *'],
    ['@hourly', '0 * * * *'],
  ];
  for (const [macro, expansion] of expansions) {
    it(`${macro} ticks as ${expansion} in any zone, from any instant`, () => {
      fc.assert(
        fc.property(zoneAndInstant, ({ zone, instant }) => {
          const a = schedule(macro, zone);
          const b = schedule(expansion, zone);
          let x: Date | null = new Date(instant * 1000);
          let y: Date | null = x;
          for (let i = 0; i < 5; i++) {
            x = a.next(x ?? new Date(0));
            y = b.next(y ?? new Date(0));
            assert.deepEqual(x, y);
          }
        }),
        { numRuns: 20 },
      );
    });
  }
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { parseSchedule, ticksBetween, type Schedule, type TickSpan } from '../../../src/schedule/index.ts';

function schedule(expression: string, timeZone: string): Schedule {
  const result = parseSchedule(expression, timeZone);
  if (!result.ok) throw new Error(result.error.message);
  return result.schedule;
}

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString().replace('.000Z', 'Z'));

function summary(span: TickSpan): {
  first: (string | null)[];
  latest: string | null;
  beforeLatest: string | null;
  count: number;
} {
  return {
    first: span.first.map(iso),
    latest: iso(span.latest),
    beforeLatest: iso(span.beforeLatest),
    count: span.count,
  };
}

interface Row {
  readonly name: string;
  readonly expression: string;
  readonly zone: string;
  readonly from: string;
  readonly to: string;
  readonly limit: number;
  readonly expected: { first: string[]; latest: string | null; beforeLatest: string | null; count: number };
}

const rows: readonly Row[] = [
  {
    name: 'the start is excluded and the end included',
    expression: '0 * * * *',
    zone: 'UTC',
    from: '2026-01-01T00:00:00Z',
    to: '2026-01-01T02:00:00Z',
    limit: 10,
    expected: {
      first: ['2026-01-01T01:00:00Z', '2026-01-01T02:00:00Z'],
      latest: '2026-01-01T02:00:00Z',
      beforeLatest: '2026-01-01T01:00:00Z',
      count: 2,
    },
  },
  {
    name: 'an end a fraction of a second before a tick excludes it',
    expression: '0 * * * *',
    zone: 'UTC',
    from: '2026-01-01T00:00:00Z',
    to: '2026-01-01T01:59:59.999Z',
    limit: 10,
    expected: {
      first: ['2026-01-01T01:00:00Z'],
      latest: '2026-01-01T01:00:00Z',
      beforeLatest: null,
      count: 1,
    },
  },
  {
    name: 'an empty span',
    expression: '0 * * * *',
    zone: 'UTC',
    from: '2026-01-01T00:00:00Z',
    to: '2026-01-01T00:59:59Z',
    limit: 10,
    expected: { first: [], latest: null, beforeLatest: null, count: 0 },
  },
  {
    name: 'an end before the start is an empty span',
    expression: '* * * * * *',
    zone: 'UTC',
    from: '2026-01-02T00:00:00Z',
    to: '2026-01-01T00:00:00Z',
    limit: 0,
    expected: { first: [], latest: null, beforeLatest: null, count: 0 },
  },
  {
    name: 'more ticks than the limit: the first ones listed, the last two and the count exact',
    expression: '0 * * * *',
    zone: 'UTC',
    from: '2026-01-01T00:00:00Z',
    to: '2026-01-02T00:00:00Z',
    limit: 2,
    expected: {
      first: ['2026-01-01T01:00:00Z', '2026-01-01T02:00:00Z'],
      latest: '2026-01-02T00:00:00Z',
      beforeLatest: '2026-01-01T23:00:00Z',
      count: 24,
    },
  },
  {
    name: 'a limit of 0 still counts and finds the latest',
    expression: '*/15 * * * *',
    zone: 'UTC',
    from: '2026-01-01T00:00:00Z',
    to: '2026-01-01T10:07:00Z',
    limit: 0,
    expected: { first: [], latest: '2026-01-01T10:00:00Z', beforeLatest: '2026-01-01T09:45:00Z', count: 40 },
  },
  {
    name: 'leap days over ten years',
    expression: '0 0 29 2 *',
    zone: 'UTC',
    from: '2026-01-01T00:00:00Z',
    to: '2036-03-01T00:00:00Z',
    limit: 1,
    expected: {
      first: ['2028-02-29T00:00:00Z'],
      latest: '2036-02-29T00:00:00Z',
      beforeLatest: '2032-02-29T00:00:00Z',
      count: 3,
    },
  },
  {
    name: 'a yearly schedule finds the tick before the latest a year back',
    expression: '@yearly',
    zone: 'Europe/Berlin',
    from: '2020-01-01T00:00:00Z',
    to: '2026-06-01T00:00:00Z',
    limit: 0,
    expected: { first: [], latest: '2025-12-31T23:00:00Z', beforeLatest: '2024-12-31T23:00:00Z', count: 6 },
  },
  {
    name: 'Berlin spring forward, listed one by one: one tick per real hour',
    expression: '0 * * * *',
    zone: 'Europe/Berlin',
    from: '2026-03-28T22:00:00Z',
    to: '2026-03-29T03:00:00Z',
    limit: 10,
    expected: {
      first: [
        '2026-03-28T23:00:00Z',
        '2026-03-29T00:00:00Z',
        '2026-03-29T01:00:00Z',
        '2026-03-29T02:00:00Z',
        '2026-03-29T03:00:00Z',
      ],
      latest: '2026-03-29T03:00:00Z',
      beforeLatest: '2026-03-29T02:00:00Z',
      count: 5,
    },
  },
  {
    name: 'Berlin spring forward, counted: the gap time and 03:00 are one tick',
    expression: '0 * * * *',
    zone: 'Europe/Berlin',
    from: '2026-03-28T22:00:00Z',
    to: '2026-03-29T03:00:00Z',
    limit: 2,
    expected: {
      first: ['2026-03-28T23:00:00Z', '2026-03-29T00:00:00Z'],
      latest: '2026-03-29T03:00:00Z',
      beforeLatest: '2026-03-29T02:00:00Z',
      count: 5,
    },
  },
  {
    name: 'Berlin spring forward, counted: four gap times are one tick',
    expression: '*/15 2 * * *',
    zone: 'Europe/Berlin',
    from: '2026-03-28T12:00:00Z',
    to: '2026-03-30T12:00:00Z',
    limit: 0,
    expected: { first: [], latest: '2026-03-30T00:45:00Z', beforeLatest: '2026-03-30T00:30:00Z', count: 5 },
  },
  {
    name: 'Berlin spring forward: the latest tick is the end of the gap',
    expression: '*/15 2 * * *',
    zone: 'Europe/Berlin',
    from: '2026-03-28T12:00:00Z',
    to: '2026-03-29T12:00:00Z',
    limit: 0,
    expected: { first: [], latest: '2026-03-29T01:00:00Z', beforeLatest: null, count: 1 },
  },
  {
    name: 'Berlin fall back, counted: the repeated hour runs once',
    expression: '0 * * * *',
    zone: 'Europe/Berlin',
    from: '2026-10-24T21:30:00Z',
    to: '2026-10-25T03:30:00Z',
    limit: 1,
    expected: {
      first: ['2026-10-24T22:00:00Z'],
      latest: '2026-10-25T03:00:00Z',
      beforeLatest: '2026-10-25T02:00:00Z',
      count: 5,
    },
  },
  {
    name: 'Berlin fall back: a span ending in the second pass ends at the first pass',
    expression: '*/20 * * * *',
    zone: 'Europe/Berlin',
    from: '2026-10-24T23:50:00Z',
    to: '2026-10-25T01:50:00Z', // 02:50 CET, the second pass
    limit: 0,
    expected: { first: [], latest: '2026-10-25T00:40:00Z', beforeLatest: '2026-10-25T00:20:00Z', count: 3 },
  },
  {
    name: 'Berlin fall back: a span inside the second pass holds no tick',
    expression: '*/20 * * * *',
    zone: 'Europe/Berlin',
    from: '2026-10-25T01:00:00Z',
    to: '2026-10-25T01:59:59Z',
    limit: 0,
    expected: { first: [], latest: null, beforeLatest: null, count: 0 },
  },
];

describe('ticksBetween lists, counts and finds the latest ticks of a span', () => {
  for (const row of rows) {
    it(`${row.name}: ${row.expression} in ${row.zone}`, () => {
      const span = ticksBetween(
        schedule(row.expression, row.zone),
        new Date(row.from),
        new Date(row.to),
        row.limit,
      );
      assert.deepEqual(summary(span), row.expected);
    });
  }
});

// Long outages: far too many ticks to visit one by one.
const HOUR = 3600;
const DAY = 86_400;
const outages: readonly {
  name: string;
  expression: string;
  zone: string;
  from: string;
  to: string;
  count: number;
}[] = [
  {
    name: 'every second for 30 days in UTC',
    expression: '* * * * * *',
    zone: 'UTC',
    from: '2026-01-01T00:00:00Z',
    to: '2026-01-31T00:00:00Z',
    count: 30 * DAY,
  },
  {
    name: 'every second for 30 days across Berlin spring forward: every real second is a tick',
    expression: '* * * * * *',
    zone: 'Europe/Berlin',
    from: '2026-03-15T00:00:00Z',
    to: '2026-04-14T00:00:00Z',
    count: 30 * DAY,
  },
  {
    name: 'every second for 30 days across Berlin fall back: the repeated hour once',
    expression: '* * * * * *',
    zone: 'Europe/Berlin',
    from: '2026-10-10T00:00:00Z',
    to: '2026-11-09T00:00:00Z',
    count: 30 * DAY - HOUR,
  },
  {
    name: 'every second for 30 days across Lord Howe fall back: the repeated half hour once',
    expression: '* * * * * *',
    zone: 'Australia/Lord_Howe',
    from: '2026-03-20T00:00:00Z',
    to: '2026-04-19T00:00:00Z',
    count: 30 * DAY - HOUR / 2,
  },
  {
    name: 'every second for 30 days across Lord Howe spring forward',
    expression: '* * * * * *',
    zone: 'Australia/Lord_Howe',
    from: '2026-09-20T00:00:00Z',
    to: '2026-10-20T00:00:00Z',
    count: 30 * DAY,
  },
  {
    name: 'every 10 seconds for all of 2026 in Berlin: both shifts',
    expression: '*/10 * * * * *',
    zone: 'Europe/Berlin',
    from: '2025-12-31T23:00:00Z',
    to: '2026-12-31T23:00:00Z',
    count: 365 * 8640 - 360,
  },
  {
    name: 'every minute on weekdays for a year in New York',
    expression: '* * * * 1-5',
    zone: 'America/New_York',
    from: '2026-01-01T05:00:00Z', // 2026-01-01 00:00 EST, a Thursday
    to: '2027-01-01T05:00:00Z',
    // 261 weekdays; 2026-03-09 (Mon, 1440 minutes) is past the gap, which was on a Sunday.
    count: 261 * 1440,
  },
];

describe('ticksBetween over long outages counts without visiting every tick', () => {
  for (const row of outages) {
    it(`${row.name}: count ${row.count}, latest the last tick, first the earliest`, () => {
      const s = schedule(row.expression, row.zone);
      const from = new Date(row.from);
      const to = new Date(row.to);
      const span = ticksBetween(s, from, to, 100);
      assert.equal(span.count, row.count);
      assert.equal(span.first.length, 100);
      // The listed ticks are exactly what next() walks to.
      let cursor = from;
      for (const tick of span.first) {
        assert.deepEqual(s.next(cursor), tick);
        cursor = tick;
      }
      // The latest is a tick <= to with no tick after it up to `to`; beforeLatest is the tick before it.
      assert.ok(span.latest !== null && span.latest <= to);
      const afterLatest = s.next(span.latest);
      assert.ok(afterLatest === null || afterLatest > to);
      assert.ok(span.beforeLatest !== null);
      assert.deepEqual(s.next(span.beforeLatest), span.latest);
    });
  }

  it('every second for 30 days: the latest is the end and the one before it a second earlier', () => {
    const span = ticksBetween(
      schedule('* * * * * *', 'Europe/Berlin'),
      new Date('2026-03-15T00:00:00Z'),
      new Date('2026-04-14T00:00:00Z'),
      3,
    );
    assert.deepEqual(summary(span), {
      first: ['2026-03-15T00:00:01Z', '2026-03-15T00:00:02Z', '2026-03-15T00:00:03Z'],
      latest: '2026-04-14T00:00:00Z',
      beforeLatest: '2026-04-13T23:59:59Z',
      count: 30 * DAY,
    });
  });
});

describe('ticksBetween with a schedule it did not make', () => {
  // A test double: a tick every 90 seconds from the epoch.
  const double: Schedule = {
    expression: 'every 90 s',
    timeZone: 'UTC',
    next: (after) => new Date((Math.floor(after.getTime() / 90_000) + 1) * 90_000),
  };

  it('walks it with next() and gives the same shape', () => {
    const span = ticksBetween(double, new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:30:00Z'), 2);
    assert.deepEqual(summary(span), {
      first: ['2026-01-01T00:01:30Z', '2026-01-01T00:03:00Z'],
      latest: '2026-01-01T00:30:00Z',
      beforeLatest: '2026-01-01T00:28:30Z',
      count: 20,
    });
  });
});

describe('ticksBetween refuses programming errors', () => {
  const s = schedule('* * * * *', 'UTC');
  for (const limit of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`refuses the limit ${limit}`, () => {
      assert.throws(() => ticksBetween(s, new Date(0), new Date(60_000), limit), RangeError);
    });
  }
  it('refuses an invalid date', () => {
    assert.throws(() => ticksBetween(s, new Date(Number.NaN), new Date(60_000), 1), RangeError);
  });
});

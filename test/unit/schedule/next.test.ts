import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { parseSchedule, type Schedule } from '../../../src/schedule/index.ts';

function schedule(expression: string, timeZone: string): Schedule {
  const result = parseSchedule(expression, timeZone);
  if (!result.ok) throw new Error(result.error.message);
  return result.schedule;
}

/** The first `count` ticks after `after`, as ISO strings. */
function ticks(s: Schedule, after: string, count: number): string[] {
  const out: string[] = [];
  let cursor: Date | null = new Date(after);
  while (out.length < count) {
    cursor = s.next(cursor);
    if (cursor === null) break;
    out.push(cursor.toISOString().replace('.000Z', 'Z'));
  }
  return out;
}

interface Row {
  readonly name: string;
  readonly expression: string;
  readonly zone: string;
  readonly after: string;
  /** The ticks that follow `after`, in UTC; comments give the wall clock in the zone. */
  readonly expected: readonly string[];
}

// 2026-01-01 is a Thursday. Daylight-saving shifts used below (checked against Intl):
//   Europe/Berlin       2026-03-29 01:00Z (02:00 CET -> 03:00 CEST); 2026-10-25 01:00Z (03:00 CEST -> 02:00 CET)
//   America/New_York    2026-03-08 07:00Z (02:00 EST -> 03:00 EDT);  2026-11-01 06:00Z (02:00 EDT -> 01:00 EST)
//   Australia/Lord_Howe 2026-10-03 15:30Z (02:00 +10:30 -> 02:30 +11); 2026-04-04 15:00Z (02:00 +11 -> 01:30 +10:30)
//   America/Havana      2026-03-08 05:00Z (00:00 CST -> 01:00 CDT);  2026-11-01 05:00Z (01:00 CDT -> 00:00 CST)
//   Pacific/Apia        2011-12-30 10:00Z: the clock jumped from 2011-12-29 24:00 (-10) to 2011-12-31 00:00 (+14)
const rows: readonly Row[] = [
  // Plain schedules in UTC.
  {
    name: 'a seconds schedule ticks every 10 s, strictly after a fractional start',
    expression: '*/10 * * * * *',
    zone: 'UTC',
    after: '2026-01-01T00:00:00.500Z',
    expected: ['2026-01-01T00:00:10Z', '2026-01-01T00:00:20Z', '2026-01-01T00:00:30Z'],
  },
  {
    name: 'next() from a tick is the following tick, never the same one',
    expression: '*/10 * * * * *',
    zone: 'UTC',
    after: '2026-01-01T00:00:10Z',
    expected: ['2026-01-01T00:00:20Z'],
  },
  {
    name: 'a fraction of a second before a tick still reaches that tick',
    expression: '*/10 * * * * *',
    zone: 'UTC',
    after: '2026-01-01T00:00:09.999Z',
    expected: ['2026-01-01T00:00:10Z'],
  },
  {
    name: 'a list of seconds',
    expression: '5,35 0 * * * *',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-01T00:00:05Z', '2026-01-01T00:00:35Z', '2026-01-01T01:00:05Z'],
  },
  {
    name: 'every minute',
    expression: '* * * * *',
    zone: 'UTC',
    after: '2026-01-01T00:00:30Z',
    expected: ['2026-01-01T00:01:00Z', '2026-01-01T00:02:00Z'],
  },
  {
    name: 'N/step runs from N to the end of the field',
    expression: '5/20 * * * *',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: [
      '2026-01-01T00:05:00Z',
      '2026-01-01T00:25:00Z',
      '2026-01-01T00:45:00Z',
      '2026-01-01T01:05:00Z',
    ],
  },
  {
    name: 'a leap day waits for the next leap year',
    expression: '0 0 29 2 *',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2028-02-29T00:00:00Z', '2032-02-29T00:00:00Z'],
  },
  {
    name: 'a leap day skips 2100, which is not a leap year',
    expression: '0 0 29 2 *',
    zone: 'UTC',
    after: '2096-03-01T00:00:00Z',
    expected: ['2104-02-29T00:00:00Z'],
  },
  {
    name: 'the 31st skips the months that have 30 days or fewer',
    expression: '0 0 31 * *',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: [
      '2026-01-31T00:00:00Z',
      '2026-03-31T00:00:00Z',
      '2026-05-31T00:00:00Z',
      '2026-07-31T00:00:00Z',
      '2026-08-31T00:00:00Z',
    ],
  },
  {
    name: 'weekdays only',
    expression: '0 0 * * 1-5',
    zone: 'UTC',
    after: '2026-01-02T12:00:00Z', // a Friday
    expected: ['2026-01-05T00:00:00Z', '2026-01-06T00:00:00Z', '2026-01-07T00:00:00Z'],
  },
  {
    name: 'day of month AND day of week both restricted: either one matches (Vixie cron, robfig/cron)',
    expression: '0 0 13 * 5',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    // Fridays 2, 9, 16, 23, 30 and Tuesday the 13th.
    expected: [
      '2026-01-02T00:00:00Z',
      '2026-01-09T00:00:00Z',
      '2026-01-13T00:00:00Z',
      '2026-01-16T00:00:00Z',
      '2026-01-23T00:00:00Z',
      '2026-01-30T00:00:00Z',
    ],
  },
  {
    name: 'a stepped star is restricted (robfig): odd days OR Mondays',
    expression: '0 0 */2 * 1',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: [
      '2026-01-03T00:00:00Z',
      '2026-01-05T00:00:00Z',
      '2026-01-07T00:00:00Z',
      '2026-01-09T00:00:00Z',
      '2026-01-11T00:00:00Z',
      '2026-01-12T00:00:00Z', // a Monday
      '2026-01-13T00:00:00Z',
    ],
  },
  {
    name: 'a star with a step of 1 is a star (robfig; cron-parser alone would OR): Mondays only',
    expression: '0 0 */1 * 1',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-05T00:00:00Z', '2026-01-12T00:00:00Z', '2026-01-19T00:00:00Z'],
  },
  {
    name: 'a full range is restricted (robfig): 1-31 OR Monday is every day',
    expression: '0 0 1-31 * 1',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-02T00:00:00Z', '2026-01-03T00:00:00Z', '2026-01-04T00:00:00Z'],
  },
  {
    name: 'an impossible day of month with a restricted day of week: the weekday alone',
    expression: '0 0 31 2 1',
    zone: 'UTC',
    after: '2027-01-01T00:00:00Z',
    expected: ['2027-02-01T00:00:00Z', '2027-02-08T00:00:00Z', '2027-02-15T00:00:00Z'],
  },
  {
    name: '? is a star',
    expression: '0 0 ? * MON',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-05T00:00:00Z', '2026-01-12T00:00:00Z'],
  },
  {
    name: 'weekday 7 is Sunday',
    expression: '0 0 * * 7',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-04T00:00:00Z', '2026-01-11T00:00:00Z'],
  },
  {
    name: 'L is the last day of the month',
    expression: '0 0 L * *',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-31T00:00:00Z', '2026-02-28T00:00:00Z', '2026-03-31T00:00:00Z'],
  },
  {
    name: '5L is the last Friday of the month',
    expression: '0 0 * * 5L',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-30T00:00:00Z', '2026-02-27T00:00:00Z', '2026-03-27T00:00:00Z'],
  },
  {
    name: '1#1 is the first Monday of the month',
    expression: '0 0 * * 1#1',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-05T00:00:00Z', '2026-02-02T00:00:00Z', '2026-03-02T00:00:00Z'],
  },

  // Macros.
  {
    name: '@yearly',
    expression: '@yearly',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2027-01-01T00:00:00Z'],
  },
  {
    name: '@annually',
    expression: '@annually',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2027-01-01T00:00:00Z'],
  },
  {
    name: '@monthly',
    expression: '@monthly',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-02-01T00:00:00Z', '2026-03-01T00:00:00Z'],
  },
  {
    name: '@weekly is Sunday midnight',
    expression: '@weekly',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-04T00:00:00Z', '2026-01-11T00:00:00Z'],
  },
  {
    name: '@daily',
    expression: '@daily',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-02T00:00:00Z', '2026-01-03T00:00:00Z'],
  },
  {
    name: '@midnight (which cron-parser lacks) is @daily',
    expression: '@midnight',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-02T00:00:00Z', '2026-01-03T00:00:00Z'],
  },
  {
    name: '@hourly',
    expression: '@hourly',
    zone: 'UTC',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-01T01:00:00Z', '2026-01-01T02:00:00Z'],
  },

  // Zones without daylight saving.
  {
    name: 'Asia/Tokyo midnight is 15:00Z the day before',
    expression: '@midnight',
    zone: 'Asia/Tokyo',
    after: '2026-01-01T00:00:00Z',
    expected: ['2026-01-01T15:00:00Z', '2026-01-02T15:00:00Z'],
  },
  {
    name: 'Asia/Kolkata is UTC+05:30',
    expression: '0 9 * * *',
    zone: 'Asia/Kolkata',
    after: '2026-06-01T00:00:00Z',
    expected: ['2026-06-01T03:30:00Z', '2026-06-02T03:30:00Z'],
  },

  // Europe/Berlin, spring forward: 02:00-02:59 does not exist on 2026-03-29.
  {
    name: 'Berlin: a time in the gap runs at the first instant after it (03:00 CEST)',
    expression: '30 2 * * *',
    zone: 'Europe/Berlin',
    after: '2026-03-28T00:00:00Z',
    expected: [
      '2026-03-28T01:30:00Z', // 02:30 CET
      '2026-03-29T01:00:00Z', // 02:30 does not exist: 03:00 CEST
      '2026-03-30T00:30:00Z', // 02:30 CEST
    ],
  },
  {
    name: 'Berlin: four times in the gap make ONE tick',
    expression: '*/15 2 * * *',
    zone: 'Europe/Berlin',
    after: '2026-03-28T23:00:00Z',
    expected: ['2026-03-29T01:00:00Z', '2026-03-30T00:00:00Z', '2026-03-30T00:15:00Z'],
  },
  {
    name: 'Berlin: a gap time and the time ending the gap make one tick',
    expression: '0 2,3 * * *',
    zone: 'Europe/Berlin',
    after: '2026-03-28T12:00:00Z',
    expected: ['2026-03-29T01:00:00Z', '2026-03-30T00:00:00Z', '2026-03-30T01:00:00Z'],
  },
  {
    name: 'Berlin: hourly keeps one tick per real hour across the gap',
    expression: '0 * * * *',
    zone: 'Europe/Berlin',
    after: '2026-03-28T22:30:00Z',
    expected: [
      '2026-03-28T23:00:00Z', // 00:00 CET
      '2026-03-29T00:00:00Z', // 01:00 CET
      '2026-03-29T01:00:00Z', // 02:00 (gap) and 03:00 CEST
      '2026-03-29T02:00:00Z', // 04:00 CEST
    ],
  },
  {
    name: 'Berlin: every second runs through the gap without a hole',
    expression: '* * * * * *',
    zone: 'Europe/Berlin',
    after: '2026-03-29T00:59:58Z',
    expected: ['2026-03-29T00:59:59Z', '2026-03-29T01:00:00Z', '2026-03-29T01:00:01Z'],
  },

  // Europe/Berlin, fall back: 02:00-02:59 happens twice on 2026-10-25.
  {
    name: 'Berlin: a repeated time runs once, at its first occurrence (CEST)',
    expression: '30 2 * * *',
    zone: 'Europe/Berlin',
    after: '2026-10-24T12:00:00Z',
    expected: ['2026-10-25T00:30:00Z', '2026-10-26T01:30:00Z'],
  },
  {
    name: 'Berlin: hourly runs at 02:00 CEST and not again at 02:00 CET',
    expression: '0 * * * *',
    zone: 'Europe/Berlin',
    after: '2026-10-24T21:30:00Z',
    expected: [
      '2026-10-24T22:00:00Z', // 00:00 CEST
      '2026-10-24T23:00:00Z', // 01:00 CEST
      '2026-10-25T00:00:00Z', // 02:00 CEST
      '2026-10-25T02:00:00Z', // 03:00 CET (02:00 CET, 01:00Z, is a repeat)
      '2026-10-25T03:00:00Z', // 04:00 CET
    ],
  },
  {
    name: 'Berlin: each half hour of the repeated hour runs once, none lost',
    expression: '*/30 0-3 * * *',
    zone: 'Europe/Berlin',
    after: '2026-10-24T21:30:00Z',
    expected: [
      '2026-10-24T22:00:00Z', // 00:00
      '2026-10-24T22:30:00Z', // 00:30
      '2026-10-24T23:00:00Z', // 01:00
      '2026-10-24T23:30:00Z', // 01:30
      '2026-10-25T00:00:00Z', // 02:00 CEST
      '2026-10-25T00:30:00Z', // 02:30 CEST
      '2026-10-25T02:00:00Z', // 03:00 CET
      '2026-10-25T02:30:00Z', // 03:30 CET
      '2026-10-25T23:00:00Z', // next day 00:00 CET
    ],
  },
  {
    name: 'Berlin: asked from inside the second pass, the repeated times do not run again',
    expression: '*/20 * * * *',
    zone: 'Europe/Berlin',
    after: '2026-10-25T01:10:00Z', // 02:10 CET, the second pass
    expected: ['2026-10-25T02:00:00Z', '2026-10-25T02:20:00Z'],
  },
  {
    name: 'Berlin: 02:00 daily runs once on the night with two 02:00s',
    expression: '0 2 * * *',
    zone: 'Europe/Berlin',
    after: '2026-10-24T12:00:00Z',
    expected: ['2026-10-25T00:00:00Z', '2026-10-26T01:00:00Z'],
  },

  // America/New_York.
  {
    name: 'New York: 02:30 on the spring-forward day runs at 03:00 EDT',
    expression: '30 2 * * *',
    zone: 'America/New_York',
    after: '2026-03-07T12:00:00Z',
    expected: ['2026-03-08T07:00:00Z', '2026-03-09T06:30:00Z'],
  },
  {
    name: 'New York: 01:30 on the fall-back day runs once, in EDT',
    expression: '30 1 * * *',
    zone: 'America/New_York',
    after: '2026-10-31T12:00:00Z',
    expected: ['2026-11-01T05:30:00Z', '2026-11-02T06:30:00Z'],
  },
  {
    name: 'New York: hourly skips the second 01:00',
    expression: '0 * * * *',
    zone: 'America/New_York',
    after: '2026-11-01T03:30:00Z',
    expected: [
      '2026-11-01T04:00:00Z', // 00:00 EDT
      '2026-11-01T05:00:00Z', // 01:00 EDT
      '2026-11-01T07:00:00Z', // 02:00 EST
      '2026-11-01T08:00:00Z', // 03:00 EST
    ],
  },

  // Australia/Lord_Howe shifts by 30 minutes.
  {
    name: 'Lord Howe: 02:00 (gap) and 02:30 (end of gap) make one tick',
    expression: '0,30 * * * *',
    zone: 'Australia/Lord_Howe',
    after: '2026-10-03T14:00:00Z',
    expected: [
      '2026-10-03T14:30:00Z', // 01:00 +10:30
      '2026-10-03T15:00:00Z', // 01:30 +10:30
      '2026-10-03T15:30:00Z', // 02:00 does not exist; 02:30 +11
      '2026-10-03T16:00:00Z', // 03:00 +11
    ],
  },
  {
    name: 'Lord Howe: a time inside the 30-minute gap runs at its end',
    expression: '15 2 * * *',
    zone: 'Australia/Lord_Howe',
    after: '2026-10-03T00:00:00Z',
    expected: ['2026-10-03T15:30:00Z', '2026-10-04T15:15:00Z'],
  },
  {
    name: 'Lord Howe: the repeated half hour runs once',
    expression: '*/30 * * * *',
    zone: 'Australia/Lord_Howe',
    after: '2026-04-04T13:00:00Z',
    expected: [
      '2026-04-04T13:30:00Z', // 00:30 +11
      '2026-04-04T14:00:00Z', // 01:00 +11
      '2026-04-04T14:30:00Z', // 01:30 +11 (01:30 +10:30, 15:00Z, is a repeat)
      '2026-04-04T15:30:00Z', // 02:00 +10:30
      '2026-04-04T16:00:00Z', // 02:30 +10:30
    ],
  },

  // Shifts at midnight.
  {
    name: 'Havana: midnight does not exist on 2026-03-08, so the day starts at 01:00 CDT',
    expression: '0 0 * * *',
    zone: 'America/Havana',
    after: '2026-03-07T00:00:00Z',
    expected: ['2026-03-07T05:00:00Z', '2026-03-08T05:00:00Z', '2026-03-09T04:00:00Z'],
  },
  {
    name: 'Havana: the repeated midnight of 2026-11-01 runs once',
    expression: '0 0 * * *',
    zone: 'America/Havana',
    after: '2026-10-31T00:00:00Z',
    expected: ['2026-10-31T04:00:00Z', '2026-11-01T04:00:00Z', '2026-11-02T05:00:00Z'],
  },

  // Samoa skipped a whole day.
  {
    name: 'Apia: noon on the skipped 2011-12-30 runs at the first instant after it',
    expression: '0 12 * * *',
    zone: 'Pacific/Apia',
    after: '2011-12-28T00:00:00Z',
    expected: [
      '2011-12-28T22:00:00Z', // 12-28 12:00 -10
      '2011-12-29T22:00:00Z', // 12-29 12:00 -10
      '2011-12-30T10:00:00Z', // 12-30 does not exist: 12-31 00:00 +14
      '2011-12-30T22:00:00Z', // 12-31 12:00 +14
    ],
  },
  {
    name: 'Apia: the skipped day and the day after share one first instant',
    expression: '0 0 30,31 12 *',
    zone: 'Pacific/Apia',
    after: '2011-12-01T00:00:00Z',
    expected: ['2011-12-30T10:00:00Z', '2012-12-29T10:00:00Z'], // then 2012-12-30 00:00 +14 (DST)
  },
];

describe('Schedule.next gives the first tick strictly after a time, by DESIGN.md "Time"', () => {
  for (const row of rows) {
    it(`${row.name}: ${row.expression} in ${row.zone}`, () => {
      assert.deepEqual(
        ticks(schedule(row.expression, row.zone), row.after, row.expected.length),
        row.expected,
      );
    });
  }
});

describe('Schedule.next reads no clock of its own', () => {
  it('gives the same ticks whatever the process time zone is', () => {
    const cases: [string, string, string][] = [
      ['0 * * * *', 'Europe/Berlin', '2026-10-24T21:30:00Z'],
      ['30 2 * * *', 'America/New_York', '2026-03-07T12:00:00Z'],
      ['*/10 * * * * *', 'UTC', '2026-01-01T00:00:00Z'],
    ];
    const before = cases.map(([e, z, a]) => ticks(schedule(e, z), a, 10));
    const saved = process.env.TZ;
    try {
      for (const tz of ['America/Los_Angeles', 'Asia/Kathmandu', 'Australia/Lord_Howe']) {
        process.env.TZ = tz;
        assert.deepEqual(
          cases.map(([e, z, a]) => ticks(schedule(e, z), a, 10)),
          before,
          `with TZ=${tz}`,
        );
      }
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  it('refuses an invalid date as a programming error', () => {
    assert.throws(() => schedule('* * * * *', 'UTC').next(new Date(Number.NaN)), RangeError);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { parseSchedule } from '../../../src/schedule/index.ts';

const FIELDS =
  '(minute hour day-of-month month day-of-week) or 6 (second minute hour day-of-month month day-of-week)';
const MACROS = 'use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly';

// One row per refused input: the expression, and the message the user sees.
const invalidSchedules: readonly { expression: string; message: string }[] = [
  { expression: '', message: 'schedule "" is empty' },
  { expression: '   ', message: 'schedule "   " is empty' },
  { expression: '* * * *', message: `schedule "* * * *" has 4 fields; expected 5 ${FIELDS}` },
  {
    expression: '0 0 * * * * 2026',
    message: `schedule "0 0 * * * * 2026" has 7 fields; expected 5 ${FIELDS}`,
  },
  { expression: '5', message: `schedule "5" has 1 field; expected 5 ${FIELDS}` },
  {
    expression: 'TZ=Europe/Berlin 0 2 * * *',
    message:
      'schedule "TZ=Europe/Berlin 0 2 * * *" sets a time zone with TZ=; use the timeZone field instead',
  },
  {
    expression: 'CRON_TZ=UTC 0 2 * * *',
    message:
      'schedule "CRON_TZ=UTC 0 2 * * *" sets a time zone with CRON_TZ=; use the timeZone field instead',
  },
  {
    expression: '@every 5m',
    message:
      'schedule "@every 5m" is not supported: @every has no fixed instants, and a tick must be a fixed ' +
      'instant to name its Pod; write a cron expression such as "*/5 * * * *"',
  },
  {
    expression: '@every',
    message:
      'schedule "@every" is not supported: @every has no fixed instants, and a tick must be a fixed ' +
      'instant to name its Pod; write a cron expression such as "*/5 * * * *"',
  },
  { expression: '@reboot', message: `schedule "@reboot" is not a supported macro; ${MACROS}` },
  // cron-parser knows these three; Kubernetes does not, and neither do we.
  { expression: '@minutely', message: `schedule "@minutely" is not a supported macro; ${MACROS}` },
  { expression: '@weekdays', message: `schedule "@weekdays" is not a supported macro; ${MACROS}` },
  { expression: '@secondly', message: `schedule "@secondly" is not a supported macro; ${MACROS}` },
  { expression: '@Daily', message: `schedule "@Daily" is not a supported macro; ${MACROS}` },
  {
    expression: 'H 2 * * *',
    message:
      'schedule "H 2 * * *" has a hashed value (H) in its minute field; H is drawn at random by each ' +
      'process, so the tick would not be a fixed instant; write the value explicitly',
  },
  {
    expression: '0 H(0-3) * * *',
    message:
      'schedule "0 H(0-3) * * *" has a hashed value (H) in its hour field; H is drawn at random by each ' +
      'process, so the tick would not be a fixed instant; write the value explicitly',
  },
  {
    expression: '60 * * * *',
    message:
      'schedule "60 * * * *" has an invalid minute field "60": Constraint error, got value 60 expected range 0-59',
  },
  {
    expression: '0 24 * * *',
    message:
      'schedule "0 24 * * *" has an invalid hour field "24": Constraint error, got value 24 expected range 0-23',
  },
  {
    expression: '0 0 0 * *',
    message:
      'schedule "0 0 0 * *" has an invalid day-of-month field "0": Constraint error, got value 0 expected range 1-31',
  },
  {
    expression: '0 0 1 13 *',
    message:
      'schedule "0 0 1 13 *" has an invalid month field "13": Constraint error, got value 13 expected range 1-12',
  },
  {
    expression: '0 0 * * 8',
    message:
      'schedule "0 0 * * 8" has an invalid day-of-week field "8": Constraint error, got value 8 expected range 0-7',
  },
  {
    expression: '61 * * * * *',
    message:
      'schedule "61 * * * * *" has an invalid second field "61": Constraint error, got value 61 expected range 0-59',
  },
  {
    expression: '*/0 * * * *',
    message:
      'schedule "*/0 * * * *" has an invalid minute field "*/0": Constraint error, cannot repeat at every 0 time.',
  },
  {
    expression: '0 0 * * FOO',
    message:
      'schedule "0 0 * * FOO" has an invalid day-of-week field "FOO": Validation error, cannot resolve alias "foo"',
  },
  {
    expression: '0 0 * * 1#6',
    message:
      'schedule "0 0 * * 1#6" has an invalid day-of-week field "1#6": Constraint error, invalid dayOfWeek occurrence number (#)',
  },
  // robfig/cron silently reads "*-5" as "*"; cron-parser refuses it, and so do we.
  {
    expression: '0 0 *-5 * *',
    message:
      'schedule "0 0 *-5 * *" has an invalid day-of-month field "*-5": Invalid wildcard, got value: *-5',
  },
  // robfig/cron accepts a list that repeats a value; cron-parser refuses it, and so do we.
  {
    expression: '0 0 *,15 * 1',
    message:
      'schedule "0 0 *,15 * 1" has an invalid day-of-month field "*,15": CronDayOfMonth Validation error, duplicate values found: 15',
  },
  { expression: '0 0 31 2 *', message: 'schedule "0 0 31 2 *" never fires' },
  { expression: '0 0 30 2 *', message: 'schedule "0 0 30 2 *" never fires' },
  { expression: '0 0 31 4,6,9,11 *', message: 'schedule "0 0 31 4,6,9,11 *" never fires' },
  { expression: '0 0 0 30 2 *', message: 'schedule "0 0 0 30 2 *" never fires' },
  // A day-of-week that is a star (robfig: "*/1") leaves the impossible day of month alone.
  { expression: '0 0 31 2 */1', message: 'schedule "0 0 31 2 */1" never fires' },
];

describe('parseSchedule refuses what the operator does not accept, saying why', () => {
  for (const row of invalidSchedules) {
    it(`refuses ${JSON.stringify(row.expression)}`, () => {
      const result = parseSchedule(row.expression, 'UTC');
      assert.deepEqual(result, { ok: false, error: { kind: 'InvalidSchedule', message: row.message } });
    });
  }
});

const validSchedules: readonly string[] = [
  '* * * * *',
  '*/10 * * * * *',
  '0 2 * * *',
  '  0   2 *  *\t*  ',
  '0 0 1 JAN *',
  '0 0 * * MON-FRI',
  '0 0 * * thu',
  '0 0 ? * ?',
  '0 0 13 * 5',
  '0 0 29 2 *',
  '0 0 31 2 1', // day-of-week rescues it: the Mondays of February
  '0 0 L * *',
  '0 0 * * 5L',
  '0 0 * * 1#1',
  '0 0 * * 7',
  '5/15 * * * *',
  '0 9-17/2 * * 1-5',
  '@yearly',
  '@annually',
  '@monthly',
  '@weekly',
  '@daily',
  '@midnight',
  '@hourly',
  ' @hourly ',
];

describe('parseSchedule accepts cron expressions with 5 or 6 fields and the Kubernetes macros', () => {
  for (const expression of validSchedules) {
    it(`accepts ${JSON.stringify(expression)} and keeps it as written`, () => {
      const result = parseSchedule(expression, 'Europe/Berlin');
      assert.ok(result.ok, result.ok ? '' : result.error.message);
      assert.equal(result.schedule.expression, expression);
      assert.equal(result.schedule.timeZone, 'Europe/Berlin');
    });
  }
});

const invalidZones: readonly string[] = [
  'Mars/Base',
  '',
  'Local',
  '+01:00',
  '-05:00',
  '+0100',
  'UTC+1',
  'GMT+1',
  ' Europe/Berlin',
  'Europe/Berlin ',
  'America/New York',
];

describe('parseSchedule refuses time zones that are not IANA names', () => {
  for (const zone of invalidZones) {
    it(`refuses the zone ${JSON.stringify(zone)}`, () => {
      assert.deepEqual(parseSchedule('0 2 * * *', zone), {
        ok: false,
        error: {
          kind: 'InvalidTimeZone',
          message: `time zone ${JSON.stringify(zone)} is not a known IANA zone`,
        },
      });
    });
  }

  it('names the schedule, not the zone, when both are wrong', () => {
    assert.deepEqual(parseSchedule('0 0 31 2 *', 'Mars/Base'), {
      ok: false,
      error: { kind: 'InvalidSchedule', message: 'schedule "0 0 31 2 *" never fires' },
    });
  });
});

const validZones: readonly string[] = [
  'UTC',
  'Etc/UTC',
  'GMT',
  'Europe/Berlin',
  'America/New_York',
  'Australia/Lord_Howe',
  'Asia/Tokyo',
  'Asia/Kolkata',
  'Asia/Calcutta', // a backward-compatible link
  'US/Eastern',
  'Etc/GMT+5',
  'Etc/GMT-14',
  'europe/berlin', // ICU matches names case-insensitively
];

describe('parseSchedule accepts IANA zones, links included', () => {
  for (const zone of validZones) {
    it(`accepts the zone ${JSON.stringify(zone)}`, () => {
      const result = parseSchedule('0 2 * * *', zone);
      assert.ok(result.ok, result.ok ? '' : result.error.message);
      assert.equal(result.schedule.timeZone, zone);
    });
  }
});

/**
 * A cron expression read as a set of wall-clock times, with no time zone: the syntax the operator
 * accepts, and forward search and counting over that set.
 *
 * Contract
 * - Accepts 5 fields (minute hour day-of-month month day-of-week) or 6 with a LEADING seconds
 *   field; the macros @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly (exact
 *   lower case, as Kubernetes). Everything else is refused with a message naming the problem in the
 *   user's words: 4 or 7 fields (cron-parser would pad or accept them), a `TZ=`/`CRON_TZ=` prefix,
 *   `@every` (no fixed instants, and a tick must be a fixed instant to name its Pod), `H` (a hashed
 *   value: cron-parser draws it at random per parse, so two replicas would disagree on the tick),
 *   a malformed field (the message names the field), and a schedule that never fires
 *   (`0 0 31 2 *`).
 * - Field syntax is cron-parser's: `*`, `?` (as `*`), lists, ranges, steps, month and weekday
 *   names, weekday 7 as Sunday, and its extensions `L` (last day of month / last weekday of month)
 *   and `#` (nth weekday of month), which are deterministic and so harmless. Unlike Kubernetes, a
 *   list may not name a value twice (`1,1`, `*,15`): cron-parser refuses it, and the message says so.
 * - Day-of-month and day-of-week combine as Kubernetes (robfig/cron) does: when both are
 *   restricted a day matches if EITHER matches; when either is a star (`*` or `?`, alone or with a
 *   step of 1) a day must match both, which means the other one. A star with a step of 2 or more,
 *   and a full range such as `1-31`, are restricted. cron-parser's own rule differs (it sees a star
 *   only in a field that is exactly `*` or `?`, not in a star with a step of 1), so this module
 *   decides the rule itself and hands cron-parser only expressions where the two rules agree: one
 *   expression, or, when both are restricted, two (one per day field) whose union is the schedule.
 * - A wall-clock time is "naive" seconds (see zone.ts). cron-parser runs with `tz: 'UTC'` over naive
 *   time, where no clock ever shifts, so none of its daylight-saving code is involved; the zone's
 *   rules are applied by the caller. It never reads the clock: every search starts from a given time.
 *
 * Cost: parsing builds 1 to 3 cron-parser expressions (about 40 µs each; up to 6 more only to name
 * the field of a syntax error) and searches once to prove the schedule fires. `nextAfter` is one
 * cron-parser `next()` per day-field expression (10 to 30 µs; up to 100 µs when a day of month
 * alone must be stepped to day by day). `countBetween` costs one `nextAfter` per matching DAY in the
 * range, not per time: a per-second schedule over 30 days is 30 searches.
 */
import { CronExpressionParser, type CronExpression } from 'cron-parser';

export type CalendarResult = { ok: true; calendar: Calendar } | { ok: false; message: string };

export interface Calendar {
  /** The first wall-clock time strictly after `wall`, or null if none within cron-parser's search budget. */
  nextAfter(wall: number): number | null;
  /** How many wall-clock times lie in (lo, hi], and the latest of them. */
  countBetween(lo: number, hi: number): { count: number; latest: number | null };
}

const DAY = 86_400;

const MACROS: ReadonlyMap<string, string> = new Map([
  ['@yearly', '0 0 1 1 *'],
  ['@annually', '0 0 1 1 *'],
  ['@monthly', '0 0 1 * *'],
  ['@weekly', '0 0 * * 0'],
  ['@daily', '0 0 * * *'],
  ['@midnight', '0 0 * * *'],
  ['@hourly', '0 * * * *'],
]);

const FIELD_NAMES = ['second', 'minute', 'hour', 'day-of-month', 'month', 'day-of-week'] as const;

// cron-parser's message for a day of month no listed month has (e.g. 31 with month 2).
const IMPOSSIBLE_DAY = 'Invalid explicit day of month definition';
// cron-parser gives up after 10,000 steps (a step is a month, a day, an hour...), which still
// reaches the fifth Monday of February 40 years on.
const LOOP_LIMIT = /loop limit exceeded/;

// A fixed start for the "never fires" check, so that parsing never reads the clock.
const REFERENCE_WALL = Date.UTC(2000, 0, 1) / 1000;

export function parseCalendar(expression: string): CalendarResult {
  const quoted = JSON.stringify(expression);
  const text = expression.trim();
  if (text.length === 0) return { ok: false, message: `schedule ${quoted} is empty` };
  const prefix = /^(CRON_TZ|TZ)=/i.exec(text);
  if (prefix !== null) {
    return {
      ok: false,
      message: `schedule ${quoted} sets a time zone with ${prefix[0]}; use the timeZone field instead`,
    };
  }
  let fields: string[];
  if (text.startsWith('@')) {
    if (/^@every(\s|$)/i.test(text)) {
      return {
        ok: false,
        message:
          `schedule ${quoted} is not supported: @every has no fixed instants, and a tick must be a ` +
          `fixed instant to name its Pod; write a cron expression such as "*/5 * * * *"`,
      };
    }
    const macro = MACROS.get(text);
    if (macro === undefined) {
      return {
        ok: false,
        message:
          `schedule ${quoted} is not a supported macro; ` +
          `use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly`,
      };
    }
    fields = ['0', ...macro.split(' ')];
  } else {
    const words = text.split(/\s+/);
    if (words.length === 5) fields = ['0', ...words];
    else if (words.length === 6) fields = words;
    else {
      return {
        ok: false,
        message:
          `schedule ${quoted} has ${words.length} field${words.length === 1 ? '' : 's'}; expected 5 ` +
          `(minute hour day-of-month month day-of-week) or 6 (second minute hour day-of-month month day-of-week)`,
      };
    }
  }

  for (const [i, field] of fields.entries()) {
    // Month and weekday names are three letters (THU holds an H); drop them before looking for H.
    if (/h/i.test(field.replace(/[a-z]{3}/gi, ''))) {
      return {
        ok: false,
        message:
          `schedule ${quoted} has a hashed value (H) in its ${FIELD_NAMES[i] ?? 'unknown'} field; H is ` +
          `drawn at random by each process, so the tick would not be a fixed instant; write the value explicitly`,
      };
    }
  }
  // Memoised: the whole expression and a day-field variant are often the same text.
  const compiled = new Map<string, Compiled>();
  const attempt = (candidate: readonly string[]): Compiled => {
    const key = candidate.join(' ');
    let result = compiled.get(key);
    if (result === undefined) {
      result = tryCompile(candidate);
      compiled.set(key, result);
    }
    return result;
  };
  const syntaxError = findSyntaxError(fields, attempt);
  if (syntaxError !== null) return { ok: false, message: `schedule ${quoted} ${syntaxError}` };

  const [second, minute, hour, dayOfMonth, month, dayOfWeek] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const domStar = isStar(dayOfMonth);
  const dowStar = isStar(dayOfWeek);
  const variants: [string, string][] = [];
  if (domStar && dowStar) variants.push(['*', '*']);
  else if (domStar) variants.push(['*', dayOfWeek]);
  else if (dowStar) variants.push([dayOfMonth, '*']);
  else variants.push([dayOfMonth, '*'], ['*', dayOfWeek]);

  const expressions: CronExpression[] = [];
  for (const [dom, dow] of variants) {
    const result = attempt([second, minute, hour, dom, month, dow]);
    if (result.ok) expressions.push(result.expression);
    // A day of month no listed month has adds no days; any other error would be a bug here.
    else if (result.message !== IMPOSSIBLE_DAY)
      return { ok: false, message: `schedule ${quoted} is invalid: ${result.message}` };
  }
  const first = expressions[0];
  if (first === undefined) return { ok: false, message: `schedule ${quoted} never fires` };
  const calendar = makeCalendar(expressions, timesOfDay(first));
  if (calendar.nextAfter(REFERENCE_WALL) === null)
    return { ok: false, message: `schedule ${quoted} never fires` };
  return { ok: true, calendar };
}

type Compiled = { ok: true; expression: CronExpression } | { ok: false; message: string };

/** What is wrong with the fields' syntax, naming the field at fault; null when nothing is. */
function findSyntaxError(
  fields: readonly string[],
  attempt: (fields: readonly string[]) => Compiled,
): string | null {
  const whole = attempt(fields);
  // An impossible day is not a syntax error: the days are checked later, one day field at a time.
  if (whole.ok || whole.message === IMPOSSIBLE_DAY) return null;
  // Check each field alone (all others `*`), so the message can name the field at fault.
  for (const [i, field] of fields.entries()) {
    const probe = ['0', '*', '*', '*', '*', '*'];
    probe[i] = field;
    const alone = attempt(probe);
    if (!alone.ok)
      return `has an invalid ${FIELD_NAMES[i] ?? 'unknown'} field ${JSON.stringify(field)}: ${alone.message}`;
  }
  return `is invalid: ${whole.message}`;
}

function tryCompile(fields: readonly string[]): Compiled {
  try {
    return {
      ok: true,
      expression: CronExpressionParser.parse(fields.join(' '), {
        tz: 'UTC',
        currentDate: new Date(REFERENCE_WALL * 1000),
      }),
    };
  } catch (error) {
    return { ok: false, message: describe(error) };
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** robfig/cron's "star bit": some list item is `*` or `?`, with no step or a step of 1. */
function isStar(field: string): boolean {
  return field.split(',').some((item) => {
    const [range = '', step] = item.split('/');
    const low = range.split('-')[0];
    return (low === '*' || low === '?') && (step === undefined || Number(step) <= 1);
  });
}

/** The times of day (second, minute and hour fields), the same for every day that matches. */
interface TimesOfDay {
  /** How many times of day are <= x (seconds since midnight; x may be -1). */
  countAtOrBefore(x: number): number;
  /** The latest time of day <= x, or null. */
  latestAtOrBefore(x: number): number | null;
}

function timesOfDay(expression: CronExpression): TimesOfDay {
  const hours = numbers(expression.fields.hour.values);
  const minutes = numbers(expression.fields.minute.values);
  const seconds = numbers(expression.fields.second.values);
  const countBelow = (values: readonly number[], x: number): number => values.filter((v) => v < x).length;
  const maxBelow = (values: readonly number[], x: number): number | undefined =>
    values.findLast((v) => v < x);
  const maxOf = (values: readonly number[]): number => values.at(-1) ?? 0;
  return {
    countAtOrBefore(x) {
      if (x < 0) return 0;
      const h = Math.floor(x / 3600);
      const m = Math.floor((x % 3600) / 60);
      const s = x % 60;
      let n = countBelow(hours, h) * minutes.length * seconds.length;
      if (hours.includes(h)) {
        n += countBelow(minutes, m) * seconds.length;
        if (minutes.includes(m)) n += countBelow(seconds, s + 1);
      }
      return n;
    },
    latestAtOrBefore(x) {
      if (x < 0) return null;
      const h = Math.floor(x / 3600);
      const m = Math.floor((x % 3600) / 60);
      const s = x % 60;
      if (hours.includes(h)) {
        if (minutes.includes(m)) {
          const sec = maxBelow(seconds, s + 1);
          if (sec !== undefined) return h * 3600 + m * 60 + sec;
        }
        const min = maxBelow(minutes, m);
        if (min !== undefined) return h * 3600 + min * 60 + maxOf(seconds);
      }
      const hour = maxBelow(hours, h);
      if (hour !== undefined) return hour * 3600 + maxOf(minutes) * 60 + maxOf(seconds);
      return null;
    },
  };
}

function numbers(values: readonly (number | string)[]): number[] {
  return values.filter((v): v is number => typeof v === 'number').sort((a, b) => a - b);
}

function makeCalendar(expressions: readonly CronExpression[], times: TimesOfDay): Calendar {
  // The expressions are cron-parser iterators, reset before each search: this is synchronous code,
  // so a calendar shared by many jobs is never searched twice at once.
  const nextAfter = (wall: number): number | null => {
    let best: number | null = null;
    for (const expression of expressions) {
      expression.reset(new Date(wall * 1000));
      let found: number;
      try {
        found = expression.next().getTime() / 1000;
      } catch (error) {
        if (LOOP_LIMIT.test(describe(error))) continue;
        throw error;
      }
      if (best === null || found < best) best = found;
    }
    return best;
  };
  return {
    nextAfter,
    countBetween(lo, hi) {
      // Every matching day holds every time of day, so count whole days arithmetically and search
      // only for the next matching day.
      let count = 0;
      let latest: number | null = null;
      let cursor = lo;
      while (cursor < hi) {
        const found = nextAfter(cursor);
        if (found === null || found > hi) break;
        const midnight = found - mod(found, DAY);
        const from = Math.max(cursor, midnight - 1) - midnight;
        const to = Math.min(hi, midnight + DAY - 1) - midnight;
        count += times.countAtOrBefore(to) - times.countAtOrBefore(from);
        const last = times.latestAtOrBefore(to);
        if (last !== null) latest = midnight + last;
        cursor = midnight + DAY - 1;
      }
      return { count, latest };
    },
  };
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

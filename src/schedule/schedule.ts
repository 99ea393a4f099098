/**
 * The schedule: a cron expression in an IANA time zone, and the ticks (instants) it names.
 *
 * Contract
 * - Pure: no I/O and no clock. Every question is asked relative to an instant the caller passes in.
 * - `parseSchedule` validates up front and never throws for bad input: an expression the operator
 *   does not accept is `InvalidSchedule`, a zone it does not know is `InvalidTimeZone`, each with a
 *   message in the user's words (calendar.ts lists what is accepted). The expression is checked
 *   first. Choosing a default zone is the caller's business.
 * - A tick is an instant in whole seconds. The ticks of a schedule are the instants its
 *   wall-clock times name in the zone (DESIGN.md, "Time"):
 *     - a wall-clock time in a daylight-saving gap (it never happens) names the first instant after
 *       the gap: `30 2 * * *` in Europe/Berlin on 2026-03-29 ticks at 03:00 CEST (01:00Z). Several
 *       times in one gap (`0,15,30,45 2 * * *`), and the time that ends the gap, name the same
 *       instant: ONE tick;
 *     - a wall-clock time in a repeated hour names its first occurrence only: `0 * * * *` in
 *       Europe/Berlin on 2026-10-25 ticks at 02:00 CEST (00:00Z) and not at 02:00 CET (01:00Z).
 *   So no wall-clock time is lost, no instant is a tick twice, and ticks strictly increase.
 * - `next(after)` is the first tick strictly after `after` (a fraction of a second in `after`
 *   counts as after it), or null when cron-parser's 10,000-step search finds none: in practice
 *   never for a schedule that parsed (the sparsest, such as the fifth Monday of February, fire
 *   every 28 to 40 years and are found).
 * - `ticksBetween` walks FORWARD only (never cron-parser's `prev()`, which is wrong around DST). It
 *   returns the earliest ticks one by one up to a limit, and the latest tick and the exact count
 *   without visiting every tick; see its comment for the cost.
 * - A Schedule holds no state a caller can see; one object may serve any number of jobs.
 *
 * How: calendar.ts turns the expression into wall-clock times (cron-parser over naive time, where
 * no clock shifts) and zone.ts maps wall-clock times to instants by the rules above. cron-parser's
 * own zone support is not used: it runs a gap time an hour late (03:30 for 02:30) and its `prev()`
 * skips and repeats around shifts.
 */
import { parseCalendar, type Calendar } from './calendar.ts';
import { instantOfWallClock, latestWallClockBy, loadZone, transitionsBetween, type Zone } from './zone.ts';

export type ScheduleError = { kind: 'InvalidSchedule' | 'InvalidTimeZone'; message: string };

export interface Schedule {
  /** The expression as the user wrote it. */
  readonly expression: string;
  /** The IANA zone as the user wrote it. */
  readonly timeZone: string;
  /** The first tick strictly after `after`, or null if none (see the contract). */
  next(after: Date): Date | null;
}

export type ParseScheduleResult = { ok: true; schedule: Schedule } | { ok: false; error: ScheduleError };

/** The ticks in a span of time, summarised so that millions of them cost little. */
export interface TickSpan {
  /** The earliest ticks of the span, oldest first, at most `limit` of them. */
  readonly first: readonly Date[];
  /** The latest tick of the span, or null when the span has none. */
  readonly latest: Date | null;
  /** The tick just before `latest` in the span, or null when the span has fewer than 2 ticks. */
  readonly beforeLatest: Date | null;
  /** The exact number of ticks in the span (`first.length` when `count <= limit`). */
  readonly count: number;
}

export function parseSchedule(expression: string, timeZone: string): ParseScheduleResult {
  const calendar = parseCalendar(expression);
  if (!calendar.ok) return { ok: false, error: { kind: 'InvalidSchedule', message: calendar.message } };
  const zone = loadZone(timeZone);
  if (zone === null) {
    return {
      ok: false,
      error: {
        kind: 'InvalidTimeZone',
        message: `time zone ${JSON.stringify(timeZone)} is not a known IANA zone`,
      },
    };
  }
  return { ok: true, schedule: new CronSchedule(expression, timeZone, zone, calendar.calendar) };
}

/** How many recent answers of `next` a schedule keeps. */
const ANSWERS_KEPT = 8;

// A class only so that ticksBetween can recognise its own schedules and reach their calendar.
class CronSchedule implements Schedule {
  readonly expression: string;
  readonly timeZone: string;
  readonly zone: Zone;
  readonly calendar: Calendar;

  /**
   * Recent answers: `next(x)` is `tick` for every x in [from, tick), since no tick lies between
   * `from` and `tick`. Schedules are shared by every job with the same expression and zone
   * (ScheduleCache), and each reconcile asks for the tick after the same few instants (the
   * walk's anchor, now), so at a tick with many jobs due most questions are answered here
   * instead of by a calendar search (docs/benchmarks.md).
   */
  readonly #answered: { from: number; tick: number }[] = [];
  #slot = 0;

  constructor(expression: string, timeZone: string, zone: Zone, calendar: Calendar) {
    this.expression = expression;
    this.timeZone = timeZone;
    this.zone = zone;
    this.calendar = calendar;
  }

  next(after: Date): Date | null {
    const ms = after.getTime();
    for (const k of this.#answered) if (k.from <= ms && ms < k.tick) return new Date(k.tick);
    const tick = this.#search(after);
    if (tick !== null) {
      this.#answered[this.#slot] = { from: ms, tick: tick.getTime() };
      this.#slot = (this.#slot + 1) % ANSWERS_KEPT;
    }
    return tick;
  }

  #search(after: Date): Date | null {
    const t = toSeconds(after, 'after');
    // Every wall-clock time after the latest one shown by `after` names an instant after it
    // (zone.ts's map never decreases); the first such time names the next tick.
    let wall = latestWallClockBy(this.zone, t);
    // The loop is a guard: for zones that keep zone.ts's assumption it runs once.
    for (let guard = 0; guard < 10_000; guard++) {
      const next = this.calendar.nextAfter(wall);
      if (next === null) return null;
      const instant = instantOfWallClock(this.zone, next);
      if (instant > t) return new Date(instant * 1000);
      wall = next;
    }
    return null;
  }
}

/**
 * The ticks in (fromExclusive, toInclusive]: the first `limit` one by one, the last two, and how many.
 *
 * Made for the planner after an outage. When it runs `latest`, the other `count - 1` ticks are
 * Missed: `first` (without `latest`, if it is there) one by one, and the rest as one summary whose
 * first tick is `schedule.next(first.at(-1))`, whose last is `beforeLatest`, and whose size is
 * `count - 1 - first.length` (when positive). When it runs nothing, the summary ends at `latest`.
 *
 * Cost: `limit` calls of `next()` (about 30 µs each). Only when the span holds more than `limit`
 * ticks: one cron-parser search per day on which the schedule fires (not per tick), one offset
 * lookup per day of the span, and a few searches for `beforeLatest`. A per-second schedule down for
 * 30 days (2.6 million ticks) costs about 30 searches, a few milliseconds. A Schedule not made by
 * `parseSchedule` (a test double) is walked with `next()` tick by tick.
 */
export function ticksBetween(
  schedule: Schedule,
  fromExclusive: Date,
  toInclusive: Date,
  limit: number,
): TickSpan {
  if (!Number.isSafeInteger(limit) || limit < 0)
    throw new RangeError(`limit must be a whole number >= 0, got ${limit}`);
  const from = toSeconds(fromExclusive, 'fromExclusive');
  const to = toSeconds(toInclusive, 'toInclusive');
  const first: Date[] = [];
  let cursor = fromExclusive;
  while (first.length < limit) {
    const tick = schedule.next(cursor);
    if (tick === null || tick.getTime() > to * 1000) {
      return { first, latest: first.at(-1) ?? null, beforeLatest: first.at(-2) ?? null, count: first.length };
    }
    first.push(tick);
    cursor = tick;
  }
  if (!(schedule instanceof CronSchedule)) return walkRemaining(schedule, first, cursor, to);

  const { zone, calendar } = schedule;
  // The ticks of (from, to] are the instants named by the wall-clock times in (W(from), W(to)],
  // W = latest wall clock shown (zone.ts): count those times, then take away the duplicates a gap
  // makes (all times in a gap, and the time ending it, name one instant).
  const { count: times, latest: latestWall } = calendar.countBetween(
    latestWallClockBy(zone, from),
    latestWallClockBy(zone, to),
  );
  if (latestWall === null) return { first, latest: null, beforeLatest: null, count: 0 };
  let count = times;
  for (const shift of transitionsBetween(zone, from, to)) {
    if (shift.after <= shift.before) continue; // a repeat: each time was counted once already
    const inGap = calendar.countBetween(shift.at + shift.before - 1, shift.at + shift.after).count;
    if (inGap > 1) count -= inGap - 1;
  }
  const latest = instantOfWallClock(zone, latestWall);
  const beforeLatest = latestTickIn(schedule, from, latest - 1);
  return {
    first,
    latest: new Date(latest * 1000),
    beforeLatest: beforeLatest === null ? null : new Date(beforeLatest * 1000),
    count,
  };
}

/**
 * The latest tick in (from, to], looking back over windows that double from one day: cheap for
 * frequent schedules, a dozen small searches for a yearly one.
 */
function latestTickIn(schedule: CronSchedule, from: number, to: number): number | null {
  const { zone, calendar } = schedule;
  const top = latestWallClockBy(zone, to);
  for (let width = 86_400; ; width *= 2) {
    const start = Math.max(from, to - width);
    const { latest } = calendar.countBetween(latestWallClockBy(zone, start), top);
    if (latest !== null) return instantOfWallClock(zone, latest);
    if (start === from) return null;
  }
}

function walkRemaining(schedule: Schedule, first: Date[], cursor: Date, to: number): TickSpan {
  let count = first.length;
  let latest = first.at(-1) ?? null;
  let beforeLatest = first.at(-2) ?? null;
  for (;;) {
    const tick = schedule.next(cursor);
    if (tick === null || tick.getTime() > to * 1000) return { first, latest, beforeLatest, count };
    count++;
    beforeLatest = latest;
    latest = tick;
    cursor = tick;
  }
}

function toSeconds(date: Date, name: string): number {
  const ms = date.getTime();
  if (Number.isNaN(ms)) throw new RangeError(`${name} is not a valid date`);
  return Math.floor(ms / 1000);
}

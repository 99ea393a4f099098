/**
 * An independent, slow and obviously right statement of DESIGN.md's tick rule, for property tests.
 *
 * It shares no code with src/schedule: the wall clock comes from `Intl.DateTimeFormat#formatToParts`
 * (src uses the offset name), cron matching is set membership over generated field values (src uses
 * cron-parser), and ticks are found by scanning every instant of a window one step at a time:
 * - an instant whose wall clock shows a time for the first time is a tick if that time matches;
 * - an instant that ends a gap (its wall clock jumped forward) is also a tick if any skipped time
 *   matches;
 * - an instant that re-shows a time (the second pass of a repeated hour) is never a tick.
 */
import fc from 'fast-check';

/** A cron expression made of explicit value sets, so matching it needs no parser. */
export interface SimpleCron {
  readonly expression: string;
  readonly seconds: readonly number[] | null; // null: every value (a star)
  readonly minutes: readonly number[] | null;
  readonly hours: readonly number[] | null;
  readonly daysOfMonth: readonly number[] | null;
  readonly daysOfWeek: readonly number[] | null;
}

const contains = (values: readonly number[] | null, v: number): boolean =>
  values === null || values.includes(v);

/** Whether a wall-clock time (naive seconds) matches, with robfig/cron's day rule. */
export function matches(cron: SimpleCron, wall: number): boolean {
  const d = new Date(wall * 1000);
  if (!contains(cron.seconds, d.getUTCSeconds())) return false;
  if (!contains(cron.minutes, d.getUTCMinutes())) return false;
  if (!contains(cron.hours, d.getUTCHours())) return false;
  const dom = contains(cron.daysOfMonth, d.getUTCDate());
  const dow = contains(cron.daysOfWeek, d.getUTCDay());
  // Both restricted: either; otherwise both (a star always matches).
  if (cron.daysOfMonth !== null && cron.daysOfWeek !== null) return dom || dow;
  return dom && dow;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The zone's wall clock at instant t (Unix seconds), as naive seconds. */
export function wallOf(zone: string, t: number): number {
  let f = formatters.get(zone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  const part: Record<string, number> = {};
  for (const p of f.formatToParts(t * 1000)) part[p.type] = Number(p.value);
  const at = (k: string): number => part[k] ?? Number.NaN;
  return Date.UTC(at('year'), at('month') - 1, at('day'), at('hour'), at('minute'), at('second')) / 1000;
}

/** The instants in (from, to] where the zone's offset changes, found by a daily scan. */
export function referenceTransitions(zone: string, from: number, to: number): number[] {
  const offset = (t: number): number => wallOf(zone, t) - t;
  const found: number[] = [];
  for (let a = from; a < to; a += 86_400) {
    const b = Math.min(a + 86_400, to);
    if (offset(a) === offset(b)) continue;
    let lo = a;
    let hi = b;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (offset(mid) === offset(a)) lo = mid;
      else hi = mid;
    }
    found.push(hi);
  }
  return found;
}

/** The ticks in (from, to] by scanning every `step` seconds (60 for schedules whose seconds are [0]). */
export function referenceTicks(
  cron: SimpleCron,
  zone: string,
  from: number,
  to: number,
  step: number,
): number[] {
  const ticks: number[] = [];
  // Start early enough to have seen the first pass of any repeated hour before `from` (the largest
  // backward shift in the tz database is 2 hours, Antarctica/Troll's).
  let t = Math.floor((from - 3 * 3600) / step) * step;
  let shown = Number.NEGATIVE_INFINITY; // the latest wall-clock time shown so far
  let previous: number | null = null;
  for (; t <= to; t += step) {
    const wall = wallOf(zone, t);
    let tick = false;
    if (wall > shown) {
      tick = matches(cron, wall);
      if (previous !== null && wall - previous > step) {
        for (let skipped = previous + step; skipped < wall && !tick; skipped += step)
          tick = matches(cron, skipped);
      }
      shown = wall;
    }
    previous = wall;
    if (tick && t > from) ticks.push(t);
  }
  return ticks;
}

const sortedUnique = (values: number[]): number[] => [...new Set(values)].sort((a, b) => a - b);

function listField(min: number, max: number, maxLength: number): fc.Arbitrary<number[]> {
  return fc.uniqueArray(fc.integer({ min, max }), { minLength: 1, maxLength }).map(sortedUnique);
}

/** A field: a star, a list, or a stepped star; with the values it stands for (null for a star). */
function field(
  min: number,
  max: number,
  list: fc.Arbitrary<number[]>,
  steps: readonly number[],
): fc.Arbitrary<{ text: string; values: number[] | null }> {
  return fc.oneof(
    fc.constant({ text: '*', values: null }),
    list.map((values) => ({ text: values.join(','), values })),
    fc.constantFrom(...steps).map((step) => {
      const values: number[] = [];
      for (let v = min; v <= max; v += step) values.push(v);
      return { text: `*/${step}`, values };
    }),
  );
}

/**
 * Random schedules that stress the hours where clocks shift (0-4 am local, the half hour of Lord
 * Howe). With `withSeconds`, a 6-field expression whose seconds vary; otherwise seconds are 0.
 */
export function simpleCron(withSeconds: boolean): fc.Arbitrary<SimpleCron> {
  const second = withSeconds
    ? field(0, 59, listField(0, 59, 3), [15, 20, 30])
    : fc.constant({ text: '0', values: [0] as number[] | null });
  const minute = field(
    0,
    59,
    fc.oneof(listField(0, 59, 4), listField(0, 5, 2), fc.constant<number[]>([0, 30])),
    [5, 15, 20, 30],
  );
  const hour = field(0, 23, fc.oneof(listField(0, 4, 3), listField(0, 23, 3)), [2, 3, 6]);
  const dayOfMonth = fc.oneof(
    { weight: 3, arbitrary: fc.constant({ text: '*', values: null as number[] | null }) },
    { weight: 1, arbitrary: field(1, 31, listField(1, 31, 6), [2, 3]) },
  );
  const dayOfWeek = fc.oneof(
    { weight: 3, arbitrary: fc.constant({ text: '*', values: null as number[] | null }) },
    { weight: 1, arbitrary: listField(0, 6, 3).map((values) => ({ text: values.join(','), values })) },
  );
  return fc.record({ second, minute, hour, dayOfMonth, dayOfWeek }).map((f) => {
    const five = `${f.minute.text} ${f.hour.text} ${f.dayOfMonth.text} * ${f.dayOfWeek.text}`;
    return {
      expression: withSeconds ? `${f.second.text} ${five}` : five,
      seconds: withSeconds ? f.second.values : [0],
      minutes: f.minute.values,
      hours: f.hour.values,
      daysOfMonth: f.dayOfMonth.values,
      daysOfWeek: f.dayOfWeek.values,
    };
  });
}

/** Zones with every kind of shift: none, an hour, half an hour, at midnight, a whole day. */
export const ZONES = [
  'UTC',
  'Asia/Tokyo',
  'Europe/Berlin',
  'Europe/London',
  'America/New_York',
  'America/Havana', // shifts at midnight
  'America/Santiago', // shifts at midnight, southern hemisphere
  'America/St_Johns', // -03:30
  'Australia/Lord_Howe', // shifts by 30 minutes
  'Australia/Sydney',
  'Pacific/Chatham', // +12:45 / +13:45
  'Africa/Casablanca', // suspends its offset for Ramadan
  'Asia/Tehran', // had DST until 2022
] as const;

/**
 * Time zones: which names are accepted, and how wall-clock time maps to instants and back.
 *
 * Contract
 * - Works in whole seconds. An instant is Unix seconds; a wall-clock time is the same count read
 *   as if the zone's clock were UTC ("naive" seconds: 2026-03-29 02:30:00 on a Berlin wall clock is
 *   `Date.UTC(2026, 2, 29, 2, 30) / 1000`).
 * - `loadZone` accepts exactly the names ICU (and so `Intl.DateTimeFormat`) knows as IANA zones,
 *   case-insensitively as ICU does, and refuses UTC-offset strings such as `+01:00`: those are not
 *   IANA names and Kubernetes refuses them too.
 * - `wallClockAt(t)` is the zone's wall clock at instant t.
 * - `latestWallClockBy(t)` is the latest wall-clock time the zone's clock has shown at or before
 *   instant t. It differs from `wallClockAt(t)` only during the second pass of a repeated hour, when
 *   the clock re-shows times it already showed.
 * - `instantOfWallClock(w)` maps a wall-clock time to the instant it names, by the rules in
 *   DESIGN.md ("Time"): a time that happens once is that instant; a time that happens twice (the
 *   repeated hour after a backward shift) is its FIRST occurrence; a time that never happens (the gap
 *   of a forward shift) is the first instant after the gap, i.e. the instant of the shift itself.
 *   So the map never decreases: w1 < w2 implies instant(w1) <= instant(w2), with equality only for
 *   times inside one gap and the time that ends it.
 * - `transitionsBetween(from, to)` lists the offset changes in (from, to].
 *
 * What it does not promise
 * - It assumes a zone changes its offset at most once in any 24 hours (Samoa's skipped day in 2011
 *   is one change; the tests check every zone's shifts of 2026 against an independent scan). Two
 *   changes within a day may be seen as one, or missed if they cancel out: ticks near them could
 *   land on the wrong instant, and a count could be off by a few; `next()` still only moves forward.
 * - Offsets come from the ICU data of the running Node (`process.versions.tz`); a tz database
 *   release that changes a zone's rules changes the answers for that zone.
 *
 * Cost: one offset lookup is one `Intl.DateTimeFormat#format` call (about 2 µs). A mapping costs 2 to
 * 3 lookups away from a transition and about 20 near one (a binary search to the second).
 * No library does this: cron-parser's own zone handling is what DESIGN.md tells us not to trust
 * around DST, and luxon (which it uses) moves a gap time forward by the gap's length instead of to
 * the end of the gap.
 */

const DAY = 86_400;

export interface Zone {
  /** The name as the user wrote it. */
  readonly name: string;
  /** Seconds east of UTC at instant `t` (Unix seconds). */
  offsetAt(t: number): number;
}

export interface Transition {
  /** The first instant (Unix seconds) with the new offset. */
  readonly at: number;
  /** Offset (seconds east of UTC) just before `at`. */
  readonly before: number;
  /** Offset from `at` on. */
  readonly after: number;
}

// Formatters are expensive to build (~50 µs) and cheap to use; ICU matches names
// case-insensitively, so the lower-cased name bounds this map by the number of known zones.
const formatters = new Map<string, Intl.DateTimeFormat>();

/** The zone named `name`, or null when it is not an IANA time zone known to this Node. */
export function loadZone(name: string): Zone | null {
  // ECMA-402 now accepts offset strings ("+01:00") as time zones; they are not IANA names.
  if (name.length === 0 || /^[+-]/.test(name)) return null;
  const key = name.toLowerCase();
  let formatter = formatters.get(key);
  if (formatter === undefined) {
    try {
      formatter = new Intl.DateTimeFormat('en-US', { timeZone: name, timeZoneName: 'longOffset' });
    } catch (error) {
      if (error instanceof RangeError) return null;
      throw error;
    }
    formatters.set(key, formatter);
  }
  const f = formatter;
  return { name, offsetAt: (t) => parseOffset(f.format(t * 1000)) };
}

// "6/30/2026, GMT-04:00", "1/1/2, GMT+05:53:28" (local mean time before 1900), "..., GMT" for zero.
const OFFSET = /GMT(?:([+-])(\d{2}):(\d{2})(?::(\d{2}))?)?$/;

function parseOffset(formatted: string): number {
  const m = OFFSET.exec(formatted);
  if (m === null) throw new Error(`unexpected time zone offset format: ${JSON.stringify(formatted)}`);
  const [, sign, hh, mm, ss] = m;
  if (sign === undefined) return 0;
  const seconds = Number(hh) * 3600 + Number(mm) * 60 + Number(ss ?? '0');
  return sign === '-' ? -seconds : seconds;
}

/** The wall clock of `zone` at instant `t`. */
export function wallClockAt(zone: Zone, t: number): number {
  return t + zone.offsetAt(t);
}

/**
 * The first instant in (lo, hi] whose offset differs from the offset at `lo`.
 * Precondition: the offsets at `lo` and `hi` differ.
 */
function firstChange(zone: Zone, lo: number, hi: number): number {
  const offsetLo = zone.offsetAt(lo);
  let a = lo;
  let b = hi;
  while (b - a > 1) {
    const mid = Math.floor((a + b) / 2);
    if (zone.offsetAt(mid) === offsetLo) a = mid;
    else b = mid;
  }
  return b;
}

/** The latest wall-clock time shown at or before instant `t` (see the contract). */
export function latestWallClockBy(zone: Zone, t: number): number {
  const now = zone.offsetAt(t);
  const dayBefore = t - DAY;
  if (zone.offsetAt(dayBefore) === now) return t + now;
  const at = firstChange(zone, dayBefore, t);
  return Math.max(t + now, at - 1 + zone.offsetAt(at - 1));
}

/** The instant a wall-clock time names (see the contract for repeated and skipped times). */
export function instantOfWallClock(zone: Zone, w: number): number {
  const earlier = zone.offsetAt(w - DAY);
  const later = zone.offsetAt(w + DAY);
  if (earlier === later && zone.offsetAt(w - earlier) === earlier) return w - earlier;
  // Near a change: the candidates are the wall time read with either offset; one that the zone
  // really shows at that instant is valid. Two valid ones: a repeated time, take the first.
  // (The offsets at the two readings join the candidates only to stay total if the zone ever
  // changed twice within two days.)
  const offsets = new Set([earlier, later, zone.offsetAt(w - earlier), zone.offsetAt(w - later)]);
  let best: number | null = null;
  for (const offset of offsets) {
    const t = w - offset;
    if (zone.offsetAt(t) === offset && (best === null || t < best)) best = t;
  }
  if (best !== null) return best;
  // None valid: w falls in a gap. The first instant whose wall clock is past w ends the gap.
  let lo = w - Math.max(...offsets);
  let hi = w - Math.min(...offsets);
  if (wallClockAt(zone, lo) > w || wallClockAt(zone, hi) <= w) return w - earlier; // unreachable for tzdb zones
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (wallClockAt(zone, mid) > w) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The offset changes of `zone` in (from, to], oldest first. Cost: one lookup per day of the range. */
export function transitionsBetween(zone: Zone, from: number, to: number): Transition[] {
  const found: Transition[] = [];
  let a = from;
  let offsetA = zone.offsetAt(a);
  while (a < to) {
    const b = Math.min(a + DAY, to);
    const offsetB = zone.offsetAt(b);
    if (offsetB !== offsetA) {
      const at = firstChange(zone, a, b);
      found.push({ at, before: zone.offsetAt(at - 1), after: zone.offsetAt(at) });
    }
    a = b;
    offsetA = offsetB;
  }
  return found;
}

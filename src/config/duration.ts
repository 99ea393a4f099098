/**
 * Go-style durations (`15s`, `1m30s`, `500ms`, `2160h`), as Kubernetes users type them in flags.
 *
 * Guarantees: the grammar is Go's `time.ParseDuration`: an optional sign, then one or more
 * `<decimal number><unit>` pairs with units `ns`, `us` (also `µs`, `μs`), `ms`, `s`, `m`, `h`, and
 * no spaces; the bare string `0` is the only number allowed without a unit. Anything else is
 * refused with a reason, never guessed at.
 *
 * Does not give: nanosecond precision. The result is in milliseconds as a JavaScript number, so
 * `1ns` is 0.000001 and sums of very small and very large parts round like any float.
 *
 * Why not a library: `ms` parses one unit only (`1m30s` fails) and `parse-duration` scans for
 * any `<number><word>` it recognises and skips the rest, so `15` (no unit), `1m30x` or `1 hour`
 * come back as some number instead of an error. A lease duration of "15" silently read as 15 ms is
 * exactly the mistake a strict parser exists to refuse.
 */

const unitMs: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign
  μs: 1e-3, // U+03BC Greek small letter mu
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

// One `<number><unit>` pair: Go accepts `1.`, `.5` and `1.5`, but not `.` alone.
const part = /^(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;

export type DurationResult = { ok: true; ms: number } | { ok: false; reason: string };

export function parseDuration(text: string): DurationResult {
  const fail = (reason: string): DurationResult => ({ ok: false, reason });
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return { ok: true, ms: 0 };
  if (rest === '') return fail('empty duration');
  let total = 0;
  while (rest !== '') {
    const match = part.exec(rest);
    if (match === null) {
      return /^(\d+\.?\d*|\.\d+)$/.test(rest)
        ? fail('missing unit (use ns, us, ms, s, m or h, e.g. "15s")')
        : fail('expected a number followed by a unit, e.g. "15s", "1m30s" or "500ms"');
    }
    const [whole, digits, unit] = match;
    const factor = unit === undefined ? undefined : unitMs[unit];
    if (digits === undefined || factor === undefined) return fail('unknown unit');
    total += Number(digits) * factor;
    rest = rest.slice(whole.length);
  }
  if (!Number.isFinite(total) || total > Number.MAX_SAFE_INTEGER) return fail('duration out of range');
  return { ok: true, ms: sign * total };
}

/** Formats milliseconds the way Go prints a `time.Duration` for whole units: `1h30m0s`, `500ms`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${sign}${abs}ms`;
  const h = Math.floor(abs / 3_600_000);
  const m = Math.floor((abs % 3_600_000) / 60_000);
  const s = (abs % 60_000) / 1_000;
  if (h > 0) return `${sign}${h}h${m}m${s}s`;
  if (m > 0) return `${sign}${m}m${s}s`;
  return `${sign}${s}s`;
}

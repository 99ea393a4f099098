/**
 * Figures from arrival times: schedule skew percentiles, creation rate and ratios. Pure.
 *
 * Percentiles are nearest-rank (the smallest sample with at least q of the samples at or below
 * it), so p99 of 100 samples is the 99th smallest and every figure is a sample that happened,
 * never an interpolation.
 */

export interface SkewSummary {
  /** Samples summarised. */
  readonly count: number;
  /** Milliseconds after the tick. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** The first arrival, ms after the tick (the last is `max`). */
  readonly first: number;
  /** count / (last − first) in seconds; undefined with fewer than two samples or none apart. */
  readonly perSecond: number | undefined;
}

/** Nearest-rank percentile of ascending samples; q in (0, 1]. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new Error('percentile of no samples');
  if (!(q > 0 && q <= 1)) throw new Error(`percentile rank ${q} is not in (0, 1]`);
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Summarises offsets from the tick (ms); undefined when there are none. */
export function summarize(offsetsMs: readonly number[]): SkewSummary | undefined {
  if (offsetsMs.length === 0) return undefined;
  const sorted = [...offsetsMs].sort((a, b) => a - b);
  const first = sorted[0]!;
  const last = sorted[sorted.length - 1]!;
  const spanSeconds = (last - first) / 1000;
  return {
    count: sorted.length,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: last,
    first,
    perSecond: sorted.length > 1 && spanSeconds > 0 ? sorted.length / spanSeconds : undefined,
  };
}

/** a / b, undefined when either is missing or b is not positive. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !(b > 0)) return undefined;
  return a / b;
}

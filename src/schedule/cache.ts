/**
 * Parsed schedules kept between reconciles.
 *
 * Contract
 * - `parse(expression, timeZone)` returns exactly what `parseSchedule(expression, timeZone)` would,
 *   failures included (a job with a bad schedule is not re-parsed on every reconcile either).
 *   Results are keyed by the exact (expression, time zone) pair, so jobs that share a schedule
 *   share one parsed Schedule (a Schedule is safe to share: see schedule.ts).
 * - Bounded: at most `maxEntries` results, the least recently used dropped first. A dropped entry
 *   is parsed again when next asked for; correctness never depends on the cache.
 * - No clock and no I/O; not safe for concurrent use from worker threads (nothing here uses them).
 *
 * Why: parsing and validating costs 0.1 to 0.3 ms (cron-parser builds one to three expressions and
 * searches once to prove the schedule fires); re-parsing 10,000 jobs on every resync would be
 * seconds of CPU. A parsed schedule holds about 5 KB of heap, so the default bound (10,000 distinct
 * pairs, far more than a cluster's distinct schedules usually are) stays under 50 MB even when full.
 * Lower it where memory is tighter than CPU.
 */
import { LRUCache } from 'lru-cache';

import { parseSchedule, type ParseScheduleResult } from './schedule.ts';

export interface ScheduleCacheOptions {
  /** How many (expression, time zone) pairs to keep; default 10,000. */
  readonly maxEntries?: number;
}

export class ScheduleCache {
  readonly #entries: LRUCache<string, ParseScheduleResult>;

  constructor(options: ScheduleCacheOptions = {}) {
    const max = options.maxEntries ?? 10_000;
    if (!Number.isSafeInteger(max) || max < 1)
      throw new RangeError(`maxEntries must be a whole number >= 1, got ${max}`);
    this.#entries = new LRUCache({ max });
  }

  parse(expression: string, timeZone: string): ParseScheduleResult {
    // JSON of the pair: unambiguous whatever characters either string holds.
    const key = JSON.stringify([expression, timeZone]);
    const cached = this.#entries.get(key);
    if (cached !== undefined) return cached;
    const parsed = parseSchedule(expression, timeZone);
    this.#entries.set(key, parsed);
    return parsed;
  }

  /** How many results are kept now. */
  get size(): number {
    return this.#entries.size;
  }
}

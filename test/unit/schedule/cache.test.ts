import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { parseSchedule, ScheduleCache } from '../../../src/schedule/index.ts';

describe('ScheduleCache', () => {
  it('gives jobs that share an (expression, zone) pair one parsed schedule', () => {
    const cache = new ScheduleCache();
    const a = cache.parse('0 2 * * *', 'Europe/Berlin');
    const b = cache.parse('0 2 * * *', 'Europe/Berlin');
    assert.ok(a.ok && b.ok);
    assert.equal(a.schedule, b.schedule);
    assert.equal(cache.size, 1);
  });

  it('answers exactly what parseSchedule answers, failures included', () => {
    const cache = new ScheduleCache();
    const pairs: [string, string][] = [
      ['0 2 * * *', 'Europe/Berlin'],
      ['0 0 31 2 *', 'UTC'],
      ['0 2 * * *', 'Mars/Base'],
      ['@every 1h', 'UTC'],
    ];
    for (const [expression, zone] of pairs) {
      const cached = cache.parse(expression, zone);
      const fresh = parseSchedule(expression, zone);
      if (fresh.ok) {
        assert.ok(cached.ok);
        assert.deepEqual(
          cached.schedule.next(new Date('2026-10-24T00:00:00Z')),
          fresh.schedule.next(new Date('2026-10-24T00:00:00Z')),
        );
      } else {
        assert.deepEqual(cached, fresh);
      }
      // A failure is kept too, so a bad job is not re-parsed on every reconcile.
      assert.equal(cache.parse(expression, zone), cached);
    }
    assert.equal(cache.size, pairs.length);
  });

  it('keeps different zones, and different expressions, apart', () => {
    const cache = new ScheduleCache();
    const berlin = cache.parse('0 2 * * *', 'Europe/Berlin');
    const tokyo = cache.parse('0 2 * * *', 'Asia/Tokyo');
    const other = cache.parse('0 3 * * *', 'Europe/Berlin');
    assert.ok(berlin.ok && tokyo.ok && other.ok);
    assert.notEqual(berlin.schedule, tokyo.schedule);
    assert.notEqual(berlin.schedule, other.schedule);
    assert.equal(tokyo.schedule.timeZone, 'Asia/Tokyo');
    assert.equal(other.schedule.expression, '0 3 * * *');
  });

  it('cannot confuse pairs whose texts run together', () => {
    const cache = new ScheduleCache();
    const first = cache.parse('0 2 * * *', 'UTC');
    const second = cache.parse('0 2 * * *"', 'UTC');
    assert.ok(first.ok);
    assert.equal(second.ok, false);
  });

  it('keeps at most maxEntries results, dropping the least recently used', () => {
    const cache = new ScheduleCache({ maxEntries: 2 });
    const a = cache.parse('0 1 * * *', 'UTC');
    cache.parse('0 2 * * *', 'UTC');
    assert.equal(cache.parse('0 1 * * *', 'UTC'), a); // a is now the most recently used
    cache.parse('0 3 * * *', 'UTC'); // drops "0 2"
    assert.equal(cache.size, 2);
    assert.equal(cache.parse('0 1 * * *', 'UTC'), a);
    const again = cache.parse('0 2 * * *', 'UTC'); // parsed afresh, and still right
    assert.ok(again.ok);
    assert.deepEqual(again.schedule.next(new Date('2026-01-01T00:00:00Z')), new Date('2026-01-01T02:00:00Z'));
    assert.equal(cache.size, 2);
  });

  for (const maxEntries of [0, -1, 1.5, Number.NaN]) {
    it(`refuses maxEntries ${maxEntries}`, () => {
      assert.throws(() => new ScheduleCache({ maxEntries }), RangeError);
    });
  }
});

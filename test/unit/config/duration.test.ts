import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { formatDuration, parseDuration } from '../../../src/config/duration.ts';

describe('parseDuration', () => {
  const valid: [string, number][] = [
    ['0', 0],
    ['0s', 0],
    ['15s', 15_000],
    ['1m30s', 90_000],
    ['500ms', 500],
    ['2160h', 2160 * 3_600_000],
    ['1h2m3s4ms', 3_723_004],
    ['1.5h', 5_400_000],
    ['.5s', 500],
    ['1.s', 1_000],
    ['100us', 0.1],
    ['100µs', 0.1],
    ['100μs', 0.1],
    ['1000000ns', 1],
    ['-1m', -60_000],
    ['+2s', 2_000],
    ['1s1s', 2_000],
  ];
  for (const [text, ms] of valid) {
    it(`reads "${text}" as ${ms} ms, as Go does`, () => {
      const result = parseDuration(text);
      assert.ok(result.ok, result.ok ? '' : result.reason);
      assert.ok(Math.abs(result.ms - ms) < 1e-9, `${result.ms} ≈ ${ms}`);
    });
  }

  const invalid: [string, RegExp][] = [
    ['', /empty/],
    ['-', /empty/],
    ['15', /missing unit/],
    ['1.5', /missing unit/],
    ['15x', /expected a number followed by a unit/],
    ['1m30x', /expected a number followed by a unit/],
    ['1 h', /expected a number followed by a unit/],
    [' 1h', /expected a number followed by a unit/],
    ['1h ', /expected a number followed by a unit/],
    ['10 minutes', /expected a number followed by a unit/],
    ['1d', /expected a number followed by a unit/],
    ['.s', /expected a number followed by a unit/],
    ['h', /expected a number followed by a unit/],
    ['1e3s', /expected a number followed by a unit/],
    ['9'.repeat(400) + 'h', /out of range/],
  ];
  for (const [text, reason] of invalid) {
    it(`refuses "${text.length > 20 ? text.slice(0, 20) + '…' : text}"`, () => {
      const result = parseDuration(text);
      assert.ok(!result.ok, `parsed as ${result.ok ? result.ms : ''}`);
      assert.match(result.reason, reason);
    });
  }
});

describe('formatDuration', () => {
  const cases: [number, string][] = [
    [0, '0s'],
    [500, '500ms'],
    [2_400, '2.4s'],
    [15_000, '15s'],
    [90_000, '1m30s'],
    [5_400_000, '1h30m0s'],
    [-2_000, '-2s'],
  ];
  for (const [ms, text] of cases) {
    it(`prints ${ms} ms as "${text}", and it reads back`, () => {
      assert.equal(formatDuration(ms), text);
      const back = parseDuration(text);
      assert.ok(back.ok && back.ms === ms);
    });
  }
});

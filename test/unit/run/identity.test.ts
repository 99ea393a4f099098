import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_JOB_NAME_LENGTH, podName, runKey, sameOccasion, type RunId } from '../../../src/run/identity.ts';

const tick = new Date('2026-11-23T01:00:00Z');
// Pod names fit 63 characters while Unix seconds have 10 digits: until 2286-11-20.
const LAST_TEN_DIGIT_SECOND = 9_999_999_999;

describe('run identity', () => {
  const rows: { name: string; job: string; run: RunId; want: string }[] = [
    {
      name: 'first attempt of a tick is <job>-<unix seconds>',
      job: 'nightly',
      run: { kind: 'scheduled', tick, attempt: 1 },
      want: 'nightly-1795395600',
    },
    {
      name: 'later attempts append -<attempt>',
      job: 'nightly',
      run: { kind: 'scheduled', tick, attempt: 3 },
      want: 'nightly-1795395600-3',
    },
    {
      name: 'a manual run is <job>-m<8 hex of sha256(token)>',
      job: 'nightly',
      run: { kind: 'manual', token: 'abc', attempt: 1 },
      want: 'nightly-mba7816bf',
    },
    {
      name: 'a manual retry appends -<attempt>',
      job: 'nightly',
      run: { kind: 'manual', token: 'abc', attempt: 2 },
      want: 'nightly-mba7816bf-2',
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      assert.equal(podName(row.job, row.run), row.want);
    });
  }

  it('every Pod name of a job name at the limit fits 63 characters', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: LAST_TEN_DIGIT_SECOND }),
        fc.integer({ min: 1, max: 10 }),
        fc.string({ minLength: 1 }),
        (seconds, attempt, token) => {
          const job = 'j'.repeat(MAX_JOB_NAME_LENGTH);
          assert.ok(
            podName(job, { kind: 'scheduled', tick: new Date(seconds * 1000), attempt }).length <= 63,
          );
          assert.ok(podName(job, { kind: 'manual', token, attempt }).length <= 63);
        },
      ),
    );
  });

  it('distinct runs of one job never share a Pod name or key', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4e9 }),
        fc.integer({ min: 0, max: 4e9 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 10 }),
        (s1, s2, a1, a2) => {
          fc.pre(s1 !== s2 || a1 !== a2);
          const r1: RunId = { kind: 'scheduled', tick: new Date(s1 * 1000), attempt: a1 };
          const r2: RunId = { kind: 'scheduled', tick: new Date(s2 * 1000), attempt: a2 };
          assert.notEqual(podName('job', r1), podName('job', r2));
          assert.notEqual(runKey(r1), runKey(r2));
        },
      ),
    );
  });

  it('attempts of the same tick are the same occasion; a manual run is not a tick', () => {
    assert.ok(sameOccasion({ kind: 'scheduled', tick, attempt: 1 }, { kind: 'scheduled', tick, attempt: 2 }));
    assert.ok(
      !sameOccasion({ kind: 'scheduled', tick, attempt: 1 }, { kind: 'manual', token: 'x', attempt: 1 }),
    );
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RunRecord, ScheduledSingletonJobStatus } from '../../../src/api/types.ts';
import { viewFromStatus } from '../../../src/ledger/status-ledger.ts';

const succeeded = (tick: string, podName = `job-${Date.parse(tick) / 1000}`): RunRecord => ({
  podName,
  tick,
  attempt: 1,
  outcome: 'Succeeded',
  completionTime: tick,
});

const manual = (token: string): RunRecord => ({
  podName: `job-m${token}`,
  manualToken: token,
  attempt: 1,
  outcome: 'Succeeded',
  startTime: '2026-11-22T12:00:00Z',
  completionTime: '2026-11-22T12:00:10Z',
});

describe('the status-only ledger view: latestTick', () => {
  const rows: { name: string; status: ScheduledSingletonJobStatus | undefined; want: string | undefined }[] =
    [
      { name: 'a job without status accounts for no tick', status: undefined, want: undefined },
      { name: 'an empty status accounts for no tick', status: {}, want: undefined },
      {
        name: 'the bookkeeping latestTick counts when the bounded history no longer holds it',
        status: {
          ledger: { latestTick: '2026-11-22T10:00:00Z' },
          history: [manual('a'), manual('b'), succeeded('2026-11-22T08:00:00Z')],
        },
        want: '2026-11-22T10:00:00.000Z',
      },
      {
        name: 'lastScheduleTime counts when it is later than the bookkeeping latestTick (a status written before that field)',
        status: {
          ledger: { latestTick: '2026-11-22T09:00:00Z' },
          lastScheduleTime: '2026-11-22T10:00:00Z',
        },
        want: '2026-11-22T10:00:00.000Z',
      },
      {
        name: 'a range of Missed ticks counts to its last tick',
        status: {
          lastScheduleTime: '2026-11-22T08:00:00Z',
          history: [
            {
              tick: '2026-11-22T09:00:00Z',
              lastTick: '2026-11-22T11:00:00Z',
              count: 3,
              outcome: 'Missed',
              reason: 'NoController',
            },
          ],
        },
        want: '2026-11-22T11:00:00.000Z',
      },
      {
        name: 'the latest tick of the history counts wherever the history holds it, not only first',
        status: {
          history: [manual('a'), succeeded('2026-11-22T09:00:00Z'), succeeded('2026-11-22T10:00:00Z')],
        },
        want: '2026-11-22T10:00:00.000Z',
      },
      {
        name: 'a claimed tick that has no record yet counts',
        status: {
          lastScheduleTime: '2026-11-22T09:00:00Z',
          ledger: {
            latestTick: '2026-11-22T09:00:00Z',
            claims: [
              {
                podName: 'job-1795428000',
                tick: '2026-11-22T10:00:00Z',
                attempt: 1,
                claimedAt: '2026-11-22T10:00:00Z',
                term: 7,
              },
            ],
          },
        },
        want: '2026-11-22T10:00:00.000Z',
      },
      {
        name: 'lastRun and the active run count',
        status: {
          lastRun: succeeded('2026-11-22T09:00:00Z'),
          active: { podName: 'job-1795428000', tick: '2026-11-22T10:00:00Z', attempt: 2 },
        },
        want: '2026-11-22T10:00:00.000Z',
      },
      {
        name: 'manual runs alone account for no tick',
        status: {
          history: [manual('a'), manual('b')],
          ledger: {
            handledRunNowToken: 'b',
            claims: [
              {
                podName: 'job-mc',
                manualToken: 'c',
                attempt: 1,
                claimedAt: '2026-11-22T12:00:00Z',
                term: 7,
              },
            ],
          },
        },
        want: undefined,
      },
      {
        name: 'an unparseable time is ignored rather than taken as a tick',
        status: { ledger: { latestTick: 'not a time' }, lastScheduleTime: '2026-11-22T09:00:00Z' },
        want: '2026-11-22T09:00:00.000Z',
      },
    ];
  for (const row of rows) {
    it(row.name, () => {
      assert.equal(viewFromStatus(row.status).latestTick?.toISOString(), row.want);
    });
  }
});

// The benchmark's pure parts: percentiles, the Prometheus text parser, request deltas, schedules
// and budget verdicts. Run: e2e/toolchain/node --test e2e/bench/bench.test.ts
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { counterDeltas, parseExposition, requestDelta } from '../../../e2e/bench/prom.ts';
import { formatComparisons, formatTable, type RunFigures } from '../../../e2e/bench/report.ts';
import { percentile, summarize } from '../../../e2e/bench/stats.ts';
import {
  minuteSchedule,
  minuteTickAfter,
  secondsSchedule,
  secondTickAfter,
} from '../../../e2e/bench/workloads.ts';

describe('stats', () => {
  it('nearest-rank p99 of 100 samples is the 99th smallest, and p50 the 50th', () => {
    const samples = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(samples, 0.99), 99);
    assert.equal(percentile(samples, 0.5), 50);
    assert.equal(percentile([7], 0.99), 7);
  });

  it('summarize sorts, reports first and last, and the rate over the spread', () => {
    const s = summarize([300, 100, 200]);
    assert.deepEqual(s, { count: 3, p50: 200, p99: 300, max: 300, first: 100, perSecond: 15 });
    assert.equal(summarize([]), undefined);
    assert.equal(summarize([5])?.perSecond, undefined);
  });
});

describe('prom', () => {
  const before = parseExposition(
    [
      '# HELP ssj_api_requests_total Kubernetes API requests.',
      '# TYPE ssj_api_requests_total counter',
      'ssj_api_requests_total{verb="create",resource="pods",code="201"} 3',
      'ssj_leader 1',
      'apiserver_request_total{code="201",group="",resource="pods",subresource="",verb="POST"} 10',
      'apiserver_request_total{code="200",resource="singletonjobs",subresource="status",verb="PUT"} 4',
    ].join('\n'),
  );
  const after = parseExposition(
    [
      'ssj_api_requests_total{verb="create",resource="pods",code="201"} 13',
      'ssj_api_requests_total{verb="update",resource="singletonjobs/status",code="409"} 2',
      'ssj_leader 1',
      'apiserver_request_total{code="201",group="",resource="pods",subresource="",verb="POST"} 25',
      'apiserver_request_total{code="200",resource="singletonjobs",subresource="status",verb="PUT"} 4',
      'label_escapes{a="x\\"y\\\\z"} 2',
    ].join('\n'),
  );

  it('parses names, labels with escapes and values, and skips comments', () => {
    assert.equal(after.length, 6);
    assert.deepEqual(after.at(-1), { name: 'label_escapes', labels: { a: 'x"y\\z' }, value: 2 });
    assert.deepEqual(before[1], { name: 'ssj_leader', labels: {}, value: 1 });
  });

  it("the operator's request delta is by verb, resource and code, largest first, zeros dropped", () => {
    assert.deepEqual(requestDelta('ssj_api_requests_total', before, after), [
      { verb: 'create', resource: 'pods', code: '201', count: 10 },
      { verb: 'update', resource: 'singletonjobs/status', code: '409', count: 2 },
    ]);
  });

  it("the API server's request delta joins resource and subresource and lower-cases the verb", () => {
    assert.deepEqual(requestDelta('apiserver_request_total', before, after), [
      { verb: 'post', resource: 'pods', code: '201', count: 15 },
    ]);
  });

  it('counter deltas name each series with its labels', () => {
    assert.deepEqual(counterDeltas(['ssj_api_requests_total'], before, after), [
      { series: 'ssj_api_requests_total{verb=create,resource=pods,code=201}', count: 10 },
      { series: 'ssj_api_requests_total{verb=update,resource=singletonjobs/status,code=409}', count: 2 },
    ]);
  });
});

describe('workloads', () => {
  it('a seconds schedule names the tick to the second, in UTC, once a year', () => {
    const tick = secondTickAfter(Date.UTC(2026, 10, 22, 7, 59, 58, 300), 1000);
    assert.equal(tick.toISOString(), '2026-11-22T08:00:00.000Z');
    assert.equal(secondsSchedule(tick), '0 0 8 22 11 *');
  });

  it('a CronJob tick is the next whole minute after the lead time, and only a whole minute', () => {
    const tick = minuteTickAfter(Date.UTC(2026, 11, 31, 23, 59, 10), 20_000);
    assert.equal(tick.toISOString(), '2027-01-01T00:00:00.000Z');
    assert.equal(minuteSchedule(tick), '0 0 1 1 *');
    assert.throws(() => minuteSchedule(new Date(Date.UTC(2026, 0, 1, 0, 0, 5))));
  });
});

describe('report', () => {
  const run = (scenario: RunFigures['scenario'], max: number, complete = true): RunFigures => ({
    scenario,
    n: 1000,
    tick: '2026-11-22T08:00:00.000Z',
    seen: complete ? 1000 : 10,
    complete,
    waitedMs: 600_000,
    skew: { count: 1000, p50: max / 2, p99: max * 0.99, max, first: 10, perSecond: 100 },
    notes: [],
  });

  it('budget verdicts at 1000: within 1.25x of the bare client, and CronJob at least 2x slower', () => {
    const lines = formatComparisons(
      [run('bare', 8000), run('operator-status', 9000), run('cronjob-default', 30_000)],
      1000,
    );
    assert.match(lines.find((l) => l.includes('bare client last Pod')) ?? '', /1\.13× .*budget met/);
    assert.match(lines.find((l) => l.includes('default limits')) ?? '', /3\.33× .*budget met/);
  });

  it('an incomplete CronJob run is a lower bound, and a slow operator misses the bare-client budget', () => {
    const lines = formatComparisons(
      [run('bare', 8000), run('operator-status', 12_000), run('cronjob-default', 0, false)],
      1000,
    );
    assert.match(lines.find((l) => l.includes('bare client last Pod')) ?? '', /1\.50× .*budget MISSED/);
    assert.match(lines.find((l) => l.includes('default limits')) ?? '', /> 50\.00×/);
  });

  it('the table has a header, an alignment row and one row per run', () => {
    const table = formatTable([run('bare', 8000)]).split('\n');
    assert.equal(table.length, 3);
    assert.match(table[1] ?? '', /^\|-+\|-+\|-+:\|/);
    assert.match(table[2] ?? '', /bare client .* 8\.000 /);
  });
});

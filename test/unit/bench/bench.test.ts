// The benchmark's pure parts: percentiles, the Prometheus text parser, request deltas, schedules,
// budget verdicts, the fleet's due ticks and the heap flags read from the Deployment.
// Run: e2e/toolchain/node --test test/unit/bench/bench.test.ts
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { counterDeltas, parseExposition, requestDelta } from '../../../e2e/bench/prom.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dueTicks, fleetSchedule } from '../../../e2e/bench/fleet.ts';
import { deploymentNodeOptions } from '../../../e2e/bench/operator-process.ts';
import { curves, plotInput, render } from '../../../e2e/bench/plot.ts';
import {
  budgetLines,
  formatBudgetLine,
  formatFleet,
  formatIdle,
  formatMemory,
  formatTable,
  type BudgetLine,
  type FleetFigures,
  type ManyJobsFigures,
  type RunFigures,
} from '../../../e2e/bench/report.ts';
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
  const run = (
    scenario: RunFigures['scenario'],
    max: number,
    { complete = true, n = 1000, p99 = max * 0.99 }: { complete?: boolean; n?: number; p99?: number } = {},
  ): RunFigures => ({
    scenario,
    n,
    tick: '2026-11-22T08:00:00.000Z',
    seen: complete ? n : 10,
    complete,
    waitedMs: 600_000,
    skew: { count: n, p50: max / 2, p99, max, first: 10, perSecond: 100 },
    notes: [],
  });
  const line = (lines: readonly BudgetLine[], budget: RegExp): BudgetLine => {
    const found = lines.find((l) => budget.test(l.budget));
    assert.ok(found !== undefined, `no budget line matching ${String(budget)} in ${JSON.stringify(lines)}`);
    return found;
  };
  const full = (n: number, times: Partial<Record<RunFigures['scenario'], number>>): RunFigures[] =>
    Object.entries(times).map(([s, max]) => run(s as RunFigures['scenario'], max, { n }));

  it('PostgreSQL at 1000: last Pod within 1.25x of the bare client is met, beyond it MISSED', () => {
    const met = budgetLines(full(1000, { bare: 8000, 'operator-postgres': 9000 }), 1000);
    assert.equal(line(met, /PostgreSQL.*1\.25×/).verdict, 'met');
    assert.match(
      formatBudgetLine(line(met, /PostgreSQL.*1\.25×/)),
      /9\.000 \/ 8\.000 s = 1\.13× — budget met/,
    );
    const missed = budgetLines(full(1000, { bare: 8000, 'operator-postgres': 10_500 }), 1000);
    assert.equal(line(missed, /PostgreSQL.*1\.25×/).verdict, 'missed');
    assert.match(formatBudgetLine(line(missed, /PostgreSQL.*1\.25×/)), /budget MISSED/);
  });

  it('the status ledger is held to 2.2x of the bare client at both 100 and 1000', () => {
    for (const n of [100, 1000]) {
      const lines = budgetLines(full(n, { bare: 1000, 'operator-status': 2100 }), n);
      assert.equal(line(lines, /status ledger.*2\.2×/).verdict, 'met');
      const slow = budgetLines(full(n, { bare: 1000, 'operator-status': 2300 }), n);
      assert.equal(line(slow, /status ledger.*2\.2×/).verdict, 'missed');
    }
  });

  it('beside the budgets, the claim-then-create floor against the bare client and the status ledger against that floor, as figures without a verdict', () => {
    const lines = budgetLines(full(1000, { bare: 1000, 'bare-claim': 2500, 'operator-status': 3000 }), 1000);
    const floor = line(lines, /^bare client, claim then create.*floor/);
    assert.equal(floor.verdict, 'figure');
    assert.match(
      formatBudgetLine(floor),
      /2\.500 \/ 1\.000 s = 2\.50× \(a figure beside the budgets, not one of them\)$/,
    );
    assert.match(floor.budget, /beside the 2\.2× budget/);
    const against = line(lines, /status ledger: last Pod against bare client, claim then create/);
    assert.equal(against.verdict, 'figure');
    assert.match(against.text, /^3\.000 \/ 2\.500 s = 1\.20×$/);
    // The status ledger's budget is still judged against the bare client alone.
    assert.equal(line(lines, /status ledger.*≤ 2\.2×/).verdict, 'missed');
    // Without the floor's run there is no such line, and nothing is reported missing for it.
    const without = budgetLines(full(1000, { bare: 1000, 'operator-status': 3000 }), 1000);
    assert.ok(without.every((l) => l.verdict !== 'figure' && !/claim then create/.test(l.text)));
  });

  it('PostgreSQL at 100: the p99 skew must be under 1 s; an incomplete run misses it', () => {
    const ok = budgetLines([run('operator-postgres', 990, { n: 100, p99: 950 })], 100);
    assert.equal(line(ok, /p99/).verdict, 'met');
    const late = budgetLines([run('operator-postgres', 1200, { n: 100, p99: 1100 })], 100);
    assert.equal(line(late, /p99/).verdict, 'missed');
    const incomplete = budgetLines([run('operator-postgres', 500, { n: 100, complete: false })], 100);
    assert.equal(line(incomplete, /p99/).verdict, 'missed');
  });

  it('both ledgers must be ahead of CronJob at default and at raised limits, each a verdict', () => {
    const lines = budgetLines(
      full(1000, {
        'operator-status': 20_000,
        'operator-postgres': 9000,
        'cronjob-default': 118_000,
        'cronjob-raised': 11_000,
      }),
      1000,
    );
    const ahead = lines.filter((l) => l.budget.includes('ahead of'));
    assert.equal(ahead.length, 4);
    assert.equal(line(lines, /status ledger.*ahead of CronJob, KCM default/).verdict, 'met');
    assert.equal(line(lines, /status ledger.*ahead of CronJob, KCM qps/).verdict, 'missed');
    assert.equal(line(lines, /PostgreSQL.*ahead of CronJob, KCM qps/).verdict, 'met');
  });

  it('an incomplete CronJob run is a lower bound: an operator faster than its wait is ahead', () => {
    const lines = budgetLines(
      [run('operator-postgres', 9000), run('cronjob-default', 0, { complete: false })],
      1000,
    );
    const ahead = line(lines, /PostgreSQL.*ahead of CronJob, KCM default/);
    assert.equal(ahead.verdict, 'met');
    assert.match(ahead.text, /9\.000 \/ > 600\.000 s/);
  });

  it('an incomplete bare-client run gives no verdict, and says why', () => {
    const lines = budgetLines([run('bare', 0, { complete: false }), run('operator-postgres', 9000)], 1000);
    const l = line(lines, /PostgreSQL.*1\.25×/);
    assert.equal(l.verdict, 'undetermined');
    assert.match(l.text, /bare client run is incomplete/);
  });

  it('at a budgeted size a missing run is named instead of a verdict', () => {
    const lines = budgetLines([run('operator-postgres', 9000)], 1000);
    const l = line(lines, /PostgreSQL.*1\.25×/);
    assert.equal(l.verdict, 'missing');
    assert.match(formatBudgetLine(l), /no verdict: no bare client \(physical limit\) run at N=1000/);
    const cron = line(lines, /status ledger.*ahead of CronJob, KCM default/);
    assert.match(cron.text, /no ssj-operator, status ledger nor CronJob, KCM default limits run/);
  });

  it('at a size no budget names the figures are for information only, and nothing is missing', () => {
    const lines = budgetLines(
      full(20, { bare: 300, 'operator-postgres': 900, 'operator-status': 1000, 'cronjob-default': 5000 }),
      20,
    );
    assert.ok(lines.length > 0);
    assert.ok(
      lines.every((l) => l.verdict === 'info'),
      JSON.stringify(lines),
    );
    assert.deepEqual(budgetLines([run('bare', 300, { n: 20 })], 20), []);
  });

  it('the table has a header, an alignment row and one row per run', () => {
    const table = formatTable([run('bare', 8000)]).split('\n');
    assert.equal(table.length, 3);
    assert.match(table[1] ?? '', /^\|-+\|-+\|-+:\|/);
    assert.match(table[2] ?? '', /bare client .* 8\.000 /);
  });
});

describe('fleet', () => {
  it('job i fires every minute at second i mod 60', () => {
    assert.equal(fleetSchedule(0), '0 * * * * *');
    assert.equal(fleetSchedule(61), '1 * * * * *');
  });

  it('the due ticks of a window are each job at its second of every whole minute in it', () => {
    const start = Date.UTC(2026, 11, 1, 15, 0, 0) / 1000;
    const due = dueTicks(120, start, 120);
    assert.equal(due.size, 240);
    assert.equal(due.get('bench-00000-' + String(start)), start);
    assert.equal(due.get('bench-00061-' + String(start + 61)), start + 61);
    assert.equal(due.get('bench-00061-' + String(start + 121)), undefined);
    // A window that is not whole minutes holds only the seconds inside it.
    assert.equal(dueTicks(60, start, 90).size, 90);
  });

  const fleetRun = (n: number, p99: number, keptUp = true): FleetFigures => ({
    n,
    windowStart: '2026-12-01T15:00:00.000Z',
    windowSeconds: 300,
    due: n * 5,
    seen: keptUp ? n * 5 : n * 5 - 1,
    notRun: 0,
    outcomes: { Succeeded: n * 5 },
    keptUp,
    skew: { count: n * 5, p50: p99 / 2, p99, max: p99 + 10, first: 5, perSecond: 10 },
    offsetsMs: [],
    api: { perRun: 4, total: n * 20, breakdown: [] },
    apiServer: { perRun: 6, total: n * 30, breakdown: [] },
    simulator: { reads: n * 5, statusWrites: n * 5, failures: 0 },
    operatorCounters: [],
    cpuSeconds: 10,
    cpuSecondsPerRun: 0.004,
    memory: undefined,
    notes: [],
  });

  it('the largest N sustained is the largest that kept up with p99 under 1 s', () => {
    const lines = formatFleet({
      runs: [fleetRun(250, 300), fleetRun(500, 800), fleetRun(1000, 2500)],
      bareRate: { podsPerSecond: 120, source: 'the burst bare-client run at N=1000' },
    });
    assert.match(lines.at(-1) ?? '', /largest N sustained with p99 < 1 s: 500 .* 120\.0 Pods\/s \(the burst/);
    const none = formatFleet({ runs: [fleetRun(250, 300, false)], bareRate: undefined });
    assert.match(none.at(-1) ?? '', /no N sustained/);
    assert.match(none[0] ?? '', /did NOT keep up/);
  });
});

describe('memory and idle', () => {
  const figures = (rss: number, peak: number, cpuPercent: number): ManyJobsFigures => ({
    jobs: 10_000,
    observed: 10_000,
    steady: { rssMiB: rss, hwmMiB: rss },
    idle: {
      seconds: 180,
      cpuSeconds: (cpuPercent / 100) * 180,
      percentOfCore: cpuPercent,
      windowSeconds: 60,
      windowPercents: [cpuPercent, cpuPercent, cpuPercent],
      memory: { rssMiB: rss, hwmMiB: rss },
    },
    burst: {
      jobs: 1000,
      tick: '2026-12-01T15:00:00.000Z',
      seen: 1000,
      complete: true,
      lastPodMs: 9000,
      peakRssMiB: peak,
      after: { rssMiB: rss, hwmMiB: peak },
    },
    notes: [],
  });

  it('RSS is held under 200 MiB both steady and at the peak after the burst', () => {
    const [steady, burst] = formatMemory(figures(150, 190, 0.5));
    assert.match(steady ?? '', /steady: VmRSS 150\.0 MiB.*budget met/);
    assert.match(burst ?? '', /after 1000 due at one second.*peak VmRSS sampled 190\.0 MiB.*budget met/);
    assert.match(formatMemory(figures(150, 260, 0.5))[1] ?? '', /budget MISSED/);
  });

  it('the first start, which finds every job new, is read on its RSS and its lifetime peak', () => {
    const withFirst = (hwm: number): ManyJobsFigures => ({
      ...figures(150, 190, 0.5),
      firstStart: { rssMiB: 180, hwmMiB: hwm },
    });
    const [first, steady] = formatMemory(withFirst(195));
    assert.match(
      first ?? '',
      /the first start \(every job new\): VmRSS 180\.0 MiB, VmHWM 195\.0 MiB.*budget met/,
    );
    assert.match(steady ?? '', /steady, the next process: VmRSS 150\.0 MiB.*budget met/);
    assert.match(formatMemory(withFirst(230))[0] ?? '', /the first start.*budget MISSED/);
  });

  it('with fewer than 10,000 jobs the memory and idle figures are for information only', () => {
    const small = { ...figures(300, 320, 0.5), jobs: 500, observed: 500 };
    for (const line of [...formatMemory(small), ...formatIdle(small)]) {
      assert.match(line, /for information: the budget is at 10000 jobs/);
      assert.doesNotMatch(line, /budget (met|MISSED)/);
    }
  });

  it('idle CPU is a percentage of one core, under 1 % in every window', () => {
    assert.match(
      formatIdle(figures(150, 190, 0.4))[0] ?? '',
      /3 windows of 60 s: 0\.40, 0\.40, 0\.40 % of one core \(budget < 1 % in every window\) — budget met; all 180 s: 0\.72 CPU s = 0\.40 %/,
    );
    assert.match(formatIdle(figures(150, 190, 1.5))[0] ?? '', /budget MISSED/);
    const base = figures(150, 190, 0.4);
    if (base.idle === undefined) throw new Error('figures() has an idle figure');
    // Under 1 % over the three windows together, over it in one of them.
    const oneOver = { ...base, idle: { ...base.idle, percentOfCore: 0.7, windowPercents: [0.5, 1.1, 0.5] } };
    assert.match(formatIdle(oneOver)[0] ?? '', /0\.50, 1\.10, 0\.50 % .*budget MISSED/);
    const none = { ...base, idle: { ...base.idle, windowPercents: [] } };
    assert.doesNotMatch(formatIdle(none)[0] ?? '', /budget met/);
  });
});

describe('operator process', () => {
  it("the operator's NODE_OPTIONS are read from the manager container of the Deployment", () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssj-bench-'));
    const path = join(dir, 'manager.yaml');
    writeFileSync(
      path,
      [
        'apiVersion: v1',
        'kind: Namespace',
        'metadata: { name: x }',
        '---',
        'apiVersion: apps/v1',
        'kind: Deployment',
        'spec:',
        '  template:',
        '    spec:',
        '      containers:',
        '        - name: sidecar',
        '          env: [{ name: NODE_OPTIONS, value: --wrong }]',
        '        - name: manager',
        '          env:',
        '            - { name: POD_NAME, value: p }',
        '            - { name: NODE_OPTIONS, value: --max-old-space-size=96 --max-semi-space-size=2 }',
      ].join('\n'),
    );
    assert.equal(deploymentNodeOptions(path), '--max-old-space-size=96 --max-semi-space-size=2');
    writeFileSync(path, 'kind: Namespace\n');
    assert.throws(() => deploymentNodeOptions(path), /no Deployment/);
  });
});

describe('plot', () => {
  const json = {
    startedAt: '2026-12-01T15:00:00.000Z',
    command: 'make bench (SSJ_BENCH_SIZES=2)',
    commit: 'abc1234',
    runs: [
      { scenario: 'bare', n: 2, complete: true, offsetsMs: [300, 100] },
      { scenario: 'operator-postgres', n: 2, complete: false, offsetsMs: [-5] },
    ],
  };

  it('each run becomes its distribution: the k-th fastest Pod at share k/N, from a first point at 0', () => {
    const points = curves(plotInput(json).runs);
    assert.deepEqual(
      points.filter((p) => p.scenario.startsWith('bare')).map((p) => [p.skew, p.share]),
      [
        [0.1, 0],
        [0.1, 0.5],
        [0.3, 1],
      ],
    );
    // A Pod seen before its tick sits at the log axis's floor; an incomplete run never reaches 1.
    const early = points.filter((p) => !p.complete);
    assert.deepEqual(early.at(-1), {
      n: 'N = 2',
      scenario: 'ssj-operator, PostgreSQL ledger',
      complete: false,
      skew: 0.01,
      share: 0.5,
    });
  });

  it('a JSON without per-Pod skews is refused with the reason', () => {
    const old = { ...json, runs: [{ scenario: 'bare', n: 100, complete: true }] };
    assert.throws(() => plotInput(old), /no per-Pod skews \(offsetsMs\)/);
    assert.throws(
      () => plotInput({ runs: [{ scenario: 'nightly', n: 1, offsetsMs: [] }] }),
      /unknown scenario/,
    );
  });

  it('renders an SVG without a browser', async () => {
    const svg = await render(plotInput(json));
    assert.match(svg, /^<svg /);
    assert.match(svg, /N = 2/);
  });
});

/**
 * The benchmark's figures and how they are printed: one table row per scenario run, the
 * comparisons against the performance budget of DESIGN.md, and the API request breakdown. Pure.
 *
 * Budgets are reported, never asserted: a missed budget prints MISSED and does not change the exit
 * code. Every ratio is to a baseline measured in the same run. A verdict is printed only at a size
 * the budget names and only when every run it needs is there (otherwise the line names the missing
 * run); at other sizes the figures are printed for information.
 */
import type { BurstCpu, Machine } from './cluster.ts';
import type { CounterDelta, RequestCount } from './prom.ts';
import { ratio, type SkewSummary } from './stats.ts';

export type ScenarioName =
  'bare' | 'bare-claim' | 'operator-status' | 'operator-postgres' | 'cronjob-default' | 'cronjob-raised';

export const scenarioTitles: Readonly<Record<ScenarioName, string>> = {
  bare: 'bare client (physical limit)',
  'bare-claim': 'bare client, claim then create',
  'operator-status': 'ssj-operator, status ledger',
  'operator-postgres': 'ssj-operator, PostgreSQL ledger',
  'cronjob-default': 'CronJob, KCM default limits',
  'cronjob-raised': 'CronJob, KCM qps 1000/burst 2000',
};

export interface RequestFigures {
  readonly perRun: number;
  readonly total: number;
  readonly breakdown: readonly RequestCount[];
}

export interface RunFigures {
  readonly scenario: ScenarioName;
  readonly n: number;
  /** The tick, RFC 3339. */
  readonly tick: string;
  /** Pods seen by the watcher (of the N expected). */
  readonly seen: number;
  /** All N seen before the deadline. */
  readonly complete: boolean;
  /** How long after the tick the watcher waited, ms (the bound on an incomplete run's last Pod). */
  readonly waitedMs: number;
  /** Pod ADDED − tick, ms. */
  readonly skew: SkewSummary | undefined;
  /** Every counted Pod's skew, ms, ascending: what the summary and the plot (plot.ts) are made from. */
  readonly offsetsMs?: readonly number[];
  /** The operator's own count (ssj_api_requests_total), from 2 s before the tick until it was quiet. */
  readonly api?: RequestFigures;
  /** The API server's count of all requests (apiserver_request_total) over the window: cluster-wide. */
  readonly apiServer?: RequestFigures;
  /** The operator's own counters over the same window (Pod creates and status writes by result, reconciles). */
  readonly operatorCounters?: readonly CounterDelta[];
  /** The operator process's VmRSS and VmHWM at the end of the run, MiB. */
  readonly memory?: {
    readonly rssMiB: number;
    readonly hwmMiB: number;
    /** V8's heap (used of total) and external memory, from the operator's own nodejs_* metrics. */
    readonly heapUsedMiB?: number;
    readonly heapTotalMiB?: number;
    readonly externalMiB?: number;
  };
  /** CPU seconds of the client and the cluster's processes from 1 s before the tick to the last Pod. */
  readonly burstCpu?: BurstCpu;
  /** The operator's own ssj_tick_skew_seconds over the run: count and mean. */
  readonly operatorSkew?: { readonly count: number; readonly meanSeconds: number };
  readonly notes: readonly string[];
}

export interface ProcessMemory {
  readonly rssMiB: number;
  readonly hwmMiB: number;
  readonly heapUsedMiB?: number | undefined;
}

/** The memory and idle modes: many jobs on yearly schedules, reconciled, then measured. */
export interface ManyJobsFigures {
  readonly jobs: number;
  /** Jobs whose observedGeneration had caught up before the measurement. */
  readonly observed: number;
  /** The operator that found every job new, once every job was reconciled and it was quiet. */
  readonly firstStart?: ProcessMemory;
  /** The operator started next on the same jobs, once its first pass was over and it was quiet. */
  readonly steady: ProcessMemory;
  /** The idle mode: the operator's CPU over consecutive quiet windows. */
  readonly idle?: {
    /** All the windows together. */
    readonly seconds: number;
    readonly cpuSeconds: number;
    /** % of one core. */
    readonly percentOfCore: number;
    readonly windowSeconds: number;
    /** Each window's CPU, % of one core. */
    readonly windowPercents: readonly number[];
    /** VmRSS at the end of the window. */
    readonly memory: ProcessMemory;
  };
  /** The memory mode's burst: `jobs` of the jobs edited to be due at one second. */
  readonly burst?: {
    readonly jobs: number;
    readonly tick: string;
    readonly seen: number;
    readonly complete: boolean;
    /** The last Pod's skew (or the wait, when incomplete), ms. */
    readonly lastPodMs: number;
    /** The highest VmRSS sampled (every 200 ms) from the edit until the operator was quiet. */
    readonly peakRssMiB: number;
    /** After the burst, once quiet: VmRSS, and VmHWM (the process's peak since it started). */
    readonly after: ProcessMemory;
  };
  readonly notes: readonly string[];
}

/** The fleet mode, one N: jobs on one-minute schedules at spread seconds, for a window. */
export interface FleetFigures {
  readonly n: number;
  /** RFC 3339: the window's first second, and its length. */
  readonly windowStart: string;
  readonly windowSeconds: number;
  /** Ticks due in the window, and how many of their Pods the watcher saw. */
  readonly due: number;
  readonly seen: number;
  /** Ticks of the window that the ledger recorded as Missed or Skipped (plain SQL). */
  readonly notRun: number;
  /** Runs of the window's ticks by outcome in the ledger (plain SQL), e.g. { Succeeded: 1490 }. */
  readonly outcomes: Readonly<Record<string, number>>;
  /** Every due tick got its Pod, none was Missed or Skipped. */
  readonly keptUp: boolean;
  readonly skew: SkewSummary | undefined;
  readonly offsetsMs: readonly number[];
  /** Over the window, per due tick. */
  readonly api: RequestFigures;
  readonly apiServer: RequestFigures;
  /** The Pod-status simulator's own requests (reads and status writes), not the operator's. */
  readonly simulator: { readonly reads: number; readonly statusWrites: number; readonly failures: number };
  readonly operatorCounters: readonly CounterDelta[];
  readonly cpuSeconds: number;
  readonly cpuSecondsPerRun: number;
  readonly memory: ProcessMemory | undefined;
  readonly notes: readonly string[];
}

export interface FleetReport {
  readonly runs: readonly FleetFigures[];
  /** The bare client's create rate beside which the largest sustained N is read. */
  readonly bareRate: { readonly podsPerSecond: number; readonly source: string } | undefined;
}

export interface Failure {
  readonly scenario: string;
  readonly n: number;
  readonly error: string;
}

export interface Report {
  readonly startedAt: string;
  readonly command: string;
  /** `git rev-parse --short HEAD`, with `+dirty` for a changed work tree. */
  readonly commit: string | undefined;
  readonly machine: Machine;
  readonly workers: number;
  /** The operator's NODE_OPTIONS, as config/manager/manager.yaml sets them for the Deployment. */
  readonly nodeOptions: string;
  /** The file every operator ran (the image's bundle, or the source with SSJ_BENCH_ENTRY). */
  readonly entry: string;
  /** The burst sizes asked for (a size whose runs all failed still gets its budget lines). */
  readonly sizes: readonly number[];
  readonly runs: readonly RunFigures[];
  readonly budgets: readonly BudgetLine[];
  readonly fleet?: FleetReport;
  readonly memory?: ManyJobsFigures;
  readonly idle?: ManyJobsFigures;
  readonly failures: readonly Failure[];
}

const seconds = (ms: number | undefined): string => (ms === undefined ? '—' : (ms / 1000).toFixed(3));
const fixed = (x: number | undefined, digits = 1): string => (x === undefined ? '—' : x.toFixed(digits));
const sumValues = (record: Readonly<Record<string, number>>): number =>
  Object.values(record).reduce((a, b) => a + b, 0);

export function formatMachine(m: Machine): string {
  return [
    `machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB memory, Linux ${m.kernel}`,
    `         Node.js ${m.node}, Kubernetes ${m.kubernetes}, PostgreSQL ${m.postgres ?? 'unreachable'}`,
    `         load average at start ${m.loadAverage.join(' ')}`,
  ].join('\n');
}

const header = [
  'scenario',
  'N',
  'Pods',
  'p50 s',
  'p99 s',
  'max s',
  'first s',
  'Pods/s',
  'req/run (op)',
  'req/run (apiserver)',
  'RSS MiB',
  'peak RSS MiB',
];

function row(r: RunFigures): string[] {
  return [
    scenarioTitles[r.scenario],
    String(r.n),
    r.complete ? String(r.seen) : `${r.seen} (incomplete)`,
    seconds(r.skew?.p50),
    seconds(r.skew?.p99),
    r.complete ? seconds(r.skew?.max) : `> ${seconds(r.waitedMs)}`,
    seconds(r.skew?.first),
    fixed(r.skew?.perSecond),
    r.api === undefined ? '—' : fixed(r.api.perRun, 2),
    r.apiServer === undefined ? '—' : fixed(r.apiServer.perRun, 2),
    r.memory === undefined ? '—' : fixed(r.memory.rssMiB),
    r.memory === undefined ? '—' : fixed(r.memory.hwmMiB),
  ];
}

/** A Markdown table (it also reads well as plain text). */
export function formatTable(runs: readonly RunFigures[]): string {
  const rows = [header, ...runs.map(row)];
  const widths = header.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (c < 2 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.slice(1).map(line)].join('\n');
}

/** `> ` before a figure that is only a lower bound (an incomplete run's wait). */
const mark = (x: { exact: boolean }): string => (x.exact ? '' : '> ');

/** The last Pod's time, or the wait as a lower bound when the run did not complete. */
function lastPod(r: RunFigures | undefined): { ms: number; exact: boolean } | undefined {
  if (r === undefined) return undefined;
  if (r.complete && r.skew !== undefined) return { ms: r.skew.max, exact: true };
  return { ms: r.waitedMs, exact: false };
}

/**
 * One budget of DESIGN.md, at one size: `met`/`missed` only at a size the budget names and with
 * every run it needs; `info` at other sizes; `missing` names the run that is not there;
 * `undetermined` when incomplete runs leave only bounds that cannot decide it; `figure` for a
 * ratio printed beside the budgets (the status ledger against its protocol's floor).
 */
export interface BudgetLine {
  readonly n: number;
  readonly budget: string;
  readonly verdict: 'met' | 'missed' | 'info' | 'missing' | 'undetermined' | 'figure';
  readonly text: string;
}

type Ledger = 'operator-status' | 'operator-postgres';

/** The sizes at which DESIGN.md states each budget. */
const BUDGET_SIZES: {
  readonly p99: readonly number[];
  readonly bare: Readonly<Record<Ledger, readonly number[]>>;
  readonly cronjob: readonly number[];
} = {
  p99: [100],
  bare: { 'operator-status': [100, 1000], 'operator-postgres': [1000] },
  cronjob: [100, 1000],
};

const BARE_LIMIT: Readonly<Record<Ledger, number>> = { 'operator-status': 2.2, 'operator-postgres': 1.25 };

function judged(n: number, sizes: readonly number[], ok: boolean | undefined): BudgetLine['verdict'] {
  if (!sizes.includes(n)) return 'info';
  if (ok === undefined) return 'undetermined';
  return ok ? 'met' : 'missed';
}

function sizesText(sizes: readonly number[]): string {
  return `at N=${sizes.join(' and ')}`;
}

/** The budget lines of DESIGN.md for one size, with their verdicts. */
export function budgetLines(runs: readonly RunFigures[], n: number): BudgetLine[] {
  const find = (s: ScenarioName): RunFigures | undefined => runs.find((r) => r.scenario === s && r.n === n);
  const missing = (budget: string, what: readonly ScenarioName[]): BudgetLine => ({
    n,
    budget,
    verdict: 'missing',
    text: `no verdict: no ${what.map((s) => scenarioTitles[s]).join(' nor ')} run at N=${n}`,
  });
  const lines: BudgetLine[] = [];

  const pg = find('operator-postgres');
  {
    const budget = `${scenarioTitles['operator-postgres']}: p99 skew < 1 s ${sizesText(BUDGET_SIZES.p99)}`;
    if (pg?.skew === undefined) {
      if (BUDGET_SIZES.p99.includes(n)) lines.push(missing(budget, ['operator-postgres']));
    } else {
      // An incomplete run's p99 is over the Pods seen: the missing ones were later still.
      const ok = pg.complete && pg.skew.p99 < 1000;
      lines.push({
        n,
        budget,
        verdict: judged(n, BUDGET_SIZES.p99, ok),
        text: `p99 skew ${pg.complete ? '' : '> '}${seconds(pg.skew.p99)} s`,
      });
    }
  }

  const bare = find('bare');
  for (const op of ['operator-status', 'operator-postgres'] as const) {
    const sizes = BUDGET_SIZES.bare[op];
    const limit = BARE_LIMIT[op];
    const budget = `${scenarioTitles[op]}: last Pod ≤ ${limit}× the bare client's ${sizesText(sizes)}`;
    const run = find(op);
    const needed = [...(run === undefined ? [op] : []), ...(bare === undefined ? ['bare' as const] : [])];
    if (needed.length > 0) {
      if (sizes.includes(n)) lines.push(missing(budget, needed));
      continue;
    }
    const last = lastPod(run)!;
    const base = lastPod(bare)!;
    if (!base.exact) {
      lines.push({
        n,
        budget,
        verdict: 'undetermined',
        text: `the bare client run is incomplete (> ${seconds(base.ms)} s)`,
      });
      continue;
    }
    const r = ratio(last.ms, base.ms);
    // An incomplete operator run is slower than its wait: a lower bound over the limit decides it.
    const ok = r === undefined ? undefined : last.exact ? r <= limit : r > limit ? false : undefined;
    lines.push({
      n,
      budget,
      verdict: judged(n, sizes, ok),
      text:
        `${last.exact ? '' : '> '}${seconds(last.ms)} / ${seconds(base.ms)} s = ` +
        `${last.exact ? '' : '> '}${fixed(r, 2)}×`,
    });
  }

  // Not budgets: where the status ledger's budget stands against what its protocol allows. The
  // claim is a second sequential API write before each Pod, so its floor is the bare client
  // with that write added, measured in the same run.
  const floor = find('bare-claim');
  const status = find('operator-status');
  const figure = (of: RunFigures, against: RunFigures | undefined, what: string): void => {
    if (against === undefined) return;
    const a = lastPod(of)!;
    const b = lastPod(against)!;
    lines.push({
      n,
      budget: what,
      verdict: 'figure',
      text:
        `${mark(a)}${seconds(a.ms)} / ${mark(b)}${seconds(b.ms)} s` +
        (a.exact && b.exact ? ` = ${fixed(ratio(a.ms, b.ms), 2)}×` : ''),
    });
  };
  if (floor !== undefined) {
    figure(
      floor,
      bare,
      `${scenarioTitles['bare-claim']} (the status ledger's floor): last Pod against the bare client's, beside the ${BARE_LIMIT['operator-status']}× budget`,
    );
    if (status !== undefined)
      figure(
        status,
        floor,
        `${scenarioTitles['operator-status']}: last Pod against ${scenarioTitles['bare-claim']}`,
      );
  }

  for (const op of ['operator-status', 'operator-postgres'] as const) {
    for (const cron of ['cronjob-default', 'cronjob-raised'] as const) {
      const budget = `${scenarioTitles[op]}: last Pod ahead of ${scenarioTitles[cron]} ${sizesText(BUDGET_SIZES.cronjob)}`;
      const run = find(op);
      const c = find(cron);
      const needed = [...(run === undefined ? [op] : []), ...(c === undefined ? [cron] : [])];
      if (needed.length > 0) {
        if (BUDGET_SIZES.cronjob.includes(n)) lines.push(missing(budget, needed));
        continue;
      }
      const last = lastPod(run)!;
      const other = lastPod(c)!;
      // Bounds decide only one way each: an incomplete CronJob run is slower than its wait, an
      // incomplete operator run slower than its own.
      let ok: boolean | undefined;
      if (last.exact && other.exact) ok = last.ms < other.ms;
      else if (last.exact) ok = last.ms < other.ms ? true : undefined;
      else if (other.exact) ok = last.ms >= other.ms ? false : undefined;
      const r = ratio(last.ms, other.ms);
      lines.push({
        n,
        budget,
        verdict: judged(n, BUDGET_SIZES.cronjob, ok),
        text:
          `operator / CronJob last Pod = ${mark(last)}${seconds(last.ms)} / ${mark(other)}${seconds(other.ms)} s` +
          (last.exact === other.exact ? ` = ${fixed(r, 2)}×` : ''),
      });
    }
  }
  return lines;
}

const VERDICT_TEXT: Readonly<Record<BudgetLine['verdict'], string>> = {
  met: ' — budget met',
  missed: ' — budget MISSED',
  info: ' (for information: not a budgeted size)',
  missing: '',
  undetermined: ' — no verdict: incomplete runs leave only bounds',
  figure: ' (a figure beside the budgets, not one of them)',
};

export function formatBudgetLine(line: BudgetLine): string {
  return `N=${line.n} ${line.budget}: ${line.text}${VERDICT_TEXT[line.verdict]}`;
}

const BREAKDOWN_LINES = 10;

/** Requests per run by verb, resource and code (the frequent ones; the JSON file has all). */
export function formatBreakdown(r: RunFigures): string[] {
  const line = (source: string, f: RequestFigures): string => {
    // The API server's count is cluster-wide: print what is frequent enough to be this run's work.
    const shown = f.breakdown.filter((b, i) => i < BREAKDOWN_LINES && b.count >= Math.max(2, r.n * 0.1));
    const hidden = f.breakdown.slice(shown.length).reduce((sum, b) => sum + b.count, 0);
    const parts = shown.map(
      (b) => `${b.verb} ${b.resource} ${b.code}: ${b.count} (${(b.count / r.n).toFixed(2)}/run)`,
    );
    if (hidden > 0) parts.push(`others: ${hidden}`);
    return `N=${r.n} ${scenarioTitles[r.scenario]}, ${source}: ${f.total} requests${parts.length === 0 ? '' : ` = ${parts.join('; ')}`}`;
  };
  const counters =
    r.operatorCounters === undefined || r.operatorCounters.length === 0
      ? []
      : [
          `N=${r.n} ${scenarioTitles[r.scenario]}, operator counters: ` +
            r.operatorCounters
              .map((c) => `${c.series} ${c.count} (${(c.count / r.n).toFixed(2)}/run)`)
              .join('; '),
        ];
  const m = r.memory;
  const memory =
    m?.heapTotalMiB === undefined
      ? []
      : [
          `N=${r.n} ${scenarioTitles[r.scenario]}, operator memory: VmRSS ${fixed(m.rssMiB)} MiB, VmHWM ` +
            `${fixed(m.hwmMiB)} MiB, V8 heap ${fixed(m.heapUsedMiB)} used of ${fixed(m.heapTotalMiB)} MiB, ` +
            `external ${fixed(m.externalMiB)} MiB`,
        ];
  const c = r.burstCpu;
  const cpu =
    c === undefined
      ? []
      : [
          `N=${r.n} ${scenarioTitles[r.scenario]}, CPU from ${fixed(c.fromMs / 1000)} s before the tick to the last Pod ` +
            `(${fixed(c.wallSeconds)} s): ` +
            Object.entries(c.processes)
              .map(([name, s]) => `${name} ${fixed(s)} s`)
              .join(', ') +
            `; ${fixed(sumValues(c.processes))} CPU s = ${fixed(sumValues(c.processes) / c.wallSeconds)} of ${c.cores} cores`,
        ];
  return [
    ...memory,
    ...cpu,
    ...counters,
    ...(r.api === undefined ? [] : [line('operator', r.api)]),
    ...(r.apiServer === undefined ? [] : [line('API server (cluster-wide)', r.apiServer)]),
  ];
}

const MEMORY_BUDGET_MIB = 200;
/** DESIGN.md states the memory and idle budgets with 10,000 jobs. */
const MANY_JOBS_BUDGET_SIZE = 10_000;

function manyJobsVerdict(jobs: number, ok: boolean): string {
  if (jobs < MANY_JOBS_BUDGET_SIZE)
    return ` (for information: the budget is at ${MANY_JOBS_BUDGET_SIZE} jobs)`;
  return ok ? ' — budget met' : ' — budget MISSED';
}
const IDLE_BUDGET_PERCENT = 1;
const FLEET_P99_MS = 1000;

function memoryText(m: ProcessMemory): string {
  return `VmRSS ${fixed(m.rssMiB)} MiB, VmHWM ${fixed(m.hwmMiB)} MiB, heap used ${fixed(m.heapUsedMiB)} MiB`;
}

/** The memory mode: steady RSS, and the peak after the burst, against RSS < 200 MiB. */
export function formatMemory(m: ManyJobsFigures): string[] {
  const all = m.observed === m.jobs;
  const steadyOk = all && m.steady.rssMiB < MEMORY_BUDGET_MIB;
  const lines: string[] = [];
  const first = m.firstStart;
  if (first !== undefined) {
    // The start that writes every job's first status: its lifetime peak is read too.
    const ok = all && Math.max(first.rssMiB, first.hwmMiB) < MEMORY_BUDGET_MIB;
    lines.push(
      `memory, ${m.jobs} jobs, the first start (every job new): ${memoryText(first)} ` +
        `(budget RSS and its peak < ${MEMORY_BUDGET_MIB} MiB)${manyJobsVerdict(m.jobs, ok)}`,
    );
  }
  lines.push(
    `memory, ${m.jobs} jobs (${m.observed} reconciled), steady${first === undefined ? '' : ', the next process'}: ` +
      `${memoryText(m.steady)} (budget RSS < ${MEMORY_BUDGET_MIB} MiB)${manyJobsVerdict(m.jobs, steadyOk)}`,
  );
  const b = m.burst;
  if (b === undefined) {
    lines.push(`memory, ${m.jobs} jobs, peak after a burst: no verdict: the burst did not run`);
  } else {
    // VmHWM also holds the start-up peak (the first reconcile of every job): the budget is read
    // on both, the burst's own sampled peak and the process's lifetime peak.
    const peak = Math.max(b.peakRssMiB, b.after.hwmMiB);
    const ok = all && b.complete && peak < MEMORY_BUDGET_MIB;
    lines.push(
      `memory, ${m.jobs} jobs, after ${b.jobs} due at one second (${b.seen}/${b.jobs} Pods, last ` +
        `${b.complete ? '' : '> '}${seconds(b.lastPodMs)} s): peak VmRSS sampled ${fixed(b.peakRssMiB)} MiB, ` +
        `then ${memoryText(b.after)} (budget peak < ${MEMORY_BUDGET_MIB} MiB)${manyJobsVerdict(m.jobs, ok)}`,
    );
  }
  return lines;
}

/** The idle mode: CPU over quiet windows as % of one core, against < 1 % in every window. */
export function formatIdle(m: ManyJobsFigures): string[] {
  const idle = m.idle;
  if (idle === undefined) return [`idle, ${m.jobs} jobs: not measured`];
  const ok =
    m.observed === m.jobs &&
    idle.windowPercents.length > 0 &&
    idle.windowPercents.every((p) => p < IDLE_BUDGET_PERCENT);
  const windows = idle.windowPercents.map((p) => p.toFixed(2)).join(', ');
  return [
    `idle, ${m.jobs} jobs (${m.observed} reconciled): ${idle.windowPercents.length} windows of ` +
      `${idle.windowSeconds} s: ${windows} % of one core (budget < ${IDLE_BUDGET_PERCENT} % in every window)` +
      `${manyJobsVerdict(m.jobs, ok)}; all ${idle.seconds} s: ${idle.cpuSeconds.toFixed(2)} CPU s = ` +
      `${idle.percentOfCore.toFixed(2)} %; ${memoryText(idle.memory)}`,
  ];
}

/** The fleet mode: one line per N, the request breakdown, and the largest N sustained. */
export function formatFleet(f: FleetReport): string[] {
  const lines: string[] = [];
  for (const r of f.runs) {
    const s = r.skew;
    lines.push(
      `fleet N=${r.n}, ${r.windowSeconds} s from ${r.windowStart}: ${r.seen}/${r.due} due Pods, ` +
        `${r.notRun} not run; skew p50 ${seconds(s?.p50)} s, p99 ${seconds(s?.p99)} s, max ${seconds(s?.max)} s; ` +
        `${fixed(r.api.perRun, 2)} operator API requests/run (${fixed(r.apiServer.perRun, 2)} at the API server, ` +
        `cluster-wide); ${(r.cpuSecondsPerRun * 1000).toFixed(1)} operator CPU ms/run ` +
        `(${r.cpuSeconds.toFixed(1)} s in all); ${r.keptUp ? 'kept up' : 'did NOT keep up'}`,
    );
    const shown = r.api.breakdown
      .slice(0, BREAKDOWN_LINES)
      .map((b) => `${b.verb} ${b.resource} ${b.code}: ${(b.count / Math.max(1, r.due)).toFixed(2)}/run`);
    lines.push(
      `fleet N=${r.n}, operator requests: ${shown.join('; ')}; the simulator's (not the operator's): ` +
        `${r.simulator.reads} Pod reads and ${r.simulator.statusWrites} Pod status writes ` +
        `(${(r.simulator.statusWrites / Math.max(1, r.due)).toFixed(2)}/run), ${r.simulator.failures} failed`,
    );
    const outcomes = Object.entries(r.outcomes)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(
      `fleet N=${r.n}, ledger outcomes of the window's ticks: ${outcomes === '' ? 'none' : outcomes}`,
    );
    if (r.operatorCounters.length > 0) {
      lines.push(
        `fleet N=${r.n}, operator counters: ` +
          r.operatorCounters
            .map((c) => `${c.series} ${c.count} (${(c.count / Math.max(1, r.due)).toFixed(2)}/run)`)
            .join('; '),
      );
    }
  }
  const sustained = f.runs.filter((r) => r.keptUp && r.skew !== undefined && r.skew.p99 < FLEET_P99_MS);
  const best = sustained.reduce<FleetFigures | undefined>(
    (a, r) => (a === undefined || r.n > a.n ? r : a),
    undefined,
  );
  const rate = (n: number): string => `${(n / 60).toFixed(1)} Pods/s`;
  const bare =
    f.bareRate === undefined
      ? 'the bare client: not measured'
      : `the bare client creates ${f.bareRate.podsPerSecond.toFixed(1)} Pods/s (${f.bareRate.source})`;
  lines.push(
    best === undefined
      ? `fleet: no N sustained with p99 < 1 s (of ${f.runs.map((r) => r.n).join(', ')}); ${bare}`
      : `fleet: largest N sustained with p99 < 1 s: ${best.n} (${rate(best.n)} on average) of ` +
          `${f.runs.map((r) => r.n).join(', ')}; ${bare}`,
  );
  return lines;
}

export function formatReport(report: Report): string {
  const out = [
    `ssj-operator schedule-skew benchmark, ${report.startedAt}`,
    `command: ${report.command} (operator --workers ${report.workers}; bare client concurrency ${report.workers})`,
    `commit: ${report.commit ?? 'unknown'}`,
    `operator: node ${report.entry}; heap flags (NODE_OPTIONS, from config/manager/manager.yaml): ${report.nodeOptions === '' ? 'none' : report.nodeOptions}`,
    formatMachine(report.machine),
  ];
  if (report.runs.length > 0) {
    out.push(
      '',
      'Skew = Pod ADDED at an independent watcher − the tick; "max" is the last Pod. RSS (VmRSS) and peak RSS ' +
        '(VmHWM): the operator process at the end of the run.',
      '',
      formatTable(report.runs),
    );
  }
  if (report.budgets.length > 0) out.push('', 'budget lines:', ...report.budgets.map(formatBudgetLine));
  const breakdown = report.runs.flatMap(formatBreakdown);
  if (breakdown.length > 0) {
    out.push(
      '',
      "API requests per run, from 2 s before the tick until the work was done: the operator's own count " +
        "(ssj_api_requests_total; no watches) and the API server's (apiserver_request_total, cluster-wide: " +
        'includes every other client; a watch is counted when it ends):',
      ...breakdown,
    );
  }
  const notes = report.runs.flatMap((r) =>
    r.notes.map((note) => `N=${r.n} ${scenarioTitles[r.scenario]}: ${note}`),
  );
  if (notes.length > 0) out.push('', 'notes:', ...notes.map((n) => `- ${n}`));
  if (report.fleet !== undefined) {
    out.push(
      '',
      'fleet (skew = Pod ADDED − its due second; requests and CPU over the window, per due tick):',
      ...formatFleet(report.fleet),
      ...report.fleet.runs.flatMap((r) => r.notes.map((n) => `- fleet N=${r.n}: ${n}`)),
    );
  }
  if (report.memory !== undefined)
    out.push('', ...formatMemory(report.memory), ...report.memory.notes.map((n) => `- ${n}`));
  if (report.idle !== undefined) {
    out.push('', ...formatIdle(report.idle));
    if (report.idle !== report.memory) out.push(...report.idle.notes.map((n) => `- ${n}`));
  }
  if (report.failures.length > 0) {
    out.push(
      '',
      'scenarios that could not run:',
      ...report.failures.map((f) => `- ${f.scenario} N=${f.n}: ${f.error}`),
    );
  }
  return out.join('\n');
}

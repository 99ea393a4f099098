/**
 * The benchmark's figures and how they are printed: one table row per scenario run, the
 * comparisons against the performance budget of DESIGN.md, and the API request breakdown. Pure.
 *
 * Budgets are reported, never asserted: a missed budget prints MISSED and does not change the exit
 * code. A verdict is printed only at the size the budget names (p99 at 100 Pods, ratios at 1,000);
 * at other sizes the ratios are printed for information.
 */
import type { Machine } from './cluster.ts';
import type { CounterDelta, RequestCount } from './prom.ts';
import { ratio, type SkewSummary } from './stats.ts';

export type ScenarioName =
  'bare' | 'operator-status' | 'operator-postgres' | 'cronjob-default' | 'cronjob-raised';

export const scenarioTitles: Readonly<Record<ScenarioName, string>> = {
  bare: 'bare client (physical limit)',
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
  /** The operator's own ssj_tick_skew_seconds over the run: count and mean. */
  readonly operatorSkew?: { readonly count: number; readonly meanSeconds: number };
  readonly notes: readonly string[];
}

export interface MemoryFigures {
  readonly jobs: number;
  readonly observed: number;
  readonly rssMiB: number;
  readonly hwmMiB: number;
  readonly heapUsedMiB: number | undefined;
  readonly notes: readonly string[];
}

export interface Failure {
  readonly scenario: string;
  readonly n: number;
  readonly error: string;
}

export interface Report {
  readonly startedAt: string;
  readonly command: string;
  readonly machine: Machine;
  readonly workers: number;
  readonly runs: readonly RunFigures[];
  readonly memory: MemoryFigures | undefined;
  readonly failures: readonly Failure[];
}

const seconds = (ms: number | undefined): string => (ms === undefined ? '—' : (ms / 1000).toFixed(3));
const fixed = (x: number | undefined, digits = 1): string => (x === undefined ? '—' : x.toFixed(digits));

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

/** The last Pod's time, or the wait as a lower bound when the run did not complete. */
function lastPod(r: RunFigures | undefined): { ms: number; exact: boolean } | undefined {
  if (r === undefined) return undefined;
  if (r.complete && r.skew !== undefined) return { ms: r.skew.max, exact: true };
  return { ms: r.waitedMs, exact: false };
}

function verdict(ok: boolean | undefined, applies: boolean): string {
  if (!applies || ok === undefined) return '';
  return ok ? ' — budget met' : ' — budget MISSED';
}

/** The budget lines of DESIGN.md for one size. */
export function formatComparisons(runs: readonly RunFigures[], n: number): string[] {
  const find = (s: ScenarioName): RunFigures | undefined => runs.find((r) => r.scenario === s && r.n === n);
  const bare = lastPod(find('bare'));
  const lines: string[] = [];
  for (const op of ['operator-status', 'operator-postgres'] as const) {
    const run = find(op);
    if (run === undefined) continue;
    const title = scenarioTitles[op];
    if (run.skew !== undefined) {
      const ok = run.complete && run.skew.p99 < 1000;
      lines.push(
        `N=${n} ${title}: p99 skew ${seconds(run.skew.p99)} s (budget < 1 s at 100)${verdict(ok, n === 100)}`,
      );
    }
    const last = lastPod(run);
    if (last !== undefined && bare?.exact === true) {
      const r = ratio(last.ms, bare.ms);
      const shown = `${last.exact ? '' : '> '}${fixed(r, 2)}×`;
      lines.push(
        `N=${n} ${title}: last Pod / bare client last Pod = ${seconds(last.ms)} / ${seconds(bare.ms)} s = ${shown} ` +
          `(budget ≤ 1.25× at 1000)${verdict(last.exact && r !== undefined && r <= 1.25, n === 1000)}`,
      );
    }
    for (const cron of ['cronjob-default', 'cronjob-raised'] as const) {
      const c = lastPod(find(cron));
      if (c === undefined || last === undefined || !last.exact) continue;
      const r = ratio(c.ms, last.ms);
      const shown = `${c.exact ? '' : '> '}${fixed(r, 2)}×`;
      const budget = cron === 'cronjob-default' ? ' (budget ≥ 2× at 1000)' : ' (reported)';
      const ok = r !== undefined && r >= 2;
      lines.push(
        `N=${n} ${title} vs ${scenarioTitles[cron]}: CronJob last Pod / operator last Pod = ` +
          `${c.exact ? '' : '> '}${seconds(c.ms)} / ${seconds(last.ms)} s = ${shown}${budget}` +
          verdict(ok, n === 1000 && cron === 'cronjob-default'),
      );
    }
  }
  return lines;
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
  return [
    ...memory,
    ...counters,
    ...(r.api === undefined ? [] : [line('operator', r.api)]),
    ...(r.apiServer === undefined ? [] : [line('API server (cluster-wide)', r.apiServer)]),
  ];
}

export function formatMemory(m: MemoryFigures): string {
  const ok = m.observed === m.jobs && m.rssMiB < 200;
  return (
    `memory, ${m.jobs} jobs (${m.observed} reconciled): VmRSS ${fixed(m.rssMiB)} MiB, VmHWM ${fixed(m.hwmMiB)} MiB, ` +
    `heap used ${fixed(m.heapUsedMiB)} MiB (budget RSS < 200 MiB)${ok ? ' — budget met' : ' — budget MISSED'}`
  );
}

export function formatReport(report: Report): string {
  const sizes = [...new Set(report.runs.map((r) => r.n))];
  const out = [
    `ssj-operator schedule-skew benchmark, ${report.startedAt}`,
    `command: ${report.command} (operator --workers ${report.workers}; bare client concurrency ${report.workers})`,
    formatMachine(report.machine),
    '',
    'Skew = Pod ADDED at an independent watcher − the tick; "max" is the last Pod. RSS (VmRSS) and peak RSS ' +
      '(VmHWM): the operator process at the end of the run.',
    '',
    formatTable(report.runs),
    '',
    ...sizes.flatMap((n) => formatComparisons(report.runs, n)),
  ];
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
  if (report.memory !== undefined)
    out.push('', formatMemory(report.memory), ...report.memory.notes.map((n) => `- ${n}`));
  if (report.failures.length > 0) {
    out.push(
      '',
      'scenarios that could not run:',
      ...report.failures.map((f) => `- ${f.scenario} N=${f.n}: ${f.error}`),
    );
  }
  return out.join('\n');
}

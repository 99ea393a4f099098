/**
 * `make bench`: the schedule-skew benchmark of DESIGN.md's performance budget.
 *
 * For each size N (SSJ_BENCH_SIZES, default 100,1000), in fresh namespaces and in this order:
 * baseline A (a bare client creating N Pods at a tick), baseline A′ (the same client writing the
 * status ledger's claim before each create: that ledger's floor), ssj-operator with the status ledger and
 * with the PostgreSQL ledger (N jobs due at one second), and baseline B (N CronJobs due at one
 * minute) at kube-controller-manager's default client rate limits and then with them raised.
 * Then, when asked: the fleet mode (SSJ_BENCH_FLEET=<N,...>, fleet.ts: jobs on one-minute
 * schedules for SSJ_BENCH_FLEET_SECONDS, default 300), the memory mode (SSJ_BENCH_MEMORY=<jobs>:
 * steady RSS and the peak after a burst of min(1000, jobs/10) jobs due at one second) and the idle
 * mode (SSJ_BENCH_IDLE=<jobs>: CPU over three windows of 60 s); memory and idle share one set-up when their N is
 * equal (many-jobs.ts). Every operator runs with the Deployment's NODE_OPTIONS.
 * Prints the machine, a table, the budget lines with their verdicts and the API request breakdown,
 * and writes them (text and JSON, with every Pod's skew) to .local/bench/.
 *
 * Environment: KUBECONFIG (default .local/kubeconfig); DATABASE_URL, a PostgreSQL server where
 * the benchmark may create and drop databases (default postgres://postgres@127.0.0.1:5432/postgres);
 * SSJ_BENCH_SIZES (`none` for no burst); SSJ_BENCH_WORKERS (operator workers and bare-client
 * concurrency, default 10); SSJ_BENCH_SCENARIOS (a comma-separated subset of bare,
 * bare-claim, operator-status, operator-postgres, cronjob-default, cronjob-raised; default all);
 * SSJ_BENCH_FLEET, SSJ_BENCH_FLEET_SECONDS, SSJ_BENCH_MEMORY, SSJ_BENCH_IDLE (default off).
 *
 * Exit code: 0 when every scenario ran, whether or not it met its budget (budgets are reported,
 * not asserted); 1 when a scenario could not run; 130/143 when interrupted. Whatever happens, the
 * operators it started are stopped, kube-controller-manager's default flags are restored and its
 * namespaces and databases are removed.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import {
  adminDatabaseUrl,
  deleteNamespace,
  describeMachine,
  errorText,
  leftoverNamespaces,
  loadKubeConfig,
  REPOSITORY_ROOT,
} from './cluster.ts';
import { bareCreateRate, runFleet } from './fleet.ts';
import { runManyJobs } from './many-jobs.ts';
import { deploymentNodeOptions, operatorBundle } from './operator-process.ts';
import {
  budgetLines,
  formatBreakdown,
  formatBudgetLine,
  formatFleet,
  formatIdle,
  formatMachine,
  formatMemory,
  formatReport,
  scenarioTitles,
  type Failure,
  type FleetFigures,
  type FleetReport,
  type ManyJobsFigures,
  type Report,
  type RunFigures,
  type ScenarioName,
} from './report.ts';
import { Resources } from './resources.ts';
import { runBareClient, runCronJobs, runOperator, type BenchContext } from './scenarios.ts';

const allScenarios: readonly ScenarioName[] = [
  'bare',
  'bare-claim',
  'operator-status',
  'operator-postgres',
  'cronjob-default',
  'cronjob-raised',
];

function envList(name: string, fallback: string): string[] {
  const raw = process.env[name];
  return (raw === undefined || raw.trim() === '' ? fallback : raw)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function positiveInt(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}: "${text}" is not a positive integer`);
  return n;
}

function optionalInt(name: string): number | undefined {
  const raw = process.env[name];
  return raw === undefined || raw === '' || raw === '0' ? undefined : positiveInt(name, raw);
}

interface Settings {
  readonly sizes: readonly number[];
  readonly workers: number;
  readonly scenarios: readonly ScenarioName[];
  readonly memoryJobs: number | undefined;
  readonly idleJobs: number | undefined;
  readonly fleetSizes: readonly number[];
  readonly fleetSeconds: number;
}

/** The memory mode's burst: 1,000 of 10,000 jobs (issue 9), a tenth at smaller N. */
const burstOf = (jobs: number): number => Math.min(1000, Math.floor(jobs / 10));
/** Three windows, so that one window's noise on a shared machine does not give the verdict alone. */
const IDLE = { windowSeconds: 60, windows: 3 } as const;

function settingsFromEnv(): Settings {
  const sizeList = envList('SSJ_BENCH_SIZES', '100,1000');
  const sizes =
    sizeList.length === 1 && (sizeList[0] === 'none' || sizeList[0] === '0')
      ? []
      : sizeList.map((s) => positiveInt('SSJ_BENCH_SIZES', s));
  const workers = positiveInt('SSJ_BENCH_WORKERS', process.env['SSJ_BENCH_WORKERS'] ?? '10');
  const scenarios = envList('SSJ_BENCH_SCENARIOS', allScenarios.join(',')).map((s) => {
    const found = allScenarios.find((a) => a === s);
    if (found === undefined)
      throw new Error(`SSJ_BENCH_SCENARIOS: unknown scenario "${s}" (${allScenarios.join(', ')})`);
    return found;
  });
  const fleetSizes = envList('SSJ_BENCH_FLEET', '').map((s) => positiveInt('SSJ_BENCH_FLEET', s));
  const fleetSeconds = positiveInt(
    'SSJ_BENCH_FLEET_SECONDS',
    process.env['SSJ_BENCH_FLEET_SECONDS'] ?? '300',
  );
  return {
    sizes,
    workers,
    scenarios,
    memoryJobs: optionalInt('SSJ_BENCH_MEMORY'),
    idleJobs: optionalInt('SSJ_BENCH_IDLE'),
    fleetSizes,
    fleetSeconds,
  };
}

function commandLine(settings: Settings): string {
  const knobs = [
    `SSJ_BENCH_SIZES=${settings.sizes.length === 0 ? 'none' : settings.sizes.join(',')}`,
    ...(settings.scenarios.length === allScenarios.length
      ? []
      : [`SSJ_BENCH_SCENARIOS=${settings.scenarios.join(',')}`]),
    ...(settings.fleetSizes.length === 0
      ? []
      : [
          `SSJ_BENCH_FLEET=${settings.fleetSizes.join(',')} SSJ_BENCH_FLEET_SECONDS=${settings.fleetSeconds}`,
        ]),
    ...(settings.memoryJobs === undefined ? [] : [`SSJ_BENCH_MEMORY=${settings.memoryJobs}`]),
    ...(settings.idleJobs === undefined ? [] : [`SSJ_BENCH_IDLE=${settings.idleJobs}`]),
  ];
  return `make bench (${knobs.join(' ')})`;
}

function log(line: string): void {
  process.stderr.write(`bench ${new Date().toISOString().slice(11, 23)} ${line}\n`);
}

async function runScenario(ctx: BenchContext, scenario: ScenarioName, n: number): Promise<RunFigures> {
  switch (scenario) {
    case 'bare':
      return runBareClient(ctx, n);
    case 'bare-claim':
      return runBareClient(ctx, n, 'claim');
    case 'operator-status':
      return runOperator(ctx, n, 'status');
    case 'operator-postgres':
      return runOperator(ctx, n, 'postgres');
    case 'cronjob-default':
      return runCronJobs(ctx, n, 'default');
    case 'cronjob-raised':
      return runCronJobs(ctx, n, 'raised');
    default: {
      const never: never = scenario;
      throw new Error(`unknown scenario ${String(never)}`);
    }
  }
}

async function main(): Promise<number> {
  const settings = settingsFromEnv();
  const kc = loadKubeConfig();
  const adminUrl = adminDatabaseUrl();
  const resources = new Resources();
  const ctx: BenchContext = { kc, workers: settings.workers, adminUrl, resources, log };

  // An object, so reads after awaits see what the handler set.
  const stop = { interrupted: false };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stop.interrupted) return;
    stop.interrupted = true;
    log(`${signal}: stopping what the benchmark started`);
    void resources
      .release(kc, log, { wait: false })
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => {
    resources.killNow();
  });

  const machine = await describeMachine(kc, adminUrl);
  const nodeOptions = deploymentNodeOptions();
  const commit = currentCommit();
  const startedAt = new Date().toISOString();
  const command = commandLine(settings);
  process.stdout.write(
    `${command}\n${formatMachine(machine)}\noperator NODE_OPTIONS (config/manager/manager.yaml): ${nodeOptions}\n\n`,
  );

  const runs: RunFigures[] = [];
  const failures: Failure[] = [];
  const fleetRuns: FleetFigures[] = [];
  let bareRate: FleetReport['bareRate'];
  let memory: ManyJobsFigures | undefined;
  let idle: ManyJobsFigures | undefined;
  const attempt = async (what: string, n: number, work: () => Promise<void>): Promise<void> => {
    try {
      await work();
    } catch (error) {
      if (stop.interrupted) throw error;
      failures.push({ scenario: what, n, error: errorText(error) });
      log(`${what}, N=${n}: could not run: ${errorText(error)}`);
      await resources.release(kc, log, { wait: true });
    }
  };
  try {
    for (const ns of await leftoverNamespaces(kc)) {
      log(`deleting ${ns}, left by an interrupted run`);
      await deleteNamespace(kc, ns);
    }
    for (const n of settings.sizes) {
      for (const scenario of settings.scenarios) {
        log(`${scenarioTitles[scenario]}, N=${n}: starting`);
        await attempt(scenario, n, async () => {
          const run = await runScenario(ctx, scenario, n);
          runs.push(run);
          log(`${scenarioTitles[scenario]}, N=${n}: ${summaryLine(run)}`);
          for (const line of formatBreakdown(run)) log(line);
        });
      }
      for (const line of budgetLines(runs, n)) log(formatBudgetLine(line));
    }
    for (const n of settings.fleetSizes) {
      log(`fleet, N=${n}, ${settings.fleetSeconds} s: starting`);
      await attempt('fleet', n, async () => {
        fleetRuns.push(await runFleet(ctx, n, settings.fleetSeconds));
      });
    }
    if (settings.fleetSizes.length > 0) {
      await attempt('bare client create rate', 0, async () => {
        bareRate = await bareCreateRate(ctx, runs);
      });
      for (const line of formatFleet({ runs: fleetRuns, bareRate })) log(line);
    }
    const shared = settings.memoryJobs !== undefined && settings.memoryJobs === settings.idleJobs;
    if (settings.memoryJobs !== undefined) {
      const n = settings.memoryJobs;
      log(`memory, ${n} jobs${shared ? ' (and idle)' : ''}: starting`);
      await attempt('memory', n, async () => {
        memory = await runManyJobs(ctx, n, {
          burst: burstOf(n),
          idle: shared ? IDLE : undefined,
        });
        for (const line of formatMemory(memory)) log(line);
        if (shared) idle = memory;
      });
    }
    if (settings.idleJobs !== undefined && !shared) {
      const n = settings.idleJobs;
      log(`idle, ${n} jobs: starting`);
      await attempt('idle', n, async () => {
        idle = await runManyJobs(ctx, n, { idle: IDLE });
        for (const line of formatIdle(idle)) log(line);
      });
    }
  } finally {
    if (!stop.interrupted) await resources.release(kc, log, { wait: true });
  }

  const report: Report = {
    startedAt,
    command,
    commit,
    machine,
    workers: settings.workers,
    nodeOptions,
    entry: operatorBundle(),
    sizes: settings.sizes,
    runs,
    budgets: settings.sizes.flatMap((n) => budgetLines(runs, n)),
    ...(settings.fleetSizes.length === 0 ? {} : { fleet: { runs: fleetRuns, bareRate } }),
    ...(memory === undefined ? {} : { memory }),
    ...(idle === undefined ? {} : { idle }),
    failures,
  };
  const text = formatReport(report);
  process.stdout.write(`${text}\n`);
  const dir = `${REPOSITORY_ROOT}.local/bench`;
  mkdirSync(dir, { recursive: true });
  const stamp = startedAt.replace(/[:.]/g, '-');
  writeFileSync(`${dir}/skew-${stamp}.txt`, `${text}\n`);
  writeFileSync(`${dir}/skew-${stamp}.json`, `${JSON.stringify(report, null, 2)}\n`);
  log(`figures written to .local/bench/skew-${stamp}.{txt,json}`);
  return failures.length === 0 ? 0 : 1;
}

/** The commit measured, `+dirty` when the work tree has changes (as during development). */
function currentCommit(): string | undefined {
  try {
    const git = (...args: string[]): string =>
      execFileSync('git', args, { cwd: REPOSITORY_ROOT, encoding: 'utf8' }).trim();
    return git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain') === '' ? '' : '+dirty');
  } catch {
    return undefined;
  }
}

function summaryLine(r: RunFigures): string {
  const s = r.skew;
  const secs = (ms: number | undefined): string => (ms === undefined ? '—' : (ms / 1000).toFixed(3));
  return (
    `${r.seen}/${r.n} Pods${r.complete ? '' : ' (incomplete)'}, skew p50 ${secs(s?.p50)} s, p99 ${secs(s?.p99)} s, ` +
    `last ${secs(s?.max)} s` +
    (r.api === undefined ? '' : `, ${r.api.perRun.toFixed(2)} API requests/run`) +
    (r.memory === undefined ? '' : `, VmHWM ${r.memory.hwmMiB} MiB`)
  );
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);

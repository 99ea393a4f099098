/**
 * `make bench`: the schedule-skew benchmark of DESIGN.md's performance budget.
 *
 * For each size N (SSJ_BENCH_SIZES, default 100,1000), in fresh namespaces and in this order:
 * baseline A (a bare client creating N Pods at a tick), ssj-operator with the status ledger and
 * with the PostgreSQL ledger (N jobs due at one second), and baseline B (N CronJobs due at one
 * minute) at kube-controller-manager's default client rate limits and then with them raised.
 * With SSJ_BENCH_MEMORY=<jobs>, also the operator's memory with that many jobs.
 * Prints the machine, a table, the budget comparisons and the API request breakdown, and writes
 * them (text and JSON) to .local/bench/.
 *
 * Environment: KUBECONFIG (default .local/kubeconfig); DATABASE_URL, a PostgreSQL server where
 * the benchmark may create and drop databases (default postgres://postgres@127.0.0.1:5432/postgres);
 * SSJ_BENCH_SIZES; SSJ_BENCH_WORKERS (operator workers and bare-client concurrency, default 10);
 * SSJ_BENCH_SCENARIOS (a comma-separated subset of bare, operator-status, operator-postgres,
 * cronjob-default, cronjob-raised; default all); SSJ_BENCH_MEMORY (default off).
 *
 * Exit code: 0 when every scenario ran, whether or not it met its budget (budgets are reported,
 * not asserted); 1 when a scenario could not run; 130/143 when interrupted. Whatever happens, the
 * operators it started are stopped, kube-controller-manager's default flags are restored and its
 * namespaces and databases are removed.
 */
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
import {
  formatBreakdown,
  formatComparisons,
  formatMachine,
  formatMemory,
  formatReport,
  scenarioTitles,
  type Failure,
  type MemoryFigures,
  type Report,
  type RunFigures,
  type ScenarioName,
} from './report.ts';
import { Resources } from './resources.ts';
import { runBareClient, runCronJobs, runMemory, runOperator, type BenchContext } from './scenarios.ts';

const allScenarios: readonly ScenarioName[] = [
  'bare',
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

interface Settings {
  readonly sizes: readonly number[];
  readonly workers: number;
  readonly scenarios: readonly ScenarioName[];
  readonly memoryJobs: number | undefined;
}

function settingsFromEnv(): Settings {
  const sizes = envList('SSJ_BENCH_SIZES', '100,1000').map((s) => positiveInt('SSJ_BENCH_SIZES', s));
  const workers = positiveInt('SSJ_BENCH_WORKERS', process.env['SSJ_BENCH_WORKERS'] ?? '10');
  const scenarios = envList('SSJ_BENCH_SCENARIOS', allScenarios.join(',')).map((s) => {
    const found = allScenarios.find((a) => a === s);
    if (found === undefined)
      throw new Error(`SSJ_BENCH_SCENARIOS: unknown scenario "${s}" (${allScenarios.join(', ')})`);
    return found;
  });
  const memory = process.env['SSJ_BENCH_MEMORY'];
  const memoryJobs =
    memory === undefined || memory === '' || memory === '0'
      ? undefined
      : positiveInt('SSJ_BENCH_MEMORY', memory);
  return { sizes, workers, scenarios, memoryJobs };
}

function log(line: string): void {
  process.stderr.write(`bench ${new Date().toISOString().slice(11, 23)} ${line}\n`);
}

async function runScenario(ctx: BenchContext, scenario: ScenarioName, n: number): Promise<RunFigures> {
  switch (scenario) {
    case 'bare':
      return runBareClient(ctx, n);
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
  const startedAt = new Date().toISOString();
  const command =
    `make bench (SSJ_BENCH_SIZES=${settings.sizes.join(',')}` +
    (settings.memoryJobs === undefined ? '' : ` SSJ_BENCH_MEMORY=${settings.memoryJobs}`) +
    (settings.scenarios.length === allScenarios.length
      ? ''
      : ` SSJ_BENCH_SCENARIOS=${settings.scenarios.join(',')}`) +
    ')';
  process.stdout.write(`${command}\n${formatMachine(machine)}\n\n`);

  const runs: RunFigures[] = [];
  const failures: Failure[] = [];
  let memory: MemoryFigures | undefined;
  try {
    for (const ns of await leftoverNamespaces(kc)) {
      log(`deleting ${ns}, left by an interrupted run`);
      await deleteNamespace(kc, ns);
    }
    for (const n of settings.sizes) {
      for (const scenario of settings.scenarios) {
        log(`${scenarioTitles[scenario]}, N=${n}: starting`);
        try {
          const run = await runScenario(ctx, scenario, n);
          runs.push(run);
          log(`${scenarioTitles[scenario]}, N=${n}: ${summaryLine(run)}`);
          for (const line of formatBreakdown(run)) log(line);
        } catch (error) {
          if (stop.interrupted) throw error;
          failures.push({ scenario, n, error: errorText(error) });
          log(`${scenarioTitles[scenario]}, N=${n}: could not run: ${errorText(error)}`);
          await resources.release(kc, log, { wait: true });
        }
      }
      for (const line of formatComparisons(runs, n)) log(line);
    }
    if (settings.memoryJobs !== undefined) {
      log(`memory, ${settings.memoryJobs} jobs: starting`);
      try {
        memory = await runMemory(ctx, settings.memoryJobs);
        log(formatMemory(memory));
      } catch (error) {
        if (stop.interrupted) throw error;
        failures.push({ scenario: 'memory', n: settings.memoryJobs, error: errorText(error) });
        log(`memory: could not run: ${errorText(error)}`);
      }
    }
  } finally {
    if (!stop.interrupted) await resources.release(kc, log, { wait: true });
  }

  const report: Report = { startedAt, command, machine, workers: settings.workers, runs, memory, failures };
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

/**
 * The benchmark's scenarios. Each runs in a fresh namespace of its own, watched by the independent
 * watcher from before anything is created, and deletes the namespace (waiting until it is gone)
 * before it returns, whatever happened.
 *
 * - `runOperator`: N ScheduledSingletonJobs due at one second T; the operator is started after they
 *   exist and must have reconciled every one of them (status.observedGeneration caught up) at least
 *   two seconds before T, or the attempt is repeated with twice the lead time. Its API requests are
 *   counted from two seconds before T until it has been quiet for two seconds.
 * - `runBareClient`: baseline A, a separate process creating N Pods at T (bare-client.ts); in
 *   claim mode baseline A′, which writes the status ledger's claim before each create.
 * - `runCronJobs`: baseline B, N CronJobs due at the next whole minute T; kube-controller-manager's
 *   CronJob and Job controllers create the Pods. With raised limits, kube-controller-manager is
 *   restarted with them first and restored afterwards (after the namespace is gone).
 * The fleet, idle and memory modes (fleet.ts, many-jobs.ts) build on the helpers exported here.
 *
 * A scenario that cannot run (a process that does not start, a cluster that refuses) rejects; one
 * that runs but misses its budget resolves with the figures (an incomplete run says so).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { BatchV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import {
  apiServerMetrics,
  cpuMeter,
  createDatabase,
  createNamespace,
  deleteNamespace,
  inPool,
  podLister,
  processMemory,
  REPOSITORY_ROOT,
  restartControllerManager,
  singletonJobLister,
  type BurstCpu,
} from './cluster.ts';
import { startOperator, type OperatorProcess } from './operator-process.ts';
import { counterDeltas, requestDelta, sumOf, type Sample } from './prom.ts';
import type { RequestFigures, RunFigures, ScenarioName } from './report.ts';
import type { Resources } from './resources.ts';
import { summarize } from './stats.ts';
import { Arrivals, nowMs, Observed, ResumableWatch, sleep, waitUntil, type ObservedEvent } from './watch.ts';
import {
  cronJob,
  GROUP,
  jobName,
  minuteSchedule,
  minuteTickAfter,
  PLURAL,
  podName,
  secondsSchedule,
  secondTickAfter,
  singletonJob,
  VERSION,
} from './workloads.ts';

export interface BenchContext {
  readonly kc: KubeConfig;
  /** Operator workers, and the bare client's concurrency. */
  readonly workers: number;
  readonly adminUrl: string;
  readonly resources: Resources;
  readonly log: (line: string) => void;
}

export const RAISED_LIMITS = ['--kube-api-qps=1000', '--kube-api-burst=2000'] as const;

/** The operator's counters that show where its requests go. */
export const OPERATOR_COUNTERS = [
  'ssj_pod_creates_total',
  'ssj_status_writes_total',
  'ssj_reconcile_duration_seconds_count',
  'ssj_reconcile_errors_total',
  'ssj_workqueue_adds_total',
  'ssj_workqueue_retries_total',
];

/** When the request counters are read before a tick: early enough that parsing them is over by then. */
export const BEFORE_TICK_MS = 2000;
/** The CPU of a burst is counted from this long before the tick (cluster.ts cpuMeter). */
const CPU_FROM_MS = 100;

/** Starts counting a burst's CPU just before the tick; the function returned ends the count. */
async function burstCpuFrom(
  tickMs: number,
  client: { name: string; pid: number } | undefined,
): Promise<() => BurstCpu> {
  await sleep(tickMs - CPU_FROM_MS - Date.now());
  const fromMs = tickMs - Date.now();
  const end = cpuMeter(client);
  return () => ({ fromMs, ...end() });
}

/** Objects created at once while setting up (not measured). */
export const CREATE_CONCURRENCY = 20;

/** An attempt whose set-up did not finish in time before its tick: worth repeating with more lead. */
export class TooLate extends Error {
  override readonly name = 'TooLate';
}

export async function withRetries<T>(
  ctx: BenchContext,
  what: string,
  initialLeadMs: number,
  attempt: (leadMs: number) => Promise<T>,
): Promise<T> {
  let lead = initialLeadMs;
  for (let i = 1; ; i++) {
    try {
      return await attempt(lead);
    } catch (error) {
      if (!(error instanceof TooLate) || i >= 3) throw error;
      ctx.log(`${what}: ${error.message}; again with ${(lead * 2) / 1000} s of lead time`);
      lead *= 2;
    }
  }
}

export async function inNamespace<T>(
  ctx: BenchContext,
  prefix: string,
  body: (ns: string) => Promise<T>,
): Promise<T> {
  const ns = await createNamespace(ctx.kc, prefix);
  ctx.resources.namespaces.add(ns);
  try {
    return await body(ns);
  } finally {
    const started = Date.now();
    await deleteNamespace(ctx.kc, ns);
    ctx.resources.namespaces.delete(ns);
    ctx.log(`${ns}: deleted in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
}

export interface PodWatch {
  readonly arrivals: Arrivals;
  stop(): void;
}

/** `also` sees every event after the arrival is stamped (the fleet's Pod-status simulator). */
export async function watchPods(
  ctx: BenchContext,
  ns: string,
  also?: (event: ObservedEvent) => void,
): Promise<PodWatch> {
  const arrivals = new Arrivals();
  const watch = new ResumableWatch({
    kc: ctx.kc,
    path: `/api/v1/namespaces/${ns}/pods`,
    list: podLister(ctx.kc, ns),
    onEvent: (e) => {
      arrivals.record(e);
      also?.(e);
    },
    onProblem: ctx.log,
  });
  await watch.start();
  return {
    arrivals,
    stop: () => {
      watch.stop();
    },
  };
}

export interface JobWatch {
  readonly observed: Observed;
  stop(): void;
}

export async function watchJobs(ctx: BenchContext, ns: string): Promise<JobWatch> {
  const observed = new Observed();
  const watch = new ResumableWatch({
    kc: ctx.kc,
    path: `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`,
    list: singletonJobLister(ctx.kc, ns),
    onEvent: (e) => {
      observed.record(e);
    },
    onProblem: ctx.log,
  });
  await watch.start();
  return {
    observed,
    stop: () => {
      watch.stop();
    },
  };
}

/** Skew figures over the Pods `expected` accepts; notes on anything unexpected. */
function figures(
  scenario: ScenarioName,
  n: number,
  tickMs: number,
  arrivals: Arrivals,
  complete: boolean,
  waitedMs: number,
  expected: (name: string) => boolean,
  notes: string[],
): RunFigures {
  const offsets: number[] = [];
  let unexpected = 0;
  let fromList = 0;
  for (const [name, at] of arrivals.at) {
    if (!expected(name)) {
      unexpected++;
      continue;
    }
    if (at.fromList) fromList++;
    offsets.push(at.atMs - tickMs);
  }
  if (unexpected > 0) notes.push(`${unexpected} Pods with unexpected names (not counted)`);
  if (fromList > 0) notes.push(`${fromList} Pods first seen in a re-list after 410 Gone (stamped late)`);
  const early = offsets.filter((o) => o < 0).length;
  if (early > 0) notes.push(`${early} Pods arrived before the tick`);
  return {
    scenario,
    n,
    tick: new Date(tickMs).toISOString(),
    seen: offsets.length,
    complete,
    waitedMs,
    skew: summarize(offsets),
    offsetsMs: offsets.sort((a, b) => a - b).map((o) => Math.round(o * 10) / 10),
    notes,
  };
}

/** The Pod names the operator (and the bare client) must create at the tick, and no others. */
function expectedPods(n: number, tickSeconds: number): (name: string) => boolean {
  const names = new Set(Array.from({ length: n }, (_, i) => podName(jobName(i), tickSeconds)));
  return (name) => names.has(name);
}

export function requestFigures(
  metric: string,
  before: readonly Sample[],
  after: readonly Sample[],
  n: number,
): RequestFigures {
  const breakdown = requestDelta(metric, before, after);
  const total = breakdown.reduce((sum, b) => sum + b.count, 0);
  return { perRun: total / n, total, breakdown };
}

/** How long to wait after the tick for N Pods before calling a run incomplete. */
function arrivalDeadlineMs(n: number, perPodMs: number, floorMs: number): number {
  return Math.max(floorMs, n * perPodMs);
}

export async function createSingletonJobs(
  ctx: BenchContext,
  ns: string,
  n: number,
  schedule: string | ((i: number) => string),
  progress?: (created: number) => void,
): Promise<void> {
  const custom = ctx.kc.makeApiClient(CustomObjectsApi);
  let created = 0;
  await inPool(n, CREATE_CONCURRENCY, async (i) => {
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: PLURAL,
      body: singletonJob(jobName(i), typeof schedule === 'string' ? schedule : schedule(i)),
    });
    progress?.(++created);
  });
}

/** Polls the operator's metrics until its API request count and work queue have been still for 2 s. */
export async function untilQuiet(
  op: OperatorProcess,
  timeoutMs: number,
): Promise<{ samples: Sample[]; quiet: boolean }> {
  const deadline = Date.now() + timeoutMs;
  let samples = await op.scrape();
  let still = 0;
  while (Date.now() < deadline) {
    await sleep(500);
    const next = await op.scrape();
    const same = sumOf(next, 'ssj_api_requests_total') === sumOf(samples, 'ssj_api_requests_total');
    const idle = sumOf(next, 'ssj_workqueue_depth') === 0;
    samples = next;
    still = same && idle ? still + 1 : 0;
    if (still >= 4) return { samples, quiet: true };
  }
  return { samples, quiet: false };
}

export const mib = (kib: number): number => Math.round((kib / 1024) * 10) / 10;
export const bytesMiB = (bytes: number): number => mib(bytes / 1024);

export function runOperator(
  ctx: BenchContext,
  n: number,
  ledger: 'status' | 'postgres',
): Promise<RunFigures> {
  const scenario: ScenarioName = ledger === 'status' ? 'operator-status' : 'operator-postgres';
  return withRetries(ctx, `${scenario} N=${n}`, 20_000 + n * 40, (lead) =>
    operatorAttempt(ctx, n, ledger, scenario, lead),
  );
}

async function operatorAttempt(
  ctx: BenchContext,
  n: number,
  ledger: 'status' | 'postgres',
  scenario: ScenarioName,
  leadMs: number,
): Promise<RunFigures> {
  const db = ledger === 'postgres' ? await createDatabase(ctx.adminUrl) : undefined;
  if (db !== undefined) ctx.resources.databases.add(db);
  try {
    return await inNamespace(ctx, `ssj-bench-op-${ledger}-${n}`, async (ns) => {
      const pods = await watchPods(ctx, ns);
      const jobs = await watchJobs(ctx, ns);
      try {
        const t0 = Date.now();
        const tick = secondTickAfter(t0, leadMs);
        const tickMs = tick.getTime();
        const tickSeconds = tickMs / 1000;
        await createSingletonJobs(ctx, ns, n, secondsSchedule(tick));
        const t1 = Date.now();
        const op = await startOperator({ namespace: ns, workers: ctx.workers, databaseUrl: db?.url }, (o) =>
          ctx.resources.operators.add(o),
        );
        const notes: string[] = [];
        try {
          const t2 = Date.now();
          const settled = await waitUntil(() => jobs.observed.count >= n, tickMs - 2000 - Date.now());
          const t3 = Date.now();
          const setup =
            `set-up: ${n} jobs created in ${((t1 - t0) / 1000).toFixed(1)} s, operator ready in ` +
            `${((t2 - t1) / 1000).toFixed(1)} s, all jobs reconciled ${((t3 - t2) / 1000).toFixed(1)} s later`;
          ctx.log(`${scenario} N=${n}: ${setup}`);
          if (!settled) {
            throw new TooLate(`only ${jobs.observed.count}/${n} jobs reconciled 2 s before the tick`);
          }
          jobs.stop(); // its status events would compete with the Pod events for the watcher's time
          notes.push(`${setup}, ${((tickMs - t3) / 1000).toFixed(1)} s before the tick`);
          if (pods.arrivals.count > 0) notes.push(`${pods.arrivals.count} Pods existed before the tick`);

          await sleep(tickMs - BEFORE_TICK_MS - Date.now());
          const [before, serverBefore] = await Promise.all([op.scrape(), apiServerMetrics(ctx.kc)]);
          if (Date.now() > tickMs - 500)
            notes.push('reading the metrics before the tick ended less than 0.5 s before it');
          const cpu = await burstCpuFrom(tickMs, { name: 'ssj-operator', pid: op.pid });
          const waitMs = arrivalDeadlineMs(n, 200, 60_000);
          const complete = await waitUntil(() => pods.arrivals.count >= n, tickMs + waitMs - Date.now());
          const waitedMs = nowMs() - tickMs;
          const burstCpu = cpu();
          const { samples: after, quiet } = await untilQuiet(op, 60_000 + n * 50);
          if (!quiet) notes.push('the operator was still busy when its requests were counted');
          const serverAfter = await apiServerMetrics(ctx.kc);
          const memory = processMemory(op.pid);
          if (memory !== undefined && memory.executable !== 'node') {
            notes.push(`memory read from ${memory.executable}, not node`);
          }
          const api = requestFigures('ssj_api_requests_total', before, after, n);
          if (api.total === 0) notes.push('the operator reported no API requests (ssj_api_requests_total)');
          const skewCount =
            sumOf(after, 'ssj_tick_skew_seconds_count') - sumOf(before, 'ssj_tick_skew_seconds_count');
          const skewSum =
            sumOf(after, 'ssj_tick_skew_seconds_sum') - sumOf(before, 'ssj_tick_skew_seconds_sum');
          const base = figures(
            scenario,
            n,
            tickMs,
            pods.arrivals,
            complete,
            waitedMs,
            expectedPods(n, tickSeconds),
            notes,
          );
          return {
            ...base,
            api,
            operatorCounters: counterDeltas(OPERATOR_COUNTERS, before, after),
            burstCpu,
            apiServer: requestFigures('apiserver_request_total', serverBefore, serverAfter, n),
            ...(memory === undefined
              ? {}
              : {
                  memory: {
                    rssMiB: mib(memory.rssKiB),
                    hwmMiB: mib(memory.hwmKiB),
                    heapUsedMiB: bytesMiB(sumOf(after, 'nodejs_heap_size_used_bytes')),
                    heapTotalMiB: bytesMiB(sumOf(after, 'nodejs_heap_size_total_bytes')),
                    externalMiB: bytesMiB(sumOf(after, 'nodejs_external_memory_bytes')),
                  },
                }),
            ...(skewCount > 0
              ? { operatorSkew: { count: skewCount, meanSeconds: skewSum / skewCount } }
              : {}),
          };
        } finally {
          const problem = await op.stop();
          ctx.resources.operators.delete(op);
          if (problem !== undefined) ctx.log(`${scenario} N=${n}: ${problem} (log: ${op.logFile})`);
        }
      } finally {
        jobs.stop();
        pods.stop();
      }
    });
  } finally {
    if (db !== undefined) {
      await db.drop();
      ctx.resources.databases.delete(db);
    }
  }
}

/** `claim`: baseline A′, each create preceded by the status ledger's claim write (bare-client.ts). */
export function runBareClient(
  ctx: BenchContext,
  n: number,
  mode: 'create' | 'claim' = 'create',
): Promise<RunFigures> {
  const scenario: ScenarioName = mode === 'claim' ? 'bare-claim' : 'bare';
  // The claim mode writes every job's first status before it is ready: lead time for N writes.
  const leadMs = mode === 'claim' ? 10_000 + n * 20 : 10_000;
  return withRetries(ctx, `${scenario} N=${n}`, leadMs, (lead) => bareAttempt(ctx, n, scenario, lead));
}

async function bareAttempt(
  ctx: BenchContext,
  n: number,
  scenario: 'bare' | 'bare-claim',
  leadMs: number,
): Promise<RunFigures> {
  return inNamespace(ctx, `ssj-bench-${scenario}-${n}`, async (ns) => {
    const pods = await watchPods(ctx, ns);
    try {
      const tickMs = secondTickAfter(Date.now(), leadMs).getTime();
      const tickSeconds = tickMs / 1000;
      // No operator watches the namespace: the jobs are only there to be claimed.
      if (scenario === 'bare-claim') await createSingletonJobs(ctx, ns, n, secondsSchedule(new Date(tickMs)));
      const child = spawn(
        `${REPOSITORY_ROOT}e2e/toolchain/node`,
        [
          'e2e/bench/bare-client.ts',
          ns,
          String(tickSeconds),
          String(n),
          String(ctx.workers),
          ...(scenario === 'bare-claim' ? ['claim'] : []),
        ],
        { cwd: REPOSITORY_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      ctx.resources.children.add(child);
      // Filled in by the child's output; an object, so reads after awaits see the updates.
      const state: {
        ready: boolean;
        done?: { created: number; errors: string[]; cpuSeconds: number | undefined };
        stderr: string;
      } = {
        ready: false,
        stderr: '',
      };
      child.stderr.on('data', (chunk: Buffer) => {
        state.stderr += chunk.toString();
      });
      createInterface({ input: child.stdout }).on('line', (line) => {
        const msg = JSON.parse(line) as {
          ready?: boolean;
          done?: boolean;
          created?: number;
          errors?: string[];
          cpuSeconds?: number;
        };
        if (msg.ready === true) state.ready = true;
        if (msg.done === true)
          state.done = { created: msg.created ?? 0, errors: msg.errors ?? [], cpuSeconds: msg.cpuSeconds };
      });
      try {
        await waitUntil(() => state.ready || child.exitCode !== null, tickMs - 500 - Date.now());
        if (!state.ready) {
          if (child.exitCode !== null) {
            throw new Error(`the bare client exited (${child.exitCode}): ${state.stderr}`);
          }
          throw new TooLate('the bare client was not ready 0.5 s before the tick');
        }
        await sleep(tickMs - BEFORE_TICK_MS - Date.now());
        const serverBefore = await apiServerMetrics(ctx.kc);
        // The client reports its own CPU (it exits before /proc could be read).
        const cpu = await burstCpuFrom(tickMs, undefined);
        const waitMs = arrivalDeadlineMs(n, 200, 60_000);
        const complete = await waitUntil(() => pods.arrivals.count >= n, tickMs + waitMs - Date.now());
        const waitedMs = nowMs() - tickMs;
        const burstCpu = cpu();
        await waitUntil(() => child.exitCode !== null, 30_000);
        const code = child.exitCode ?? 'still running after 30 s';
        const serverAfter = await apiServerMetrics(ctx.kc);
        const notes: string[] = [];
        if (code !== 0)
          notes.push(`the bare client ended with ${String(code)}: ${state.stderr.slice(0, 300)}`);
        const result = state.done;
        if (result !== undefined && result.errors.length > 0) {
          notes.push(
            `the bare client's creates failed ${n - result.created} times: ${result.errors[0] ?? ''}`,
          );
        }
        return {
          ...figures(
            scenario,
            n,
            tickMs,
            pods.arrivals,
            complete,
            waitedMs,
            expectedPods(n, tickSeconds),
            notes,
          ),
          apiServer: requestFigures('apiserver_request_total', serverBefore, serverAfter, n),
          burstCpu:
            result?.cpuSeconds === undefined
              ? burstCpu
              : { ...burstCpu, processes: { 'bare client': result.cpuSeconds, ...burstCpu.processes } },
        };
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
        ctx.resources.children.delete(child);
      }
    } finally {
      pods.stop();
    }
  });
}

export async function runCronJobs(
  ctx: BenchContext,
  n: number,
  limits: 'default' | 'raised',
): Promise<RunFigures> {
  const scenario: ScenarioName = limits === 'default' ? 'cronjob-default' : 'cronjob-raised';
  if (limits === 'raised') {
    ctx.resources.kcmRaised = true;
    await restartControllerManager(RAISED_LIMITS);
  }
  try {
    return await withRetries(ctx, `${scenario} N=${n}`, 10_000 + n * 30, (lead) =>
      cronJobAttempt(ctx, n, scenario, lead),
    );
  } finally {
    if (limits === 'raised') {
      await restartControllerManager([]);
      ctx.resources.kcmRaised = false;
    }
  }
}

async function cronJobAttempt(
  ctx: BenchContext,
  n: number,
  scenario: ScenarioName,
  leadMs: number,
): Promise<RunFigures> {
  return inNamespace(ctx, `ssj-bench-${scenario}-${n}`, async (ns) => {
    const pods = await watchPods(ctx, ns);
    try {
      const t0 = Date.now();
      const tick = minuteTickAfter(t0, leadMs);
      const tickMs = tick.getTime();
      const batch = ctx.kc.makeApiClient(BatchV1Api);
      const schedule = minuteSchedule(tick);
      await inPool(n, CREATE_CONCURRENCY, (i) =>
        batch.createNamespacedCronJob({ namespace: ns, body: cronJob(jobName(i), schedule) }),
      );
      const t1 = Date.now();
      if (t1 > tickMs - 3000) {
        throw new TooLate(
          `creating ${n} CronJobs ended ${((tickMs - t1) / 1000).toFixed(1)} s before the tick`,
        );
      }
      const notes = [
        `set-up: ${n} CronJobs created in ${((t1 - t0) / 1000).toFixed(1)} s, ${((tickMs - t1) / 1000).toFixed(1)} s before the tick`,
      ];
      ctx.log(`${scenario} N=${n}: ${notes[0] ?? ''}; tick ${tick.toISOString()}`);
      await sleep(tickMs - BEFORE_TICK_MS - Date.now());
      const serverBefore = await apiServerMetrics(ctx.kc);
      // kube-controller-manager, the client here, is one of the cluster's processes.
      const cpu = await burstCpuFrom(tickMs, undefined);
      const waitMs = arrivalDeadlineMs(n, 600, 120_000);
      const complete = await waitUntil(() => pods.arrivals.count >= n, tickMs + waitMs - Date.now());
      const waitedMs = nowMs() - tickMs;
      const burstCpu = cpu();
      // The Job controller's status updates trail its Pod creates.
      await sleep(5000);
      const serverAfter = await apiServerMetrics(ctx.kc);
      return {
        ...figures(
          scenario,
          n,
          tickMs,
          pods.arrivals,
          complete,
          waitedMs,
          (name) => name.startsWith('bench-'),
          notes,
        ),
        apiServer: requestFigures('apiserver_request_total', serverBefore, serverAfter, n),
        burstCpu,
      };
    } finally {
      pods.stop();
    }
  });
}

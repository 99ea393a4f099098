/**
 * The fleet mode (SSJ_BENCH_FLEET): the operator's steady state. N ScheduledSingletonJobs, each on
 * a one-minute schedule at a spread second (job i fires at second i mod 60: `i%60 * * * * *`), run
 * by the operator with the PostgreSQL ledger and the burst scenario's flags, for a window of
 * SSJ_BENCH_FLEET_SECONDS (default 300).
 *
 * There is no kubelet: a Pod-status simulator in the benchmark's process marks each Pod Succeeded
 * one second after the watcher first sees it (FakeKubelet.succeed of e2e/support/kubelet.ts: a read
 * and a status write), so every run finishes, the operator records it and releases the finalizer,
 * and history cleanup deletes the old Pods, as in a real cluster.
 *
 * Guarantees:
 * - The window starts at a whole minute after every job was reconciled and at least 10 s of
 *   warm-up; the ticks due in it are [start, start + seconds). Skew is the watcher's ADDED time of
 *   a due tick's Pod minus its due second.
 * - Counters (the operator's ssj_api_requests_total and the API server's apiserver_request_total)
 *   and the operator's CPU (utime + stime) are read 1.5 s before the window's first tick and again
 *   exactly `seconds` later: the follow-up work of the ticks just before the window is counted, that
 *   of its last ticks is not, which evens out in a steady state. Per run = over the due ticks.
 * - Kept up: every due tick's Pod was seen (within 30 s after the window) and the ledger (plain SQL
 *   on its tables, not the operator's code) recorded none of the window's ticks as Missed or Skipped.
 *
 * Does not give: the simulator's requests broken down at the API server (they share the
 * benchmark's credentials); they are counted by the simulator itself (one read and one status
 * write per call, conflicts retried inside FakeKubelet not counted).
 */
import pg from 'pg';
import { FakeKubelet } from '../support/kubelet.ts';
import {
  apiServerMetrics,
  createDatabase,
  errorText,
  processCpuSeconds,
  processMemory,
  statusCode,
} from './cluster.ts';
import { startOperator } from './operator-process.ts';
import { counterDeltas, sumOf } from './prom.ts';
import type { FleetFigures, FleetReport, RunFigures } from './report.ts';
import {
  bytesMiB,
  createSingletonJobs,
  inNamespace,
  mib,
  OPERATOR_COUNTERS,
  requestFigures,
  runBareClient,
  watchJobs,
  watchPods,
  type BenchContext,
} from './scenarios.ts';
import { summarize } from './stats.ts';
import { sleep, waitUntil, type ObservedEvent } from './watch.ts';
import { jobName, minuteTickAfter, podName } from './workloads.ts';

/** How long after a Pod appears the simulator reports it Succeeded. */
const RUN_MS = 1000;
const BEFORE_WINDOW_MS = 1500;
const LATE_PODS_MS = 30_000;
const FLEET_COUNTERS = [...OPERATOR_COUNTERS, 'ssj_runs_total', 'ssj_ticks_not_run_total'];

/** Job i's schedule: every minute at second i mod 60 (6 fields, seconds first). */
export function fleetSchedule(i: number): string {
  return `${i % 60} * * * * *`;
}

/** Every (job, tick) due in [startSeconds, startSeconds + seconds), as the Pod name it must get. */
export function dueTicks(n: number, startSeconds: number, seconds: number): Map<string, number> {
  const due = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    for (let tick = startSeconds + (i % 60); tick < startSeconds + seconds; tick += 60) {
      due.set(podName(jobName(i), tick), tick);
    }
  }
  return due;
}

interface Simulator {
  onEvent(event: ObservedEvent): void;
  stop(): void;
  readonly counts: { reads: number; statusWrites: number; failures: number };
}

function podStatusSimulator(ctx: BenchContext, ns: string): Simulator {
  const kubelet = new FakeKubelet(ctx.kc);
  const handled = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();
  const counts = { reads: 0, statusWrites: 0, failures: 0 };
  let stopped = false;
  return {
    counts,
    onEvent(event) {
      const pod = event.object as ObservedEvent['object'] & {
        metadata?: { deletionTimestamp?: unknown };
        status?: { phase?: string };
      };
      const name = pod.metadata?.name;
      if (stopped || event.type === 'DELETED' || name === undefined || handled.has(name)) return;
      if (pod.metadata?.deletionTimestamp !== undefined || (pod.status?.phase ?? 'Pending') !== 'Pending')
        return;
      handled.add(name);
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (stopped) return;
        counts.reads++;
        counts.statusWrites++;
        kubelet.succeed(ns, name).catch((error: unknown) => {
          counts.failures++;
          if (statusCode(error) !== 404) ctx.log(`fleet simulator: ${name}: ${errorText(error)}`);
        });
      }, RUN_MS);
      timers.add(timer);
    },
    stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}

/** Outcomes of the window's runs and its ticks not run, read with plain SQL from the ledger's tables. */
async function ledgerOutcomes(
  url: string,
  ns: string,
  from: Date,
  to: Date,
): Promise<{ outcomes: Record<string, number>; notRun: number }> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const runs = await client.query<{ outcome: string; count: string }>(
      `SELECT coalesce(outcome, state) AS outcome, count(*) AS count FROM ssj.runs
        WHERE namespace = $1 AND tick >= $2 AND tick < $3 GROUP BY 1 ORDER BY 1`,
      [ns, from, to],
    );
    const notRun = await client.query<{ count: string }>(
      `SELECT coalesce(sum(count), 0) AS count FROM ssj.ticks_not_run
        WHERE namespace = $1 AND last_tick >= $2 AND first_tick < $3`,
      [ns, from, to],
    );
    return {
      outcomes: Object.fromEntries(runs.rows.map((r) => [r.outcome, Number(r.count)])),
      notRun: Number(notRun.rows[0]?.count ?? 0),
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function runFleet(ctx: BenchContext, n: number, seconds: number): Promise<FleetFigures> {
  const db = await createDatabase(ctx.adminUrl);
  ctx.resources.databases.add(db);
  try {
    return await inNamespace(ctx, `ssj-bench-fleet-${n}`, async (ns) => {
      const simulator = podStatusSimulator(ctx, ns);
      const pods = await watchPods(ctx, ns, (e) => {
        simulator.onEvent(e);
      });
      const jobs = await watchJobs(ctx, ns);
      try {
        const t0 = Date.now();
        await createSingletonJobs(ctx, ns, n, fleetSchedule);
        const op = await startOperator({ namespace: ns, workers: ctx.workers, databaseUrl: db.url }, (o) =>
          ctx.resources.operators.add(o),
        );
        try {
          const notes: string[] = [];
          const all = await waitUntil(() => jobs.observed.count >= n, 120_000 + n * 200);
          jobs.stop(); // its status events, one a run, would compete with the Pod events
          if (!all) notes.push(`only ${jobs.observed.count}/${n} jobs reconciled before the window`);
          const start = minuteTickAfter(Date.now(), 10_000);
          const startMs = start.getTime();
          notes.push(
            `set-up: ${n} jobs created and the operator started in ${((Date.now() - t0) / 1000).toFixed(1)} s; ` +
              `window ${start.toISOString()} + ${seconds} s`,
          );
          ctx.log(`fleet N=${n}: window ${start.toISOString()} + ${seconds} s`);
          const due = dueTicks(n, startMs / 1000, seconds);

          await sleep(startMs - BEFORE_WINDOW_MS - Date.now());
          const cpu0 = processCpuSeconds(op.pid);
          const [before, serverBefore] = await Promise.all([op.scrape(), apiServerMetrics(ctx.kc)]);
          const simBefore = { ...simulator.counts };
          await sleep(startMs - BEFORE_WINDOW_MS + seconds * 1000 - Date.now());
          const cpu1 = processCpuSeconds(op.pid);
          const [after, serverAfter] = await Promise.all([op.scrape(), apiServerMetrics(ctx.kc)]);
          const simAfter = { ...simulator.counts };
          const memory = processMemory(op.pid);
          if (cpu0 === undefined || cpu1 === undefined) throw new Error(`cannot read /proc/${op.pid}/stat`);

          const seenDue = (): number => [...due.keys()].filter((p) => pods.arrivals.at.has(p)).length;
          await waitUntil(() => seenDue() >= due.size, startMs + seconds * 1000 + LATE_PODS_MS - Date.now());
          const offsets: number[] = [];
          for (const [name, tick] of due) {
            const at = pods.arrivals.at.get(name);
            if (at !== undefined) offsets.push(at.atMs - tick * 1000);
          }
          let ledger = { outcomes: {} as Record<string, number>, notRun: 0 };
          try {
            ledger = await ledgerOutcomes(db.url, ns, start, new Date(startMs + seconds * 1000));
          } catch (error) {
            notes.push(`the ledger could not be read: ${errorText(error)}`);
          }
          const api = requestFigures('ssj_api_requests_total', before, after, due.size);
          const cpuSeconds = cpu1 - cpu0;
          return {
            n,
            windowStart: start.toISOString(),
            windowSeconds: seconds,
            due: due.size,
            seen: offsets.length,
            notRun: ledger.notRun,
            outcomes: ledger.outcomes,
            keptUp: offsets.length === due.size && ledger.notRun === 0,
            skew: summarize(offsets),
            offsetsMs: offsets.sort((a, b) => a - b).map((o) => Math.round(o * 10) / 10),
            api,
            apiServer: requestFigures('apiserver_request_total', serverBefore, serverAfter, due.size),
            simulator: {
              reads: simAfter.reads - simBefore.reads,
              statusWrites: simAfter.statusWrites - simBefore.statusWrites,
              failures: simAfter.failures - simBefore.failures,
            },
            operatorCounters: counterDeltas(FLEET_COUNTERS, before, after),
            cpuSeconds,
            cpuSecondsPerRun: cpuSeconds / Math.max(1, due.size),
            memory:
              memory === undefined
                ? undefined
                : {
                    rssMiB: mib(memory.rssKiB),
                    hwmMiB: mib(memory.hwmKiB),
                    heapUsedMiB: bytesMiB(sumOf(after, 'nodejs_heap_size_used_bytes')),
                  },
            notes,
          };
        } finally {
          simulator.stop();
          const problem = await op.stop();
          ctx.resources.operators.delete(op);
          if (problem !== undefined) ctx.log(`fleet N=${n}: ${problem} (log: ${op.logFile})`);
        }
      } finally {
        simulator.stop();
        jobs.stop();
        pods.stop();
      }
    });
  } finally {
    await db.drop();
    ctx.resources.databases.delete(db);
  }
}

const DEDICATED_BARE_PODS = 200;

/**
 * The bare client's create rate: from the largest burst bare-client run of this benchmark, or, when
 * there is none, from a dedicated burst of DEDICATED_BARE_PODS Pods.
 */
export async function bareCreateRate(
  ctx: BenchContext,
  runs: readonly RunFigures[],
): Promise<FleetReport['bareRate']> {
  const bare = runs
    .filter((r) => r.scenario === 'bare' && r.complete && r.skew?.perSecond !== undefined)
    .sort((a, b) => b.n - a.n)[0];
  if (bare?.skew?.perSecond !== undefined) {
    return { podsPerSecond: bare.skew.perSecond, source: `the burst bare-client run at N=${bare.n}` };
  }
  const run = await runBareClient(ctx, DEDICATED_BARE_PODS);
  if (run.skew?.perSecond === undefined) return undefined;
  return {
    podsPerSecond: run.skew.perSecond,
    source: `a dedicated ${DEDICATED_BARE_PODS}-Pod bare-client burst in this run`,
  };
}

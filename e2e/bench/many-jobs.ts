/**
 * The memory and idle modes: many ScheduledSingletonJobs on yearly schedules, created before the
 * operator starts (status ledger, the Deployment's heap flags), measured once the operator has
 * reconciled every one of them and is quiet.
 *
 * - first start: the operator that found every job new (a first status write and a template check
 *   for each), once it is quiet: VmRSS and VmHWM (/proc/<pid>/status) and V8's heap in use.
 * - steady: the same of the operator started next, on the same jobs: the process that a deploy,
 *   a restart or a failover leaves, whose first pass finds every status written (ADR 0019). The
 *   idle and burst figures are this process's.
 * - idle (SSJ_BENCH_IDLE): the operator's CPU seconds (utime + stime of /proc/<pid>/stat) over
 *   consecutive windows in which the benchmark sends it nothing (no scrape), as % of one core.
 * - burst (SSJ_BENCH_MEMORY): `burst` of the jobs are edited to be due at one second T; VmRSS is
 *   sampled every 200 ms from the edit until the operator is quiet again, and VmRSS/VmHWM are read
 *   then. An edit's ticks are walked from the moment of the edit (DESIGN.md), so nothing else fires.
 *
 * One run can serve both modes (same N): idle is measured first, before the burst disturbs it.
 * Does not give: a skew figure for the burst worth quoting (the jobs were just edited and the
 * operator holds 10,000 others; the burst scenario measures skew).
 */
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { inPool, processCpuSeconds, processMemory } from './cluster.ts';
import { startOperator, type OperatorProcess } from './operator-process.ts';
import type { ManyJobsFigures, ProcessMemory } from './report.ts';
import {
  bytesMiB,
  CREATE_CONCURRENCY,
  createSingletonJobs,
  inNamespace,
  mib,
  untilQuiet,
  watchJobs,
  watchPods,
  type BenchContext,
  type JobWatch,
  type PodWatch,
} from './scenarios.ts';
import { sumOf } from './prom.ts';
import { nowMs, sleep, waitUntil } from './watch.ts';
import { GROUP, jobName, PLURAL, podName, secondsSchedule, secondTickAfter, VERSION } from './workloads.ts';

export interface ManyJobsOptions {
  /** Idle CPU sampling, in consecutive windows; undefined: no idle figure. */
  readonly idle?: { readonly windowSeconds: number; readonly windows: number } | undefined;
  /** Jobs made due at one second after the steady figure; undefined or 0: no burst. */
  readonly burst?: number | undefined;
}

const RECONCILE_TIMEOUT_MS = 1_800_000;

export function runManyJobs(
  ctx: BenchContext,
  n: number,
  options: ManyJobsOptions,
): Promise<ManyJobsFigures> {
  return inNamespace(ctx, `ssj-bench-many-${n}`, async (ns) => {
    const jobs = await watchJobs(ctx, ns);
    const pods = await watchPods(ctx, ns);
    try {
      const t0 = Date.now();
      await createSingletonJobs(ctx, ns, n, '@yearly', (created) => {
        if (created % 1000 === 0) ctx.log(`many jobs: ${created}/${n} created`);
      });
      const t1 = Date.now();
      const start = (): Promise<OperatorProcess> =>
        startOperator({ namespace: ns, workers: ctx.workers }, (o) => ctx.resources.operators.add(o));
      let op = await start();
      try {
        const memoryOf = (heapBytes: number | undefined): ProcessMemory => {
          const m = processMemory(op.pid);
          if (m === undefined) throw new Error(`cannot read /proc/${op.pid}/status`);
          return {
            rssMiB: mib(m.rssKiB),
            hwmMiB: mib(m.hwmKiB),
            heapUsedMiB: heapBytes === undefined || heapBytes === 0 ? undefined : bytesMiB(heapBytes),
          };
        };
        const t2 = Date.now();
        const all = await waitUntil(() => jobs.observed.count >= n, RECONCILE_TIMEOUT_MS);
        const t3 = Date.now();
        const first = await untilQuiet(op, 120_000);
        const firstStart = memoryOf(sumOf(first.samples, 'nodejs_heap_size_used_bytes'));
        const observed = jobs.observed.count;
        const notes = [
          `jobs created in ${((t1 - t0) / 1000).toFixed(1)} s, operator ready in ${((t2 - t1) / 1000).toFixed(1)} s, ` +
            `all reconciled ${((t3 - t2) / 1000).toFixed(1)} s later`,
        ];
        if (!all)
          notes.push(`only ${observed}/${n} jobs reconciled within ${RECONCILE_TIMEOUT_MS / 60_000} min`);
        if (!first.quiet) notes.push('the first operator was still busy when its memory was read');
        ctx.log(
          `many jobs, N=${n}: first start VmRSS ${firstStart.rssMiB} MiB, VmHWM ${firstStart.hwmMiB} MiB`,
        );

        // The next process on the same jobs: it leads once the first has released the Lease, and
        // its first pass is over once it has reconciled every job.
        const problem = await op.stop();
        ctx.resources.operators.delete(op);
        if (problem !== undefined) notes.push(`the first operator: ${problem}`);
        const t4 = Date.now();
        op = await start();
        const passBy = Date.now() + RECONCILE_TIMEOUT_MS;
        let passed = false;
        while (!(passed = sumOf(await op.scrape(), 'ssj_reconcile_duration_seconds_count') >= n)) {
          if (Date.now() > passBy) break;
          await sleep(500);
        }
        const t5 = Date.now();
        const { samples, quiet } = await untilQuiet(op, 120_000);
        const steady = memoryOf(sumOf(samples, 'nodejs_heap_size_used_bytes'));
        notes.push(
          `the next operator's start and first pass took ${((t5 - t4) / 1000).toFixed(1)} s; ` +
            `ssj_api_requests_total ${sumOf(samples, 'ssj_api_requests_total')} by then`,
        );
        if (!passed) notes.push(`the next operator did not reconcile all ${n} jobs`);
        if (!quiet) notes.push('the operator was still busy when its steady memory was read');
        ctx.log(`many jobs, N=${n}: steady VmRSS ${steady.rssMiB} MiB, VmHWM ${steady.hwmMiB} MiB`);

        let idle: ManyJobsFigures['idle'];
        if (options.idle !== undefined) {
          const requestsBefore = sumOf(await op.scrape(), 'ssj_api_requests_total');
          const cpuNow = (): number => {
            const cpu = processCpuSeconds(op.pid);
            if (cpu === undefined) throw new Error(`cannot read /proc/${op.pid}/stat`);
            return cpu;
          };
          const cpu0 = cpuNow();
          const w0 = nowMs();
          const windowPercents: number[] = [];
          let [cpu, w] = [cpu0, w0];
          for (let i = 0; i < options.idle.windows; i++) {
            await sleep(options.idle.windowSeconds * 1000);
            const [cpuEnd, wEnd] = [cpuNow(), nowMs()];
            windowPercents.push(((cpuEnd - cpu) / ((wEnd - w) / 1000)) * 100);
            [cpu, w] = [cpuEnd, wEnd];
          }
          const memory = memoryOf(undefined);
          const after = await op.scrape();
          const seconds = (w - w0) / 1000;
          const requests = sumOf(after, 'ssj_api_requests_total') - requestsBefore;
          if (requests > 0) notes.push(`the operator made ${requests} API requests during the idle window`);
          idle = {
            seconds: Math.round(seconds * 10) / 10,
            cpuSeconds: cpu - cpu0,
            percentOfCore: ((cpu - cpu0) / seconds) * 100,
            windowSeconds: options.idle.windowSeconds,
            windowPercents,
            memory: { ...memory, heapUsedMiB: bytesMiB(sumOf(after, 'nodejs_heap_size_used_bytes')) },
          };
          ctx.log(`many jobs, N=${n}: idle ${idle.percentOfCore.toFixed(2)} % of one core`);
        }

        let burst: ManyJobsFigures['burst'];
        const b = Math.min(options.burst ?? 0, n);
        if (b > 0) burst = await runBurst(ctx, ns, b, op, jobs, pods, notes);
        return {
          jobs: n,
          observed,
          firstStart,
          steady,
          ...(idle === undefined ? {} : { idle }),
          ...(burst === undefined ? {} : { burst }),
          notes,
        };
      } finally {
        const problem = await op.stop();
        ctx.resources.operators.delete(op);
        if (problem !== undefined) ctx.log(`many jobs: ${problem} (log: ${op.logFile})`);
      }
    } finally {
      jobs.stop();
      pods.stop();
    }
  });
}

async function runBurst(
  ctx: BenchContext,
  ns: string,
  b: number,
  op: OperatorProcess,
  jobs: JobWatch,
  pods: PodWatch,
  notes: string[],
): Promise<NonNullable<ManyJobsFigures['burst']>> {
  let peakKiB = 0;
  const sampler = setInterval(() => {
    peakKiB = Math.max(peakKiB, processMemory(op.pid)?.rssKiB ?? 0);
  }, 200);
  try {
    const custom = ctx.kc.makeApiClient(CustomObjectsApi);
    const tick = secondTickAfter(Date.now(), 20_000 + b * 40);
    const tickMs = tick.getTime();
    const edited = Array.from({ length: b }, (_, i) => jobName(i));
    const generations = new Map<string, number>();
    await inPool(b, CREATE_CONCURRENCY, async (i) => {
      const name = edited[i]!;
      const patched = (await custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace: ns,
          plural: PLURAL,
          name,
          body: { spec: { schedule: secondsSchedule(tick) } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )) as { metadata?: { generation?: number } };
      generations.set(name, patched.metadata?.generation ?? 0);
    });
    const reconciled = (): boolean =>
      edited.every((name) => (jobs.observed.observedGeneration(name) ?? 0) >= (generations.get(name) ?? 1));
    if (!(await waitUntil(reconciled, tickMs - 2000 - Date.now())))
      notes.push(`burst: not every edited job was reconciled 2 s before the tick ${tick.toISOString()}`);
    const expected = new Set(edited.map((name) => podName(name, tickMs / 1000)));
    const seenCount = (): number => [...expected].filter((p) => pods.arrivals.at.has(p)).length;
    const complete = await waitUntil(() => seenCount() >= b, tickMs + Math.max(60_000, b * 200) - Date.now());
    const arrivals = [...expected].flatMap((p) => {
      const at = pods.arrivals.at.get(p);
      return at === undefined ? [] : [at.atMs - tickMs];
    });
    const lastPodMs = complete ? Math.max(...arrivals) : nowMs() - tickMs;
    const { samples, quiet } = await untilQuiet(op, 120_000 + b * 50);
    if (!quiet) notes.push('burst: the operator was still busy when its memory was read');
    const m = processMemory(op.pid);
    if (m === undefined) throw new Error(`cannot read /proc/${op.pid}/status`);
    peakKiB = Math.max(peakKiB, m.rssKiB);
    const heap = sumOf(samples, 'nodejs_heap_size_used_bytes');
    return {
      jobs: b,
      tick: tick.toISOString(),
      seen: arrivals.length,
      complete,
      lastPodMs,
      peakRssMiB: mib(peakKiB),
      after: {
        rssMiB: mib(m.rssKiB),
        hwmMiB: mib(m.hwmKiB),
        heapUsedMiB: heap > 0 ? bytesMiB(heap) : undefined,
      },
    };
  } finally {
    clearInterval(sampler);
  }
}

/**
 * The operator's memory at 10,000 jobs (DESIGN.md, performance budget: RSS under 200 MiB, steady
 * and at the peak after a 1,000-job burst, with the Deployment's heap flags), and how it splits.
 *
 *   KUBECONFIG=.local/kubeconfig node e2e/bench/memory/measure.ts
 *
 * What it does, in order:
 * 1. Baselines, each a fresh Node.js with the same NODE_OPTIONS, after a full GC: bare Node, Node
 *    running a TypeScript file (type stripping loads its own compiler), and that importing
 *    @kubernetes/client-node.
 * 2. The operator as the image runs it (`node dist/bin/ssj-operator.mjs`, the bundle of `make build`;
 *    the Deployment's NODE_OPTIONS unless SSJ_MEM_NODE_OPTIONS is set) in an empty namespace: the
 *    idle process.
 * 3. The operator in the namespace `ssj-mem` holding SSJ_MEM_JOBS jobs (singletonJob() of
 *    e2e/bench/workloads.ts, on a yearly schedule), created 20 at a time if missing and kept for
 *    the next trial: once every job is reconciled and the process is quiet, the steady figure.
 * 4. SSJ_MEM_BURST of those jobs made due at one second: once all their Pods exist and the
 *    operator is quiet again, RSS and the burst's peak (VmHWM, reset before the burst). Then
 *    the burst is undone (schedules back, Pods deleted, which the operator records) so the
 *    namespace can be reused; a trial that did not finish is undone at the next one's start.
 * With SSJ_MEM_SNAPSHOT=1 it also takes a heap snapshot of the steady operator and prints what
 * the heap holds by constructor (./heap-snapshot.ts). SSJ_MEM_SKIP_BURST=1 skips step 4.
 * SSJ_MEM_IDLE_ONLY=1 stops after step 2. SSJ_MEM_DELETE=1 deletes the namespaces at the end.
 *
 * Like the rest of the benchmark it imports nothing from src/.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  createWriteStream,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { GROUP, LABEL_JOB, PLURAL, VERSION, secondsSchedule, singletonJob } from '../workloads.ts';
import { deploymentProcessEnv, metricsText, operatorBundle } from '../operator-process.ts';
import { summarizeHeapSnapshot } from './heap-snapshot.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;
const NAMESPACE = process.env['SSJ_MEM_NAMESPACE'] ?? 'ssj-mem';
const EMPTY_NAMESPACE = `${NAMESPACE}-empty`;
const JOBS = Number(process.env['SSJ_MEM_JOBS'] ?? 10_000);
const BURST = Number(process.env['SSJ_MEM_BURST'] ?? 1000);
const POOL = 20;
// Mid-June: never due while a trial runs.
const STEADY_SCHEDULE = '0 0 12 15 6 *';
const LOG_DIR = `${ROOT}.local/bench/memory`;
const MiB = 1024 * 1024;

const kc = new KubeConfig();
kc.loadFromFile(process.env['KUBECONFIG'] ?? `${ROOT}.local/kubeconfig`);
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);

const { NODE_OPTIONS: deploymentNodeOptions = '', ...deploymentEnv } = deploymentProcessEnv();

const NODE_OPTIONS = process.env['SSJ_MEM_NODE_OPTIONS'] ?? deploymentNodeOptions;
/** The manager container's other memory settings (MALLOC_ARENA_MAX), or SSJ_MEM_OPERATOR_ENV="K=V K=V". */
const OPERATOR_ENV: Record<string, string> =
  process.env['SSJ_MEM_OPERATOR_ENV'] === undefined
    ? deploymentEnv
    : Object.fromEntries(
        process.env['SSJ_MEM_OPERATOR_ENV']
          .split(' ')
          .filter((kv) => kv.includes('='))
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      );

interface ProcMemory {
  rssMiB: number;
  hwmMiB: number;
  anonMiB: number;
  fileMiB: number;
}

function procMemory(pid: number): ProcMemory {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (f: string): number => Number(new RegExp(`^${f}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    rssMiB: kib('VmRSS') / 1024,
    hwmMiB: kib('VmHWM') / 1024,
    anonMiB: kib('RssAnon') / 1024,
    fileMiB: kib('RssFile') / 1024,
  };
}

const f1 = (n: number): string => n.toFixed(1);

/** Resident anonymous memory split into glibc's brk heap ("[heap]": main-thread malloc) and the rest (V8's pages, thread arenas, mmap'd blocks). */
function anonSplit(pid: number): { brkMiB: number; mmapMiB: number } {
  let brk = 0;
  let mmap = 0;
  let name = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header !== null) {
      name = header[1] ?? '';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss === null) continue;
    if (name === '[heap]') brk += Number(rss[1]);
    else if (name === '') mmap += Number(rss[1]);
  }
  return { brkMiB: brk / 1024, mmapMiB: mmap / 1024 };
}

// ---------------------------------------------------------------------------------------------
// 1. Baselines.

function baseline(label: string, file: string, source: string): void {
  mkdirSync(LOG_DIR, { recursive: true });
  const path = `${LOG_DIR}/${file}`;
  writeFileSync(path, source);
  const out = spawnSync(process.execPath, ['--expose-gc', path], {
    cwd: ROOT,
    env: { ...process.env, ...OPERATOR_ENV, NODE_OPTIONS },
    encoding: 'utf8',
  });
  if (out.status !== 0) throw new Error(`${label}: ${out.stderr}`);
  console.log(`baseline ${label}: ${out.stdout.trim()}`);
}

const REPORT = `
const { readFileSync } = await import('node:fs');
globalThis.gc(); globalThis.gc();
const t = readFileSync('/proc/self/status', 'utf8');
const k = (f) => Number(new RegExp('^' + f + ':\\\\s+(\\\\d+)', 'm').exec(t)[1]) / 1024;
const m = process.memoryUsage();
console.log('VmRSS ' + k('VmRSS').toFixed(1) + ' MiB (anon ' + k('RssAnon').toFixed(1) + ', file ' + k('RssFile').toFixed(1) + '), heap used ' + (m.heapUsed / 2 ** 20).toFixed(1) + ' of ' + (m.heapTotal / 2 ** 20).toFixed(1) + ' MiB, external ' + (m.external / 2 ** 20).toFixed(1) + ' MiB');
`;

// ---------------------------------------------------------------------------------------------
// The operator process.

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => {
        resolve(port);
      });
    });
  });
}

class Operator {
  readonly child: ChildProcess;
  readonly metricsPort: number;
  started = false;
  readonly exited: Promise<void>;

  constructor(namespace: string, metricsPort: number, probesPort: number, extraFlags: readonly string[]) {
    this.metricsPort = metricsPort;
    mkdirSync(LOG_DIR, { recursive: true });
    const log = createWriteStream(`${LOG_DIR}/${namespace}.log`);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && k !== 'DATABASE_URL' && !k.startsWith('SSJ_')) env[k] = v;
    }
    env['NODE_OPTIONS'] = NODE_OPTIONS;
    Object.assign(env, OPERATOR_ENV);
    env['KUBECONFIG'] = process.env['KUBECONFIG'] ?? `${ROOT}.local/kubeconfig`;
    this.child = spawn(
      process.execPath,
      [
        ...extraFlags,
        operatorBundle(),
        `--namespace=${namespace}`,
        `--leader-election-namespace=${namespace}`,
        `--metrics-bind-address=127.0.0.1:${metricsPort}`,
        `--health-probe-bind-address=127.0.0.1:${probesPort}`,
      ],
      { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.exited = new Promise((resolve) => {
      this.child.once('exit', () => {
        resolve();
      });
    });
    const { stdout, stderr } = this.child;
    if (stdout === null || stderr === null) throw new Error('spawned without pipes');
    createInterface({ input: stdout }).on('line', (line) => {
      log.write(`${line}\n`);
      if (line.includes('"controller started"')) this.started = true;
    });
    createInterface({ input: stderr }).on('line', (line) => log.write(`stderr: ${line}\n`));
  }

  get pid(): number {
    const pid = this.child.pid;
    if (pid === undefined) throw new Error('operator has no pid');
    return pid;
  }

  async metrics(): Promise<Map<string, number>> {
    const samples = new Map<string, number>();
    for (const line of (await metricsText(`http://127.0.0.1:${this.metricsPort}/metrics`)).split('\n')) {
      if (line.startsWith('#') || line === '') continue;
      const i = line.lastIndexOf(' ');
      samples.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
    return samples;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(t);
  }
}

function sum(m: Map<string, number>, name: string): number {
  let s = 0;
  for (const [k, v] of m) if (k === name || k.startsWith(`${name}{`)) s += v;
  return s;
}

async function until(
  what: string,
  timeoutMs: number,
  check: () => boolean | Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2000);
  }
}

/** No queued key and no API request for `quietMs`. */
async function quiet(op: Operator, quietMs: number, timeoutMs: number): Promise<void> {
  let last = -1;
  let since = Date.now();
  await until('a quiet operator', timeoutMs, async () => {
    const m = await op.metrics();
    const requests = sum(m, 'ssj_api_requests_total');
    if (requests !== last || sum(m, 'ssj_workqueue_depth') > 0) {
      last = requests;
      since = Date.now();
      return false;
    }
    return Date.now() - since >= quietMs;
  });
}

async function figures(label: string, op: Operator): Promise<void> {
  const mem = procMemory(op.pid);
  const anon = anonSplit(op.pid);
  const m = await op.metrics();
  const spaces = [...m]
    .filter(([k]) => k.startsWith('nodejs_heap_space_size_used_bytes{'))
    .map(([k, v]) => `${/space="([^"]+)"/.exec(k)?.[1] ?? '?'} ${f1(v / MiB)}`)
    .join(', ');
  console.log(
    `${label}: VmRSS ${f1(mem.rssMiB)} MiB (anon ${f1(mem.anonMiB)}: malloc brk heap ${f1(anon.brkMiB)}, other anonymous mappings ${f1(anon.mmapMiB)}; file ${f1(mem.fileMiB)}), VmHWM ${f1(mem.hwmMiB)} MiB; ` +
      `heap used ${f1(sum(m, 'nodejs_heap_size_used_bytes') / MiB)} of ${f1(sum(m, 'nodejs_heap_size_total_bytes') / MiB)} MiB, ` +
      `external ${f1(sum(m, 'nodejs_external_memory_bytes') / MiB)} MiB; spaces used: ${spaces}`,
  );
}

async function startOperator(namespace: string, extraFlags: readonly string[] = []): Promise<Operator> {
  const op = new Operator(namespace, await freePort(), await freePort(), extraFlags);
  await until('the operator to start', 300_000, () => {
    if (op.child.exitCode !== null) throw new Error(`operator exited (${op.child.exitCode}); see ${LOG_DIR}`);
    return op.started;
  });
  return op;
}

// ---------------------------------------------------------------------------------------------
// The namespace's jobs.

async function ensureNamespace(name: string): Promise<void> {
  try {
    await core.readNamespace({ name });
  } catch {
    await core.createNamespace({ body: { metadata: { name } } });
  }
}

interface JobSummary {
  name: string;
  generation: number;
  observed: number;
  schedule: string;
}

async function listJobs(): Promise<JobSummary[]> {
  const out: JobSummary[] = [];
  let cont: string | undefined;
  do {
    const page = (await custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NAMESPACE,
      plural: PLURAL,
      limit: 1000,
      ...(cont === undefined ? {} : { _continue: cont }),
    })) as {
      items: {
        metadata: { name: string; generation: number };
        spec: { schedule: string };
        status?: { observedGeneration?: number };
      }[];
      metadata?: { continue?: string };
    };
    for (const j of page.items) {
      out.push({
        name: j.metadata.name,
        generation: j.metadata.generation,
        observed: j.status?.observedGeneration ?? 0,
        schedule: j.spec.schedule,
      });
    }
    cont = page.metadata?.continue || undefined;
  } while (cont !== undefined);
  return out;
}

const memJobName = (i: number): string => `mem-${String(i).padStart(5, '0')}`;

async function inPool<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: POOL }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        for (let attempt = 0; ; attempt++) {
          try {
            await fn(item);
            break;
          } catch (err) {
            if (attempt >= 5) throw err;
            await sleep(500 * (attempt + 1));
          }
        }
      }
    }),
  );
}

async function ensureJobs(): Promise<void> {
  const have = new Set((await listJobs()).map((j) => j.name));
  const missing = Array.from({ length: JOBS }, (_, i) => memJobName(i)).filter((n) => !have.has(n));
  if (missing.length === 0) return;
  const started = Date.now();
  console.log(`creating ${missing.length} jobs in ${NAMESPACE}, ${POOL} at a time`);
  await inPool(missing, async (name) => {
    try {
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NAMESPACE,
        plural: PLURAL,
        body: singletonJob(name, STEADY_SCHEDULE),
      });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
    }
  });
  console.log(`created in ${f1((Date.now() - started) / 1000)} s`);
}

async function setSchedule(names: readonly string[], schedule: string): Promise<void> {
  const patch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  await inPool(names, async (name) => {
    await custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace: NAMESPACE,
        plural: PLURAL,
        name,
        body: { spec: { schedule } },
      },
      patch,
    );
  });
}

async function podCount(): Promise<number> {
  const pods = await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: LABEL_JOB });
  return pods.items.length;
}

async function allReconciled(names?: ReadonlySet<string>): Promise<boolean> {
  const jobs = (await listJobs()).filter((j) => names === undefined || names.has(j.name));
  const behind = jobs.filter((j) => j.observed < j.generation).length;
  process.stdout.write(`  ${jobs.length - behind}/${jobs.length} reconciled\r`);
  return behind === 0 && jobs.length >= (names?.size ?? JOBS);
}

/** Back to the steady state after a trial that did not finish: steady schedules, no Pods. */
async function undoBurst(): Promise<void> {
  const off = (await listJobs()).filter((j) => j.schedule !== STEADY_SCHEDULE).map((j) => j.name);
  if (off.length > 0) await setSchedule(off, STEADY_SCHEDULE);
  if ((await podCount()) > 0) {
    await core.deleteCollectionNamespacedPod({ namespace: NAMESPACE, labelSelector: LABEL_JOB });
    await until('the burst Pods gone', 600_000, async () => (await podCount()) === 0);
  }
  if (off.length > 0) console.log(`undid an earlier burst: ${off.length} schedules`);
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  console.log(
    `NODE_OPTIONS=${JSON.stringify(NODE_OPTIONS)}, env ${JSON.stringify(OPERATOR_ENV)}; ${JOBS} jobs, burst ${BURST}; ${new Date().toISOString()}`,
  );
  console.log(`load average: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  baseline('bare node (.mjs)', 'bare.mjs', REPORT);
  baseline('type stripping (.ts)', 'bare.ts', REPORT);
  baseline(
    'import @kubernetes/client-node (.ts)',
    'client-node.ts',
    `await import('@kubernetes/client-node');\n${REPORT}`,
  );

  await ensureNamespace(EMPTY_NAMESPACE);
  const idle = await startOperator(EMPTY_NAMESPACE);
  await quiet(idle, 10_000, 120_000);
  await figures('idle operator, 0 jobs', idle);
  await idle.stop();
  if (process.env['SSJ_MEM_IDLE_ONLY'] === '1') return;

  await ensureNamespace(NAMESPACE);
  await ensureJobs();
  const snapshot = process.env['SSJ_MEM_SNAPSHOT'] === '1';
  const op = await startOperator(NAMESPACE, snapshot ? ['--heapsnapshot-signal=SIGUSR2'] : []);
  try {
    const t0 = Date.now();
    await undoBurst();
    await until('every job reconciled', 1_800_000, () => allReconciled());
    await quiet(op, 15_000, 600_000);
    console.log(`reconciled and quiet after ${f1((Date.now() - t0) / 1000)} s`);
    await figures(`steady, ${JOBS} jobs`, op);

    if (snapshot) {
      const before = new Set(readdirSync(ROOT).filter((f) => f.endsWith('.heapsnapshot')));
      op.child.kill('SIGUSR2');
      let file: string | undefined;
      await until('the heap snapshot', 300_000, async () => {
        file = readdirSync(ROOT).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
        // Written in place: wait until its size stops changing.
        if (file === undefined) return false;
        const a = statSync(`${ROOT}${file}`).size;
        await sleep(3000);
        return a > 1000 && statSync(`${ROOT}${file}`).size === a;
      });
      await sleep(5000);
      if (file !== undefined) {
        const { totalBytes, groups } = summarizeHeapSnapshot(`${ROOT}${file}`);
        console.log(`heap snapshot ${file}: ${f1(totalBytes / MiB)} MiB in nodes; the largest groups:`);
        for (const g of groups.slice(0, 25)) {
          console.log(
            `  ${g.type.padEnd(12)} ${g.name.slice(0, 40).padEnd(40)} ${String(g.count).padStart(9)} ${f1(g.selfBytes / MiB).padStart(7)} MiB`,
          );
        }
        rmSync(`${ROOT}${file}`, { force: true });
      }
      // The snapshot began with a full GC: heap used is now what is live.
      await figures('right after the heap snapshot', op);
      await quiet(op, 10_000, 120_000);
    }

    if (process.env['SSJ_MEM_SKIP_BURST'] !== '1' && BURST > 0) {
      const names = Array.from({ length: BURST }, (_, i) => memJobName(i));
      // VmHWM from here on is the burst's peak (proc(5), clear_refs); the start's own peak, the
      // list and first reconcile of every job, is printed above.
      writeFileSync(`/proc/${op.pid}/clear_refs`, '5');
      // Every job must have seen its new schedule before the tick: an edit seen later anchors
      // the schedule after the tick, and that job would not run.
      const tick = new Date(Math.ceil((Date.now() + 30_000 + BURST * 60) / 1000) * 1000);
      const patched = Date.now();
      await setSchedule(names, secondsSchedule(tick));
      await until('the burst jobs reconciled', 600_000, () => allReconciled(new Set(names)));
      const margin = tick.getTime() - Date.now();
      console.log(
        `burst: ${BURST} schedules patched and seen in ${f1((Date.now() - patched) / 1000)} s, ${f1(margin / 1000)} s before ${tick.toISOString()}`,
      );
      if (margin < 0) throw new Error('the burst jobs saw their schedule after the tick: raise the lead');
      await until(`${BURST} burst Pods`, 600_000, async () => (await podCount()) >= BURST);
      console.log(`burst: ${BURST} Pods ${f1((Date.now() - tick.getTime()) / 1000)} s after the tick`);
      await quiet(op, 15_000, 600_000);
      await figures(`after a ${BURST}-job burst`, op);

      // Undo, so the namespace serves the next trial.
      await setSchedule(names, STEADY_SCHEDULE);
      await core.deleteCollectionNamespacedPod({ namespace: NAMESPACE, labelSelector: LABEL_JOB });
      await until('the burst Pods gone', 600_000, async () => (await podCount()) === 0);
      await until('every job reconciled again', 600_000, () => allReconciled());
      await quiet(op, 15_000, 600_000);
      await figures('after the burst was undone', op);
    }
  } finally {
    await op.stop();
  }
  if (process.env['SSJ_MEM_DELETE'] === '1') {
    await core.deleteNamespace({ name: NAMESPACE });
    await core.deleteNamespace({ name: EMPTY_NAMESPACE });
  }
}

await main();

/**
 * The benchmark's dealings with the cluster and the machine: namespaces of its own (created with
 * their `default` ServiceAccount, deleted and waited for), bounded-concurrency creation, listers
 * for the watcher, kube-controller-manager restarts, PostgreSQL databases, and what the machine is.
 *
 * Every namespace carries the label `ssj.dev/bench=true`, so a run can delete what an interrupted
 * run left behind without touching anyone else's namespaces, and `ssj.dev/bench-pid`, the pid of
 * the benchmark that made it, so a run never deletes those of another benchmark still running
 * beside it (on a shared machine).
 */
import { execFile, execFileSync } from 'node:child_process';
import { request } from 'node:https';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  VersionApi,
  type V1Namespace,
} from '@kubernetes/client-node';
import pg from 'pg';
import { parseExposition, type Sample } from './prom.ts';
import type { Lister, KubeObject } from './watch.ts';
import { sleep } from './watch.ts';
import { GROUP, PLURAL, VERSION } from './workloads.ts';

const execFileAsync = promisify(execFile);

export const REPOSITORY_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BENCH_LABEL = 'ssj.dev/bench';
const BENCH_PID_LABEL = 'ssj.dev/bench-pid';

export function kubeconfigPath(): string {
  const fromEnv = process.env['KUBECONFIG'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : `${REPOSITORY_ROOT}.local/kubeconfig`;
}

export function loadKubeConfig(): KubeConfig {
  const path = kubeconfigPath();
  if (!existsSync(path))
    throw new Error(`no kubeconfig at ${path}: run \`make cluster-up\` or set KUBECONFIG`);
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export function statusCode(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

export function errorText(error: unknown): string {
  if (error instanceof ApiException) {
    const body = typeof error.body === 'string' ? error.body : JSON.stringify(error.body);
    return `HTTP ${String(error.code)}: ${body.slice(0, 300)}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Creates `<prefix>-<random>` and waits for its default ServiceAccount (Pods need it). */
export async function createNamespace(kc: KubeConfig, prefix: string): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  const body: V1Namespace = {
    metadata: { name, labels: { [BENCH_LABEL]: 'true', [BENCH_PID_LABEL]: String(process.pid) } },
  };
  await core.createNamespace({ body });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await core.readNamespacedServiceAccount({ namespace: name, name: 'default' });
      return name;
    } catch (error) {
      if (statusCode(error) !== 404) throw error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `namespace ${name} got no default ServiceAccount within 60 s: is kube-controller-manager running?`,
      );
    }
    await sleep(200);
  }
}

/** Asks for a namespace's deletion; false when it was already gone. */
export async function requestNamespaceDeletion(kc: KubeConfig, name: string): Promise<boolean> {
  try {
    await kc.makeApiClient(CoreV1Api).deleteNamespace({ name });
    return true;
  } catch (error) {
    if (statusCode(error) === 404) return false;
    throw error;
  }
}

/** The operator's tracking finalizer (DESIGN.md), restated: the benchmark imports nothing from src/. */
const RUN_RECORD_FINALIZER = 'ssj.dev/run-record';

/**
 * Removes the tracking finalizer from the namespace's Pods that are being deleted. Called once the
 * operators are stopped: nobody else would remove it, and the namespace would never go.
 */
async function releaseDeletedPods(kc: KubeConfig, namespace: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const list = await core.listNamespacedPod({ namespace });
  const held = list.items.filter(
    (p) =>
      p.metadata?.deletionTimestamp !== undefined &&
      (p.metadata.finalizers ?? []).includes(RUN_RECORD_FINALIZER),
  );
  await inPool(held.length, 20, async (i) => {
    const meta = held[i]?.metadata;
    const index = (meta?.finalizers ?? []).indexOf(RUN_RECORD_FINALIZER);
    try {
      await core.patchNamespacedPod({
        namespace,
        name: meta?.name ?? '',
        body: [
          { op: 'test', path: `/metadata/finalizers/${index}`, value: RUN_RECORD_FINALIZER },
          { op: 'remove', path: `/metadata/finalizers/${index}` },
        ],
      });
    } catch (error) {
      // Gone already, or its finalizers changed meanwhile: the next pass sees it again.
      if (statusCode(error) !== 404 && statusCode(error) !== 422) throw error;
    }
  });
}

/**
 * Deletes a namespace and waits until it is gone (so etcd is not still busy with it), releasing the
 * tracking finalizer of its Pods on the way (see releaseDeletedPods): call it with the namespace's
 * operator stopped.
 */
export async function deleteNamespace(kc: KubeConfig, name: string, timeoutMs = 600_000): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  if (!(await requestNamespaceDeletion(kc, name))) return;
  const deadline = Date.now() + timeoutMs;
  for (let pass = 0; ; pass++) {
    try {
      await core.readNamespace({ name });
    } catch (error) {
      if (statusCode(error) === 404) return;
      throw error;
    }
    if (pass % 4 === 1) await releaseDeletedPods(kc, name);
    if (Date.now() > deadline) throw new Error(`namespace ${name} was not gone within ${timeoutMs / 1000} s`);
    await sleep(500);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Namespaces an interrupted run left behind: those whose benchmark process is gone. */
export async function leftoverNamespaces(kc: KubeConfig): Promise<string[]> {
  const list = await kc.makeApiClient(CoreV1Api).listNamespace({ labelSelector: `${BENCH_LABEL}=true` });
  return list.items.flatMap((ns) => {
    const name = ns.metadata?.name;
    const pid = Number(ns.metadata?.labels?.[BENCH_PID_LABEL]);
    if (name === undefined || (Number.isInteger(pid) && pid !== process.pid && alive(pid))) return [];
    return [name];
  });
}

/**
 * Runs `task(0..count-1)` with at most `concurrency` at once. A task that fails with 429 or a 5xx,
 * or without a response, is retried with backoff (a loaded API server sheds load that way);
 * anything else, or a fifth failure, rejects.
 */
export async function inPool(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      for (let attempt = 1; ; attempt++) {
        try {
          await task(i);
          break;
        } catch (error) {
          const code = statusCode(error);
          const transient = code === undefined || code === 429 || code >= 500;
          if (!transient || attempt >= 5) throw error;
          await sleep(200 * 2 ** attempt);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
}

function continueOf(list: { metadata?: { _continue?: string } }): string | undefined {
  const token = list.metadata?._continue;
  return token === undefined || token === '' ? undefined : token;
}

export function podLister(kc: KubeConfig, namespace: string): Lister {
  const core = kc.makeApiClient(CoreV1Api);
  return async (token) => {
    const list = await core.listNamespacedPod({ namespace, limit: 500, _continue: token });
    return {
      items: list.items,
      resourceVersion: list.metadata?.resourceVersion ?? '',
      continueToken: continueOf(list),
    };
  };
}

interface UntypedList {
  readonly items?: KubeObject[];
  readonly metadata?: { resourceVersion?: string; _continue?: string; continue?: string };
}

export function singletonJobLister(kc: KubeConfig, namespace: string): Lister {
  const custom = kc.makeApiClient(CustomObjectsApi);
  return async (token) => {
    const list = (await custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace,
      limit: 500,
      _continue: token,
    })) as UntypedList;
    const next = list.metadata?.continue ?? list.metadata?._continue;
    return {
      items: list.items ?? [],
      resourceVersion: list.metadata?.resourceVersion ?? '',
      continueToken: next === undefined || next === '' ? undefined : next,
    };
  };
}

/** `e2e/cluster/kcm.sh restart [flags]`: resolves once the new process runs its controllers. */
export async function restartControllerManager(flags: readonly string[]): Promise<void> {
  await execFileAsync(`${REPOSITORY_ROOT}e2e/cluster/kcm.sh`, ['restart', ...flags], {
    cwd: REPOSITORY_ROOT,
    timeout: 120_000,
  });
}

/** A PostgreSQL database of the benchmark's own on the server `adminUrl` points at. */
export interface Database {
  readonly url: string;
  drop(): Promise<void>;
}

export function adminDatabaseUrl(): string {
  const fromEnv = process.env['DATABASE_URL'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : 'postgres://postgres@127.0.0.1:5432/postgres';
}

async function admin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function createDatabase(adminUrl: string): Promise<Database> {
  const name = `ssj_bench_${randomBytes(4).toString('hex')}`;
  await admin(adminUrl, (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    drop: async () => {
      if (dropped) return;
      dropped = true;
      await admin(adminUrl, (c) =>
        c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`),
      );
    },
  };
}

export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly kubernetes: string;
  readonly postgres: string | undefined;
  readonly loadAverage: readonly number[];
}

export async function describeMachine(kc: KubeConfig, adminUrl: string): Promise<Machine> {
  const version = await kc.makeApiClient(VersionApi).getCode();
  let postgres: string | undefined;
  try {
    postgres = await admin(adminUrl, async (c) => {
      const r = await c.query<{ server_version: string }>('SHOW server_version');
      return r.rows[0]?.server_version;
    });
  } catch {
    postgres = undefined;
  }
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    kubernetes: version.gitVersion,
    postgres,
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** VmRSS and VmHWM of a process, in KiB (from /proc/<pid>/status), and its executable's name. */
export function processMemory(
  pid: number,
): { rssKiB: number; hwmKiB: number; executable: string } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string): number =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return {
      rssKiB: field('VmRSS'),
      hwmKiB: field('VmHWM'),
      executable: basename(readlinkSync(`/proc/${pid}/exe`)),
    };
  } catch {
    return undefined;
  }
}

let clockTicks: number | undefined;

/** The kernel's clock ticks per second (`getconf CLK_TCK`), the unit of /proc/<pid>/stat times. */
function clockTicksPerSecond(): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return clockTicks;
}

/** CPU seconds a process has used, user plus system (utime + stime of /proc/<pid>/stat). */
export function processCpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return (utime + stime) / clockTicksPerSecond();
}

/** The local cluster's processes (`.local/cluster/<name>.pid`), by name; none for another cluster. */
const CLUSTER_PROCESSES = ['kube-apiserver', 'etcd', 'kube-controller-manager'] as const;

/**
 * Starts counting the CPU seconds of `client` (when the cluster's own processes do not include it)
 * and of the local cluster's processes; the function
 * returned reads them again and gives the difference, with the wall-clock seconds between. In a
 * burst on a small machine the client, the API server and etcd share the cores: this is where the
 * time went.
 */
export function cpuMeter(
  client: { readonly name: string; readonly pid: number } | undefined,
): () => Omit<BurstCpu, 'fromMs'> {
  const pids = new Map<string, number>(client === undefined ? [] : [[client.name, client.pid]]);
  for (const name of CLUSTER_PROCESSES) {
    const file = `${REPOSITORY_ROOT}.local/cluster/${name}.pid`;
    const pid = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : NaN;
    if (Number.isInteger(pid) && pid > 0 && !pids.has(name)) pids.set(name, pid);
  }
  const read = (): Map<string, number> => {
    const seconds = new Map<string, number>();
    for (const [name, pid] of pids) {
      const s = processCpuSeconds(pid);
      if (s !== undefined) seconds.set(name, s);
    }
    return seconds;
  };
  const startedAt = performance.now();
  const before = read();
  return () => {
    const after = read();
    const processes: Record<string, number> = {};
    for (const [name, s] of after) {
      const b = before.get(name);
      if (b !== undefined) processes[name] = s - b;
    }
    return { wallSeconds: (performance.now() - startedAt) / 1000, cores: availableParallelism(), processes };
  };
}

export interface BurstCpu {
  /** The window began this long before the tick. */
  readonly fromMs: number;
  readonly wallSeconds: number;
  /** The machine's cores (os.availableParallelism). */
  readonly cores: number;
  /** CPU seconds (user + system) of each process over the window. */
  readonly processes: Readonly<Record<string, number>>;
}

/**
 * The API server's own request counters (`apiserver_request_total`): a second, independent count
 * of what the operator sent. Cluster-wide: it includes every other client's requests too.
 */
export async function apiServerMetrics(kc: KubeConfig): Promise<Sample[]> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('kubeconfig has no current cluster');
  const url = new URL('/metrics', cluster.server);
  const options: Parameters<typeof request>[1] = { method: 'GET', timeout: 30_000 };
  await kc.applyToHTTPSOptions(options);
  const text = await new Promise<string>((resolve, reject) => {
    const req = request(url, options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        if (res.statusCode === 200) resolve(body);
        else reject(new Error(`GET /metrics on the API server: HTTP ${String(res.statusCode)}`));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('GET /metrics on the API server timed out')));
    req.on('error', reject);
    req.end();
  });
  return parseExposition(text).filter((s) => s.name === 'apiserver_request_total');
}

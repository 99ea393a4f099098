/**
 * The operator as the image runs it (`e2e/toolchain/node dist/bin/ssj-operator.mjs ...`, the bundle
 * `make build` writes, ADR 0017), as a child of the benchmark, watching one namespace, with its
 * metrics server on a free loopback port.
 *
 * Guarantees:
 * - `startOperator` resolves once the process has logged `controller started` (caches synced,
 *   workers running), its metrics server's bound address is known and it reports `ssj_leader 1`;
 *   otherwise it kills the process and rejects with the last lines of its output.
 * - The child's environment is the benchmark's minus `DATABASE_URL` and every `SSJ_*` variable
 *   (the benchmark's own knobs must not configure the operator), plus what the scenario sets, and
 *   `NODE_OPTIONS` and `MALLOC_ARENA_MAX` are the Deployment's (`deploymentProcessEnv`), read from
 *   config/manager/manager.yaml each run so the benchmark measures the heap the image runs with
 *   (with SSJ_BENCH_CPU_PROF=<dir>, plus `--cpu-prof` into that folder).
 * - `pid` is the Node.js process itself: `e2e/toolchain/node` execs node, so /proc/<pid>/status
 *   is the operator's memory.
 * - Throws at once when the bundle is missing (`make bench` builds it first).
 * - Its output goes to `.local/bench/logs/<namespace>.log`.
 * - `stop()` sends SIGTERM and waits up to 20 s, then SIGKILL; idempotent. `killNow()` is for
 *   exit handlers (synchronous SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseAllDocuments } from 'yaml';
import { kubeconfigPath, REPOSITORY_ROOT } from './cluster.ts';
import { parseExposition, sumOf, type Sample } from './prom.ts';
import { sleep, waitUntil } from './watch.ts';

export const LOG_DIR = `${REPOSITORY_ROOT}.local/bench/logs`;

/** The image's entry point (Dockerfile), relative to the repository: the bundle `make build` writes. */
export const OPERATOR_BUNDLE = 'dist/bin/ssj-operator.mjs';

/**
 * The file every operator of the benchmark runs: `OPERATOR_BUNDLE`, or with
 * SSJ_BENCH_ENTRY=src/main.ts the source (to compare the two in one hour). Throws when it is missing.
 */
export function operatorBundle(): string {
  const entry = process.env['SSJ_BENCH_ENTRY'] ?? OPERATOR_BUNDLE;
  if (!existsSync(`${REPOSITORY_ROOT}${entry}`)) {
    throw new Error(`${entry} is missing: run \`make build\` (make bench does)`);
  }
  return entry;
}

export const MANAGER_MANIFEST = 'config/manager/manager.yaml';

interface ManifestContainer {
  readonly name?: string;
  readonly env?: readonly { readonly name?: string; readonly value?: string }[];
}

/**
 * The `NODE_OPTIONS` of the manager container in config/manager/manager.yaml ('' when it sets
 * none). Throws when the manifest has no Deployment with that container: a benchmark that silently
 * ran with other heap flags would measure something the Deployment does not run.
 */
export function deploymentNodeOptions(path = `${REPOSITORY_ROOT}${MANAGER_MANIFEST}`): string {
  return deploymentProcessEnv(path)['NODE_OPTIONS'] ?? '';
}

/** The environment variables of the manager container that shape the process's memory. */
const PROCESS_ENV = ['NODE_OPTIONS', 'MALLOC_ARENA_MAX'];

/**
 * The manager container's NODE_OPTIONS and MALLOC_ARENA_MAX, as config/manager/manager.yaml sets
 * them (absent ones left out), so the benchmark's operator runs with the Deployment's memory settings.
 */
export function deploymentProcessEnv(path = `${REPOSITORY_ROOT}${MANAGER_MANIFEST}`): Record<string, string> {
  for (const doc of parseAllDocuments(readFileSync(path, 'utf8'))) {
    const manifest = doc.toJS() as {
      kind?: string;
      spec?: { template?: { spec?: { containers?: readonly ManifestContainer[] } } };
    } | null;
    if (manifest?.kind !== 'Deployment') continue;
    const container = manifest.spec?.template?.spec?.containers?.find((c) => c.name === 'manager');
    if (container === undefined) continue;
    const env: Record<string, string> = {};
    for (const e of container.env ?? [])
      if (e.name !== undefined && e.value !== undefined && PROCESS_ENV.includes(e.name))
        env[e.name] = e.value;
    return env;
  }
  throw new Error(`${path}: no Deployment with a container named manager`);
}

export interface OperatorOptions {
  readonly namespace: string;
  readonly workers: number;
  readonly databaseUrl?: string | undefined;
  /** The heap flags; `deploymentNodeOptions()` unless told. */
  readonly nodeOptions?: string;
  readonly startTimeoutMs?: number;
}

export class OperatorProcess {
  readonly logFile: string;
  private readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private metricsAddr: string | undefined;
  private started = false;
  private exitCode: number | null | undefined;
  private exitSignal: NodeJS.Signals | null = null;
  private readonly exited: Promise<void>;

  constructor(options: OperatorOptions) {
    mkdirSync(LOG_DIR, { recursive: true });
    this.logFile = `${LOG_DIR}/${options.namespace}.log`;
    // Appended: a mode that starts a second operator in the namespace keeps the first one's lines.
    const file = createWriteStream(this.logFile, { flags: 'a' });
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && k !== 'DATABASE_URL' && !k.startsWith('SSJ_')) env[k] = v;
    }
    env['KUBECONFIG'] = kubeconfigPath();
    if (options.databaseUrl !== undefined) env['DATABASE_URL'] = options.databaseUrl;
    const deployment = deploymentProcessEnv();
    Object.assign(env, deployment);
    env['NODE_OPTIONS'] = options.nodeOptions ?? deployment['NODE_OPTIONS'] ?? '';
    // SSJ_BENCH_CPU_PROF=<dir>: a V8 CPU profile of each operator, written when it exits
    // (summarized by e2e/bench/cpu-profile.ts).
    const profileDir = process.env['SSJ_BENCH_CPU_PROF'];
    if (profileDir !== undefined && profileDir !== '')
      env['NODE_OPTIONS'] = `${env['NODE_OPTIONS']} --cpu-prof --cpu-prof-dir=${profileDir}`.trim();
    this.child = spawn(
      `${REPOSITORY_ROOT}e2e/toolchain/node`,
      [
        operatorBundle(),
        `--namespace=${options.namespace}`,
        `--leader-election-namespace=${options.namespace}`,
        '--metrics-bind-address=127.0.0.1:0',
        '--health-probe-bind-address=127.0.0.1:0',
        `--workers=${options.workers}`,
      ],
      { cwd: REPOSITORY_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      });
    });
    const { stdout, stderr } = this.child;
    if (stdout === null || stderr === null) throw new Error('operator spawned without pipes');
    createInterface({ input: stdout }).on('line', (line) => {
      file.write(`${line}\n`);
      this.remember(line);
      this.parse(line);
    });
    createInterface({ input: stderr }).on('line', (line) => {
      file.write(`stderr: ${line}\n`);
      this.remember(`stderr: ${line}`);
    });
    void this.exited.then(() => file.end());
  }

  get pid(): number {
    const pid = this.child.pid;
    if (pid === undefined) throw new Error('the operator has no pid (it failed to spawn)');
    return pid;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** The last lines of output, for error messages. */
  tail(n = 15): string {
    return this.lines.slice(-n).join('\n');
  }

  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(this.started && this.metricsAddr !== undefined)) {
      if (!this.running)
        throw new Error(`the operator exited (${this.describeExit()}) before it started:\n${this.tail()}`);
      if (Date.now() > deadline)
        throw new Error(`the operator did not start within ${timeoutMs / 1000} s:\n${this.tail()}`);
      await sleep(100);
    }
    while (sumOf(await this.scrape(), 'ssj_leader') !== 1) {
      if (Date.now() > deadline)
        throw new Error(`the operator did not lead within ${timeoutMs / 1000} s:\n${this.tail()}`);
      await sleep(200);
    }
  }

  async scrape(): Promise<Sample[]> {
    if (this.metricsAddr === undefined) throw new Error('the metrics address is not known yet');
    return parseExposition(await metricsText(`http://${this.metricsAddr}/metrics`));
  }

  /** SIGTERM, then SIGKILL after 20 s. Resolves with a note when the exit was not clean. */
  async stop(): Promise<string | undefined> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const clean = await waitUntil(() => !this.running, 20_000);
      if (!clean) {
        this.child.kill('SIGKILL');
        await this.exited;
        return 'the operator did not exit within 20 s of SIGTERM and was killed';
      }
    }
    return this.exitCode === 0 ? undefined : `the operator exited with ${this.describeExit()}`;
  }

  killNow(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  private describeExit(): string {
    return this.exitSignal !== null ? `signal ${this.exitSignal}` : `code ${String(this.exitCode)}`;
  }

  private remember(line: string): void {
    this.lines.push(line);
    if (this.lines.length > 200) this.lines.splice(0, 100);
  }

  private parse(line: string): void {
    let entry: unknown;
    try {
      entry = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof entry !== 'object' || entry === null) return;
    const record = entry as Record<string, unknown>;
    if (record['msg'] === 'controller started') this.started = true;
    if (record['server'] === 'metrics' && typeof record['addr'] === 'string')
      this.metricsAddr = record['addr'];
  }
}

/** Spawns the operator and waits until it is ready (see OperatorProcess.waitReady). */
export async function startOperator(
  options: OperatorOptions,
  track: (op: OperatorProcess) => void,
): Promise<OperatorProcess> {
  const op = new OperatorProcess(options);
  track(op);
  try {
    await op.waitReady(options.startTimeoutMs ?? 90_000);
  } catch (error) {
    await op.stop();
    throw error;
  }
  return op;
}

/**
 * The body of an operator's /metrics. A request that fails without an answer is tried again, up
 * to three times: a kept-alive connection the server closes as it is reused fails with
 * ECONNRESET (seen here once during a first pass, which ended a 10-minute memory trial).
 */
export async function metricsText(url: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
      return await response.text();
    } catch (err) {
      if (attempt >= 3 || !(err instanceof TypeError)) throw err;
      await sleep(500);
    }
  }
}

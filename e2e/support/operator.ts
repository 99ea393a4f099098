/**
 * The operator as users run it: `e2e/toolchain/node src/main.ts ...`, a child process of the
 * test, watching the test's namespace only.
 *
 * Guarantees:
 * - `startOperator` resolves once the process has logged `controller started` (informers synced,
 *   workers running); it rejects, with the process's last output, if the process exits first or
 *   does not get there within the deadline (and then the process is killed).
 * - The child gets a clean environment: the test runner's `DATABASE_URL` and `SSJ_*` variables are
 *   never inherited, so a status-ledger test never talks to PostgreSQL by accident. Metrics and
 *   health servers bind to 127.0.0.1 port 0; the leader election namespace is the test's own, so
 *   no other operator on the cluster (`make dev`, another test) shares its Lease.
 * - Every stdout line is parsed as the JSON log line it should be (a line that is not JSON is
 *   kept with `msg` = the raw text), and, with stderr, copied to a log file under
 *   `.local/test-results/e2e-operator-logs/` for post-mortems.
 * - `stop()` sends SIGTERM and asserts exit code 0 (a clean shutdown is part of the contract);
 *   `kill()` sends SIGKILL (a crash); both are idempotent. Any operator still running when the test
 *   process exits is SIGKILLed, so none outlives the suite even when an `after` hook is skipped.
 *
 * - The process authenticates as the deployed ServiceAccount ssj-system/ssj-operator, with a
 *   TokenRequest token, never as admin, so a verb missing from config/rbac fails the test that
 *   needs it. Once per test process, config/rbac is applied (server-side) and the token minted;
 *   once per namespace, the leader-election Role and RoleBinding of config/rbac (read from it,
 *   not copied) are created in that namespace too, where these operators keep their Lease. The
 *   tests themselves keep the admin kubeconfig: they act as the user and as the kubelet. A
 *   `KUBECONFIG` in `options.env` (a test's private API server) is used as it is, unchanged.
 * - Several processes of one test (`Scenario.startReplica`) are replicas: they share the test's
 *   namespace and so its leader Lease, and elect one leader among them. `identity` is each
 *   one's holder identity (from its `joining the leader election` line), `metric(name)` reads a
 *   value from its metrics server (the address it logged), `signal('SIGSTOP')` and
 *   `signal('SIGCONT')` freeze and thaw it (a frozen process is thawed before `stop()`), and
 *   `receivedAt[i]` is the local time `logs[i]` arrived.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { KubeConfig } from '@kubernetes/client-node';
import { kubeconfigPath, kubectlPath, REPOSITORY_ROOT } from '../../test/support/kube.ts';
import { parseManifests } from '../../test/support/manifests.ts';

export interface OperatorOptions {
  /** The namespace watched (`--namespace`), also the leader election namespace. */
  readonly namespace: string;
  /** PostgreSQL ledger; unset = the status ledger. */
  readonly databaseUrl?: string | undefined;
  /** Extra environment variables (e.g. SSJ_FAULT_EXIT_AT). */
  readonly env?: Readonly<Record<string, string>>;
  /** Extra flags, after the defaults. */
  readonly args?: readonly string[];
  /** Deadline for `controller started`. */
  readonly startTimeoutMs?: number;
}

export interface LogLine {
  readonly level?: string;
  readonly msg: string;
  readonly time?: string;
  readonly [field: string]: unknown;
}

export interface ExitResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const NODE = join(REPOSITORY_ROOT, 'e2e/toolchain/node');
const MAIN = join(REPOSITORY_ROOT, 'src/main.ts');
const LOG_DIR = join(
  process.env['RESULTS_DIR'] ?? join(REPOSITORY_ROOT, '.local/test-results'),
  'e2e-operator-logs',
);

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

let sequence = 0;

export class OperatorProcess {
  readonly logs: LogLine[] = [];
  /** Local time (Date.now()) each line of `logs` arrived, index for index. */
  readonly receivedAt: number[] = [];
  readonly options: OperatorOptions;
  /** Local time the process was spawned. */
  readonly spawnedAt: Date;
  readonly logFile: string;
  private stderrText = '';
  private readonly child: ChildProcess;
  private readonly exitPromise: Promise<ExitResult>;
  private exitResult: ExitResult | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly file: WriteStream;
  private frozen = false;

  constructor(options: OperatorOptions) {
    this.options = options;
    mkdirSync(LOG_DIR, { recursive: true });
    this.logFile = join(LOG_DIR, `${options.namespace}-${++sequence}.log`);
    this.file = createWriteStream(this.logFile);
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (value === undefined || key === 'DATABASE_URL' || key.startsWith('SSJ_')) continue;
      env[key] = value;
    }
    env['KUBECONFIG'] = options.env?.['KUBECONFIG'] ?? operatorKubeconfig(options.namespace);
    if (options.databaseUrl !== undefined) env['DATABASE_URL'] = options.databaseUrl;
    Object.assign(env, options.env ?? {});
    const args = [
      MAIN,
      `--namespace=${options.namespace}`,
      `--leader-election-namespace=${options.namespace}`,
      '--metrics-bind-address=127.0.0.1:0',
      '--health-probe-bind-address=127.0.0.1:0',
      // Short lease timings, so that a successor to a killed operator takes over in seconds;
      // a test's own args (later on the line) win.
      '--leader-election-lease-duration=3s',
      '--leader-election-renew-deadline=2s',
      '--leader-election-retry-period=500ms',
      ...(options.args ?? []),
    ];
    installExitHook();
    this.spawnedAt = new Date();
    this.child = spawn(NODE, args, { cwd: REPOSITORY_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(this.child);
    this.exitPromise = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        running.delete(this.child);
        this.exitResult = { code, signal };
        this.notify();
        resolve(this.exitResult);
      });
    });
    const stdout = this.child.stdout;
    const stderr = this.child.stderr;
    if (stdout === null || stderr === null) throw new Error('operator spawned without pipes');
    createInterface({ input: stdout }).on('line', (line) => {
      this.file.write(`${line}\n`);
      this.logs.push(parseLogLine(line));
      this.receivedAt.push(Date.now());
      this.notify();
    });
    stderr.setEncoding('utf8');
    stderr.on('data', (chunk: string) => {
      this.file.write(chunk);
      this.stderrText += chunk;
    });
    void this.exitPromise.then(() => {
      this.file.end();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get stderr(): string {
    return this.stderrText;
  }

  /** The exit, once the process has exited. */
  get exited(): ExitResult | undefined {
    return this.exitResult;
  }

  /** Resolves with the first log line matching, or rejects at the deadline or when the process exits. */
  async waitForLog(
    match: (line: LogLine) => boolean,
    timeoutMs: number,
    description = 'a log line',
  ): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logs.find(match);
      if (found !== undefined) return found;
      if (this.exitResult !== undefined) {
        throw new Error(
          `the operator exited (${describeExit(this.exitResult)}) before ${description}\n${this.tail()}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}\n${this.tail()}`);
      await this.changed(left);
    }
  }

  /** Resolves when the process exits; rejects at the deadline (the process keeps running). */
  async waitForExit(timeoutMs: number): Promise<ExitResult> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`the operator did not exit within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exitPromise, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The leader election identity (`ssj.dev/holder` on its Pods), once it has logged it. */
  get identity(): string | undefined {
    const line = this.logs.find((l) => l.msg === 'joining the leader election');
    return typeof line?.['identity'] === 'string' ? line['identity'] : undefined;
  }

  /** `host:port` of the metrics server, once it has logged where it listens. */
  get metricsAddress(): string | undefined {
    const line = this.logs.find((l) => l.msg === 'listening' && l['server'] === 'metrics');
    return typeof line?.['addr'] === 'string' ? line['addr'] : undefined;
  }

  /**
   * The value of an unlabelled metric (a gauge or counter such as `ssj_leader`) from one scrape of
   * `/metrics`; undefined when the scrape does not list it.
   */
  async metric(name: string): Promise<number | undefined> {
    const addr = this.metricsAddress;
    if (addr === undefined)
      throw new Error(`the operator has not logged its metrics address\n${this.tail()}`);
    const response = await fetch(`http://${addr}/metrics`, { signal: AbortSignal.timeout(5000) });
    if (!response.ok) throw new Error(`GET http://${addr}/metrics answered ${response.status}`);
    const text = await response.text();
    for (const line of text.split('\n')) {
      const [key, value] = line.trim().split(/\s+/);
      if (key === name && value !== undefined) return Number(value);
    }
    return undefined;
  }

  /** Sends a signal: SIGSTOP freezes the process (no timer, no I/O of its own), SIGCONT thaws it. */
  signal(signal: NodeJS.Signals): void {
    if (this.exitResult !== undefined) return;
    this.child.kill(signal);
    if (signal === 'SIGSTOP') this.frozen = true;
    if (signal === 'SIGCONT') this.frozen = false;
  }

  /** SIGTERM, then asserts a clean exit (code 0) within 25 s. A no-op once it has exited. */
  async stop(): Promise<void> {
    if (this.exitResult !== undefined) return;
    // A frozen process would never see the SIGTERM it is sent.
    if (this.frozen) this.signal('SIGCONT');
    this.child.kill('SIGTERM');
    let result: ExitResult;
    try {
      result = await this.waitForExit(25_000);
    } catch (error) {
      this.child.kill('SIGKILL');
      await this.exitPromise;
      throw error;
    }
    if (result.code !== 0) {
      throw new Error(
        `the operator did not shut down cleanly on SIGTERM: ${describeExit(result)}\n${this.tail()}`,
      );
    }
  }

  /** SIGKILL: a crash. Resolves once the process is gone. */
  async kill(): Promise<ExitResult> {
    if (this.exitResult !== undefined) return this.exitResult;
    this.child.kill('SIGKILL');
    return this.exitPromise;
  }

  /** The last log lines and stderr, for failure messages. */
  tail(lines = 25): string {
    // Each line cut short: an API error body repeated on every retry would bury the message.
    const out = this.logs
      .slice(-lines)
      .map((l) => {
        const text = JSON.stringify(l);
        return text.length > 400 ? `${text.slice(0, 400)}…` : text;
      })
      .join('\n');
    const err = this.stderrText.trim() === '' ? '' : `\nstderr:\n${this.stderrText.slice(-2000)}`;
    return `operator log (${this.logFile}), last ${lines} lines:\n${out}${err}`;
  }

  /** Log lines at level warn or above (pino writes level names), for diagnostics. */
  problems(): LogLine[] {
    return this.logs.filter((l) => l.level === 'warn' || l.level === 'error' || l.level === 'fatal');
  }

  private notify(): void {
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  private changed(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.min(timeoutMs, 1000));
      const waiters = this.waiters;
      function done(): void {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }
}

/** Spawns the operator without waiting for it (for runs that are expected to exit). */
export function spawnOperator(options: OperatorOptions): OperatorProcess {
  return new OperatorProcess(options);
}

/** Spawns the operator and waits until it logs `controller started`. */
export async function startOperator(options: OperatorOptions): Promise<OperatorProcess> {
  // The namespace's Role and RoleBinding are applied without blocking the test's event loop
  // (its Pod recorder, its kubelet); the constructor then finds them done.
  if (options.env?.['KUBECONFIG'] === undefined) await prepareIdentity(options.namespace);
  const op = new OperatorProcess(options);
  try {
    await op.waitForLog(
      (l) => l.msg === 'controller started',
      options.startTimeoutMs ?? 30_000,
      '"controller started"',
    );
  } catch (error) {
    await op.kill();
    throw error;
  }
  return op;
}

export function describeExit(result: ExitResult): string {
  return result.signal !== null ? `signal ${result.signal}` : `code ${String(result.code)}`;
}

/** One stdout line of the operator: its JSON log record, or the raw text with `level: 'text'`. */
export function parseLogLine(line: string): LogLine {
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      const record = parsed as Record<string, unknown>;
      return { ...record, msg: typeof record['msg'] === 'string' ? record['msg'] : '' };
    }
  } catch {
    // not JSON: kept as text below
  }
  return { msg: line, level: 'text' };
}

// ---------------------------------------------------------------------------------------------
// The operator's identity: the ServiceAccount config/rbac deploys, with a token of its own.

const RBAC_DIR = join(REPOSITORY_ROOT, 'config/rbac');
const LEADER_ELECTION_ROLE = 'ssj-operator-leader-election';
const TOKEN_DURATION = '12h';

interface Identity {
  /** A kubeconfig file: the test cluster's server and CA, the ServiceAccount's token. */
  readonly kubeconfig: string;
  /** config/rbac's leader-election Role and the bindings to it, without a namespace. */
  readonly leaderElection: readonly Record<string, unknown>[];
}

let identity: Identity | undefined;
const boundNamespaces = new Set<string>();
const binding = new Map<string, Promise<void>>();

/** kubectl with the tests' (admin) kubeconfig, blocking. */
function kubectlSync(args: readonly string[], input?: string): string {
  return execFileSync(kubectlPath(), ['--kubeconfig', kubeconfigPath(), ...args], {
    encoding: 'utf8',
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** kubectl with the tests' (admin) kubeconfig, without blocking the event loop. */
function kubectlAsync(args: readonly string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(kubectlPath(), ['--kubeconfig', kubeconfigPath(), ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`kubectl ${args.join(' ')} exited with ${String(code)}: ${err.trim()}`));
    });
    child.stdin.end(input);
  });
}

/**
 * Applies config/rbac and mints a token, once per test process. Blocking (about a second, before
 * the process's first operator starts), so that the synchronous `spawnOperator` can use it too.
 */
function establishIdentity(): Identity {
  const objects: Record<string, unknown>[] = parseManifests(kubectlSync(['kustomize', RBAC_DIR]), RBAC_DIR);
  const meta = (o: Record<string, unknown> | undefined): { name?: string; namespace?: string } =>
    o?.['metadata'] ?? {};
  const { name, namespace } = meta(objects.find((o) => o['kind'] === 'ServiceAccount'));
  if (name === undefined || namespace === undefined) throw new Error(`no ServiceAccount in ${RBAC_DIR}`);
  // config/rbac holds no Namespace (config/manager does); the local cluster has one already.
  if (kubectlSync(['get', 'namespace', namespace, '--ignore-not-found', '-o', 'name']).trim() === '') {
    kubectlSync(['create', 'namespace', namespace]);
  }
  kubectlSync(['apply', '--server-side', '--force-conflicts', '-k', RBAC_DIR]);
  const token = kubectlSync([
    'create',
    'token',
    name,
    `--namespace=${namespace}`,
    `--duration=${TOKEN_DURATION}`,
  ]).trim();
  if (token === '') throw new Error(`kubectl create token ${namespace}/${name} printed no token`);

  const admin = new KubeConfig();
  admin.loadFromFile(kubeconfigPath());
  const cluster = admin.getCurrentCluster();
  if (cluster === null) throw new Error(`${kubeconfigPath()} names no current cluster`);
  const user = `${namespace}/${name}`;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ ...cluster, name: 'test' }],
    users: [{ name: user, token }],
    contexts: [{ name: 'test', cluster: 'test', user }],
    currentContext: 'test',
  });
  const dir = mkdtempSync(join(tmpdir(), 'ssj-e2e-operator-'));
  process.on('exit', () => {
    rmSync(dir, { recursive: true, force: true });
  });
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kc.exportConfig(), { mode: 0o600 });

  const role = objects.find((o) => o['kind'] === 'Role' && meta(o).name === LEADER_ELECTION_ROLE);
  if (role === undefined) throw new Error(`no Role ${LEADER_ELECTION_ROLE} in ${RBAC_DIR}`);
  const bindings = objects.filter(
    (o) => o['kind'] === 'RoleBinding' && (o['roleRef'] as { name?: string }).name === LEADER_ELECTION_ROLE,
  );
  if (bindings.length === 0) throw new Error(`no RoleBinding to ${LEADER_ELECTION_ROLE} in ${RBAC_DIR}`);
  return { kubeconfig, leaderElection: [role, ...bindings] };
}

/** config/rbac's leader-election Role and its bindings, moved to `namespace`, as a List. */
function leaderElectionIn(id: Identity, namespace: string): string {
  const items = id.leaderElection.map((o) => ({
    ...o,
    metadata: { ...(o['metadata'] as Record<string, unknown>), namespace },
  }));
  return JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
}

const APPLY = ['apply', '--server-side', '--force-conflicts', '-f', '-'];

/** What an operator of `namespace` needs, without blocking once the identity exists. */
async function prepareIdentity(namespace: string): Promise<void> {
  identity ??= establishIdentity();
  const id = identity;
  if (boundNamespaces.has(namespace)) return;
  let pending = binding.get(namespace);
  if (pending === undefined) {
    pending = kubectlAsync(APPLY, leaderElectionIn(id, namespace)).then(() => {
      boundNamespaces.add(namespace);
    });
    binding.set(namespace, pending);
    // A failure is reported to the caller that awaits it; the next start tries again.
    pending.catch(() => binding.delete(namespace));
  }
  await pending;
}

/** The kubeconfig an operator of `namespace` runs with; does, blocking, what is not done yet. */
function operatorKubeconfig(namespace: string): string {
  identity ??= establishIdentity();
  if (!boundNamespaces.has(namespace)) {
    kubectlSync(APPLY, leaderElectionIn(identity, namespace));
    boundNamespaces.add(namespace);
  }
  return identity.kubeconfig;
}

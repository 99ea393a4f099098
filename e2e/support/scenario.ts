/**
 * One end-to-end test's world: its own namespace, its own database (PostgreSQL mode), a Pod
 * recorder started before anything else, a fake kubelet, and the operator as a child process.
 *
 * Guarantees:
 * - `openScenario` fails loudly when the API server, the CRD or PostgreSQL is missing; it never
 *   skips.
 * - The namespace's `default` ServiceAccount exists before it resolves (Pods cannot be created
 *   in a namespace without it).
 * - The shared local cluster unless told: `cluster` names another API server (a private one, for
 *   a test that stops it), and then the scenario's clients, kubectl and operators all use it. A
 *   private API server has no controller-manager, so the scenario creates the ServiceAccount.
 * - `close()` stops the operator (SIGTERM, clean exit asserted) before it deletes the namespace
 *   and drops the database, and it is safe to call twice; tests register it with `t.after`. With
 *   every operator stopped it removes the `ssj.dev/run-record` finalizer from the Pods left, so the
 *   namespace's deletion does not wait for an operator that is gone.
 * - `invariants()` checks what must hold in every test: one Pod per run (over every Pod ever
 *   seen), well-formed names, and in PostgreSQL mode one ledger row per Pod name.
 *
 * Time helpers build schedules that fire at chosen instants, so a test decides its ticks instead
 * of racing a wall-clock schedule.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import {
  apiStatus,
  deleteNamespace,
  kubeconfigPath,
  kubectlPath,
  loadKubeConfig,
  newNamespace,
  requireCluster,
  waitFor,
} from '../../test/support/kube.ts';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres.ts';
import {
  assertLedgerPodNamesUnique,
  assertOnePodPerRun,
  assertPodNamesWellFormed,
  FINALIZER_RUN_RECORD,
  GROUP,
  jobEvents,
  LABEL_JOB,
  LedgerReader,
  PLURAL,
  PodRecorder,
  readJob,
  VERSION,
  type JobObject,
  type RecordedEvent,
  type RecordedPod,
} from './checker.ts';
import { FakeKubelet } from './kubelet.ts';
import { startOperator, spawnOperator, type OperatorOptions, type OperatorProcess } from './operator.ts';

const execFileAsync = promisify(execFile);

/** An API server to run a scenario on: its client configuration and its kubeconfig file. */
export interface TestCluster {
  readonly kc: KubeConfig;
  readonly kubeconfigPath: string;
  /** No kube-controller-manager: the scenario creates what its controllers would. */
  readonly private: boolean;
}

function sharedCluster(): TestCluster {
  return { kc: loadKubeConfig(), kubeconfigPath: kubeconfigPath(), private: false };
}

export type LedgerMode = 'status' | 'postgres';

export interface JobSpec {
  readonly schedule: string;
  readonly [field: string]: unknown;
}

/**
 * A Node object with no kubelet behind it. A Pod bound to a node (spec.nodeName) is deleted
 * gracefully: it stays Terminating, still Running, until its kubelet confirms, as on a real
 * cluster; the test plays that kubelet with `forceDelete`. An unbound Pod would vanish at once,
 * and kube-controller-manager's PodGC marks an unbound terminating Pod Failed within its 20 s
 * sweep, which no kubelet would do. The Node must exist: PodGC collects the Pods of a missing
 * node (marking them Failed with DisruptionTarget) at a 40 s quarantine whose phase depends on
 * how long the cluster has run, which made tests binding Pods to a missing node race it. The
 * node never reports Ready, so it is tainted unreachable; bound Pods tolerate every taint.
 */
export const ABSENT_NODE = 'e2e-absent-node';

/** A Pod template bound to ABSENT_NODE. */
export function boundTemplate(): Record<string, unknown> {
  return { spec: { nodeName: ABSENT_NODE, tolerations: [{ operator: 'Exists' }], containers: [CONTAINER] } };
}

export const CONTAINER = { name: 'main', image: 'busybox:1.36', command: ['sh', '-c', 'echo hello'] };

export class Scenario {
  readonly cluster: TestCluster;
  readonly kc: KubeConfig;
  readonly namespace: string;
  readonly mode: LedgerMode;
  readonly db: TestDatabase | undefined;
  readonly ledger: LedgerReader | undefined;
  readonly pods: PodRecorder;
  readonly kubelet: FakeKubelet;
  operator: OperatorProcess | undefined;
  private readonly operators: OperatorProcess[] = [];
  private closed = false;

  private constructor(init: {
    cluster: TestCluster;
    namespace: string;
    mode: LedgerMode;
    db: TestDatabase | undefined;
    ledger: LedgerReader | undefined;
    pods: PodRecorder;
  }) {
    this.cluster = init.cluster;
    this.kc = init.cluster.kc;
    this.namespace = init.namespace;
    this.mode = init.mode;
    this.db = init.db;
    this.ledger = init.ledger;
    this.pods = init.pods;
    this.kubelet = new FakeKubelet(init.cluster.kc);
  }

  /**
   * `serverUrl`: the PostgreSQL server to create the test's database on (a private server for a
   * test that stops it); the shared one unless told. `cluster`: likewise for the API server.
   */
  static async open(
    prefix: string,
    mode: LedgerMode,
    serverUrl?: string,
    cluster: TestCluster = sharedCluster(),
  ): Promise<Scenario> {
    const kc = cluster.kc;
    await requireCluster(kc);
    await requireCrd(kc);
    await ensureNode(kc, ABSENT_NODE);
    const namespace = await newNamespace(`e2e-${prefix}`, kc);
    let db: TestDatabase | undefined;
    let ledger: LedgerReader | undefined;
    try {
      if (cluster.private)
        await kc
          .makeApiClient(CoreV1Api)
          .createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'default' } } });
      await waitFor(
        async () => {
          await kc.makeApiClient(CoreV1Api).readNamespacedServiceAccount({ namespace, name: 'default' });
          return true;
        },
        { timeoutMs: 30_000, description: `the default ServiceAccount of ${namespace}` },
      );
      if (mode === 'postgres') {
        db = await createTestDatabase(`e2e_${prefix}`, serverUrl);
        ledger = await LedgerReader.connect(db.url);
      }
      const pods = await PodRecorder.start(kc, namespace);
      return new Scenario({ cluster, namespace, mode, db, ledger, pods });
    } catch (error) {
      await ledger?.close();
      await db?.drop();
      await deleteNamespace(namespace, kc);
      throw error;
    }
  }

  /** Options for an operator of this scenario: its namespace, and its database in PostgreSQL mode. */
  operatorOptions(extra: Partial<OperatorOptions> = {}): OperatorOptions {
    // On a private API server the operator runs with its admin kubeconfig.
    const env: Record<string, string> = this.cluster.private
      ? { KUBECONFIG: this.cluster.kubeconfigPath }
      : {};
    return { namespace: this.namespace, databaseUrl: this.db?.url, ...extra, env: { ...env, ...extra.env } };
  }

  /** Starts the operator and waits for `controller started`. */
  async startOperator(extra: Partial<OperatorOptions> = {}): Promise<OperatorProcess> {
    assert.ok(
      this.operator === undefined || this.operator.exited !== undefined,
      'an operator is already running',
    );
    const op = await startOperator(this.operatorOptions(extra));
    this.operators.push(op);
    this.operator = op;
    return op;
  }

  /**
   * Starts one more operator beside the current one (both act only with `--leader-elect=false`;
   * elected, they are replicas and one leads: see `startReplica`). It is stopped by `close()`
   * like the others, and does not become `operator`.
   */
  async startExtraOperator(extra: Partial<OperatorOptions> = {}): Promise<OperatorProcess> {
    const op = await startOperator(this.operatorOptions(extra));
    this.operators.push(op);
    return op;
  }

  /**
   * Starts one more replica: an operator of this scenario beside the others, in the leader
   * election (the namespace's Lease) with them, so only the elected one acts. Like
   * `startExtraOperator` it is stopped by `close()` and does not become `operator`.
   */
  async startReplica(extra: Partial<OperatorOptions> = {}): Promise<OperatorProcess> {
    return this.startExtraOperator(extra);
  }

  /** Starts `count` replicas at once (see `startReplica`). */
  async startReplicas(count: number, extra: Partial<OperatorOptions> = {}): Promise<OperatorProcess[]> {
    return Promise.all(Array.from({ length: count }, () => this.startReplica(extra)));
  }

  /** Every operator process this scenario started, in start order, running or not. */
  get allOperators(): readonly OperatorProcess[] {
    return this.operators;
  }

  /** Spawns an operator without waiting for it (a run expected to exit by itself). */
  spawnOperator(extra: Partial<OperatorOptions> = {}): OperatorProcess {
    const op = spawnOperator(this.operatorOptions(extra));
    this.operators.push(op);
    this.operator = op;
    return op;
  }

  async stopOperator(): Promise<void> {
    await this.operator?.stop();
  }

  async createJob(name: string, spec: JobSpec): Promise<JobObject> {
    const api = this.kc.makeApiClient(CustomObjectsApi);
    const body = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'ScheduledSingletonJob',
      metadata: { name, namespace: this.namespace },
      spec: { template: { spec: { containers: [CONTAINER] } }, ...spec },
    };
    await api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: this.namespace,
      body,
    });
    return this.job(name);
  }

  job(name: string): Promise<JobObject> {
    return readJob(this.kc, this.namespace, name);
  }

  /** Waits until the job satisfies `check` (which returns a value, or undefined/false for "not yet"). */
  async waitForJob<T>(
    name: string,
    check: (job: JobObject) => T | undefined | false | null,
    description: string,
    timeoutMs = 20_000,
  ): Promise<T> {
    let last: JobObject | undefined;
    try {
      return await waitFor(
        async () => {
          last = await this.job(name);
          return check(last);
        },
        { timeoutMs, intervalMs: 200, description: `${name}: ${description}` },
      );
    } catch (error) {
      throw new Error(
        `${errorText(error)}\nlast status: ${JSON.stringify(last?.status ?? null)}\n${this.operatorTail()}`,
        {
          cause: error,
        },
      );
    }
  }

  /** Waits until the recorder has seen a Pod named `name`; returns it. */
  async waitForPod(name: string, timeoutMs = 20_000): Promise<RecordedPod> {
    try {
      return await waitFor(() => this.pods.byName(name)[0], { timeoutMs, description: `Pod ${name}` });
    } catch (error) {
      const seen = this.pods
        .all()
        .map((p) => p.name)
        .join(', ');
      throw new Error(`${errorText(error)}\nPods seen: [${seen}]\n${this.operatorTail()}`, { cause: error });
    }
  }

  /** Waits until the recorder has seen the Pod deleted. */
  async waitForPodGone(name: string, timeoutMs = 20_000): Promise<RecordedPod> {
    return waitFor(
      () => {
        const p = this.pods.byName(name).at(-1);
        return p?.deletedAt !== undefined ? p : undefined;
      },
      { timeoutMs, description: `Pod ${name} to be deleted` },
    );
  }

  /** Waits until the ledger has a row satisfying `check` (PostgreSQL mode). */
  async waitForRows<T>(
    jobUid: string,
    check: (rows: Awaited<ReturnType<LedgerReader['runs']>>) => T | undefined | false | null,
    description: string,
    timeoutMs = 20_000,
  ): Promise<T> {
    const ledger = this.ledger;
    assert.ok(ledger !== undefined, 'waitForRows needs the PostgreSQL ledger');
    let last: unknown;
    try {
      return await waitFor(
        async () => {
          const rows = await ledger.runs(jobUid);
          last = rows;
          return check(rows);
        },
        { timeoutMs, intervalMs: 200, description },
      );
    } catch (error) {
      throw new Error(`${errorText(error)}\nlast rows: ${JSON.stringify(last)}\n${this.operatorTail()}`, {
        cause: error,
      });
    }
  }

  /** Waits for an Event regarding the job that matches (Events are written asynchronously). */
  async waitForEvent(
    job: string,
    match: (e: RecordedEvent) => boolean,
    description: string,
    timeoutMs = 10_000,
  ): Promise<RecordedEvent> {
    let seen: RecordedEvent[] = [];
    try {
      return await waitFor(
        async () => {
          seen = await jobEvents(this.kc, this.namespace, job);
          return seen.find(match);
        },
        { timeoutMs, intervalMs: 250, description: `${job}: ${description}` },
      );
    } catch (error) {
      const list =
        seen.length === 0 ? '(none)' : seen.map((e) => `${e.type}/${e.reason}: ${e.note}`).join('\n  ');
      throw new Error(`${errorText(error)}\nEvents on ${job}:\n  ${list}`, { cause: error });
    }
  }

  /** kubectl against the test cluster, in this namespace. */
  async kubectl(args: readonly string[]): Promise<string> {
    const { stdout } = await execFileAsync(
      kubectlPath(),
      ['--kubeconfig', this.cluster.kubeconfigPath, '-n', this.namespace, ...args],
      {
        encoding: 'utf8',
      },
    );
    return stdout;
  }

  /**
   * The kubelet's last word on a Terminating Pod: its containers are stopped (Failed, unless it
   * had finished), and its deletion confirmed with grace period 0. It then goes once the
   * operator has recorded its run and released the tracking finalizer; this waits for that.
   */
  async forceDelete(name: string, timeoutMs = 30_000): Promise<void> {
    await this.kubelet.stopDeleted(this.namespace, name);
    const core = this.kc.makeApiClient(CoreV1Api);
    await waitFor(
      async () => {
        try {
          await core.readNamespacedPod({ namespace: this.namespace, name });
          return undefined;
        } catch (error) {
          if (apiStatus(error)?.code === 404) return true;
          throw error;
        }
      },
      { timeoutMs, description: `pod ${name} gone (its run recorded and its finalizer released)` },
    );
  }

  /** The invariants every test ends with. */
  async invariants(jobs: readonly string[]): Promise<void> {
    const all = this.pods.all();
    assertOnePodPerRun(all);
    for (const job of jobs) assertPodNamesWellFormed(all, job);
    for (const p of all) {
      assert.ok(p.labels[LABEL_JOB] !== undefined, `Pod ${p.name} has no ${LABEL_JOB} label`);
    }
    if (this.ledger !== undefined) assertLedgerPodNamesUnique(await this.ledger.allRuns());
    const op = this.operator;
    if (op !== undefined)
      assert.equal(op.exited, undefined, `the operator exited unexpectedly\n${op.tail()}`);
  }

  operatorTail(): string {
    return this.operator?.tail(15) ?? '(no operator)';
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const errors: unknown[] = [];
    for (const op of this.operators) {
      try {
        await op.stop();
      } catch (error) {
        errors.push(error);
      }
    }
    this.pods.stop();
    // With every operator stopped, nobody would remove the tracking finalizer: a Pod that keeps it
    // would hold the namespace in Terminating for good. Removed the way `cleanup` does.
    await releaseRunRecordFinalizers(this.kc, this.namespace).catch((e: unknown) => errors.push(e));
    // Pods bound to ABSENT_NODE would stay Terminating until PodGC's quarantine ends: remove them now.
    await this.kc
      .makeApiClient(CoreV1Api)
      .deleteCollectionNamespacedPod({ namespace: this.namespace, gracePeriodSeconds: 0 })
      .catch((e: unknown) => errors.push(e));
    await this.ledger?.close().catch((e: unknown) => errors.push(e));
    await deleteNamespace(this.namespace, this.kc).catch((e: unknown) => errors.push(e));
    await this.db?.drop().catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw errors[0];
  }
}

/** Creates the Node object `name` unless it exists (no kubelet: see ABSENT_NODE). */
async function ensureNode(kc: KubeConfig, name: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  try {
    await core.createNode({ body: { apiVersion: 'v1', kind: 'Node', metadata: { name } } });
  } catch (error) {
    if (apiStatus(error)?.code !== 409) throw error;
  }
}

export function openScenario(
  prefix: string,
  mode: LedgerMode,
  serverUrl?: string,
  cluster?: TestCluster,
): Promise<Scenario> {
  return Scenario.open(prefix, mode, serverUrl, cluster);
}

/**
 * Removes FINALIZER_RUN_RECORD from every Pod of the namespace labelled ssj.dev/job, by a JSON
 * patch that tests the Pod's UID and the finalizer's index (so no other finalizer is touched).
 * A Pod gone or changed meanwhile is skipped. For clean-up only: never while an operator runs.
 */
export async function releaseRunRecordFinalizers(kc: KubeConfig, namespace: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const list = await core.listNamespacedPod({ namespace, labelSelector: LABEL_JOB });
  for (const pod of list.items) {
    const index = (pod.metadata?.finalizers ?? []).indexOf(FINALIZER_RUN_RECORD);
    if (index < 0) continue;
    try {
      await core.patchNamespacedPod({
        namespace,
        name: pod.metadata?.name ?? '',
        body: [
          { op: 'test', path: '/metadata/uid', value: pod.metadata?.uid },
          { op: 'test', path: `/metadata/finalizers/${index}`, value: FINALIZER_RUN_RECORD },
          { op: 'remove', path: `/metadata/finalizers/${index}` },
        ],
      });
    } catch (error) {
      const code = apiStatus(error)?.code;
      if (code !== 404 && code !== 422) throw error;
    }
  }
}

async function requireCrd(kc: KubeConfig): Promise<void> {
  try {
    await kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: `${PLURAL}.${GROUP}` });
  } catch (error) {
    if (apiStatus(error)?.code === 404) {
      throw new Error(`the CRD ${PLURAL}.${GROUP} is not installed: run \`make install\``, { cause: error });
    }
    throw error;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ---------------------------------------------------------------------------------------------
// Time.

/** The next instant after `after` whose Unix seconds are a multiple of `every`. */
export function nextMultiple(every: number, after: Date = new Date()): Date {
  const s = Math.floor(after.getTime() / 1000);
  return new Date((Math.floor(s / every) + 1) * every * 1000);
}

/** A whole second at least `leadMs` from now. */
export function secondsFromNow(leadMs: number): Date {
  return new Date(Math.ceil((Date.now() + leadMs) / 1000) * 1000);
}

/**
 * Instants at `offsetsMs` from a whole second at least `leadMs` from now, all in one UTC minute
 * (moved to the next minute's start when they would straddle one), so `scheduleAt` can express
 * them: across a minute boundary its seconds×minutes product would fire at other instants too.
 */
export function instantsInOneMinute(leadMs: number, offsetsMs: readonly number[]): Date[] {
  let first = secondsFromNow(leadMs);
  const last = Math.max(0, ...offsetsMs);
  if (new Date(first.getTime() + last).getUTCMinutes() !== first.getUTCMinutes()) {
    first = new Date(Math.ceil(first.getTime() / 60_000) * 60_000);
  }
  return offsetsMs.map((o) => new Date(first.getTime() + o));
}

/**
 * A 6-field UTC cron expression that, from now until `horizonMs` after the last instant, fires at
 * exactly the given instants (whole seconds, at most a few minutes ahead). Throws if the
 * seconds×minutes×hours product would fire at other instants in that window: choose other
 * instants then.
 */
export function scheduleAt(instants: readonly Date[], horizonMs = 50_000): string {
  const wanted = new Set(instants.map((d) => Math.floor(d.getTime() / 1000)));
  const secs = new Set(instants.map((d) => d.getUTCSeconds()));
  const mins = new Set(instants.map((d) => d.getUTCMinutes()));
  const hours = new Set(instants.map((d) => d.getUTCHours()));
  const list = (s: Set<number>) => [...s].sort((a, b) => a - b).join(',');
  const start = Math.floor(Date.now() / 1000);
  const end = Math.max(...wanted) + Math.ceil(horizonMs / 1000);
  for (let t = start; t <= end; t++) {
    const d = new Date(t * 1000);
    const fires = secs.has(d.getUTCSeconds()) && mins.has(d.getUTCMinutes()) && hours.has(d.getUTCHours());
    if (fires !== wanted.has(t)) {
      throw new Error(
        `scheduleAt: the expression for ${instants.map(rfc).join(', ')} would also fire at ${rfc(d)}`,
      );
    }
  }
  return `${list(secs)} ${list(mins)} ${list(hours)} * * *`;
}

function rfc(d: Date): string {
  return d.toISOString();
}

/** Waits until the wall clock has passed `at` (a tick that must have happened). */
export async function untilTime(at: Date): Promise<void> {
  const left = at.getTime() - Date.now();
  if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
}

/**
 * Asserts that `holds` stays true for `durationMs` (checked every 200 ms): the way to check that
 * something does NOT happen. Pair it with a positive control that shows the operator was active.
 */
export async function holdsFor(
  holds: () => boolean | Promise<boolean>,
  durationMs: number,
  description: string,
): Promise<void> {
  const end = Date.now() + durationMs;
  for (;;) {
    assert.ok(await holds(), `expected ${description} for ${durationMs} ms, but it stopped holding`);
    if (Date.now() >= end) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

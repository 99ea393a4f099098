/**
 * The independent checker of the end-to-end suite. It knows the product's promises from
 * DESIGN.md, not from the operator's code: nothing here imports from src/. It reads Pods, jobs and
 * Events with a plain client-node client and the PostgreSQL ledger with plain SQL.
 *
 * - `PodRecorder` watches a namespace's Pods from before the operator starts and keeps every
 *   Pod it ever saw (a Pod deleted by history cleanup, Replace or a test is still counted) with
 *   the local time of its ADDED and DELETED events, so "exactly one Pod per run" is checked over
 *   the whole test, not over what is left at the end.
 * - `LedgerReader` reads `ssj.runs` and `ssj.ticks_not_run`.
 * - `HistoryRecorder` keeps every status.history record ever written; `LeaseRecorder` every
 *   version of the leader Lease, so `podTermProblems` can check each Pod's term and holder
 *   against what the Lease showed when the Pod was created.
 * - The `assert*` functions are the invariants; each throws an AssertionError naming the
 *   offending objects. The `*Problems` functions return the offending lines instead.
 *
 * Does not give: a gap-free history if the API server drops the watch (the recorder re-lists and
 * re-watches; a Pod created and deleted inside that gap would be missed).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  Watch,
  type KubeConfig,
  type V1Lease,
  type V1OwnerReference,
  type V1Pod,
} from '@kubernetes/client-node';
import { Client } from 'pg';

// ---------------------------------------------------------------------------------------------
// Names from DESIGN.md, restated on purpose (an independent checker must not share them).

export const GROUP = 'ssj.dev';
export const VERSION = 'v1alpha1';
export const PLURAL = 'singletonjobs';
export const KIND = 'ScheduledSingletonJob';
export const LABEL_JOB = 'ssj.dev/job';
export const LABEL_TICK = 'ssj.dev/tick';
export const LABEL_ATTEMPT = 'ssj.dev/attempt';
export const ANNOTATION_SCHEDULED_TIME = 'ssj.dev/scheduled-time';
export const ANNOTATION_TERM = 'ssj.dev/term';
export const ANNOTATION_HOLDER = 'ssj.dev/holder';
export const ANNOTATION_RUN_NOW_TOKEN = 'ssj.dev/run-now-token';
export const ANNOTATION_RUN_NOW = 'ssj.dev/run-now';
/** The tracking finalizer every run's Pod carries until its outcome is recorded. */
export const FINALIZER_RUN_RECORD = 'ssj.dev/run-record';

/** `<job>-<unix seconds>` for attempt 1, `-<attempt>` appended from attempt 2. */
export function expectedPodName(job: string, tick: Date | number, attempt = 1): string {
  const seconds = typeof tick === 'number' ? tick : Math.floor(tick.getTime() / 1000);
  return attempt > 1 ? `${job}-${seconds}-${attempt}` : `${job}-${seconds}`;
}

/** `<job>-m<first 8 hex of sha256(token)>` for attempt 1. */
export function expectedManualPodName(job: string, token: string, attempt = 1): string {
  const base = `${job}-m${createHash('sha256').update(token).digest('hex').slice(0, 8)}`;
  return attempt > 1 ? `${base}-${attempt}` : base;
}

/** RFC 3339 in whole seconds, the way the operator and the API server write instants. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// ---------------------------------------------------------------------------------------------
// The job, read as plain JSON.

export interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime?: string;
  readonly observedGeneration?: number;
}

export interface RunRecord {
  readonly podName?: string;
  readonly tick?: string;
  readonly lastTick?: string;
  readonly count?: number;
  readonly manualToken?: string;
  readonly attempt?: number;
  readonly outcome: string;
  readonly reason?: string;
  readonly message?: string;
  readonly startTime?: string;
  readonly completionTime?: string;
}

export interface ClaimRecord {
  readonly podName: string;
  readonly state?: string;
  readonly tick?: string;
  readonly manualToken?: string;
  readonly attempt: number;
}

export interface JobStatus {
  readonly observedGeneration?: number;
  readonly conditions?: readonly Condition[];
  readonly active?: { readonly podName: string; readonly attempt: number; readonly tick?: string };
  readonly lastScheduleTime?: string;
  readonly lastSuccessfulTime?: string;
  readonly nextScheduleTime?: string;
  readonly lastRun?: RunRecord;
  readonly history?: readonly RunRecord[];
  readonly ledger?: { readonly claims?: readonly ClaimRecord[]; readonly [k: string]: unknown };
}

export interface JobObject {
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid: string;
    readonly generation?: number;
    readonly creationTimestamp: string;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec: Readonly<Record<string, unknown>>;
  readonly status?: JobStatus;
}

function asJob(value: unknown): JobObject {
  const v = value as Partial<JobObject> | null;
  if (
    typeof v !== 'object' ||
    v === null ||
    typeof v.metadata?.uid !== 'string' ||
    typeof v.spec !== 'object'
  ) {
    throw new Error(`not a ScheduledSingletonJob: ${JSON.stringify(value).slice(0, 300)}`);
  }
  return v as JobObject;
}

export async function readJob(kc: KubeConfig, namespace: string, name: string): Promise<JobObject> {
  const api = kc.makeApiClient(CustomObjectsApi);
  return asJob(
    await api.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name }),
  );
}

export function condition(job: JobObject, type: string): Condition | undefined {
  return job.status?.conditions?.find((c) => c.type === type);
}

/** Finished runs in status.history (records with a Pod), newest first as the status lists them. */
export function historyRuns(job: JobObject): RunRecord[] {
  return (job.status?.history ?? []).filter((r) => r.podName !== undefined);
}

/** status.history's runs by Pod name, as `<attempt>:<outcome>`. */
export function outcomesByPod(job: JobObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of historyRuns(job)) out[h.podName ?? ''] = `${String(h.attempt ?? 1)}:${h.outcome}`;
  return out;
}

/** Skipped and Missed records in status.history. */
export function historyNotRun(job: JobObject, outcome?: 'Skipped' | 'Missed'): RunRecord[] {
  return (job.status?.history ?? []).filter(
    (r) =>
      (r.outcome === 'Skipped' || r.outcome === 'Missed') && (outcome === undefined || r.outcome === outcome),
  );
}

// ---------------------------------------------------------------------------------------------
// Pods.

export interface RecordedPod {
  readonly name: string;
  readonly uid: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly ownerReferences: readonly V1OwnerReference[];
  /** Local time this recorder first saw it. */
  readonly addedAt: number;
  /** Local time it saw it gone; undefined while it exists. */
  deletedAt?: number;
  /** Local time it first saw a deletionTimestamp. */
  terminatingAt?: number;
  /** Local time it first saw the Pod Succeeded or Failed: its containers have stopped. */
  stoppedAt?: number;
  /** Local time it first saw the Pod without FINALIZER_RUN_RECORD, having seen it with it. */
  releasedAt?: number;
  /** Every phase seen, in order, without repeats. */
  readonly phases: string[];
  /** The Pod as this recorder first saw it: the create's result when the watch saw the ADDED. */
  readonly first: V1Pod;
  last: V1Pod;
}

export class PodRecorder {
  private readonly pods = new Map<string, RecordedPod>();
  private readonly kc: KubeConfig;
  private readonly namespace: string;
  private abort: AbortController | undefined;
  private stopped = false;

  private constructor(kc: KubeConfig, namespace: string) {
    this.kc = kc;
    this.namespace = namespace;
  }

  static async start(kc: KubeConfig, namespace: string): Promise<PodRecorder> {
    const r = new PodRecorder(kc, namespace);
    await r.listAndWatch();
    return r;
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  /** Every Pod ever seen (by UID), oldest first. */
  all(job?: string): RecordedPod[] {
    return [...this.pods.values()]
      .filter((p) => job === undefined || p.labels[LABEL_JOB] === job)
      .sort((a, b) => a.addedAt - b.addedAt);
  }

  /** Pods that exist now, as far as the watch knows. */
  live(job?: string): RecordedPod[] {
    return this.all(job).filter((p) => p.deletedAt === undefined);
  }

  byName(name: string): RecordedPod[] {
    return this.all().filter((p) => p.name === name);
  }

  private async listAndWatch(): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    const list = await core.listNamespacedPod({ namespace: this.namespace });
    const now = Date.now();
    const present = new Set<string>();
    for (const pod of list.items) {
      present.add(pod.metadata?.uid ?? '');
      this.observe('ADDED', pod, now);
    }
    for (const p of this.pods.values())
      if (!present.has(p.uid) && p.deletedAt === undefined) p.deletedAt = now;
    const watch = new Watch(this.kc);
    this.abort = await watch.watch(
      `/api/v1/namespaces/${this.namespace}/pods`,
      { resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true },
      (type: string, obj: unknown) => {
        this.observe(type, obj as V1Pod, Date.now());
      },
      () => {
        if (this.stopped) return;
        // The watch ended (timeout, server restart, expired version): list again, watch again.
        void this.restart();
      },
    );
  }

  private async restart(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.listAndWatch();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** attempt)));
      }
    }
  }

  private observe(type: string, pod: V1Pod, at: number): void {
    if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') return;
    const uid = pod.metadata?.uid;
    if (uid === undefined) return;
    let p = this.pods.get(uid);
    if (p === undefined) {
      p = {
        name: pod.metadata?.name ?? '',
        uid,
        labels: pod.metadata?.labels ?? {},
        annotations: pod.metadata?.annotations ?? {},
        ownerReferences: pod.metadata?.ownerReferences ?? [],
        addedAt: at,
        phases: [],
        first: pod,
        last: pod,
      };
      this.pods.set(uid, p);
    }
    p.last = pod;
    const phase = pod.status?.phase ?? 'Pending';
    if (p.phases.at(-1) !== phase) p.phases.push(phase);
    if ((phase === 'Succeeded' || phase === 'Failed') && p.stoppedAt === undefined) p.stoppedAt = at;
    if (pod.metadata?.deletionTimestamp !== undefined && p.terminatingAt === undefined) p.terminatingAt = at;
    if (p.releasedAt === undefined && hasRunRecordFinalizer(p.first) && !hasRunRecordFinalizer(pod))
      p.releasedAt = at;
    if (type === 'DELETED' && p.deletedAt === undefined) p.deletedAt = at;
  }
}

/** A live list of the job's Pods, straight from the API server. */
export async function listJobPods(kc: KubeConfig, namespace: string, job: string): Promise<V1Pod[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const list = await core.listNamespacedPod({ namespace, labelSelector: `${LABEL_JOB}=${job}` });
  return list.items;
}

// ---------------------------------------------------------------------------------------------
// Events.

export interface RecordedEvent {
  readonly type: string;
  readonly reason: string;
  readonly note: string;
  readonly count: number;
}

/** events.k8s.io/v1 Events regarding the job. */
export async function jobEvents(kc: KubeConfig, namespace: string, job: string): Promise<RecordedEvent[]> {
  const api = kc.makeApiClient(EventsV1Api);
  const list = await api.listNamespacedEvent({ namespace });
  return list.items
    .filter((e) => e.regarding?.kind === KIND && e.regarding.name === job)
    .map((e) => ({
      type: e.type ?? '',
      reason: e.reason ?? '',
      note: e.note ?? '',
      count: e.series?.count ?? e.deprecatedCount ?? 1,
    }));
}

// ---------------------------------------------------------------------------------------------
// The PostgreSQL ledger, with plain SQL.

export interface LedgerRunRow {
  readonly run_key: string;
  readonly job_uid: string;
  readonly namespace: string;
  readonly job_name: string;
  readonly run_kind: 'scheduled' | 'manual';
  readonly tick: Date | null;
  readonly manual_token: string | null;
  readonly attempt: number;
  readonly pod_name: string;
  readonly state: 'Claimed' | 'Pending' | 'Running' | 'Finished';
  readonly outcome: string | null;
  readonly reason: string | null;
  readonly message: string | null;
  readonly holder: string;
  readonly term: string;
  readonly claimed_at: Date;
  readonly started_at: Date | null;
  readonly finished_at: Date | null;
}

export interface TicksNotRunRow {
  readonly job_uid: string;
  readonly job_name: string;
  readonly outcome: 'Skipped' | 'Missed';
  readonly first_tick: Date;
  readonly last_tick: Date;
  readonly count: number;
  readonly reason: string;
  readonly message: string;
}

export class LedgerReader {
  private readonly url: string;

  private constructor(url: string) {
    this.url = url;
  }

  /** Checks that the database answers; each later query opens its own connection, so the reader
   * keeps working across a restart of the server (tests that stop PostgreSQL). */
  static async connect(url: string): Promise<LedgerReader> {
    const reader = new LedgerReader(url);
    await reader.query('SELECT 1');
    return reader;
  }

  /** The job's runs, oldest claim first. Empty (not an error) before the operator has migrated. */
  async runs(jobUid: string): Promise<LedgerRunRow[]> {
    if (!(await this.migrated())) return [];
    return this.query<LedgerRunRow>(
      `SELECT run_key, job_uid, namespace, job_name, run_kind, tick, manual_token, attempt, pod_name, state,
              outcome, reason, message, holder, term::text AS term, claimed_at, started_at, finished_at
         FROM ssj.runs WHERE job_uid = $1 ORDER BY claimed_at, attempt`,
      [jobUid],
    );
  }

  async ticksNotRun(jobUid: string): Promise<TicksNotRunRow[]> {
    if (!(await this.migrated())) return [];
    return this.query<TicksNotRunRow>(
      `SELECT job_uid, job_name, outcome, first_tick, last_tick, count::int AS count, reason, message
         FROM ssj.ticks_not_run WHERE job_uid = $1 ORDER BY first_tick`,
      [jobUid],
    );
  }

  /** Every run row of the database, for checks across jobs. */
  async allRuns(): Promise<LedgerRunRow[]> {
    if (!(await this.migrated())) return [];
    return this.query<LedgerRunRow>(
      `SELECT run_key, job_uid, namespace, job_name, run_kind, tick, manual_token, attempt, pod_name, state,
              outcome, reason, message, holder, term::text AS term, claimed_at, started_at, finished_at
         FROM ssj.runs ORDER BY claimed_at`,
    );
  }

  /**
   * Scheduled run identities (job, tick, attempt) held by more than one row of the whole
   * database. The schema's unique index should make this impossible; the checker asks anyway.
   */
  async duplicateRunIdentities(): Promise<{ job_uid: string; tick: Date; attempt: number; rows: number }[]> {
    if (!(await this.migrated())) return [];
    return this.query(
      `SELECT job_uid, tick, attempt, count(*)::int AS rows
         FROM ssj.runs WHERE run_kind = 'scheduled'
        GROUP BY job_uid, tick, attempt HAVING count(*) > 1`,
    );
  }

  /** Runs of the job whose tick is also inside one of its Skipped or Missed records: a tick with two outcomes. */
  async runTicksAlsoNotRun(
    jobUid: string,
  ): Promise<{ pod_name: string; tick: Date; outcome: string; first_tick: Date; last_tick: Date }[]> {
    if (!(await this.migrated())) return [];
    return this.query(
      `SELECT r.pod_name, r.tick, t.outcome, t.first_tick, t.last_tick
         FROM ssj.runs r JOIN ssj.ticks_not_run t
           ON t.job_uid = r.job_uid AND r.tick BETWEEN t.first_tick AND t.last_tick
        WHERE r.job_uid = $1 AND r.run_kind = 'scheduled'`,
      [jobUid],
    );
  }

  /** Nothing stays open between queries; kept so callers need not know. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  private async migrated(): Promise<boolean> {
    const rows = await this.query<{ t: string | null }>(`SELECT to_regclass('ssj.runs')::text AS t`);
    return typeof rows[0]?.t === 'string';
  }

  private async query<T extends object>(text: string, values: unknown[] = []): Promise<T[]> {
    const client = new Client({
      connectionString: this.url,
      application_name: 'ssj-e2e-checker',
      connectionTimeoutMillis: 5000,
    });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query<T>(text, values)).rows;
    } finally {
      await client.end();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Invariants.

function podList(pods: readonly RecordedPod[]): string {
  return pods.map((p) => `${p.name} (uid ${p.uid}, phases ${p.phases.join('>')})`).join(', ');
}

/** No two Pods (ever, by UID) share a (job, tick, attempt), and no Pod name was ever used twice. */
export function assertOnePodPerRun(pods: readonly RecordedPod[]): void {
  const byRun = new Map<string, RecordedPod[]>();
  const byName = new Map<string, RecordedPod[]>();
  for (const p of pods) {
    const job = p.labels[LABEL_JOB];
    if (job === undefined) continue;
    const run = `${job}/${p.labels[LABEL_TICK] ?? '?'}/${p.labels[LABEL_ATTEMPT] ?? '?'}/${p.annotations[ANNOTATION_RUN_NOW_TOKEN] ?? ''}`;
    byRun.set(run, [...(byRun.get(run) ?? []), p]);
    byName.set(p.name, [...(byName.get(p.name) ?? []), p]);
  }
  for (const [run, same] of byRun) {
    assert.equal(same.length, 1, `run ${run} has ${same.length} Pods: ${podList(same)}`);
  }
  for (const [name, same] of byName) {
    assert.equal(same.length, 1, `Pod name ${name} was created ${same.length} times: ${podList(same)}`);
  }
}

/** Every Pod of the job is named `<job>-<unix seconds>[-attempt]` (or the manual form) and labelled to match. */
export function assertPodNamesWellFormed(pods: readonly RecordedPod[], job: string): void {
  for (const p of pods.filter((x) => x.labels[LABEL_JOB] === job)) {
    const tick = p.labels[LABEL_TICK];
    const attempt = Number(p.labels[LABEL_ATTEMPT]);
    assert.ok(
      Number.isInteger(attempt) && attempt >= 1,
      `${p.name}: label ${LABEL_ATTEMPT} is not a positive integer`,
    );
    if (tick === 'manual') {
      const token = p.annotations[ANNOTATION_RUN_NOW_TOKEN];
      assert.ok(
        token !== undefined,
        `${p.name}: a manual run's Pod has no ${ANNOTATION_RUN_NOW_TOKEN} annotation`,
      );
      assert.equal(
        p.name,
        expectedManualPodName(job, token, attempt),
        `${p.name}: not the manual run's name`,
      );
    } else {
      assert.match(tick ?? '', /^\d+$/, `${p.name}: label ${LABEL_TICK} is not Unix seconds`);
      assert.match(
        p.name,
        new RegExp(`^${job}-\\d+(-\\d+)?$`),
        `${p.name}: not <job>-<unix seconds>[-attempt]`,
      );
      assert.equal(
        p.name,
        expectedPodName(job, Number(tick), attempt),
        `${p.name}: name and labels disagree`,
      );
      assert.equal(
        p.annotations[ANNOTATION_SCHEDULED_TIME],
        rfc3339(new Date(Number(tick) * 1000)),
        `${p.name}: ${ANNOTATION_SCHEDULED_TIME} is not the tick`,
      );
    }
    assert.ok(p.name.length <= 63, `${p.name}: longer than 63 characters`);
  }
}

/** Each run row has its own Pod name, and each run identity appears once. */
export function assertLedgerPodNamesUnique(rows: readonly LedgerRunRow[]): void {
  const names = new Map<string, LedgerRunRow[]>();
  for (const r of rows)
    names.set(`${r.job_uid}/${r.pod_name}`, [...(names.get(`${r.job_uid}/${r.pod_name}`) ?? []), r]);
  for (const [name, same] of names) {
    assert.equal(
      same.length,
      1,
      `ledger rows share the Pod name ${name}: ${same.map((r) => r.run_key).join(', ')}`,
    );
  }
}

/**
 * The status summary agrees with the PostgreSQL rows: every run in status.history is a finished
 * row with the same outcome, attempt and tick; status.lastRun is the most recently finished row;
 * every claim in status is an unfinished row.
 */
export function assertStatusAgreesWithLedger(job: JobObject, rows: readonly LedgerRunRow[]): void {
  const byPod = new Map(rows.map((r) => [r.pod_name, r]));
  for (const h of historyRuns(job)) {
    const row = byPod.get(h.podName ?? '');
    assert.ok(row !== undefined, `status.history lists ${h.podName ?? '?'}, which has no ledger row`);
    assert.equal(
      row.state,
      'Finished',
      `status.history lists ${row.pod_name} as ${h.outcome}; its row is ${row.state}`,
    );
    assert.equal(
      h.outcome,
      row.outcome,
      `${row.pod_name}: status says ${h.outcome}, the ledger says ${String(row.outcome)}`,
    );
    assert.equal(h.attempt ?? 1, row.attempt, `${row.pod_name}: attempts disagree`);
    if (row.tick !== null) assert.equal(h.tick, rfc3339(row.tick), `${row.pod_name}: ticks disagree`);
  }
  const finished = rows.filter((r) => r.state === 'Finished' && r.finished_at !== null);
  const newest = [...finished].sort(
    (a, b) => (b.finished_at?.getTime() ?? 0) - (a.finished_at?.getTime() ?? 0),
  )[0];
  if (newest !== undefined) {
    assert.equal(
      job.status?.lastRun?.podName,
      newest.pod_name,
      'status.lastRun is not the most recently finished row',
    );
    assert.equal(job.status.lastRun.outcome, newest.outcome, 'status.lastRun.outcome disagrees with its row');
  }
  for (const c of job.status?.ledger?.claims ?? []) {
    const row = byPod.get(c.podName);
    assert.ok(
      row !== undefined && row.state !== 'Finished',
      `status claims ${c.podName}, which is not an unfinished row`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// The tracking finalizer.

export function hasRunRecordFinalizer(pod: V1Pod): boolean {
  return pod.metadata?.finalizers?.includes(FINALIZER_RUN_RECORD) === true;
}

/** The job's Pods that carry the tracking finalizer now, read live from the API server. */
export async function podsWithRunRecordFinalizer(
  kc: KubeConfig,
  namespace: string,
  job: string,
): Promise<V1Pod[]> {
  return (await listJobPods(kc, namespace, job)).filter(hasRunRecordFinalizer);
}

// ---------------------------------------------------------------------------------------------
// Every status.history record ever written, from a watch of the jobs.

/** One record as it was first seen in some job's status (history or lastRun). */
export interface SeenRecord {
  readonly job: string;
  readonly record: RunRecord;
  /** The job's resourceVersion in which it was first seen. */
  readonly resourceVersion: string;
  /** Local time it was first seen. */
  readonly seenAt: number;
}

/**
 * Watches a namespace's jobs from before the operator starts and keeps every distinct record
 * that `status.history` or `status.lastRun` ever held, so a check covers every record written
 * during the test, not only what the bounded history still holds at the end. Every status write
 * is a watch event, and a status write adds at most a few records to a history of 20, so no
 * record can come and go between two events.
 *
 * `problems(job)` finds the ways a tick can get more than one outcome: one run recorded with two
 * outcomes (in one status or across statuses), two records for one (tick, attempt) in one
 * status, and a run's tick inside a Skipped or Missed record.
 *
 * Does not give: records written and dropped inside a gap of the watch (it lists and watches again).
 */
export class HistoryRecorder {
  private readonly kc: KubeConfig;
  private readonly namespace: string;
  private readonly records = new Map<string, SeenRecord>();
  private readonly snapshotProblems = new Map<string, string[]>();
  private readonly snapshots = new Map<string, number>();
  private readonly statuses: SeenStatus[] = [];
  private readonly lastStatusText = new Map<string, string>();
  private abort: AbortController | undefined;
  private stopped = false;

  private constructor(kc: KubeConfig, namespace: string) {
    this.kc = kc;
    this.namespace = namespace;
  }

  static async start(kc: KubeConfig, namespace: string): Promise<HistoryRecorder> {
    const r = new HistoryRecorder(kc, namespace);
    await r.listAndWatch();
    return r;
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  /**
   * Every version of the job this recorder saw, oldest first, with the term its status names
   * (`status.ledger.term`: every status write stamps the writer's term), so a check can tell
   * which term wrote each status.
   */
  statusVersions(job: string): SeenStatus[] {
    return this.statuses.filter((s) => s.job === job);
  }

  /** How many statuses of the job this recorder has seen. */
  statusesSeen(job: string): number {
    return this.snapshots.get(job) ?? 0;
  }

  /** Every distinct record of the job ever seen, oldest first. */
  all(job: string): SeenRecord[] {
    return [...this.records.values()].filter((r) => r.job === job).sort((a, b) => a.seenAt - b.seenAt);
  }

  /** Every distinct run record (one with a Pod) ever seen for the Pod `podName`. */
  runRecords(job: string, podName: string): SeenRecord[] {
    return this.all(job).filter((r) => r.record.podName === podName);
  }

  /** Every way the recorded history gave a tick more than one outcome; empty when none did. */
  problems(job: string): string[] {
    const out = [...(this.snapshotProblems.get(job) ?? [])];
    const seen = this.all(job);
    const byRun = new Map<string, RunRecord[]>();
    for (const { record } of seen) {
      if (record.podName === undefined) continue;
      const key = `${record.podName} (attempt ${String(record.attempt ?? 1)})`;
      byRun.set(key, [...(byRun.get(key) ?? []), record]);
    }
    for (const [run, records] of byRun) {
      if (new Set(records.map((r) => r.outcome)).size > 1)
        out.push(`${run} was recorded ${records.map(outcomeText).join(' and ')}`);
    }
    const notRun = seen.filter((r) => r.record.podName === undefined && r.record.tick !== undefined);
    for (const { record } of seen) {
      if (record.podName === undefined || record.tick === undefined) continue;
      const tick = Date.parse(record.tick);
      for (const { record: n } of notRun) {
        const first = Date.parse(n.tick ?? '');
        const last = Date.parse(n.lastTick ?? n.tick ?? '');
        if (first <= tick && tick <= last) {
          out.push(
            `the tick ${record.tick} of ${record.podName} (${record.outcome}) is also recorded ${n.outcome} (${n.tick ?? '?'}..${n.lastTick ?? n.tick ?? '?'}, ${n.reason ?? ''})`,
          );
        }
      }
    }
    return [...new Set(out)];
  }

  private async listAndWatch(): Promise<void> {
    const api = this.kc.makeApiClient(CustomObjectsApi);
    const list = (await api.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: this.namespace,
    })) as { items?: unknown[]; metadata?: { resourceVersion?: string } };
    for (const item of list.items ?? []) this.observe(item);
    const watch = new Watch(this.kc);
    this.abort = await watch.watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${this.namespace}/${PLURAL}`,
      { resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true },
      (type: string, obj: unknown) => {
        if (type === 'ADDED' || type === 'MODIFIED') this.observe(obj);
      },
      () => {
        if (this.stopped) return;
        void this.restart();
      },
    );
  }

  private async restart(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.listAndWatch();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** attempt)));
      }
    }
  }

  private observe(obj: unknown): void {
    let job: JobObject;
    try {
      job = asJob(obj);
    } catch {
      return;
    }
    const name = job.metadata.name;
    const rv = (job.metadata as { resourceVersion?: string }).resourceVersion ?? '';
    this.snapshots.set(name, (this.snapshots.get(name) ?? 0) + 1);
    const history = job.status?.history ?? [];
    const now = Date.now();
    const statusTerm = job.status?.ledger?.['term'];
    const previous = this.statuses.findLast((v) => v.job === name);
    if (previous?.resourceVersion !== rv) {
      const statusText = JSON.stringify(job.status ?? null);
      this.statuses.push({
        job: name,
        resourceVersion: rv,
        seenAt: now,
        term: typeof statusTerm === 'number' ? statusTerm : undefined,
        claims: (job.status?.ledger?.claims ?? []).map((c) => c.podName),
        statusChanged: previous === undefined || this.lastStatusText.get(name) !== statusText,
      });
      this.lastStatusText.set(name, statusText);
    }
    for (const record of [...history, ...(job.status?.lastRun === undefined ? [] : [job.status.lastRun])]) {
      const key = `${name}\u0000${JSON.stringify(recordIdentity(record))}`;
      if (!this.records.has(key))
        this.records.set(key, { job: name, record, resourceVersion: rv, seenAt: now });
    }
    // Within one status: one record per run, per (tick, attempt), and no run inside a not-run range.
    const problems: string[] = [];
    const runs = history.filter((r) => r.podName !== undefined);
    const byPod = new Map<string, number>();
    const byTick = new Map<string, number>();
    for (const r of runs) {
      byPod.set(r.podName ?? '', (byPod.get(r.podName ?? '') ?? 0) + 1);
      if (r.tick !== undefined) {
        const k = `${r.tick}/${String(r.attempt ?? 1)}`;
        byTick.set(k, (byTick.get(k) ?? 0) + 1);
      }
    }
    for (const [pod, n] of byPod)
      if (n > 1) problems.push(`status (resourceVersion ${rv}) lists ${pod} ${n} times`);
    for (const [tick, n] of byTick)
      if (n > 1)
        problems.push(`status (resourceVersion ${rv}) has ${n} run records for tick/attempt ${tick}`);
    if (problems.length > 0)
      this.snapshotProblems.set(name, [...(this.snapshotProblems.get(name) ?? []), ...problems]);
  }
}

/** One version of a job as the HistoryRecorder saw it. */
export interface SeenStatus {
  readonly job: string;
  readonly resourceVersion: string;
  /** Local time it was seen. */
  readonly seenAt: number;
  /** `status.ledger.term`: the term of the write that produced this status, if it names one. */
  readonly term: number | undefined;
  /** The Pod names of `status.ledger.claims`. */
  readonly claims: readonly string[];
  /** Whether its status differs from the job's previous version seen (a status write, not a metadata change). */
  readonly statusChanged: boolean;
}

/** What makes a record distinct: the same record re-listed by a later status is not new. */
function recordIdentity(r: RunRecord): unknown[] {
  return [r.podName, r.tick, r.lastTick, r.count, r.manualToken, r.attempt, r.outcome, r.reason];
}

function outcomeText(r: RunRecord): string {
  return r.reason === undefined ? r.outcome : `${r.outcome} (${r.reason})`;
}

// ---------------------------------------------------------------------------------------------
// The leader Lease, and which term made each Pod.

/** DESIGN.md: the operator's leader election Lease, in its leader election namespace. */
export const LEADER_LEASE = 'ssj-operator-leader';

/** One version of the Lease as the LeaseRecorder saw it (a deletion is a version too). */
export interface LeaseVersion {
  readonly uid: string;
  readonly resourceVersion: string;
  /** `spec.holderIdentity`, '' when nobody holds it (released) or it is deleted. */
  readonly holder: string;
  /** `spec.leaseTransitions` (0 when unset): the number of the term that holds it. */
  readonly transitions: number;
  readonly durationSeconds: number | undefined;
  readonly deleted: boolean;
  /** Local time it was seen. */
  readonly seenAt: number;
}

/**
 * Watches one Lease from before the operators start and keeps every version of it the watch
 * delivered (every renewal, takeover, release), with the local time each arrived, so a check
 * can say who held which term and what the Lease showed when a Pod was created.
 *
 * `effectiveAt(resourceVersion)` is the Lease version in force when an object of that
 * resourceVersion was written: the newest version with a smaller resourceVersion. That reads
 * resourceVersions as numbers, which Kubernetes calls opaque; it holds for every API server
 * backed by one etcd (the revision of the write), which is what the local cluster is. When
 * either is not a number it answers undefined.
 *
 * Does not give: versions written and replaced inside a gap of the watch (it lists and watches
 * again).
 */
export class LeaseRecorder {
  private readonly kc: KubeConfig;
  private readonly namespace: string;
  readonly name: string;
  private readonly versions: LeaseVersion[] = [];
  private abort: AbortController | undefined;
  private stopped = false;

  private constructor(kc: KubeConfig, namespace: string, name: string) {
    this.kc = kc;
    this.namespace = namespace;
    this.name = name;
  }

  static async start(kc: KubeConfig, namespace: string, name = LEADER_LEASE): Promise<LeaseRecorder> {
    const r = new LeaseRecorder(kc, namespace, name);
    await r.listAndWatch();
    return r;
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  /** Every version seen, in the order seen. */
  all(): LeaseVersion[] {
    return [...this.versions];
  }

  /** The latest version seen. */
  current(): LeaseVersion | undefined {
    return this.versions.at(-1);
  }

  /** The first version seen at or after `since` (local time) that satisfies `match`. */
  firstSince(since: number, match: (v: LeaseVersion) => boolean): LeaseVersion | undefined {
    return this.versions.find((v) => v.seenAt >= since && match(v));
  }

  /** Every holder that the Lease showed with each term number (releases and deletions left out). */
  holdersByTerm(): Map<number, Set<string>> {
    const out = new Map<number, Set<string>>();
    for (const v of this.versions) {
      if (v.deleted || v.holder === '') continue;
      const set = out.get(v.transitions) ?? new Set<string>();
      set.add(v.holder);
      out.set(v.transitions, set);
    }
    return out;
  }

  /** Terms in the order they first appeared: number, holder, first seen. */
  terms(): { number: number; holder: string; seenAt: number; resourceVersion: string }[] {
    const out: { number: number; holder: string; seenAt: number; resourceVersion: string }[] = [];
    for (const v of this.versions) {
      if (v.deleted || v.holder === '') continue;
      const last = out.at(-1);
      if (last?.number === v.transitions && last.holder === v.holder) continue;
      out.push({
        number: v.transitions,
        holder: v.holder,
        seenAt: v.seenAt,
        resourceVersion: v.resourceVersion,
      });
    }
    return out;
  }

  /** The version in force when an object with `resourceVersion` was written (see the class comment). */
  effectiveAt(resourceVersion: string | undefined): LeaseVersion | undefined {
    const at = numericVersion(resourceVersion);
    if (at === undefined) return undefined;
    let best: { v: LeaseVersion; rv: bigint } | undefined;
    for (const v of this.versions) {
      const rv = numericVersion(v.resourceVersion);
      if (rv === undefined || rv >= at) continue;
      if (best === undefined || rv > best.rv) best = { v, rv };
    }
    return best?.v;
  }

  private async listAndWatch(): Promise<void> {
    const api = this.kc.makeApiClient(CoordinationV1Api);
    const fieldSelector = `metadata.name=${this.name}`;
    const list = await api.listNamespacedLease({ namespace: this.namespace, fieldSelector });
    for (const item of list.items) this.observe('ADDED', item);
    const watch = new Watch(this.kc);
    this.abort = await watch.watch(
      `/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases`,
      { resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true, fieldSelector },
      (type: string, obj: unknown) => {
        this.observe(type, obj as V1Lease);
      },
      () => {
        if (this.stopped) return;
        void this.restart();
      },
    );
  }

  private async restart(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.listAndWatch();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** attempt)));
      }
    }
  }

  private observe(type: string, lease: V1Lease): void {
    if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') return;
    const uid = lease.metadata?.uid ?? '';
    const resourceVersion = lease.metadata?.resourceVersion ?? '';
    const last = this.versions.at(-1);
    const deleted = type === 'DELETED';
    if (last?.uid === uid && last.resourceVersion === resourceVersion && last.deleted === deleted) return;
    this.versions.push({
      uid,
      resourceVersion,
      holder: deleted ? '' : (lease.spec?.holderIdentity ?? ''),
      transitions: lease.spec?.leaseTransitions ?? 0,
      durationSeconds: lease.spec?.leaseDurationSeconds,
      deleted,
      seenAt: Date.now(),
    });
  }
}

function numericVersion(rv: string | undefined): bigint | undefined {
  if (rv === undefined || !/^\d+$/.test(rv)) return undefined;
  return BigInt(rv);
}

/**
 * DESIGN.md, invariant 3, for Pods: every Pod of a run carries `ssj.dev/term` (the Lease's
 * leaseTransitions of the term that created it) and `ssj.dev/holder` (that term's holder). For
 * each Pod: the annotations are there; the Lease showed that holder, and only that holder, with
 * that term number; and when the Pod was written (by its creation's resourceVersion, as the
 * watch's ADDED event carried it) the Lease in force showed that very holder and term. Returns
 * one line per problem; empty when every Pod passes.
 */
export function podTermProblems(pods: readonly RecordedPod[], lease: LeaseRecorder): string[] {
  const out: string[] = [];
  const holders = lease.holdersByTerm();
  for (const p of pods) {
    if (p.labels[LABEL_JOB] === undefined) continue;
    const termText = p.annotations[ANNOTATION_TERM];
    const holder = p.annotations[ANNOTATION_HOLDER];
    if (termText === undefined || !/^\d+$/.test(termText) || holder === undefined || holder === '') {
      out.push(
        `${p.name}: ${ANNOTATION_TERM}=${String(termText)} ${ANNOTATION_HOLDER}=${String(holder)} (a Pod names its term and holder)`,
      );
      continue;
    }
    const term = Number(termText);
    const shown = holders.get(term);
    if (shown === undefined) out.push(`${p.name}: term ${term} never appeared in the Lease`);
    else if (shown.size !== 1 || !shown.has(holder))
      out.push(
        `${p.name}: holder ${holder}, but the Lease showed term ${term} held by ${[...shown].join(', ')}`,
      );
    const rv = p.first.metadata?.resourceVersion;
    const then = lease.effectiveAt(rv);
    if (then === undefined) {
      out.push(`${p.name}: no Lease version before its creation (resourceVersion ${String(rv)})`);
    } else if (then.holder !== holder || then.transitions !== term) {
      out.push(
        `${p.name} (term ${term}, holder ${holder}, resourceVersion ${String(rv)}) was created while the Lease showed ` +
          `holder "${then.holder}" at leaseTransitions ${then.transitions} (resourceVersion ${then.resourceVersion}${then.deleted ? ', deleted' : ''})`,
      );
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// One outcome per tick.

/** The ticks of an every-`everySeconds` schedule from `from` to `to`, both included. */
export function ticksBetween(from: Date, to: Date, everySeconds: number): Date[] {
  const out: Date[] = [];
  const first = Math.ceil(from.getTime() / 1000 / everySeconds) * everySeconds;
  for (let s = first; s * 1000 <= to.getTime(); s += everySeconds) out.push(new Date(s * 1000));
  return out;
}

/**
 * What status.history recorded for each tick, over every record the HistoryRecorder ever saw:
 * the runs (by Pod name) whose tick it is, and the Skipped or Missed records that cover it (by
 * outcome and first tick, so one record whose range grew counts once).
 */
export function statusOutcomesByTick(
  history: HistoryRecorder,
  job: string,
  ticks: readonly Date[],
): Map<number, string[]> {
  const out = new Map<number, string[]>();
  const seen = history.all(job).map((r) => r.record);
  for (const tick of ticks) {
    const t = tick.getTime();
    const keys = new Set<string>();
    for (const r of seen) {
      if (r.podName !== undefined) {
        if (r.tick !== undefined && Date.parse(r.tick) === t) keys.add(`run ${r.podName}`);
        continue;
      }
      if (r.tick === undefined) continue;
      const first = Date.parse(r.tick);
      const last = Date.parse(r.lastTick ?? r.tick);
      if (first <= t && t <= last) keys.add(`${r.outcome} from ${r.tick}`);
    }
    out.set(t, [...keys]);
  }
  return out;
}

/**
 * The problems with the job's recorded outcomes over `ticks`, in status.history (every record
 * ever seen): a tick with no outcome or with more than one, a Skipped or Missed record without
 * a reason, and whatever `HistoryRecorder.problems` finds.
 */
export function statusTickProblems(history: HistoryRecorder, job: string, ticks: readonly Date[]): string[] {
  const out = [...history.problems(job)];
  for (const [t, keys] of statusOutcomesByTick(history, job, ticks)) {
    if (keys.length !== 1)
      out.push(
        `status: tick ${rfc3339(new Date(t))} has ${keys.length} outcomes${keys.length === 0 ? '' : `: ${keys.join('; ')}`}`,
      );
  }
  for (const { record } of history.all(job)) {
    if ((record.outcome === 'Skipped' || record.outcome === 'Missed') && (record.reason ?? '') === '')
      out.push(
        `status: a ${record.outcome} record (${record.tick ?? '?'}..${record.lastTick ?? '?'}) has no reason`,
      );
  }
  return out;
}

/** The same, in PostgreSQL: runs of the tick in ssj.runs plus ssj.ticks_not_run rows covering it. */
export function ledgerTickProblems(
  rows: readonly LedgerRunRow[],
  notRun: readonly TicksNotRunRow[],
  ticks: readonly Date[],
): string[] {
  const out: string[] = [];
  for (const tick of ticks) {
    const t = tick.getTime();
    const keys = [
      ...rows
        .filter((r) => r.run_kind === 'scheduled' && r.tick?.getTime() === t)
        .map((r) => `run ${r.pod_name} (${r.state})`),
      ...notRun
        .filter((n) => n.first_tick.getTime() <= t && t <= n.last_tick.getTime())
        .map((n) => `${n.outcome} ${rfc3339(n.first_tick)}..${rfc3339(n.last_tick)}`),
    ];
    if (keys.length !== 1)
      out.push(
        `SQL: tick ${rfc3339(tick)} has ${keys.length} outcomes${keys.length === 0 ? '' : `: ${keys.join('; ')}`}`,
      );
  }
  for (const n of notRun) {
    if (n.reason === '')
      out.push(`SQL: a ${n.outcome} row (${rfc3339(n.first_tick)}..${rfc3339(n.last_tick)}) has no reason`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Events by reporting instance.

export interface ReportedEvent {
  readonly reason: string;
  readonly note: string;
  readonly reportingInstance: string;
  /** eventTime: when the reporter first saw it. */
  readonly eventTime: number | undefined;
  /** series.lastObservedTime: when it last saw it again, for a repeated Event. */
  readonly lastObservedTime: number | undefined;
}

/** Every events.k8s.io/v1 Event of the namespace, with who reported it and when. */
export async function reportedEvents(kc: KubeConfig, namespace: string): Promise<ReportedEvent[]> {
  const list = await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace });
  const time = (d: Date | string | undefined): number | undefined =>
    d === undefined ? undefined : new Date(d).getTime();
  return list.items.map((e) => ({
    reason: e.reason ?? '',
    note: e.note ?? '',
    reportingInstance: e.reportingInstance ?? '',
    eventTime: time(e.eventTime as Date | string | undefined),
    lastObservedTime: time(e.series?.lastObservedTime as Date | string | undefined),
  }));
}

/**
 * The simulated world: a fake clock, the fake API server, the ledger store (in 'postgres'
 * mode), one or more controller processes, and the checkers. A scenario is a list of steps
 * (./scenario.ts); the world applies them one by one, then quiesces (the chaos stops, Pods
 * finish, one healthy leader reconciles until nothing changes) and reports every invariant
 * it saw broken.
 *
 * Nothing here reads a real clock or does I/O: time moves only when a step says so.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { ScheduledSingletonJobSpec } from '../../../../src/api/types.ts';
import { runOfPod } from '../../../../src/controller/pod.ts';
import { HISTORY_LIMIT, RUNS_KEPT } from '../../../../src/controller/status.ts';
import { runKey } from '../../../../src/run/identity.ts';
import type { FaultPoint } from '../../../../src/controller/faults.ts';
import type { EventSink, ReconcileObserver } from '../../../../src/controller/ports.ts';
import { ANNOTATION_RUN_NOW, FINALIZER_RUN_RECORD } from '../../../../src/api/types.ts';
import { mutationOf, type Mutation } from './mutations.ts';
import { parseSchedule, ScheduleCache, type Schedule } from '../../../../src/schedule/index.ts';
import { ApiServer, NAMESPACE } from './api-server.ts';
import { ControllerProcess, type Fault } from './controller.ts';
import {
  checkPods,
  checkStreak,
  checkTicks,
  OutcomeLog,
  STORE,
  violation,
  type StreakCommit,
  type Violation,
} from './invariants.ts';
import { MemoryLedgerStore } from './memory-ledger.ts';

export const JOB = 'job';
export const KEY = `${NAMESPACE}/${JOB}`;
export const JOB_UID = 'job-uid-1';
/** 2026-11-22T10:00:00Z: any instant would do; a fixed one makes traces readable. */
export const START = Date.UTC(2026, 10, 22, 10, 0, 0);

export interface WorldConfig {
  readonly schedule: string;
  /** The schedule's period, the unit of `wait` steps. */
  readonly periodMs: number;
  readonly concurrencyPolicy: 'Forbid' | 'Replace';
  readonly maxAttempts: number;
  readonly backoffSeconds: number;
  readonly maxPendingSeconds?: number | undefined;
  readonly startingDeadlineSeconds?: number | undefined;
  readonly successfulRunsHistoryLimit: number;
  readonly failedRunsHistoryLimit: number;
  readonly ledger: 'status' | 'postgres';
  /** Controller processes running at once: 2 is a stale leader racing a new one. */
  readonly processes: number;
  /** The admission policy that refuses Pods from a leader whose term is over. */
  readonly admission: boolean;
  /** When in the schedule's period the job is created. */
  readonly createdOffsetMs: number;
  /** A deliberately broken controller (./mutations.ts): the checkers must catch it. */
  readonly mutation?: Mutation | undefined;
  /** Receives what every process's reconciler reports to the metrics. */
  readonly observer?: ReconcileObserver | undefined;
}

/** The job most counterexamples shrank to: a 2-second schedule, Forbid, no retries, no Pods kept. */
export const BASE_CONFIG: WorldConfig = {
  schedule: '*/2 * * * * *',
  periodMs: 2000,
  concurrencyPolicy: 'Forbid',
  maxAttempts: 1,
  backoffSeconds: 0,
  maxPendingSeconds: undefined,
  startingDeadlineSeconds: undefined,
  successfulRunsHistoryLimit: 0,
  failedRunsHistoryLimit: 0,
  ledger: 'status',
  processes: 1,
  admission: false,
  createdOffsetMs: 0,
};

export type PodAct = 'start' | 'succeed' | 'fail' | 'evict' | 'delete' | 'terminate' | 'forceRemove';

export type Step =
  /** A trigger for the job's key: the process's worker runs it to the end, every call answered. */
  | { readonly kind: 'reconcile'; readonly proc: number }
  /** The process's requeue timer fires: the clock moves to it, then the key is reconciled. */
  | { readonly kind: 'reconcileAtRequeue'; readonly proc: number }
  /** A worker takes the key and runs until its first call leaves the process. */
  | { readonly kind: 'begin'; readonly proc: number }
  /** The process's waiting call goes through, fails, or the process dies there. */
  | { readonly kind: 'step'; readonly proc: number; readonly fault: Fault }
  /** SSJ_FAULT_EXIT_AT: the process exits the next time it reaches the point. */
  | { readonly kind: 'armExit'; readonly proc: number; readonly point: FaultPoint }
  /** The process dies now, whatever it was doing; a new one (fresh memory, next term) starts. */
  | { readonly kind: 'crash'; readonly proc: number }
  /** An informer catches up `quarters`/4 of the way to the present. */
  | {
      readonly kind: 'sync';
      readonly proc: number;
      readonly cache: 'jobs' | 'pods';
      readonly quarters: number;
    }
  /** The kubelet, a node or a user acts on the `pick`-th existing Pod of the job. */
  | { readonly kind: 'pod'; readonly pick: number; readonly act: PodAct }
  /** Time passes, in eighths of the schedule's period (controllers may be down meanwhile). */
  | { readonly kind: 'wait'; readonly eighths: number }
  | { readonly kind: 'suspend'; readonly value: boolean }
  /** A user asks for a manual run (the ssj.dev/run-now annotation) with this token. */
  | { readonly kind: 'runNow'; readonly token: string }
  /** A ResourceQuota starts or stops refusing every new Pod (Forbidden). */
  | { readonly kind: 'quota'; readonly full: boolean }
  /** PostgreSQL goes down or comes back ('postgres' mode). */
  | { readonly kind: 'ledgerUp'; readonly up: boolean };

export interface Report {
  readonly violations: readonly Violation[];
  readonly trace: readonly string[];
  readonly stats: {
    readonly podsCreated: number;
    readonly reconciles: number;
    readonly failures: number;
    readonly restarts: number;
    /** Ticks the bounded status history dropped (status-only ledger; see checkTicks). */
    readonly forgotten: number;
  };
}

export class World {
  now: number;
  readonly config: WorldConfig;
  readonly server: ApiServer;
  readonly store: MemoryLedgerStore | undefined;
  readonly procs: ControllerProcess[] = [];
  readonly violations: Violation[] = [];
  readonly trace: string[] = [];
  /** Every Event any process emitted, in order. */
  readonly eventsSeen: { type: string; reason: string; message: string }[] = [];
  /** Everything any committed status showed. */
  readonly statusLog: OutcomeLog;
  /** Everything the PostgreSQL-semantics store committed ('postgres' mode). */
  readonly storeLog: OutcomeLog;
  private readonly schedule: Schedule;
  private readonly schedules = new ScheduleCache();
  private readonly createdAt: Date;
  private term = 0;
  private readonly reportedRunning = new Set<string>();
  private restarts = 0;
  private retired = { reconciles: 0, failures: 0 };
  /** The streak every committed status showed, in commit order. */
  private readonly streaks: StreakCommit[] = [];
  private readonly events: EventSink;

  constructor(config: WorldConfig) {
    this.config = config;
    this.now = START + config.createdOffsetMs;
    const clock = (): number => this.now;
    this.statusLog = new OutcomeLog(this.violations);
    this.storeLog = new OutcomeLog(this.violations);
    this.server = new ApiServer(clock, {
      statusCommitted: (job) => {
        const where = `status rv ${job.metadata?.resourceVersion ?? '?'}`;
        this.statusLog.status(job.status, where, (n) => this.server.getPod(n));
        this.streaks.push({
          where,
          consecutiveFailures: job.status?.consecutiveFailures,
          cursor: job.status?.ledger?.streakCursor,
        });
      },
      ledgerClaimed: (pod) => this.ledgerClaimed(pod),
      podRemoved: (pod) => {
        this.checkRecorded(pod);
      },
    });
    this.store =
      config.ledger === 'postgres'
        ? new MemoryLedgerStore(clock, {
            finished: (_uid, run) => {
              this.storeLog.run(
                run.id,
                run.podName,
                'Finished',
                run.outcome,
                STORE,
                (n) => this.server.getPod(n),
                run.finishedAt?.getTime(),
              );
            },
          })
        : undefined;
    this.events = {
      event: (_obj, type, reason, message) => {
        this.eventsSeen.push({ type, reason, message });
        if (type === 'Warning') this.note(`  event ${reason}: ${message}`);
        // Nothing in this world resets or restores the ledger, so a Pod of ours that the ledger
        // does not know means the ledger forgot a run whose Pod still exists.
        if (reason === 'UnexpectedPod')
          this.violations.push(
            violation('the ledger remembers', `the ledger forgot a run whose Pod exists: ${message}`),
          );
      },
    };
    const parsed = parseSchedule(config.schedule, 'UTC');
    if (!parsed.ok) throw new Error(parsed.error.message);
    this.schedule = parsed.schedule;
    const job = this.server.createJob(JOB, JOB_UID, this.spec());
    this.createdAt = new Date(job.metadata?.creationTimestamp ?? this.now);
    for (let i = 0; i < config.processes; i++) this.procs.push(this.newProcess());
  }

  /** What the ledger has committed about the run of `pod`: its furthest state and outcome. */
  private committed(pod: V1Pod): { state: string; outcome?: string | undefined } | undefined {
    const run = runOfPod(pod);
    if (run === null) return undefined;
    const key = runKey(run);
    return this.store === undefined ? this.statusLog.runs.get(key) : this.store.runs.get(`${JOB_UID}/${key}`);
  }

  private ledgerClaimed(pod: V1Pod): boolean {
    return this.committed(pod) !== undefined;
  }

  /** A Pod object went away: its run's outcome must be committed by then. */
  private checkRecorded(pod: V1Pod): void {
    if (this.committed(pod)?.outcome !== undefined) return;
    const name = pod.metadata?.name ?? '';
    this.violations.push(
      violation(
        'tracked until recorded',
        `pod ${name} (${pod.status?.phase ?? '?'}) left the API server before its run had an outcome`,
      ),
    );
  }

  private spec(): ScheduledSingletonJobSpec {
    const c = this.config;
    return {
      schedule: c.schedule,
      timeZone: 'UTC',
      suspend: false,
      concurrencyPolicy: c.concurrencyPolicy,
      ...(c.startingDeadlineSeconds === undefined
        ? {}
        : { startingDeadlineSeconds: c.startingDeadlineSeconds }),
      ...(c.maxPendingSeconds === undefined ? {} : { maxPendingSeconds: c.maxPendingSeconds }),
      retry: { maxAttempts: c.maxAttempts, backoffSeconds: c.backoffSeconds },
      successfulRunsHistoryLimit: c.successfulRunsHistoryLimit,
      failedRunsHistoryLimit: c.failedRunsHistoryLimit,
      template: { spec: { containers: [{ name: 'main', image: 'busybox' }] } },
    };
  }

  /** A new process: the next leadership term, which the Lease (and its admission policy) now names. */
  private newProcess(): ControllerProcess {
    const term = ++this.term;
    if (this.config.admission) this.server.admissionTerm = term;
    const mutation = mutationOf(this.config.mutation);
    return new ControllerProcess(
      {
        ...mutation,
        observer: this.config.observer,
        server: this.server,
        clock: () => this.now,
        schedules: this.schedules,
        store: this.store,
        events: this.events,
        note: (line) => {
          this.note(line);
        },
      },
      `controller-${term}`,
      term,
    );
  }

  private proc(i: number): { index: number; p: ControllerProcess } {
    const index = i % this.procs.length;
    let p = this.procs[index]!;
    if (p.dead) {
      // The dead process's supervisor restarts it: fresh memory, caches listed anew, next term.
      this.retire(p);
      p = this.newProcess();
      this.procs[index] = p;
      this.restarts++;
      this.note(`  ${p.name} starts`);
    }
    return { index, p };
  }

  private retire(p: ControllerProcess): void {
    this.retired.reconciles += p.completed;
    this.retired.failures += p.failures.length;
  }

  private note(line: string): void {
    this.trace.push(line);
  }

  async apply(step: Step): Promise<void> {
    const t = `+${((this.now - START) / 1000).toFixed(2)}s`;
    switch (step.kind) {
      case 'reconcile':
      case 'reconcileAtRequeue': {
        const { p } = this.proc(step.proc);
        if (
          step.kind === 'reconcileAtRequeue' &&
          !p.reconciling &&
          p.requeueAt !== undefined &&
          p.requeueAt > this.now
        ) {
          this.now = p.requeueAt;
        }
        const failures = p.failures.length;
        this.note(`${t} ${p.name} ${step.kind}${p.reconciling ? ' (continues)' : ''}`);
        await p.reconcile(KEY);
        if (p.failures.length > failures) this.note(`  failed: ${p.failures.at(-1) ?? ''}`);
        if (p.dead) this.note(`  ${p.name} exited`);
        return;
      }
      case 'begin': {
        const { p } = this.proc(step.proc);
        if (p.reconciling) return;
        await p.begin(KEY);
        this.note(`${t} ${p.name} begins; waits at ${p.waitingAt ?? '(ended)'}`);
        return;
      }
      case 'step': {
        const { p } = this.proc(step.proc);
        const at = p.waitingAt;
        if (at === undefined) return;
        const failures = p.failures.length;
        await p.step(step.fault);
        this.note(
          `${t} ${p.name} ${at}: ${step.fault}; ${p.dead ? 'exited' : `now at ${p.waitingAt ?? '(ended)'}`}`,
        );
        if (p.failures.length > failures) this.note(`  failed: ${p.failures.at(-1) ?? ''}`);
        return;
      }
      case 'armExit': {
        const { p } = this.proc(step.proc);
        p.armed = step.point;
        this.note(`${t} ${p.name} armed to exit at ${step.point}`);
        return;
      }
      case 'crash': {
        const { p } = this.proc(step.proc);
        this.note(`${t} ${p.name} crashes${p.waitingAt === undefined ? '' : ` waiting at ${p.waitingAt}`}`);
        p.die();
        return;
      }
      case 'sync': {
        const { p } = this.proc(step.proc);
        p.sync(step.cache, step.quarters / 4);
        return;
      }
      case 'pod': {
        const pods = this.server.podsOf(JOB);
        if (pods.length === 0) return;
        const name = pods[step.pick % pods.length]?.metadata?.name ?? '';
        if (this.podAct(name, step.act)) this.note(`${t} pod ${name}: ${step.act}`);
        return;
      }
      case 'wait':
        this.now += Math.round((step.eighths * this.config.periodMs) / 8);
        return;
      case 'suspend':
        if (this.server.job(JOB)?.spec.suspend === step.value) return;
        this.server.updateJobSpec(JOB, (s) => ({ ...s, suspend: step.value }));
        this.note(`${t} user sets suspend=${step.value}`);
        return;
      case 'runNow':
        if (this.server.job(JOB)?.metadata?.annotations?.[ANNOTATION_RUN_NOW] === step.token) return;
        this.server.annotateJob(JOB, ANNOTATION_RUN_NOW, step.token);
        this.note(`${t} user asks for a run now: ${step.token}`);
        return;
      case 'quota':
        if ((this.server.quotaRefusal !== undefined) === step.full) return;
        this.server.quotaRefusal = step.full
          ? 'pods "x" is forbidden: exceeded quota: zero, limited: pods=0'
          : undefined;
        this.note(`${t} the namespace quota ${step.full ? 'refuses' : 'admits'} Pods`);
        return;
      case 'ledgerUp':
        if (this.store === undefined || this.store.available === step.up) return;
        this.store.available = step.up;
        this.note(`${t} ledger database ${step.up ? 'back' : 'down'}`);
        return;
      default: {
        const never: never = step;
        throw new Error(`unknown step ${JSON.stringify(never)}`);
      }
    }
  }

  private podAct(name: string, act: PodAct): boolean {
    const s = this.server;
    switch (act) {
      case 'start':
        return s.startPod(name);
      case 'succeed':
        return s.finishPod(name, 0);
      case 'fail':
        return s.finishPod(name, 1);
      case 'evict':
        return s.evictPod(name);
      case 'delete': {
        const pod = s.getPod(name);
        if (pod === undefined || pod.metadata?.deletionTimestamp !== undefined) return false;
        s.deletePod(name, pod.metadata?.uid ?? '');
        return true;
      }
      case 'terminate':
        return s.finishTermination(name);
      case 'forceRemove':
        return s.forceRemove(name);
      default: {
        const never: never = act;
        throw new Error(`unknown pod act ${String(never)}`);
      }
    }
  }

  /**
   * The chaos stops: the old processes are gone, one new leader with current caches, the
   * ledger up, the job resumed; Pods finish (successfully) and the leader reconciles, first
   * while time moves on (so backoffs pass), then at a standstill until nothing changes.
   */
  async quiesce(): Promise<void> {
    const t = `+${((this.now - START) / 1000).toFixed(2)}s`;
    this.note(`${t} quiescing`);
    for (const p of this.procs) {
      p.die();
      this.retire(p);
    }
    this.procs.length = 0;
    const leader = this.newProcess();
    this.procs.push(leader);
    if (this.store !== undefined) this.store.available = true;
    this.server.quotaRefusal = undefined;
    if (this.server.job(JOB)?.spec.suspend === true)
      this.server.updateJobSpec(JOB, (s) => ({ ...s, suspend: false }));

    const reconcile = async (): Promise<void> => {
      leader.sync('jobs', 1);
      leader.sync('pods', 1);
      const failures = leader.failures.length;
      await leader.reconcile(KEY);
      if (leader.failures.length > failures) {
        this.violations.push(
          violation(
            'quiescence',
            `a reconcile failed while quiescing (fresh caches, no faults): ${leader.failures.at(-1) ?? ''}`,
          ),
        );
      }
      this.checkEndedRunsStopped();
    };
    const round = async (): Promise<void> => {
      await reconcile();
      this.finishAllPods();
    };
    const backoff = Math.max(1, this.config.backoffSeconds) * 1000;
    for (let i = 0; i < 4; i++) {
      await round();
      await round();
      this.now += backoff + 1;
    }
    for (let i = 0; i < 3; i++) await round();
    await reconcile();
  }

  /**
   * After a healthy reconcile with current caches, no Pod whose run the ledger has ended
   * (Replaced, TimedOut, ...) is left to run: it is deleted (terminating) or done.
   */
  private checkEndedRunsStopped(): void {
    for (const pod of this.server.livePodsOf(JOB)) {
      if (pod.metadata?.deletionTimestamp !== undefined) continue;
      const run = runOfPod(pod);
      if (run === null) continue;
      const key = runKey(run);
      const ended =
        this.store === undefined ? this.statusLog.runs.get(key) : this.store.runs.get(`${JOB_UID}/${key}`);
      if (ended?.state !== 'Finished' || this.reportedRunning.has(key)) continue;
      this.reportedRunning.add(key);
      this.violations.push(
        violation(
          'ended runs stop',
          `pod ${pod.metadata?.name ?? ''} is ${pod.status?.phase ?? '?'} and not being deleted, though its run was recorded ${ended.outcome ?? '?'}`,
        ),
      );
    }
  }

  private finishAllPods(): void {
    for (const pod of this.server.podsOf(JOB)) {
      const name = pod.metadata?.name ?? '';
      if (pod.metadata?.deletionTimestamp !== undefined) {
        this.server.finishTermination(name);
        continue;
      }
      this.server.startPod(name);
      this.server.finishPod(name, 0);
    }
  }

  /** Every invariant, checked on what the world recorded. Call after `quiesce`. */
  report(): Report {
    const violations = [...this.violations, ...checkPods(this.server.created)];
    const log = this.config.ledger === 'postgres' ? this.storeFromStore() : this.statusLog;
    const ticks = checkTicks({
      schedule: this.schedule,
      from: this.createdAt,
      until: new Date(this.now),
      runs: log.runs.values(),
      notRun: log.notRun.values(),
      maxAttempts: this.config.maxAttempts,
      horizon: this.store === undefined ? this.statusHorizon() : undefined,
    });
    violations.push(...ticks.violations);
    violations.push(
      ...checkStreak(log.runs.values(), this.streaks, (key) => this.statusLog.runs.get(key)?.shownIn),
    );
    const live = this.server.livePodsOf(JOB).map((p) => p.metadata?.name ?? '');
    if (live.length > 0)
      violations.push(violation('quiescence', `pods still live at quiescence: ${live.join(', ')}`));
    // Every run is finished by now, so no Pod may still wait on the operator's finalizer.
    const held = this.server
      .podsOf(JOB)
      .filter((p) => p.metadata?.finalizers?.includes(FINALIZER_RUN_RECORD) === true)
      .map((p) => p.metadata?.name ?? '');
    if (held.length > 0)
      violations.push(violation('quiescence', `finalizers never released at quiescence: ${held.join(', ')}`));
    let reconciles = this.retired.reconciles;
    let failures = this.retired.failures;
    for (const p of this.procs) {
      reconciles += p.completed;
      failures += p.failures.length;
    }
    return {
      violations,
      trace: this.trace,
      stats: {
        podsCreated: this.server.created.length,
        reconciles,
        failures,
        restarts: this.restarts,
        forgotten: ticks.forgotten,
      },
    };
  }

  /** The oldest tick the final status's history still holds, when that history is full. */
  /**
   * The status history keeps the newest RUNS_KEPT runs, then the newest other entries up to
   * HISTORY_LIMIT (src/controller/status.ts). Once full, a record older than the oldest of
   * those other entries may have been dropped.
   */
  private statusHorizon(): number | undefined {
    const history = this.server.job(JOB)?.status?.history ?? [];
    if (history.length < HISTORY_LIMIT) return undefined;
    // A manual run has no tick: the history orders it by when it ran (status.ts, occasionTime).
    const tick = (r: (typeof history)[number]) => new Date(r.tick ?? r.startTime ?? 0).getTime();
    const isRun = (r: (typeof history)[number]) => r.outcome !== 'Skipped' && r.outcome !== 'Missed';
    const keptRuns = new Set(
      history
        .filter(isRun)
        .sort((a, b) => tick(b) - tick(a))
        .slice(0, RUNS_KEPT),
    );
    const others = history.filter((r) => !keptRuns.has(r));
    return Math.min(...(others.length > 0 ? others : history).map(tick));
  }

  /** The store's full contents as a log (runs and records, unbounded). */
  private storeFromStore(): OutcomeLog {
    const log = new OutcomeLog(this.violations);
    const store = this.store;
    if (store === undefined) return log;
    for (const r of store.runs.values()) {
      log.run(r.id, r.podName, r.state, r.outcome, STORE, () => undefined, r.finishedAt?.getTime());
      const logged = log.runs.get(runKey(r.id));
      if (logged !== undefined) logged.claimedAt = r.claimedAt.getTime();
    }

    for (const n of store.notRun.values()) {
      log.notRunRecord(
        {
          outcome: n.outcome,
          firstTick: n.firstTick.getTime(),
          lastTick: n.lastTick.getTime(),
          count: n.count,
        },
        STORE,
      );
    }
    return log;
  }
}

/** Applies every step, quiesces, and reports. */
export async function runScenario(config: WorldConfig, steps: readonly Step[]): Promise<Report> {
  const world = new World(config);
  for (const step of steps) await world.apply(step);
  await world.quiesce();
  return world.report();
}

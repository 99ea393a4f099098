/**
 * One controller process of the simulation: the real Reconciler (and through it the real plan),
 * wired to the fake API server (./api-server.ts) through
 * - informer caches that lag: the job cache and the Pod cache each show the server as it was at
 *   some past resourceVersion, and move forward only when the scenario syncs them (as a watch
 *   delivers events late, and a relist jumps ahead);
 * - a gate on every call that leaves the process (API server, ledger database): the call waits
 *   there until the scenario lets it through, fails it (before or after it took effect, as a
 *   timeout does), or kills the process at that point. So reconciles of two processes
 *   interleave call by call, and a crash can land between any two effects.
 *
 * A dead process never acts again: its pending call is never answered. A restart is a new
 * ControllerProcess with fresh memory, caches synced at start (an informer lists before the
 * manager lets a reconcile run), and a new leadership term.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { LABEL_JOB } from '../../../../src/api/types.ts';
import type { FaultPoint } from '../../../../src/controller/faults.ts';
import type { Plan, PlanInput } from '../../../../src/controller/plan.ts';
import type { EventSink, KubeWriter, ReconcileObserver } from '../../../../src/controller/ports.ts';
import { Reconciler } from '../../../../src/controller/reconciler.ts';
import type { Fence, Ledger } from '../../../../src/ledger/ledger.ts';
import { statusLedger } from '../../../../src/ledger/status-ledger.ts';
import type { ScheduleCache } from '../../../../src/schedule/index.ts';
import { NetworkError, type ApiServer } from './api-server.ts';
import type { Gate, MemoryLedgerStore } from './memory-ledger.ts';

/** What happens to a call waiting at the gate. */
export type Fault = 'ok' | 'error-before' | 'error-after' | 'crash-before' | 'crash-after';

/** Thrown by the fault hook to model the process exiting at a fault point. */
export class CrashSignal extends Error {
  override readonly name = 'CrashSignal';
}

export interface ProcessEnv {
  readonly server: ApiServer;
  readonly clock: () => number;
  readonly schedules: ScheduleCache;
  /** The PostgreSQL-semantics store, in 'postgres' mode; the status-only ledger otherwise. */
  readonly store: MemoryLedgerStore | undefined;
  readonly events: EventSink;
  /** A line for the scenario's trace. */
  readonly note: (line: string) => void;
  /** A deliberately broken planner (./mutations.ts), to prove the checkers can fail. */
  readonly plan?: ((input: PlanInput) => Plan) | undefined;
  /** A deliberately broken view of the API server (./mutations.ts). */
  readonly wrapKube?: ((kube: KubeWriter) => KubeWriter) | undefined;
  /** Receives what the reconciler reports to the metrics. */
  readonly observer?: ReconcileObserver | undefined;
}

interface Pending {
  readonly label: string;
  readonly perform: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

export class ControllerProcess {
  readonly name: string;
  readonly fence: Fence;
  jobsRv: number;
  podsRv: number;
  dead = false;
  reconciling = false;
  /** When the last completed reconcile asked to look again. */
  requeueAt: number | undefined;
  /** The work-queue lane the last completed reconcile asked to be requeued in. */
  requeueLane: 'due' | 'normal' | undefined;
  /** A fault point at which the process exits (the SSJ_FAULT_EXIT_AT switch). */
  armed: FaultPoint | undefined;
  completed = 0;
  failures: string[] = [];
  private pending: Pending | undefined;
  private wake: (() => void) | undefined;
  private readonly env: ProcessEnv;
  private readonly reconciler: Reconciler;

  constructor(env: ProcessEnv, name: string, term: number) {
    this.env = env;
    this.name = name;
    this.fence = { term, holder: name };
    this.jobsRv = env.server.rv;
    this.podsRv = env.server.rv;
    const { server } = env;
    const gate: Gate = (label, perform) => this.gate(label, perform);
    const real: KubeWriter = {
      createPod: (pod) =>
        gate(`createPod ${pod.metadata?.name ?? ''}`, () => {
          const name = pod.metadata?.name ?? '';
          const answer = server.createPod(pod);
          env.note(`  ${this.name} creates pod ${name}: ${answer.result}`);
          switch (answer.result) {
            case 'created':
              return { kind: 'created', pod: answer.pod } as const;
            case 'exists':
              return { kind: 'exists', pod: server.getPod(name) } as const;
            case 'refused':
              return {
                kind: 'refused',
                reason: 'Forbidden',
                message: answer.message,
                fenced: answer.message.includes('leader term'),
              } as const;
          }
        }),
      getPod: (_ns, name) =>
        gate(`getPod ${name}`, () => {
          const pod = server.getPod(name);
          env.note(`  ${this.name} reads pod ${name} live: ${pod === undefined ? 'absent' : 'found'}`);
          return pod;
        }),
      deletePod: (_ns, name, uid) =>
        gate(`deletePod ${name}`, () => {
          env.note(`  ${this.name} deletes pod ${name}`);
          server.deletePod(name, uid);
        }),
      removeFinalizer: (_ns, name, uid) =>
        gate(`removeFinalizer ${name}`, () => {
          const result = server.removeFinalizer(name, uid);
          env.note(`  ${this.name} releases pod ${name}: ${result}`);
          return result;
        }),
      getJob: (_ns, name) => gate(`getJob ${name}`, () => server.job(name)),
      replaceJobStatus: (job) => gate('replaceJobStatus', () => server.replaceJobStatus(job)),
      dryRunPod: () => gate('dryRunPod', () => ({ kind: 'ok' }) as const),
    };
    const kube = env.wrapKube === undefined ? real : env.wrapKube(real);
    const ledger: Ledger = env.store === undefined ? statusLedger : env.store.open(this.fence, gate);
    this.reconciler = new Reconciler({
      jobs: { get: (_ns, name) => server.jobAt(name, this.jobsRv) },
      pods: { forJob: (_ns, jobName) => this.cachedPods(jobName) },
      kube,
      ledger,
      events: env.events,
      schedules: env.schedules,
      now: () => new Date(env.clock()),
      fence: () => (this.dead ? undefined : this.fence),
      plan: env.plan,
      observer: env.observer,
      fault: (point) => {
        if (this.armed !== point) return;
        this.armed = undefined;
        throw new CrashSignal(`exit at fault point ${point}`);
      },
    });
  }

  /** The informer of `cache` catches up `part` of the way to the server's present (1 = fully). */
  sync(cache: 'jobs' | 'pods', part: number): void {
    const latest = this.env.server.rv;
    if (cache === 'jobs') this.jobsRv += Math.round((latest - this.jobsRv) * part);
    else this.podsRv += Math.round((latest - this.podsRv) * part);
  }

  /** The label of the call waiting at the gate, if any. */
  get waitingAt(): string | undefined {
    return this.pending?.label;
  }

  /** A worker takes the key and runs until its first call leaves the process (or it ends). */
  async begin(key: string): Promise<void> {
    if (this.dead || this.reconciling) return;
    this.reconciling = true;
    void this.reconciler
      .reconcile(key)
      .then(
        (r) => {
          this.completed++;
          this.requeueAt = r.requeueAfterMs === undefined ? undefined : this.env.clock() + r.requeueAfterMs;
          this.requeueLane = r.lane;
        },
        (err: unknown) => {
          if (err instanceof CrashSignal) {
            this.die();
            return;
          }
          this.failures.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
        },
      )
      .finally(() => {
        this.reconciling = false;
        this.notify();
      });
    await this.idle();
  }

  /** The waiting call goes through, or fails, or the process dies there. */
  async step(fault: Fault): Promise<void> {
    const p = this.pending;
    if (p === undefined || this.dead) return;
    this.pending = undefined;
    if (fault === 'crash-before') {
      this.die();
      return;
    }
    let outcome: { ok: true; value: unknown } | { ok: false; err: unknown } = { ok: true, value: undefined };
    if (fault !== 'error-before') {
      try {
        outcome = { ok: true, value: p.perform() };
      } catch (err) {
        outcome = { ok: false, err };
      }
    }
    switch (fault) {
      case 'ok':
        if (outcome.ok) p.resolve(outcome.value);
        else p.reject(outcome.err);
        break;
      case 'error-before':
      case 'error-after':
        p.reject(new NetworkError(`${p.label}: connection reset (${fault})`));
        break;
      case 'crash-after':
        this.die();
        return;
      default: {
        const never: never = fault;
        throw new Error(`unknown fault ${String(never)}`);
      }
    }
    await this.idle();
  }

  /** Runs a reconcile of `key` to its end (continuing one already under way), every call answered. */
  async reconcile(key: string): Promise<void> {
    if (!this.reconciling) await this.begin(key);
    for (let guard = 0; this.pending !== undefined && !this.dead; guard++) {
      if (guard > 1000) throw new Error('a reconcile made more than 1000 calls');
      await this.step('ok');
    }
  }

  /** The process exits: whatever it was doing stops here, and it never acts again. */
  die(): void {
    this.dead = true;
    this.pending = undefined;
    this.notify();
  }

  private gate<T>(label: string, perform: () => T): Promise<T> {
    // A dead process's calls never get an answer (its reconcile stays suspended for ever).
    if (this.dead) return new Promise<T>(() => undefined);
    return new Promise<T>((resolve, reject) => {
      this.pending = {
        label,
        perform,
        resolve: (v) => {
          resolve(v as T);
        },
        reject,
      };
      this.notify();
    });
  }

  /** Resolves once the reconcile under way waits at the gate, or has ended, or the process died. */
  private async idle(): Promise<void> {
    while (!this.dead && this.reconciling && this.pending === undefined) {
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private cachedPods(jobName: string): V1Pod[] {
    const { server } = this.env;
    const pods: V1Pod[] = [];
    for (const name of server.podNames()) {
      const pod = server.podAt(name, this.podsRv);
      if (pod?.metadata?.labels?.[LABEL_JOB] === jobName) pods.push(pod);
    }
    return pods;
  }
}

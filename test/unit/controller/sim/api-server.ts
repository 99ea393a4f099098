/**
 * An in-memory API server for one namespace: ScheduledSingletonJobs and Pods, each change
 * stamped with a global resourceVersion, and every version kept so that an informer cache can
 * be replayed at any past version (./controller.ts).
 *
 * What it promises, as the real one does: a Pod name is unique among existing Pods (a create
 * of a taken name answers 'exists', the 409 AlreadyExists); a status replace with a stale
 * resourceVersion throws the reconciler's StatusConflictError; a delete carries a UID
 * precondition; a Pod object goes only once its finalizers are gone and it can no longer run
 * (terminal, never bound to a node, or stopped by the "kubelet"): until then a deletion only
 * marks it (deletionTimestamp); an optional admission rule refuses a Pod whose ssj.dev/term is
 * older than the leader Lease's term (DESIGN.md, "Stale leaders are fenced").
 *
 * What it records for the checkers (./invariants.ts): every Pod ever created, with the Pods of
 * the same job that were alive at that instant and whether the ledger had claimed its run,
 * every Pod object that went away, and every committed status.
 *
 * Time is the world's fake clock; nothing here reads a real clock or does I/O.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { ScheduledSingletonJob, ScheduledSingletonJobSpec } from '../../../../src/api/types.ts';
import {
  ANNOTATION_TERM,
  ANNOTATION_HOLDER,
  FINALIZER_RUN_RECORD,
  LABEL_JOB,
} from '../../../../src/api/types.ts';
import { StatusConflictError } from '../../../../src/controller/ports.ts';

export const NAMESPACE = 'ns';

/** A transient failure the fake network injects (a timeout, a reset connection). */
export class NetworkError extends Error {
  override readonly name = 'NetworkError';
}

/** The simulated node every started Pod is bound to. */
const NODE = 'node-1';

interface Version<T> {
  readonly rv: number;
  readonly obj: T | undefined;
}

/** Every version of every object of one kind, by name. */
class Versions<T> {
  private readonly byName = new Map<string, Version<T>[]>();

  put(name: string, rv: number, obj: T | undefined): void {
    let list = this.byName.get(name);
    if (list === undefined) this.byName.set(name, (list = []));
    list.push({ rv, obj: obj === undefined ? undefined : structuredClone(obj) });
  }

  /** The object as it was at resourceVersion `rv` (undefined when absent then). */
  at(name: string, rv: number): T | undefined {
    const list = this.byName.get(name) ?? [];
    for (let i = list.length - 1; i >= 0; i--) {
      const v = list[i]!;
      if (v.rv <= rv) return v.obj === undefined ? undefined : structuredClone(v.obj);
    }
    return undefined;
  }

  /** The live object, not copied: callers inside the server only. */
  current(name: string): T | undefined {
    return this.byName.get(name)?.at(-1)?.obj;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }
}

export interface CreatedPod {
  readonly name: string;
  readonly uid: string;
  readonly job: string;
  readonly at: number;
  readonly holder: string;
  /** Other Pods of the job that could still run when this one was created. */
  readonly liveOthers: readonly string[];
  /** Whether a committed ledger record had claimed this run when its Pod was created. */
  readonly claimed: boolean;
}

export type PodPhaseName = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export interface ServerHooks {
  /** A status replace was committed (after the object is stored). */
  statusCommitted?(job: ScheduledSingletonJob): void;
  /** Whether the ledger has committed a claim of the run of this Pod. */
  ledgerClaimed?(pod: V1Pod): boolean;
  /** A Pod object went away (its last finalizer removed, or never tracked). */
  podRemoved?(pod: V1Pod): void;
}

export type CreateAnswer =
  | { readonly result: 'created'; readonly pod: V1Pod; readonly record: CreatedPod }
  | { readonly result: 'exists' }
  | { readonly result: 'refused'; readonly message: string };

export class ApiServer {
  rv = 1;
  /** The leader Lease's current term, when the admission policy is installed. */
  admissionTerm: number | undefined;
  /** A ResourceQuota that admits no Pod, while set: its refusal message. */
  quotaRefusal: string | undefined;
  readonly created: CreatedPod[] = [];
  private readonly jobs = new Versions<ScheduledSingletonJob>();
  private readonly pods = new Versions<V1Pod>();
  private uidCounter = 0;
  private readonly clock: () => number;
  private readonly hooks: ServerHooks;

  constructor(clock: () => number, hooks: ServerHooks = {}) {
    this.clock = clock;
    this.hooks = hooks;
  }

  // ---- jobs

  createJob(name: string, uid: string, spec: ScheduledSingletonJobSpec): ScheduledSingletonJob {
    const job: ScheduledSingletonJob = {
      apiVersion: 'ssj.dev/v1alpha1',
      kind: 'ScheduledSingletonJob',
      metadata: {
        name,
        namespace: NAMESPACE,
        uid,
        generation: 1,
        resourceVersion: String(++this.rv),
        creationTimestamp: new Date(Math.floor(this.clock() / 1000) * 1000),
      },
      spec,
    };
    this.jobs.put(name, this.rv, job);
    return structuredClone(job);
  }

  /** A user's annotation edit: bumps resourceVersion, not generation. */
  annotateJob(name: string, key: string, value: string): void {
    const job = this.jobs.current(name);
    if (job === undefined) throw new Error(`no job ${name}`);
    const next = structuredClone(job);
    next.metadata ??= {};
    next.metadata.annotations = { ...next.metadata.annotations, [key]: value };
    next.metadata.resourceVersion = String(++this.rv);
    this.jobs.put(name, this.rv, next);
  }

  /** A user's spec edit: bumps generation and resourceVersion. */
  updateJobSpec(name: string, change: (spec: ScheduledSingletonJobSpec) => ScheduledSingletonJobSpec): void {
    const job = this.jobs.current(name);
    if (job === undefined) throw new Error(`no job ${name}`);
    const next = structuredClone(job);
    next.metadata ??= {};
    next.metadata.generation = (next.metadata.generation ?? 0) + 1;
    next.metadata.resourceVersion = String(++this.rv);
    next.spec = change(next.spec);
    this.jobs.put(name, this.rv, next);
  }

  job(name: string): ScheduledSingletonJob | undefined {
    const j = this.jobs.current(name);
    return j === undefined ? undefined : structuredClone(j);
  }

  jobAt(name: string, rv: number): ScheduledSingletonJob | undefined {
    return this.jobs.at(name, rv);
  }

  replaceJobStatus(job: ScheduledSingletonJob): ScheduledSingletonJob {
    const name = job.metadata?.name ?? '';
    const current = this.jobs.current(name);
    if (current === undefined) throw new Error(`no job ${name}`);
    if (job.metadata?.resourceVersion !== current.metadata?.resourceVersion) {
      throw new StatusConflictError(`status of ${name} changed meanwhile`);
    }
    // The status subresource ignores everything but the status.
    const next = structuredClone(current);
    next.metadata ??= {};
    next.metadata.resourceVersion = String(++this.rv);
    if (job.status !== undefined) next.status = structuredClone(job.status);
    this.jobs.put(name, this.rv, next);
    this.hooks.statusCommitted?.(structuredClone(next));
    return structuredClone(next);
  }

  // ---- pods

  /** The create, and the record of it when it created a Pod. */
  createPod(pod: V1Pod): CreateAnswer {
    const name = pod.metadata?.name ?? '';
    // Admission runs before storage, so a fenced leader hears Forbidden even for a taken name.
    const term = Number(pod.metadata?.annotations?.[ANNOTATION_TERM]);
    if (this.admissionTerm !== undefined && !(term >= this.admissionTerm)) {
      return {
        result: 'refused',
        message: `pod ${name}: leader term ${term} is over (lease term ${this.admissionTerm})`,
      };
    }
    if (this.pods.current(name) !== undefined) return { result: 'exists' };
    if (this.quotaRefusal !== undefined) return { result: 'refused', message: this.quotaRefusal };
    const job = pod.metadata?.labels?.[LABEL_JOB] ?? '';
    const now = this.clock();
    const stored = structuredClone(pod);
    stored.metadata ??= {};
    stored.metadata.uid = `pod-uid-${++this.uidCounter}`;
    stored.metadata.resourceVersion = String(++this.rv);
    stored.metadata.creationTimestamp = new Date(Math.floor(now / 1000) * 1000);
    stored.status = { phase: 'Pending' };
    const liveOthers = this.livePodsOf(job).map((p) => p.metadata?.name ?? '');
    const claimed = this.hooks.ledgerClaimed?.(stored) ?? false;
    this.pods.put(name, this.rv, stored);
    const record: CreatedPod = {
      name,
      uid: stored.metadata.uid,
      job,
      at: now,
      holder: pod.metadata?.annotations?.[ANNOTATION_HOLDER] ?? '',
      liveOthers,
      claimed,
    };
    this.created.push(record);
    return { result: 'created', pod: structuredClone(stored), record };
  }

  getPod(name: string): V1Pod | undefined {
    const p = this.pods.current(name);
    return p === undefined ? undefined : structuredClone(p);
  }

  /** Deletion with a UID precondition: marked, and gone once nothing holds it any more. */
  deletePod(name: string, uid: string): void {
    const pod = this.pods.current(name);
    if (pod === undefined || pod.metadata?.uid !== uid) return; // NotFound or Conflict: nothing to do
    if (pod.metadata.deletionTimestamp === undefined) {
      this.changePod(name, (p) => {
        p.metadata ??= {};
        p.metadata.deletionTimestamp = new Date(this.clock());
        p.metadata.deletionGracePeriodSeconds = 0;
      });
    }
    this.removeIfReleased(name);
  }

  /** Removes the tracking finalizer from the Pod of that UID: 'gone' if it had none. */
  removeFinalizer(name: string, uid: string): 'removed' | 'gone' {
    const pod = this.pods.current(name);
    if (pod === undefined || pod.metadata?.uid !== uid) return 'gone';
    if (!(pod.metadata.finalizers ?? []).includes(FINALIZER_RUN_RECORD)) return 'gone';
    this.changePod(name, (p) => {
      p.metadata ??= {};
      p.metadata.finalizers = (p.metadata.finalizers ?? []).filter((f) => f !== FINALIZER_RUN_RECORD);
    });
    this.removeIfReleased(name);
    return 'removed';
  }

  /** A deleted Pod goes once no finalizer holds it and it can no longer run. */
  private removeIfReleased(name: string): void {
    const pod = this.pods.current(name);
    if (pod?.metadata?.deletionTimestamp === undefined) return;
    if ((pod.metadata.finalizers ?? []).length > 0) return;
    if (isTerminalPod(pod) || (pod.spec?.nodeName ?? '') === '') this.removePod(name);
  }

  podAt(name: string, rv: number): V1Pod | undefined {
    return this.pods.at(name, rv);
  }

  podNames(): string[] {
    return this.pods.names();
  }

  /** Existing Pods of a job (terminal or not), oldest name first. */
  podsOf(job: string): V1Pod[] {
    return this.pods
      .names()
      .map((n) => this.pods.current(n))
      .filter((p): p is V1Pod => p !== undefined && p.metadata?.labels?.[LABEL_JOB] === job)
      .map((p) => structuredClone(p))
      .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  }

  /** Pods of the job that may still run: not Succeeded or Failed, terminating or not. */
  livePodsOf(job: string): V1Pod[] {
    return this.podsOf(job).filter((p) => !isTerminalPod(p));
  }

  // ---- the kubelet and the node: they move Pods through their phases

  startPod(name: string): boolean {
    const pod = this.pods.current(name);
    if (pod?.status?.phase !== 'Pending' || pod.metadata?.deletionTimestamp !== undefined) return false;
    this.changePod(name, (p) => {
      p.spec ??= { containers: [] };
      p.spec.nodeName = NODE;
      p.status ??= {};
      p.status.phase = 'Running';
      p.status.startTime = new Date(this.clock());
    });
    return true;
  }

  finishPod(name: string, exitCode: number): boolean {
    if (this.pods.current(name)?.status?.phase !== 'Running') return false;
    this.terminate(name, exitCode);
    this.removeIfReleased(name);
    return true;
  }

  private terminate(name: string, exitCode: number, condition?: string): void {
    const finishedAt = new Date(this.clock());
    this.changePod(name, (p) => {
      p.status ??= {};
      p.status.phase = exitCode === 0 ? 'Succeeded' : 'Failed';
      if (condition !== undefined) {
        p.status.reason = condition;
        p.status.conditions = [{ type: 'DisruptionTarget', status: 'True', reason: condition }];
      }
      p.status.containerStatuses = [
        {
          name: 'main',
          image: 'busybox',
          imageID: 'busybox',
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode, finishedAt, reason: exitCode === 0 ? 'Completed' : 'Error' } },
        },
      ];
    });
  }

  /** Node-pressure eviction by the kubelet: the Pod stays, Failed with reason Evicted. */
  evictPod(name: string): boolean {
    const pod = this.pods.current(name);
    if (pod === undefined || isTerminalPod(pod)) return false;
    this.changePod(name, (p) => {
      p.status ??= {};
      p.status.phase = 'Failed';
      p.status.reason = 'Evicted';
      p.status.message = 'the node was low on memory';
    });
    return true;
  }

  /**
   * The kubelet finished a graceful deletion: the containers are stopped (a running Pod ends
   * Failed, killed) and the object goes once no finalizer holds it.
   */
  finishTermination(name: string): boolean {
    const pod = this.pods.current(name);
    if (pod?.metadata?.deletionTimestamp === undefined) return false;
    if (!isTerminalPod(pod) && (pod.spec?.nodeName ?? '') !== '') this.terminate(name, 137);
    const before = this.pods.current(name) !== undefined;
    this.removeIfReleased(name);
    return before;
  }

  /**
   * Its node is lost: PodGC marks a bound Pod Failed with a DisruptionTarget condition and
   * deletes it (an unbound one is just deleted); the object goes once no finalizer holds it.
   */
  forceRemove(name: string): boolean {
    const pod = this.pods.current(name);
    if (pod === undefined) return false;
    if (!isTerminalPod(pod) && (pod.spec?.nodeName ?? '') !== '')
      this.terminate(name, 137, 'DeletionByPodGC');
    this.deletePod(name, pod.metadata?.uid ?? '');
    return true;
  }

  /** A new version of a live Pod: a copy, changed by `change`, with the next resourceVersion. */
  private changePod(name: string, change: (pod: V1Pod) => void): void {
    const current = this.pods.current(name);
    if (current === undefined) return;
    const next = structuredClone(current);
    change(next);
    next.metadata ??= {};
    next.metadata.resourceVersion = String(++this.rv);
    this.pods.put(name, this.rv, next);
  }

  private removePod(name: string): void {
    const pod = this.pods.current(name);
    this.pods.put(name, ++this.rv, undefined);
    if (pod !== undefined) this.hooks.podRemoved?.(structuredClone(pod));
  }
}

export function isTerminalPod(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

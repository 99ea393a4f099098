/**
 * A stand-in for the kubelet: the local cluster has none, so Pods stay Pending unless a test
 * writes their status the way a kubelet would (the `status` subresource).
 *
 * Guarantees:
 * - Each transition is one read-modify-write of the Pod's status, retried on a write conflict
 *   (409); it rejects when the Pod does not exist.
 * - The statuses written are the ones a kubelet reports: Running with `startTime` and a running
 *   container; Succeeded or Failed with every container terminated (exit code, reason,
 *   `finishedAt`); an eviction as phase Failed with reason `Evicted` and the kubelet's message.
 * - `autoKubelet` completes each new Pod of a namespace as a policy says, polling the API server
 *   (it never relies on the operator's caches).
 *
 * Does not give: scheduling (no nodeName is set, so deleting a Pod removes it at once, unless a
 * test puts a finalizer on it), probes, restarts of containers.
 */
import {
  CoreV1Api,
  type KubeConfig,
  type V1ContainerStatus,
  type V1Pod,
  type V1PodStatus,
} from '@kubernetes/client-node';
import { apiStatus } from '../../test/support/kube.ts';

export interface Termination {
  readonly exitCode: number;
  /** The container's termination reason: `Completed` for 0, else `Error` unless told. */
  readonly reason?: string;
}

export class FakeKubelet {
  private readonly core: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  /** Pending → Running. */
  async run(namespace: string, name: string, at: Date = new Date()): Promise<V1Pod> {
    return this.update(namespace, name, (pod) => ({
      phase: 'Running',
      startTime: at,
      containerStatuses: containerStatuses(pod, () => ({ running: { startedAt: at } }), true),
    }));
  }

  /** → Succeeded, every container exited 0. Runs the Pod first if it never ran. */
  async succeed(namespace: string, name: string, at: Date = new Date()): Promise<V1Pod> {
    return this.terminate(namespace, name, 'Succeeded', { exitCode: 0, reason: 'Completed' }, at);
  }

  /** → Failed, the first container exited with `exitCode` (1 unless told), the others with 0. */
  async fail(
    namespace: string,
    name: string,
    termination: Termination = { exitCode: 1 },
    at: Date = new Date(),
  ): Promise<V1Pod> {
    return this.terminate(namespace, name, 'Failed', termination, at);
  }

  /** The kubelet's eviction: phase Failed, reason Evicted, containers killed (137). */
  async evict(namespace: string, name: string, at: Date = new Date()): Promise<V1Pod> {
    return this.update(namespace, name, (pod) => ({
      phase: 'Failed',
      reason: 'Evicted',
      message: 'The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi.',
      startTime: pod.status?.startTime ?? at,
      containerStatuses: containerStatuses(pod, (c) => ({
        terminated: {
          exitCode: 137,
          reason: 'Error',
          startedAt: startedAtOf(pod, c) ?? at,
          finishedAt: at,
        },
      })),
    }));
  }

  /**
   * The kubelet's part in the graceful deletion of a Pod bound to its node: it stops the
   * containers (SIGTERM: exit code 143) and reports phase Failed (restartPolicy Never), unless
   * the Pod had already finished; then it confirms the deletion (grace period 0, by UID), after
   * which only finalizers keep the Pod.
   */
  async stopDeleted(namespace: string, name: string, at: Date = new Date()): Promise<V1Pod> {
    let pod = await this.core.readNamespacedPod({ namespace, name });
    const phase = pod.status?.phase;
    if (phase !== 'Succeeded' && phase !== 'Failed') {
      pod = await this.terminate(namespace, name, 'Failed', { exitCode: 143, reason: 'Error' }, at);
    }
    await this.core.deleteNamespacedPod({
      namespace,
      name,
      gracePeriodSeconds: 0,
      body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata?.uid ?? '' } },
    });
    return pod;
  }

  private async terminate(
    namespace: string,
    name: string,
    phase: 'Succeeded' | 'Failed',
    termination: Termination,
    at: Date,
  ): Promise<V1Pod> {
    return this.update(namespace, name, (pod) => ({
      phase,
      startTime: pod.status?.startTime ?? at,
      containerStatuses: containerStatuses(pod, (c, i) => {
        const exitCode = i === 0 ? termination.exitCode : 0;
        return {
          terminated: {
            exitCode,
            reason: i === 0 ? (termination.reason ?? (exitCode === 0 ? 'Completed' : 'Error')) : 'Completed',
            startedAt: startedAtOf(pod, c) ?? at,
            finishedAt: at,
          },
        };
      }),
    }));
  }

  private async update(
    namespace: string,
    name: string,
    change: (pod: V1Pod) => StatusChange,
  ): Promise<V1Pod> {
    for (let attempt = 0; ; attempt++) {
      const pod = await this.core.readNamespacedPod({ namespace, name });
      try {
        return await this.core.replaceNamespacedPodStatus({
          namespace,
          name,
          body: Object.assign(pod, { status: changedStatus(pod, change(pod)) }),
        });
      } catch (error) {
        if (apiStatus(error)?.code !== 409 || attempt >= 10) throw error;
      }
    }
  }
}

interface StatusChange {
  readonly phase: 'Running' | 'Succeeded' | 'Failed';
  readonly reason?: string;
  readonly message?: string;
  readonly startTime?: Date;
  readonly containerStatuses: V1ContainerStatus[];
}

/** The Pod's status after a change: the fields a kubelet keeps across transitions, and the change. */
function changedStatus(pod: V1Pod, change: StatusChange): V1PodStatus {
  const s = pod.status ?? {};
  return {
    conditions: s.conditions,
    hostIP: s.hostIP,
    podIP: s.podIP,
    qosClass: s.qosClass,
    startTime: change.startTime ?? s.startTime,
    phase: change.phase,
    reason: change.reason,
    message: change.message,
    containerStatuses: change.containerStatuses,
  };
}

function containerStatuses(
  pod: V1Pod,
  state: (container: { name: string }, index: number) => V1ContainerStatus['state'],
  ready = false,
): V1ContainerStatus[] {
  return (pod.spec?.containers ?? []).map((c, i) => ({
    name: c.name,
    image: c.image ?? '',
    imageID: '',
    ready,
    restartCount: 0,
    started: ready,
    state: state(c, i),
  }));
}

function startedAtOf(pod: V1Pod, container: { name: string }): Date | undefined {
  const status = pod.status?.containerStatuses?.find((s) => s.name === container.name);
  return status?.state?.running?.startedAt ?? pod.status?.startTime;
}

export type AutoDecision = 'succeed' | 'fail' | 'leave';

export interface AutoKubelet {
  /** Stops polling; resolves when the last pass has finished. */
  stop(): Promise<void>;
  /** Pods this kubelet moved, by name, with what it did. */
  readonly handled: ReadonlyMap<string, AutoDecision>;
}

/**
 * Every `intervalMs`, lists the namespace's Pods labelled `ssj.dev/job` and moves each Pending
 * one (not being deleted) through Running to what `decide` says, once. A Pod it leaves is asked
 * again on the next pass.
 */
export function autoKubelet(
  kc: KubeConfig,
  namespace: string,
  decide: (pod: V1Pod) => AutoDecision,
  intervalMs = 150,
): AutoKubelet {
  const core = kc.makeApiClient(CoreV1Api);
  const kubelet = new FakeKubelet(kc);
  const handled = new Map<string, AutoDecision>();
  // Pods this kubelet ran but has not finished yet (the API server failed in between): finished
  // on a later pass, or they would stay Running for good.
  const started = new Set<string>();
  const state = { stopped: false };
  const loop = (async () => {
    while (!state.stopped) {
      try {
        const list = await core.listNamespacedPod({ namespace, labelSelector: 'ssj.dev/job' });
        for (const pod of list.items) {
          const name = pod.metadata?.name ?? '';
          const key = `${name}/${pod.metadata?.uid ?? ''}`;
          if (handled.has(key) || pod.metadata?.deletionTimestamp !== undefined) continue;
          const phase = pod.status?.phase ?? 'Pending';
          if (phase !== 'Pending' && !(phase === 'Running' && started.has(key))) continue;
          const decision = decide(pod);
          if (decision === 'leave') continue;
          if (!started.has(key)) {
            await kubelet.run(namespace, name);
            started.add(key);
          }
          if (decision === 'succeed') await kubelet.succeed(namespace, name);
          else await kubelet.fail(namespace, name, { exitCode: 1 });
          handled.set(key, decision);
          started.delete(key);
        }
      } catch {
        // A Pod deleted between the list and the write, or an API hiccup: the next pass retries.
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    handled,
    async stop() {
      state.stopped = true;
      await loop;
    },
  };
}

export interface DeletionKubelet {
  /** Stops polling; resolves when the last pass has finished. */
  stop(): Promise<void>;
  /** Pods it stopped and confirmed, as `name/uid`. */
  readonly stopped: ReadonlySet<string>;
}

/**
 * Plays the kubelet of the node the Pods are bound to, for deletions only: every `intervalMs`, each
 * Pod of the namespace labelled `ssj.dev/job`, bound to a node and being deleted (by anyone: a
 * test, the garbage collector, the namespace controller) is stopped and its deletion confirmed
 * (`FakeKubelet.stopDeleted`), once. Unbound Pods are left alone: the API server deletes them at
 * once (grace period 0).
 */
export function kubeletStopsDeletedPods(
  kc: KubeConfig,
  namespace: string,
  intervalMs = 150,
): DeletionKubelet {
  const core = kc.makeApiClient(CoreV1Api);
  const kubelet = new FakeKubelet(kc);
  const stopped = new Set<string>();
  const state = { stopped: false };
  const loop = (async () => {
    while (!state.stopped) {
      try {
        const list = await core.listNamespacedPod({ namespace, labelSelector: 'ssj.dev/job' });
        for (const pod of list.items) {
          const key = `${pod.metadata?.name ?? ''}/${pod.metadata?.uid ?? ''}`;
          if (stopped.has(key) || pod.metadata?.deletionTimestamp === undefined) continue;
          if ((pod.spec?.nodeName ?? '') === '') continue;
          await kubelet.stopDeleted(namespace, pod.metadata.name ?? '');
          stopped.add(key);
        }
      } catch {
        // Gone between the list and the write, or an API hiccup: the next pass retries.
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    stopped,
    async stop() {
      state.stopped = true;
      await loop;
    },
  };
}

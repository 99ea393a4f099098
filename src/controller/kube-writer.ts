/**
 * The reconciler's reads and writes on the API server (the KubeWriter of ./ports.ts), through
 * client-node 2.x, with every failure classified once (../runtime/kube-errors.ts): AlreadyExists
 * on a create, NotFound on a read or delete, a refusal of a Pod and Conflict on a status write are
 * answers, not errors. Each call's deadline is its API client's request timeout
 * (../observability/api-requests.ts); a call past it throws a Transient error.
 *
 * Removing the tracking finalizer is a JSON patch, written after a live read of the Pod:
 *
 *   test /metadata/uid = <uid>; test /metadata/finalizers/<i> = ssj.dev/run-record; remove it
 *
 * The uid test keeps it from ever acting on another Pod that took the same name; the test at the
 * index keeps it from ever dropping a finalizer that someone else added or moved meanwhile (the
 * patch removes one list element, never rewrites the list). Why not a merge patch with a
 * resourceVersion precondition: it would fail on every unrelated write to the Pod (the kubelet's
 * status updates, a deletion in progress), while the JSON patch fails only when the finalizer list
 * itself moved under it, which a second, freshly read attempt resolves. A JSON merge patch
 * replaces the whole list, so it cannot remove one element safely without that precondition.
 *
 * Does not give: a removal that survives a second concurrent change of the list (the retry happens
 * once; after that an ordinary error is thrown, for the work queue to retry with backoff).
 */
import type { CoreV1Api, CustomObjectsApi, V1Pod } from '@kubernetes/client-node';
import type { ScheduledSingletonJob } from '../api/types.ts';
import { FENCE_POLICY_NAME, FINALIZER_RUN_RECORD, GROUP, PLURAL, VERSION } from '../api/types.ts';
import { classify, type KubeError } from '../runtime/kube-errors.ts';
import { FinalizerRefusedError, StatusConflictError, type KubeWriter, type PodRefusal } from './ports.ts';

export const FIELD_MANAGER = 'ssj-operator';

/** Takes its clients ready-made, so the caller decides how requests are counted and timed. */
export function kubeWriter(core: CoreV1Api, custom: CustomObjectsApi): KubeWriter {
  const getPod = async (namespace: string, name: string): Promise<V1Pod | undefined> => {
    try {
      return await core.readNamespacedPod({ namespace, name });
    } catch (err) {
      if (classify(err).kind === 'NotFound') return undefined;
      throw err;
    }
  };

  // One attempt: 'retry' when the patch's tests found the finalizer list (or the Pod) changed
  // since the read.
  /** `known`: a copy of the Pod to trust instead of a read; its answer is then never 'gone'. */
  const removeOnce = async (
    namespace: string,
    name: string,
    uid: string,
    known?: V1Pod,
  ): Promise<'removed' | 'gone' | 'retry'> => {
    const pod = known ?? (await getPod(namespace, name));
    if (pod === undefined || pod.metadata?.uid !== uid) return known === undefined ? 'gone' : 'retry';
    const index = (pod.metadata.finalizers ?? []).indexOf(FINALIZER_RUN_RECORD);
    if (index < 0) return known === undefined ? 'gone' : 'retry';
    try {
      await core.patchNamespacedPod({
        namespace,
        name,
        // client-node sends an array body as application/json-patch+json, its first media type.
        body: [
          { op: 'test', path: '/metadata/uid', value: uid },
          { op: 'test', path: `/metadata/finalizers/${index}`, value: FINALIZER_RUN_RECORD },
          { op: 'remove', path: `/metadata/finalizers/${index}` },
        ],
        fieldManager: FIELD_MANAGER,
      });
      return 'removed';
    } catch (err) {
      const e = classify(err);
      if (e.kind === 'NotFound') return 'gone';
      if (isFailedPatchTest(e)) return 'retry';
      if (e.kind === 'Forbidden' || e.kind === 'Invalid') {
        throw new FinalizerRefusedError(e.message, { cause: err });
      }
      throw err;
    }
  };

  return {
    async createPod(pod) {
      try {
        const created = await core.createNamespacedPod({
          namespace: pod.metadata?.namespace ?? '',
          body: pod,
          fieldManager: FIELD_MANAGER,
        });
        return { kind: 'created', pod: created };
      } catch (err) {
        const e = classify(err);
        if (e.kind === 'AlreadyExists') {
          return {
            kind: 'exists',
            pod: await getPod(pod.metadata?.namespace ?? '', pod.metadata?.name ?? ''),
          };
        }
        const refused = refusal(e);
        if (refused !== undefined) return refused;
        throw err;
      }
    },
    getPod,
    async deletePod(namespace, name, uid) {
      try {
        await core.deleteNamespacedPod({ namespace, name, body: { preconditions: { uid } } });
      } catch (err) {
        const kind = classify(err).kind;
        // Gone already, or a different Pod now holds the name (uid precondition): nothing to do.
        if (kind === 'NotFound' || kind === 'Conflict') return;
        throw err;
      }
    },
    async removeFinalizer(namespace, name, uid, cached) {
      // The cached copy first (no read); then live reads, as when there is none.
      if (cached !== undefined) {
        const fromCache = await removeOnce(namespace, name, uid, cached);
        if (fromCache !== 'retry') return fromCache;
      }
      const first = await removeOnce(namespace, name, uid);
      if (first !== 'retry') return first;
      const second = await removeOnce(namespace, name, uid);
      if (second !== 'retry') return second;
      // A race, not a refusal: thrown as an ordinary error, for the work queue to retry.
      throw new Error(
        `the finalizers of pod ${namespace}/${name} changed during both attempts to remove ${FINALIZER_RUN_RECORD}`,
      );
    },
    async getJob(namespace, name) {
      try {
        const job: unknown = await custom.getNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace,
          name,
        });
        return job as ScheduledSingletonJob;
      } catch (err) {
        if (classify(err).kind === 'NotFound') return undefined;
        throw err;
      }
    },
    async replaceJobStatus(job) {
      try {
        const updated: unknown = await custom.replaceNamespacedCustomObjectStatus({
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace: job.metadata?.namespace ?? '',
          name: job.metadata?.name ?? '',
          body: job,
          fieldManager: FIELD_MANAGER,
        });
        return updated as ScheduledSingletonJob;
      } catch (err) {
        if (classify(err).kind === 'Conflict')
          throw new StatusConflictError(`status of ${job.metadata?.name ?? ''} changed meanwhile`);
        throw err;
      }
    },
    async dryRunPod(pod) {
      try {
        await core.createNamespacedPod({
          namespace: pod.metadata?.namespace ?? '',
          body: pod,
          dryRun: 'All',
        });
        return { kind: 'ok' };
      } catch (err) {
        const e = classify(err);
        if (e.kind === 'AlreadyExists') return { kind: 'ok' };
        const refused = refusal(e);
        if (refused !== undefined) return refused;
        throw err;
      }
    },
  };
}

function refusal(e: KubeError): PodRefusal | undefined {
  if (e.kind !== 'Forbidden' && e.kind !== 'Invalid') return undefined;
  return {
    kind: 'refused',
    reason: e.kind,
    message: e.message,
    fenced: e.message.includes(FENCE_POLICY_NAME),
  };
}

// The API server answers a JSON patch it cannot apply (a `test` that fails, a path that no longer
// exists) with 422 Invalid, its generic text "the server rejected our request due to an error in
// our request" and no details (apiserver's handlers/patch.go, NewGenericServerResponse; seen on
// kube-apiserver 1.36). A Pod the patch would make invalid comes back with the Pod's name and the
// fields in its causes instead, and is a refusal.
function isFailedPatchTest(e: KubeError): boolean {
  return (
    e.kind === 'Invalid' &&
    e.code === 422 &&
    (e.causes ?? []).length === 0 &&
    /rejected our request due to an error in our request/.test(e.message)
  );
}

/**
 * The reconciler's writes to the API server, through client-node 2.x, with every failure
 * classified once (../runtime/kube-errors.ts): AlreadyExists on a create, NotFound on a read or
 * delete and Conflict on a status write are answers, not errors.
 */
import type { CoreV1Api, CustomObjectsApi, V1Pod } from '@kubernetes/client-node';
import type { ScheduledSingletonJob } from '../api/types.ts';
import { GROUP, PLURAL, VERSION } from '../api/types.ts';
import { classify } from '../runtime/kube-errors.ts';
import { StatusConflictError, type KubeWriter } from './reconciler.ts';

export const FIELD_MANAGER = 'ssj-operator';

/** Takes its clients ready-made, so the caller decides how requests are counted. */
export function kubeWriter(core: CoreV1Api, custom: CustomObjectsApi): KubeWriter {
  return {
    async createPod(pod) {
      try {
        await core.createNamespacedPod({
          namespace: pod.metadata?.namespace ?? '',
          body: pod,
          fieldManager: FIELD_MANAGER,
        });
        return 'created';
      } catch (err) {
        if (classify(err).kind === 'AlreadyExists') return 'exists';
        throw err;
      }
    },
    async getPod(namespace, name) {
      try {
        return await core.readNamespacedPod({ namespace, name });
      } catch (err) {
        if (classify(err).kind === 'NotFound') return undefined;
        throw err;
      }
    },
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
    async dryRunPod(pod: V1Pod) {
      try {
        await core.createNamespacedPod({
          namespace: pod.metadata?.namespace ?? '',
          body: pod,
          dryRun: 'All',
        });
        return undefined;
      } catch (err) {
        const e = classify(err);
        if (e.kind === 'Invalid') return e.message;
        if (e.kind === 'AlreadyExists') return undefined;
        throw err;
      }
    },
  };
}

/**
 * The clean-up after uninstalling the operator (`ssj-operator cleanup`): removes the tracking
 * finalizer (ssj.dev/run-record) from every Pod labelled ssj.dev/job, in one namespace or in all,
 * so that no run's Pod is left stuck in Terminating once nobody is there to record its outcome.
 *
 * Guarantees: each removal goes through KubeWriter.removeFinalizer, so it touches only the Pod of
 * the UID it listed and keeps every other finalizer; a Pod deleted, replaced or already clean
 * since the list counts as `gone`, not as a failure. One Pod's failure does not stop the others:
 * it is logged and counted in `failed`, and running the clean-up again is safe (idempotent).
 *
 * Does not give: a check that no operator is running. Removing the finalizer while an operator
 * still leads breaks invariant 2 (a deleted Pod could vanish unrecorded), so run it only after the
 * operator's Deployment is gone. Pods created while it runs may keep their finalizer.
 */
import type { CoreV1Api, V1Pod, V1PodList } from '@kubernetes/client-node';
import { FINALIZER_RUN_RECORD, LABEL_JOB } from '../api/types.ts';
import type { Logger } from '../observability/log.ts';
import type { KubeWriter } from './ports.ts';

export interface FinalizerCleanupResult {
  /** Pods whose finalizer this run removed. */
  readonly removed: number;
  /** Pods listed with the finalizer that were gone, replaced or clean by the time of the patch. */
  readonly gone: number;
  /** Pods whose removal failed (refused, timed out); logged one by one. */
  readonly failed: number;
}

export interface FinalizerCleanupOptions {
  readonly core: Pick<CoreV1Api, 'listNamespacedPod' | 'listPodForAllNamespaces'>;
  readonly kube: Pick<KubeWriter, 'removeFinalizer'>;
  /** '' = all namespaces. */
  readonly namespace: string;
  readonly log: Logger;
  /** Removals in flight at once; 8 unless told. */
  readonly concurrency?: number;
  /** Pods per list page; 500 unless told. */
  readonly pageSize?: number;
}

export async function removeRunRecordFinalizers(
  options: FinalizerCleanupOptions,
): Promise<FinalizerCleanupResult> {
  const { core, kube, namespace, log } = options;
  const concurrency = options.concurrency ?? 8;
  const limit = options.pageSize ?? 500;
  let removed = 0;
  let gone = 0;
  let failed = 0;

  const clean = async (pod: V1Pod): Promise<void> => {
    const ns = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    try {
      const result = await kube.removeFinalizer(ns, name, pod.metadata?.uid ?? '', pod);
      if (result === 'removed') {
        removed++;
        log.debug({ pod: `${ns}/${name}` }, 'finalizer removed');
      } else {
        gone++;
      }
    } catch (err) {
      failed++;
      log.warn(
        { pod: `${ns}/${name}`, err: err instanceof Error ? err.message : String(err) },
        'finalizer not removed',
      );
    }
  };

  let next: string | undefined = undefined;
  do {
    const page: V1PodList =
      namespace === ''
        ? await core.listPodForAllNamespaces({ labelSelector: LABEL_JOB, limit, _continue: next })
        : await core.listNamespacedPod({ namespace, labelSelector: LABEL_JOB, limit, _continue: next });
    const ours = page.items.filter((p) => p.metadata?.finalizers?.includes(FINALIZER_RUN_RECORD) === true);
    await inPool(ours, concurrency, clean);
    const token = page.metadata?._continue;
    next = token === undefined || token === '' ? undefined : token;
  } while (next !== undefined);

  return { removed, gone, failed };
}

async function inPool<T>(items: readonly T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async (): Promise<void> => {
    while (i < items.length) {
      const item = items[i++];
      if (item !== undefined) await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
}

/**
 * The API writes of a tick, bounded: Pod creates and status writes share `slots` places (the
 * `--workers` count), however many reconciles run. The due lane's extra workers
 * (docs/adr/0016-tick-pipeline.md) overlap one job's ledger load and claim with other jobs'
 * creates; they never raise the number of writes the API server sees at once above what the
 * workers alone would send.
 *
 * Does not bound reads, dry-runs, deletions or finalizer patches: those run in the normal lane, on
 * the workers alone.
 */
import pLimit from 'p-limit';
import type { KubeWriter } from './ports.ts';

export function withWriteSlots(kube: KubeWriter, slots: number): KubeWriter {
  const limit = pLimit(slots);
  return {
    createPod: (pod) => limit(() => kube.createPod(pod)),
    replaceJobStatus: (job) => limit(() => kube.replaceJobStatus(job)),
    getPod: (namespace, name) => kube.getPod(namespace, name),
    deletePod: (namespace, name, uid) => kube.deletePod(namespace, name, uid),
    removeFinalizer: (namespace, name, uid, cached) => kube.removeFinalizer(namespace, name, uid, cached),
    getJob: (namespace, name) => kube.getJob(namespace, name),
    dryRunPod: (pod) => kube.dryRunPod(pod),
  };
}

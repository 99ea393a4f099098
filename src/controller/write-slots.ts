/**
 * The API writes of a tick, bounded: Pod creates and status writes share `slots` places (the
 * `--workers` count), however many reconciles run. The due lane's extra workers
 * (docs/adr/0016-tick-pipeline.md) overlap one job's ledger load and claim with other jobs'
 * creates; they never raise the number of writes the API server sees at once above what the
 * workers alone would send.
 *
 * A waiting Pod create takes the next free place before any waiting status write (ADR 0023).
 * Every create follows a claim that is already durable (a status write, or a PostgreSQL row), so
 * a create is the last step of a run that is claimed and has no Pod yet: the window a crash would
 * leave claimed without a Pod. A waiting status write is a claim not yet made, or a record of what
 * has already happened. Creates cannot hold status writes back for long: each needs a claim first.
 *
 * Does not bound reads, dry-runs, deletions or finalizer patches: those run in the normal lane, on
 * the workers alone.
 */
import PQueue from 'p-queue';
import type { KubeWriter } from './ports.ts';

const CREATE = 1;
const STATUS = 0;

export function withWriteSlots(kube: KubeWriter, slots: number): KubeWriter {
  const queue = new PQueue({ concurrency: slots });
  return {
    createPod: (pod) => queue.add(() => kube.createPod(pod), { priority: CREATE }),
    replaceJobStatus: (job) => queue.add(() => kube.replaceJobStatus(job), { priority: STATUS }),
    getPod: (namespace, name) => kube.getPod(namespace, name),
    deletePod: (namespace, name, uid) => kube.deletePod(namespace, name, uid),
    removeFinalizer: (namespace, name, uid, cached) => kube.removeFinalizer(namespace, name, uid, cached),
    getJob: (namespace, name) => kube.getJob(namespace, name),
    dryRunPod: (pod) => kube.dryRunPod(pod),
  };
}

/**
 * What this process wrote, until its informers show it: client-go's MutationCache, for the
 * job's status and for the Pods the operator creates.
 *
 * Contract:
 * - `job(cached)` returns the object our last status write returned while the cache still
 *   shows a version that write (or an earlier one of ours) replaced; any other version, newer
 *   or written by someone else, wins and the memory is dropped. So the next reconcile after
 *   our own write works from it, and a 409 Conflict means another writer, never our own lag.
 * - `echoed(cached)` tells the watch event of our own latest status write (the informer
 *   catching up with it) from any other change, and drops the memory of that write: the cache
 *   now shows it.
 * - `pods(uid, cached)` adds the create responses of Pods the cache does not show yet. A
 *   remembered Pod is dropped once the cache shows its name, or its run has finished.
 *
 * Not guaranteed: a remembered Pod is as it was created; its later phases come from the cache.
 * Memory is per job UID and ends with `forget` (the job's deletion).
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { ScheduledSingletonJob } from '../api/types.ts';

export class OwnWrites {
  private readonly jobs = new Map<string, { superseded: Set<string>; job: ScheduledSingletonJob }>();
  private readonly created = new Map<string, Map<string, V1Pod>>();

  job(cached: ScheduledSingletonJob): ScheduledSingletonJob {
    const uid = cached.metadata?.uid ?? '';
    const mine = this.jobs.get(uid);
    if (mine === undefined) return cached;
    if (mine.superseded.has(cached.metadata?.resourceVersion ?? '')) return mine.job;
    this.jobs.delete(uid);
    return cached;
  }

  /**
   * The cached job is exactly what our latest status write of it returned. The memory of the
   * write goes then, not at the job's next reconcile: it holds the write's whole response
   * (managed fields and all, which the cache's transform drops), and the next reconcile of a
   * yearly job is a year away. At 10,000 jobs the first pass left about 50 MiB of them.
   */
  echoed(cached: ScheduledSingletonJob): boolean {
    const uid = cached.metadata?.uid ?? '';
    const mine = this.jobs.get(uid);
    const rv = cached.metadata?.resourceVersion;
    const latest = mine !== undefined && rv !== undefined && mine.job.metadata?.resourceVersion === rv;
    if (latest) this.jobs.delete(uid);
    return latest;
  }

  wroteJob(before: ScheduledSingletonJob, after: ScheduledSingletonJob): void {
    const uid = after.metadata?.uid ?? '';
    let mine = this.jobs.get(uid);
    if (mine === undefined) this.jobs.set(uid, (mine = { superseded: new Set(), job: after }));
    mine.superseded.add(before.metadata?.resourceVersion ?? '');
    mine.job = after;
  }

  pods(uid: string, cached: readonly V1Pod[]): readonly V1Pod[] {
    const mine = this.created.get(uid);
    if (mine === undefined) return cached;
    const names = new Set(cached.map((p) => p.metadata?.name ?? ''));
    const extra: V1Pod[] = [];
    for (const [name, pod] of mine) {
      if (names.has(name)) mine.delete(name);
      else extra.push(pod);
    }
    if (mine.size === 0) this.created.delete(uid);
    return extra.length === 0 ? cached : [...cached, ...extra];
  }

  createdPod(uid: string, pod: V1Pod): void {
    let mine = this.created.get(uid);
    if (mine === undefined) this.created.set(uid, (mine = new Map<string, V1Pod>()));
    mine.set(pod.metadata?.name ?? '', pod);
  }

  /** The run of that Pod has finished: the cache alone speaks for its Pod from now on. */
  runEnded(uid: string, podName: string): void {
    const mine = this.created.get(uid);
    mine?.delete(podName);
    if (mine?.size === 0) this.created.delete(uid);
  }

  forget(uid: string): void {
    this.jobs.delete(uid);
    this.created.delete(uid);
  }
}

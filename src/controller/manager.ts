/**
 * The controller's life cycle: informers fill caches, events become queue keys, workers
 * reconcile one key at a time each, for one leadership term at a time.
 *
 * Contract:
 * - The caches always run (`start`), leader or not, so a follower that becomes leader acts on
 *   warm caches at once. `start` resolves once both caches have synced.
 * - `lead(term)` builds what one term needs, fresh: a work queue, a reconciler (its memory of
 *   its own writes starts empty) and workers, all bound to the term's signal. It queues every
 *   job (and the jobs of Pods whose job is gone), and resolves once the term has ended and its
 *   workers have stopped. A term ends when its signal aborts; a FencedError from the ledger
 *   ends it too (`term.end`), and a Pod refused by the fencing policy makes the term confirm
 *   itself against the Lease (standing down only when the Lease shows another holder).
 * - Before each side effect the reconciler checks `term.valid()` (the local fence): a process
 *   resumed after a pause past its renew deadline stops before it touches anything.
 * - A job key is in the queue at most once and handled by one worker at a time (the queue's
 *   guarantee); every change to a job or to one of its Pods queues the job's key while a term
 *   runs. Every job is queued again each resync period.
 * - `onFirstPass` is told once per term, when everything queued at its start has been handled
 *   and the queue is empty (the process compacts its heap then: ADR 0018).
 * - `stop` ends the term's work (its reconciles are aborted or finish) and stops the informers.
 * - The per-job series (ssj_job_*) exist only while a term runs and only for jobs failing or
 *   overdue: a reset or a deletion removes a job's series, the end of the term removes them all,
 *   so a follower exports none.
 */
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import type { ScheduledSingletonJob } from '../api/types.ts';
import { LABEL_JOB } from '../api/types.ts';
import type { Logger } from '../observability/log.ts';
import type { JobLabels, Metrics, WatchEventType } from '../observability/metrics.ts';
import { podInformer, singletonJobInformer, type Informer } from '../runtime/informer.ts';
import { createRateLimitingQueue, type RateLimitingQueue } from '../runtime/rate-limiting-queue.ts';
import { runWorkers } from '../runtime/workers.ts';
import { withWriteSlots } from './write-slots.ts';
import { HeldEvents } from '../runtime/held-events.ts';
import { ScheduleCache } from '../schedule/index.ts';
import { FencedError, type Fence, type Ledger } from '../ledger/ledger.ts';
import type { EventSink, KubeWriter, ReconcileObserver } from './ports.ts';
import { FenceRefusalError } from './ports.ts';
import { Reconciler } from './reconciler.ts';
import type { FaultHook } from './faults.ts';

/** One leadership term, as the manager needs it. */
export interface LeadTerm {
  /** What the term's writes carry: its number and holder (and the Lease's UID). */
  readonly fence: Fence;
  readonly signal: AbortSignal;
  /** Still within its renew deadline on the local monotonic clock. */
  valid(): boolean;
  end(cause: string): void;
  /** Re-reads the Lease; resolves to whether the term still holds it (ending it if not). */
  confirm(): Promise<boolean>;
}

export interface ManagerOptions {
  readonly kc: KubeConfig;
  /** One namespace, or all when undefined. */
  readonly namespace?: string | undefined;
  readonly workers: number;
  /**
   * Workers beyond `workers` that take due work only (a tick's loads, claims and creates); the
   * API writes of all of them share `workers` places (./write-slots.ts). 0 when absent.
   */
  readonly tickWorkers?: number;
  readonly resyncPeriodMs: number;
  readonly kube: KubeWriter;
  readonly ledger: Ledger;
  readonly events: EventSink;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly fault?: FaultHook | undefined;
  /**
   * Told once per term, when the work queued at its start (every job) has been done and nothing
   * is queued or being processed: the moment the start's garbage is all garbage.
   */
  readonly onFirstPass?: (() => void) | undefined;
}

interface Leading {
  readonly term: LeadTerm;
  readonly queue: RateLimitingQueue;
  readonly reconciler: Reconciler;
}

export class Manager {
  private readonly options: ManagerOptions;
  private readonly jobs: Informer<ScheduledSingletonJob>;
  private readonly pods: Informer<V1Pod>;
  /** Pod names by "namespace/job name", so a reconcile never scans every Pod. */
  private readonly podsByJob = new Map<string, Set<string>>();
  private readonly schedules = new ScheduleCache();
  private readonly stopped = new AbortController();
  private leading: Leading | undefined;
  private resync: NodeJS.Timeout | undefined;
  private synced = false;

  constructor(options: ManagerOptions) {
    this.options = options;
    const { kc, namespace, metrics, log } = options;
    const runtime = {
      ...(namespace === undefined ? {} : { namespace }),
      logger: log,
      metrics: {
        watchEvent: (resource: string, type: string) => {
          const label = eventLabel(type);
          if (label !== undefined)
            metrics.watchEvents.inc({ resource: resourceLabel(resource), type: label });
        },
        informerRestart: (resource: string) => {
          metrics.informerRestarts.inc({ resource: resourceLabel(resource) });
        },
      },
    };
    this.jobs = singletonJobInformer<ScheduledSingletonJob>(kc, runtime);
    this.pods = podInformer(kc, runtime);

    this.jobs.on('add', (job) => {
      this.enqueue(job);
    });
    this.jobs.on('update', (job) => {
      // The echo of our own status write: a reconcile would only load the ledger to find nothing new.
      if (this.leading?.reconciler.isOwnEcho(job) === true) return;
      this.enqueue(job);
    });
    this.jobs.on('delete', (job) => {
      const labels = jobLabels({ namespace: job.metadata?.namespace ?? '', name: job.metadata?.name ?? '' });
      metrics.jobConsecutiveFailures.remove(labels);
      metrics.jobPeriodsSinceSuccess.remove(labels);
      this.leading?.reconciler.forget(job.metadata?.uid ?? '');
      this.leading?.queue.forget(keyOf(job));
    });
    this.pods.on('add', (pod) => {
      this.indexPod(pod, true);
    });
    this.pods.on('update', (pod) => {
      this.indexPod(pod, true);
    });
    this.pods.on('delete', (pod) => {
      this.indexPod(pod, false);
    });
  }

  /** Starts the caches; resolves once both have synced. */
  async start(): Promise<void> {
    await Promise.all([this.jobs.start(), this.pods.start()]);
    this.synced = true;
    const { options } = this;
    if (options.resyncPeriodMs > 0) {
      this.resync = setInterval(() => {
        this.requeueAll();
      }, options.resyncPeriodMs);
      this.resync.unref();
    }
  }

  /** Does one term's work; resolves once the term has ended and its workers have stopped. */
  async lead(term: LeadTerm): Promise<void> {
    if (this.leading !== undefined) throw new Error('Manager.lead: a term is already being led');
    const { options } = this;
    const signal = AbortSignal.any([term.signal, this.stopped.signal]);
    const queue = createRateLimitingQueue();
    // While ticks are due, the term's Events wait (docs/adr/0012-tick-lane.md).
    const events = new HeldEvents(options.events, () => queue.dueCount() > 0);
    const unsubscribe = queue.onDueDrained(() => {
      events.release();
    });
    const reconciler = new Reconciler({
      jobs: { get: (ns, name) => this.jobs.get(ns, name) },
      pods: { forJob: (ns, name) => this.podsOf(ns, name) },
      kube: withWriteSlots(options.kube, options.workers),
      ledger: options.ledger,
      events,
      schedules: this.schedules,
      now: () => new Date(),
      // The local fence: no side effect once the term is past its renew deadline.
      fence: () => (term.valid() && !signal.aborted ? term.fence : undefined),
      observer: termObserver(options.metrics, signal),
      fault: options.fault,
      log: options.log,
    });
    this.leading = { term, queue, reconciler };
    const onEnd = (): void => {
      queue.shutDown();
    };
    signal.addEventListener('abort', onEnd, { once: true });
    let unsubscribeFirstPass: (() => void) | undefined;
    try {
      this.requeueAll();
      // Pods whose job is gone (deleted while no leader ran) still carry its finalizer: their
      // keys are queued too, and the reconciler releases them.
      for (const key of this.podsByJob.keys()) queue.add(key);
      const onFirstPass = options.onFirstPass;
      if (onFirstPass !== undefined) {
        if (queue.len() === 0) onFirstPass();
        else {
          unsubscribeFirstPass = queue.onIdle(() => {
            unsubscribeFirstPass?.();
            onFirstPass();
          });
        }
      }
      await runWorkers(
        queue,
        async (key, workSignal) => {
          const end = options.metrics.reconcileDuration.startTimer();
          try {
            return await reconciler.reconcile(key, workSignal);
          } finally {
            end();
            options.metrics.workqueueDepth.set(queue.len());
          }
        },
        {
          concurrency: options.workers,
          dueConcurrency: options.tickWorkers ?? 0,
          signal,
          onError: (key, err) => {
            options.metrics.reconcileErrors.inc();
            if (err instanceof FencedError) {
              options.log.error(
                { job: key, term: term.fence.term, err: errorText(err) },
                'fenced: ending the term',
              );
              term.end(`fenced: ${errorText(err)}`);
              return;
            }
            if (err instanceof FenceRefusalError) {
              // Not proof by itself: the policy reads the Lease from a cache that may lag.
              options.log.warn(
                { job: key, term: term.fence.term, err: errorText(err) },
                'pod refused by the fence: confirming the term',
              );
              term.confirm().catch(() => undefined);
              return;
            }
            options.log.warn({ job: key, err: errorText(err) }, 'reconcile failed; retrying with backoff');
          },
        },
      );
    } finally {
      signal.removeEventListener('abort', onEnd);
      queue.shutDown();
      unsubscribe();
      unsubscribeFirstPass?.();
      events.release();
      this.leading = undefined;
      removeJobSeries(options.metrics);
      // Only a leader judges the ledger; a follower reporting its last term's value would keep
      // an alert firing (or silent) for a ledger it no longer uses.
      options.metrics.ledgerUnavailable.set(0);
    }
  }

  /** Queue every job now: when a term starts, and by the resync timer. */
  requeueAll(): void {
    for (const job of this.jobs.list()) this.enqueue(job);
  }

  hasSynced(): boolean {
    return this.synced && this.jobs.hasSynced() && this.pods.hasSynced();
  }

  isLeading(): boolean {
    return this.leading !== undefined;
  }

  async stop(): Promise<void> {
    if (this.resync !== undefined) clearInterval(this.resync);
    this.stopped.abort();
    while (this.leading !== undefined) await new Promise((resolve) => setTimeout(resolve, 10));
    this.jobs.stop();
    this.pods.stop();
  }

  private enqueue(job: ScheduledSingletonJob): void {
    const leading = this.leading;
    if (leading === undefined) return;
    this.options.metrics.workqueueAdds.inc();
    leading.queue.add(keyOf(job));
  }

  private indexPod(pod: V1Pod, present: boolean): void {
    const job = pod.metadata?.labels?.[LABEL_JOB];
    const ns = pod.metadata?.namespace;
    const name = pod.metadata?.name;
    if (job === undefined || ns === undefined || name === undefined) return;
    const key = `${ns}/${job}`;
    let names = this.podsByJob.get(key);
    if (present) {
      if (names === undefined) this.podsByJob.set(key, (names = new Set()));
      names.add(name);
    } else if (names !== undefined) {
      names.delete(name);
      if (names.size === 0) this.podsByJob.delete(key);
    }
    if (this.synced) this.leading?.queue.add(key);
  }

  private podsOf(namespace: string, jobName: string): V1Pod[] {
    const names = this.podsByJob.get(`${namespace}/${jobName}`);
    if (names === undefined) return [];
    const pods: V1Pod[] = [];
    for (const name of names) {
      const pod = this.pods.get(namespace, name);
      if (pod !== undefined) pods.push(pod);
    }
    return pods;
  }
}

function keyOf(job: ScheduledSingletonJob): string {
  return `${job.metadata?.namespace ?? ''}/${job.metadata?.name ?? ''}`;
}

function resourceLabel(resource: string): 'singletonjobs' | 'pods' | 'leases' {
  return resource === 'pods' ? 'pods' : resource === 'leases' ? 'leases' : 'singletonjobs';
}

function eventLabel(type: string): WatchEventType | undefined {
  switch (type) {
    case 'ADDED':
    case 'MODIFIED':
    case 'DELETED':
    case 'BOOKMARK':
      return type;
    default:
      return undefined;
  }
}

/**
 * The metrics of one term. Per-job series exist only while the job is failing (a streak of 1 or
 * more) or overdue (2 periods or more without a success), and only while the term runs: a
 * reconcile that ends after its term adds none back, and the term's end removes them all.
 */
export function termObserver(metrics: Metrics, signal: AbortSignal): ReconcileObserver {
  return {
    podCreated: (_job, _run, skew) => {
      metrics.podCreates.inc({ result: 'created' });
      if (skew !== undefined) metrics.tickSkew.observe(Math.max(0, skew));
    },
    runFinished: (outcome, seconds) => {
      metrics.runs.inc({ outcome });
      if (seconds !== undefined) metrics.runDuration.observe({ outcome }, seconds);
    },
    ticksNotRun: (outcome, reason, count) => {
      metrics.ticksNotRun.inc({ outcome, reason }, count);
    },
    ledgerWrite: (ledger, seconds, ok) => {
      metrics.ledgerWriteDuration.observe({ ledger }, seconds);
      if (!ok) metrics.ledgerWriteErrors.inc({ ledger });
    },
    jobHealth: (job, health) => {
      const labels = jobLabels(job);
      const failures = health?.consecutiveFailures ?? 0;
      const periods = health?.periodsSinceSuccess;
      if (failures >= 1 && !signal.aborted) metrics.jobConsecutiveFailures.set(labels, failures);
      else metrics.jobConsecutiveFailures.remove(labels);
      if (periods !== undefined && periods >= 2 && !signal.aborted)
        metrics.jobPeriodsSinceSuccess.set(labels, periods);
      else metrics.jobPeriodsSinceSuccess.remove(labels);
    },
    statusWrite: (result) => {
      metrics.statusWrites.inc({ result });
    },
    ledgerAvailable: (available) => {
      metrics.ledgerUnavailable.set(available ? 0 : 1);
    },
  };
}

function jobLabels(job: { readonly namespace: string; readonly name: string }): JobLabels {
  return { namespace: job.namespace, singletonjob: job.name };
}

/** A follower exports no per-job series: they describe the term that wrote the statuses. */
function removeJobSeries(metrics: Metrics): void {
  metrics.jobConsecutiveFailures.reset();
  metrics.jobPeriodsSinceSuccess.reset();
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

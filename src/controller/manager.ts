/**
 * The controller's life cycle: informers fill caches, events become queue keys, workers
 * reconcile one key at a time each.
 *
 * Contract:
 * - A job key is in the queue at most once and handled by one worker at a time (the queue's
 *   guarantee); every change to a job or to one of its Pods queues the job's key.
 * - Every job is queued again each resync period, a safety net for a missed event or timer.
 * - `start` resolves once both caches have synced; reconciles begin only then, so no decision
 *   is made from a half-filled cache.
 * - `stop` stops taking keys, lets running reconciles finish or abort (their signal is
 *   aborted), and stops the informers.
 *
 * The manager does not decide leadership: `fence()` says whether this process may act (see
 * ./reconciler.ts, which does nothing for a key while it returns undefined).
 */
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import type { ScheduledSingletonJob } from '../api/types.ts';
import { LABEL_JOB } from '../api/types.ts';
import type { Logger } from '../observability/log.ts';
import type { Metrics, WatchEventType } from '../observability/metrics.ts';
import { podInformer, singletonJobInformer, type Informer } from '../runtime/informer.ts';
import { createRateLimitingQueue, type RateLimitingQueue } from '../runtime/rate-limiting-queue.ts';
import { runWorkers } from '../runtime/workers.ts';
import { ScheduleCache } from '../schedule/index.ts';
import type { Fence, Ledger } from '../ledger/ledger.ts';
import type { EventSink, KubeWriter, ReconcileObserver } from './ports.ts';
import { Reconciler } from './reconciler.ts';
import type { FaultHook } from './faults.ts';

export interface ManagerOptions {
  readonly kc: KubeConfig;
  /** One namespace, or all when undefined. */
  readonly namespace?: string | undefined;
  readonly workers: number;
  readonly resyncPeriodMs: number;
  readonly kube: KubeWriter;
  readonly ledger: Ledger;
  readonly events: EventSink;
  readonly fence: () => Fence | undefined;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly fault?: FaultHook | undefined;
}

export class Manager {
  private readonly options: ManagerOptions;
  private readonly jobs: Informer<ScheduledSingletonJob>;
  private readonly pods: Informer<V1Pod>;
  /** Pod names by "namespace/job name", so a reconcile never scans every Pod. */
  private readonly podsByJob = new Map<string, Set<string>>();
  private readonly queue: RateLimitingQueue;
  private readonly reconciler: Reconciler;
  private readonly abort = new AbortController();
  private workers: Promise<void> | undefined;
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
    this.queue = createRateLimitingQueue();
    this.reconciler = new Reconciler({
      jobs: { get: (ns, name) => this.jobs.get(ns, name) },
      pods: { forJob: (ns, name) => this.podsOf(ns, name) },
      kube: options.kube,
      ledger: options.ledger,
      events: options.events,
      schedules: new ScheduleCache(),
      now: () => new Date(),
      fence: options.fence,
      observer: observerFor(metrics),
      fault: options.fault,
    });

    this.jobs.on('add', (job) => {
      this.enqueue(job);
    });
    this.jobs.on('update', (job) => {
      this.enqueue(job);
    });
    this.jobs.on('delete', (job) => {
      this.reconciler.forget(job.metadata?.uid ?? '');
      this.queue.forget(keyOf(job));
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

  async start(): Promise<void> {
    await Promise.all([this.jobs.start(), this.pods.start()]);
    this.synced = true;
    for (const job of this.jobs.list()) this.enqueue(job);
    // Pods whose job is gone (deleted while the operator was down) still carry its finalizer:
    // their keys are queued too, and the reconciler releases them.
    for (const key of this.podsByJob.keys()) this.queue.add(key);
    const { options } = this;
    if (options.resyncPeriodMs > 0) {
      this.resync = setInterval(() => {
        this.requeueAll();
      }, options.resyncPeriodMs);
      this.resync.unref();
    }
    this.workers = runWorkers(
      this.queue,
      async (key, signal) => {
        const end = options.metrics.reconcileDuration.startTimer();
        try {
          return await this.reconciler.reconcile(key, signal);
        } finally {
          end();
          options.metrics.workqueueDepth.set(this.queue.len());
        }
      },
      {
        concurrency: options.workers,
        signal: this.abort.signal,
        onError: (key, err) => {
          options.metrics.reconcileErrors.inc();
          options.log.warn({ job: key, err: errorText(err) }, 'reconcile failed; retrying with backoff');
        },
      },
    );
  }

  /** Queue every job now: used when leadership is gained, and by the resync timer. */
  requeueAll(): void {
    for (const job of this.jobs.list()) this.enqueue(job);
  }

  hasSynced(): boolean {
    return this.synced && this.jobs.hasSynced() && this.pods.hasSynced();
  }

  async stop(): Promise<void> {
    if (this.resync !== undefined) clearInterval(this.resync);
    this.abort.abort();
    this.queue.shutDown();
    await this.workers;
    this.jobs.stop();
    this.pods.stop();
  }

  private enqueue(job: ScheduledSingletonJob): void {
    this.options.metrics.workqueueAdds.inc();
    this.queue.add(keyOf(job));
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
    if (this.synced) this.queue.add(key);
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

function observerFor(metrics: Metrics): ReconcileObserver {
  return {
    podCreated: (_job, _run, skew) => {
      metrics.podCreates.inc({ result: 'created' });
      if (skew !== undefined) metrics.tickSkew.observe(Math.max(0, skew));
    },
    runFinished: (outcome) => {
      metrics.runs.inc({ outcome });
    },
    ticksNotRun: (outcome, count) => {
      metrics.ticksNotRun.inc({ outcome }, count);
    },
    statusWrite: (result) => {
      metrics.statusWrites.inc({ result });
    },
    ledgerAvailable: (available) => {
      metrics.ledgerUnavailable.set(available ? 0 : 1);
    },
  };
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The operator's Prometheus metrics, in a registry of their own.
 *
 * Guarantees:
 * - Every metric the operator defines is named `ssj_...`; the process metrics keep the standard
 *   unprefixed names (`process_...`, `nodejs_...`) that dashboards expect.
 * - Each `newMetrics()` builds a fresh Registry (never prom-client's global one), so tests and
 *   several operators in one process do not share counters.
 * - Labels have bounded values: outcomes, reasons, results, verbs, resource kinds and HTTP codes,
 *   never a tick. The two per-job gauges (`namespace`, `singletonjob`) are the exception, and
 *   bounded by what they report: a job's series exists only while it is failing or overdue, so
 *   10,000 healthy jobs add none. Their owner (the manager) removes a series when the condition
 *   ends, when the job is deleted and when its leadership term ends.
 *
 * Does not give: per-job metrics of healthy jobs (use the resource's status and Events), or
 * metrics for watches (client-node opens those with fetch, outside the instrumented API client:
 * see api-requests.ts).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type RunOutcome = 'Succeeded' | 'Failed' | 'Lost' | 'TimedOut' | 'Replaced';
export type NotRunOutcome = 'Skipped' | 'Missed';
/** created; already_exists (409: the name already had a Pod); forbidden (403); error (anything else). */
export type PodCreateResult = 'created' | 'already_exists' | 'forbidden' | 'error';
/** ok; conflict (409: stale resourceVersion); error (anything else). */
export type StatusWriteResult = 'ok' | 'conflict' | 'error';
export type WatchedResource = 'singletonjobs' | 'pods' | 'leases';
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';
export type LedgerKind = 'postgres' | 'status';
export interface JobLabels {
  namespace: string;
  singletonjob: string;
}

export interface CounterOf<L> {
  inc(labels: L, value?: number): void;
}
export interface PlainCounter {
  inc(value?: number): void;
}
export interface PlainGauge {
  set(value: number): void;
  inc(value?: number): void;
  dec(value?: number): void;
}
export interface PlainHistogram {
  observe(seconds: number): void;
  /** Starts a timer; calling the result observes the seconds since and returns them. */
  startTimer(): () => number;
}
export interface HistogramOf<L> {
  observe(labels: L, seconds: number): void;
}
export interface GaugeOf<L> {
  set(labels: L, value: number): void;
  remove(labels: L): void;
  /** Removes every series. */
  reset(): void;
}

export interface Metrics {
  readonly registry: Registry;
  /** Seconds from a tick's scheduled instant to its Pod's successful create. */
  readonly tickSkew: PlainHistogram;
  readonly runs: CounterOf<{ outcome: RunOutcome }>;
  /** `reason` is the record's reason: NoController, DeadlineExceeded, RunActive, Suspended, InvalidSpec. */
  readonly ticksNotRun: CounterOf<{ outcome: NotRunOutcome; reason: string }>;
  /** Seconds from a run's Pod start to its recorded end, for runs whose Pod started. */
  readonly runDuration: HistogramOf<{ outcome: RunOutcome }>;
  /** One observation per ledger write: a PostgreSQL transaction, or a status write (status-only). */
  readonly ledgerWriteDuration: HistogramOf<{ ledger: LedgerKind }>;
  /** Ledger writes that failed, a precondition conflict or a fence refusal included. */
  readonly ledgerWriteErrors: CounterOf<{ ledger: LedgerKind }>;
  /** status.consecutiveFailures, only while it is 1 or more. */
  readonly jobConsecutiveFailures: GaugeOf<JobLabels>;
  /** Schedule periods since the last success (or creation), only while 2 or more. */
  readonly jobPeriodsSinceSuccess: GaugeOf<JobLabels>;
  readonly podCreates: CounterOf<{ result: PodCreateResult }>;
  readonly reconcileDuration: PlainHistogram;
  readonly reconcileErrors: PlainCounter;
  readonly workqueueDepth: PlainGauge;
  readonly workqueueAdds: PlainCounter;
  readonly workqueueRetries: PlainCounter;
  /** Seconds a key waited in the queue before a worker took it. */
  readonly workqueueQueueDuration: PlainHistogram;
  readonly watchEvents: CounterOf<{ resource: WatchedResource; type: WatchEventType }>;
  readonly informerRestarts: CounterOf<{ resource: WatchedResource }>;
  /** 1 while PostgreSQL is configured and unreachable, else 0. */
  readonly ledgerUnavailable: PlainGauge;
  /** 1 while this process leads, else 0. */
  readonly leader: PlainGauge;
  /** The current leader term this process knows of. */
  readonly leaderTerm: PlainGauge;
  /** Terms this process began. */
  readonly leaderTransitions: PlainCounter;
  /** Seconds from the previous holder's last seen renewal to this process's acquisition. */
  readonly leaderFailover: PlainGauge;
  readonly statusWrites: CounterOf<{ result: StatusWriteResult }>;
  /** Requests through the instrumented API client; code is the HTTP status or "error" (no response). */
  readonly apiRequests: CounterOf<{ verb: string; resource: string; code: string }>;
  readonly apiRequestDuration: HistogramOf<{ verb: string; resource: string }>;
}

/**
 * How often the event loop's delay is sampled (prom-client's default is 10 ms). Each sample is a
 * timer wake-up: at 10 ms they cost half a per cent of a core on an idle operator, half of its
 * idle budget (docs/adr/0022-event-loop-sampled-every-50-ms.md).
 */
export const EVENT_LOOP_SAMPLE_MS = 50;

// The skew budget is "p99 under 1 s" with 100 jobs due together: resolve well below a second.
const skewBuckets = [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30, 60];
const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// Runs last from seconds (a probe) to hours (a nightly export).
const runBuckets = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14_400, 43_200, 86_400];

export function newMetrics(options: { readonly processMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics ?? true)
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const registers = [registry];

  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers });
  const gauge = (name: string, help: string) => new Gauge({ name, help, registers });
  const jobGauge = (name: string, help: string): GaugeOf<JobLabels> => {
    const g = new Gauge<keyof JobLabels>({
      name,
      help,
      labelNames: ['namespace', 'singletonjob'],
      registers,
    });
    return {
      set: (labels, value) => {
        g.set(labels, value);
      },
      remove: (labels) => {
        g.remove(labels);
      },
      reset: () => {
        g.reset();
      },
    };
  };
  const histogram = <L extends string>(
    name: string,
    help: string,
    buckets: number[],
    labelNames: readonly L[] = [],
  ) => new Histogram<L>({ name, help, buckets, labelNames, registers });

  return {
    registry,
    tickSkew: histogram(
      'ssj_tick_skew_seconds',
      'Seconds between a tick and the successful create of its Pod.',
      skewBuckets,
    ),
    runs: counter('ssj_runs_total', 'Runs finished, by recorded outcome.', ['outcome']),
    ticksNotRun: counter(
      'ssj_ticks_not_run_total',
      'Ticks recorded without a run (Skipped or Missed), by outcome and reason.',
      ['outcome', 'reason'],
    ),
    runDuration: histogram(
      'ssj_run_duration_seconds',
      "Seconds from a run's Pod start to its recorded end, by outcome.",
      runBuckets,
      ['outcome'],
    ),
    ledgerWriteDuration: histogram(
      'ssj_ledger_write_duration_seconds',
      'Seconds one ledger write took (a PostgreSQL transaction, or a status write in status-only mode).',
      latencyBuckets,
      ['ledger'],
    ),
    ledgerWriteErrors: counter(
      'ssj_ledger_write_errors_total',
      'Ledger writes that failed, precondition conflicts and fence refusals included.',
      ['ledger'],
    ),
    jobConsecutiveFailures: jobGauge(
      'ssj_job_consecutive_failures',
      "A job's status.consecutiveFailures; a series exists only while it is 1 or more.",
    ),
    jobPeriodsSinceSuccess: jobGauge(
      'ssj_job_periods_since_success',
      "Schedule periods since a job's last success (or creation); a series exists only while 2 or more, for jobs neither suspended nor invalid.",
    ),
    podCreates: counter('ssj_pod_creates_total', 'Pod create calls, by result.', ['result']),
    reconcileDuration: histogram(
      'ssj_reconcile_duration_seconds',
      'Seconds one reconcile of one job took.',
      latencyBuckets,
    ),
    reconcileErrors: counter('ssj_reconcile_errors_total', 'Reconciles that ended in an error and a retry.'),
    workqueueDepth: gauge('ssj_workqueue_depth', 'Keys waiting in the work queue.'),
    workqueueAdds: counter('ssj_workqueue_adds_total', 'Keys added to the work queue.'),
    workqueueRetries: counter('ssj_workqueue_retries_total', 'Keys put back with rate-limited backoff.'),
    workqueueQueueDuration: histogram(
      'ssj_workqueue_queue_duration_seconds',
      'Seconds a key waited in the work queue before a worker took it.',
      latencyBuckets,
    ),
    watchEvents: counter('ssj_watch_events_total', 'Watch events received, by resource and type.', [
      'resource',
      'type',
    ]),
    informerRestarts: counter('ssj_informer_restarts_total', 'Informers restarted after an error.', [
      'resource',
    ]),
    ledgerUnavailable: gauge(
      'ssj_ledger_unavailable',
      '1 while the PostgreSQL ledger is unreachable (no new tick is claimed), else 0.',
    ),
    leader: gauge('ssj_leader', '1 while this process is the leader, else 0.'),
    leaderTerm: gauge('ssj_leader_term', 'The leadership term this process last observed.'),
    leaderTransitions: counter('ssj_leader_transitions_total', 'Leadership terms this process began.'),
    leaderFailover: gauge(
      'ssj_leader_failover_seconds',
      "Seconds from the previous leader's last seen renewal to this process's latest acquisition.",
    ),
    statusWrites: counter('ssj_status_writes_total', 'Status subresource writes, by result.', ['result']),
    apiRequests: counter('ssj_api_requests_total', 'Kubernetes API requests, by verb, resource and code.', [
      'verb',
      'resource',
      'code',
    ]),
    apiRequestDuration: histogram(
      'ssj_api_request_duration_seconds',
      'Seconds a Kubernetes API request took, by verb and resource.',
      latencyBuckets,
      ['verb', 'resource'],
    ),
  };
}

/**
 * ssj-operator: the process users run. Reads as a wiring diagram; the pieces live in their
 * folders (config, observability, runtime, ledger, controller).
 *
 * Exit codes: 0 after a clean shutdown (SIGTERM, SIGINT), `migrate` or `cleanup`; 2 for a malformed flag;
 * 1 for a configuration the operator cannot work with (no usable kubeconfig, the CRD not
 * installed, no rights to read it). A server that is merely unreachable (the API server,
 * PostgreSQL) is retried with backoff and reported through logs and readiness, never by exiting.
 */
import { CoreV1Api, CustomObjectsApi, EventsV1Api, type KubeConfig } from '@kubernetes/client-node';
import { makeInstrumentedApiClient } from './observability/api-requests.ts';
import { GROUP, LEADER_LEASE_NAME, PLURAL, VERSION } from './api/types.ts';
import { loadKubeConfig } from './config/kubeconfig.ts';
import type { Options } from './config/options.ts';
import { loggableOptions } from './config/options.ts';
import { optionsFromProcessOrExit } from './config/process.ts';
import { FAULT_ENV, faultHookFrom } from './controller/faults.ts';
import { kubeWriter } from './controller/kube-writer.ts';
import { removeRunRecordFinalizers } from './controller/finalizer-cleanup.ts';
import { Manager, errorText } from './controller/manager.ts';
import type { Ledger } from './ledger/ledger.ts';
import { statusLedger } from './ledger/status-ledger.ts';
import { ledgerLogger, openPostgresLedger, type OpenPostgresLedger } from './ledger/postgres-ledger.ts';
import { Elector } from './election/elector.ts';
import { kubeLeaseClient } from './election/kube-lease-client.ts';
import { newLogger, type Logger } from './observability/log.ts';
import { newMetrics } from './observability/metrics.ts';
import { newHealthServer, newMetricsServer } from './observability/server.ts';
import { onShutdown } from './observability/shutdown.ts';
import { classify } from './runtime/kube-errors.ts';
import { createEventRecorder, eventsV1Sink } from './runtime/events.ts';
import { migrateLedger } from './ledger/postgres/index.ts';
import { compactHeap } from './runtime/heap-compaction.ts';

async function main(): Promise<void> {
  const options = optionsFromProcessOrExit();
  const log = newLogger(options.logLevel);
  log.info({ options: loggableOptions(options) }, 'starting');

  if (options.command === 'migrate') {
    const applied = await migrateLedger({ connectionString: options.databaseUrl ?? '' }, ledgerLogger(log));
    log.info({ applied }, 'ledger migrations applied');
    return;
  }
  if (options.command === 'cleanup') {
    const kc = kubeConfigOrExit(options, log);
    const metrics = newMetrics({ processMetrics: false });
    const client = { requestTimeoutMs: options.requestTimeoutMs };
    const core = makeInstrumentedApiClient(kc, CoreV1Api, metrics, client);
    const result = await removeRunRecordFinalizers({
      core,
      kube: kubeWriter(core, makeInstrumentedApiClient(kc, CustomObjectsApi, metrics, client)),
      namespace: options.namespace,
      log,
    });
    const where = options.namespace === '' ? 'all namespaces' : options.namespace;
    log.info({ ...result, namespace: where }, 'finalizers removed');
    if (result.failed > 0) fatal(log, `${result.failed} pods kept their finalizer (see the warnings above)`);
    return;
  }

  const kc = kubeConfigOrExit(options, log);
  const metrics = newMetrics();

  // Probes answer from the start: while the API server or PostgreSQL is unreachable the
  // process is alive (liveness passes) but not ready, so it is never restarted into a loop.
  let manager: Manager | undefined = undefined; // set once the API server answers
  let ledgerReady = (): boolean => true;
  const stops: (() => Promise<void>)[] = [];
  const health = newHealthServer({ bind: options.healthProbeBindAddress, logger: log });
  health.addReadyCheck('informers', () =>
    manager?.hasSynced() === true ? { ok: true } : { ok: false, reason: 'caches have not synced yet' },
  );
  health.addReadyCheck('ledger', () =>
    ledgerReady() ? { ok: true } : { ok: false, reason: 'the PostgreSQL ledger is unreachable' },
  );
  const metricsServer = newMetricsServer({
    bind: options.metricsBindAddress,
    registry: metrics.registry,
    logger: log,
  });
  await Promise.all([health.listen(), metricsServer.listen()]);
  onShutdown(
    ['SIGTERM', 'SIGINT'],
    async () => {
      for (const stop of stops) await stop();
      await Promise.all([metricsServer.close(), health.close()]);
      log.info({}, 'stopped');
    },
    { logger: log },
  );

  await waitForCrd(kc, log, options.namespace);

  // Terms (DESIGN.md, invariant 3; ADRs 0007, 0009). Elected: each leadership of the Lease is a
  // term, numbered by the Lease's leaseTransitions and raised in the PostgreSQL fence row (keyed
  // by the Lease's UID) before it acts. Not elected (a development mode): one term for the
  // process, the fence row's next number with PostgreSQL, the start time without.
  const holder = options.leaderElection.identity;
  const elected = options.leaderElection.enabled;
  const leaseRef = { namespace: options.leaderElection.namespace, name: LEADER_LEASE_NAME };

  let ledger: Ledger = statusLedger;
  let pg: OpenPostgresLedger | undefined;
  if (options.databaseUrl !== undefined) {
    pg = await openPostgresLedger({
      connectionString: options.databaseUrl,
      lease: { ...leaseRef, uid: elected ? '' : 'single-replica' },
      holder,
      log,
      retentionMs: options.ledgerRetentionMs,
      terms: elected ? 'lease' : 'own',
      onTerm: (term) => {
        metrics.leaderTerm.set(term);
      },
    });
    ledger = pg.ledger;
    ledgerReady = pg.ready;
    stops.push(pg.close);
  }

  const requests = { requestTimeoutMs: options.requestTimeoutMs };
  const events = createEventRecorder({
    sink: eventsV1Sink(kc, makeInstrumentedApiClient(kc, EventsV1Api, metrics, requests)),
    identity: options.leaderElection.identity,
    logger: log,
  });
  const running = new Manager({
    kc,
    namespace: options.namespace === '' ? undefined : options.namespace,
    workers: options.workers,
    tickWorkers: options.tickWorkers,
    resyncPeriodMs: options.resyncPeriodMs,
    kube: kubeWriter(
      makeInstrumentedApiClient(kc, CoreV1Api, metrics, requests),
      makeInstrumentedApiClient(kc, CustomObjectsApi, metrics, requests),
    ),
    ledger,
    events,
    log,
    metrics,
    fault: faultHookFrom(process.env[FAULT_ENV], (code) => process.exit(code)),
    onFirstPass: () => {
      compactHeapLogged(log, 'the first pass of a term');
    },
  });
  manager = running;
  await running.start();
  compactHeapLogged(log, 'the caches synced');

  if (!elected) {
    // Never run two such processes: nothing but resourceVersion and the ledger keeps them apart.
    log.warn({}, 'leader election is off: this process acts alone, as the only replica');
    const stopped = new AbortController();
    let fenced = false;
    const term = (): number => (pg === undefined ? startedAt : (pg.term() ?? 0));
    const startedAt = Date.now();
    if (pg === undefined) metrics.leaderTerm.set(startedAt);
    metrics.leader.set(1);
    stops.unshift(
      async () => {
        stopped.abort();
        await running.stop();
      },
      () => events.flush(),
    );
    log.info({ mode: ledger.mode, term: term() }, 'controller started');
    await running.lead({
      get fence() {
        return { term: term(), holder };
      },
      signal: stopped.signal,
      valid: () => true,
      end: (cause) => {
        // Another process took a newer term: this one stands down (its writes are refused).
        if (!fenced) log.error({ cause }, 'a newer term owns the ledger: standing down');
        fenced = true;
        ledgerReady = () => false;
      },
      confirm: () => Promise.resolve(true),
    });
    return;
  }

  const elector = new Elector({
    lease: leaseRef,
    identity: holder,
    client: kubeLeaseClient({ kc }),
    leaseDurationMs: options.leaderElection.leaseDurationMs,
    renewDeadlineMs: options.leaderElection.renewDeadlineMs,
    retryPeriodMs: options.leaderElection.retryPeriodMs,
    logger: log,
    onEvent: (event) => {
      switch (event.kind) {
        case 'started':
          metrics.leader.set(1);
          metrics.leaderTerm.set(event.term.number);
          metrics.leaderTransitions.inc();
          if (event.failoverMs !== undefined) metrics.leaderFailover.set(event.failoverMs / 1000);
          log.info(
            { term: event.term.number, previousHolder: event.previousHolder, failoverMs: event.failoverMs },
            'leading',
          );
          return;
        case 'stopped':
          metrics.leader.set(0);
          log.info({ term: event.term.number, reason: event.reason }, 'no longer leading');
          return;
        case 'holderChanged':
          if (event.leaseTransitions !== undefined) metrics.leaderTerm.set(event.leaseTransitions);
          log.info({ holder: event.holder, term: event.leaseTransitions }, 'leader changed');
          return;
        default: {
          const never: never = event;
          throw new Error(`unknown elector event ${JSON.stringify(never)}`);
        }
      }
    },
  });
  const electing = elector.run(async (term) => {
    const fence = { term: term.number, holder: term.holder, leaseUid: term.leaseUid };
    if (pg !== undefined) {
      // Raised before the term acts, so every write of an older term is refused from now on.
      try {
        if (!(await pg.raise(fence))) {
          term.end('the ledger holds a newer term');
          return;
        }
      } catch (err) {
        log.warn({ term: term.number, err: errorText(err) }, 'could not raise the fence: giving the term up');
        term.end(`the fence could not be raised: ${errorText(err)}`);
        return;
      }
    }
    await running.lead({
      fence,
      signal: term.signal,
      valid: () => term.valid(),
      end: (cause) => {
        term.end(cause);
      },
      confirm: () => elector.confirm(term),
    });
  });
  // On SIGTERM: no new work, the term's requests end (or time out), then the Lease is released
  // so that a follower takes over within a second.
  stops.unshift(
    async () => {
      await running.stop();
      await elector.release();
      await electing;
    },
    () => events.flush(),
  );
  log.info({ mode: ledger.mode, leaderElection: true }, 'controller started');
}

function kubeConfigOrExit(options: Options, log: Logger): KubeConfig {
  try {
    const kc = loadKubeConfig(options.kubeconfig);
    if (kc.getCurrentCluster() === null) throw new Error('it names no current cluster');
    return kc;
  } catch (err) {
    return fatal(log, `no usable kubeconfig: ${errorText(err)}`);
  }
}

/**
 * Waits for the API server; exits when it answers that the CRD is missing or unreadable. Lists
 * where the operator will watch (`namespace`, '' = everywhere), so that an install scoped to one
 * namespace (a RoleBinding, not a ClusterRoleBinding) can start.
 */
async function waitForCrd(kc: KubeConfig, log: Logger, namespace: string): Promise<void> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const where = { group: GROUP, version: VERSION, plural: PLURAL, limit: 1 };
  for (let attempt = 0; ; attempt++) {
    try {
      if (namespace === '') await api.listClusterCustomObject(where);
      else await api.listNamespacedCustomObject({ ...where, namespace });
      return;
    } catch (err) {
      const e = classify(err);
      if (e.kind === 'NotFound') {
        fatal(log, `the CRD ${PLURAL}.${GROUP} is not installed: run "kubectl apply --server-side -f crds/"`);
      }
      if (e.kind === 'Forbidden' || e.code === 401) {
        fatal(log, `not allowed to list ${PLURAL}.${GROUP}: ${e.message}`);
      }
      const delayMs = Math.min(30_000, 500 * 2 ** attempt);
      log.warn({ err: e.message, retryInMs: delayMs }, 'api server unreachable; retrying');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

/**
 * V8 keeps the old space the start's peak made it grow to; one compacting collection once that
 * work is done hands it back (docs/adr/0018-heap-compaction.md).
 */
function compactHeapLogged(log: Logger, after: string): void {
  const mib = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;
  compactHeap().then(
    (c) => {
      log.info(
        {
          after,
          rssMiB: { before: mib(c.rssBeforeBytes), after: mib(c.rssAfterBytes) },
          heapTotalMiB: { before: mib(c.heapTotalBeforeBytes), after: mib(c.heapTotalAfterBytes) },
          durationMs: Math.round(c.durationMs),
        },
        'heap compacted',
      );
    },
    (err: unknown) => {
      log.warn({ after, err: errorText(err) }, 'heap compaction failed');
    },
  );
}

function fatal(log: Logger, message: string): never {
  log.error({}, message);
  process.stderr.write(`ssj-operator: ${message}\n`);
  process.exit(1);
}

main().catch((err: unknown) => {
  process.stderr.write(`ssj-operator: ${errorText(err)}\n`);
  process.exit(1);
});

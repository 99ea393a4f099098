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
import { GROUP, PLURAL, VERSION } from './api/types.ts';
import { loadKubeConfig } from './config/kubeconfig.ts';
import type { Options } from './config/options.ts';
import { loggableOptions } from './config/options.ts';
import { optionsFromProcessOrExit } from './config/process.ts';
import { FAULT_ENV, faultHookFrom } from './controller/faults.ts';
import { kubeWriter } from './controller/kube-writer.ts';
import { removeRunRecordFinalizers } from './controller/finalizer-cleanup.ts';
import { Manager, errorText } from './controller/manager.ts';
import type { Fence, Ledger } from './ledger/ledger.ts';
import { statusLedger } from './ledger/status-ledger.ts';
import { ledgerLogger, openPostgresLedger } from './ledger/postgres-ledger.ts';
import { newLogger, type Logger } from './observability/log.ts';
import { newMetrics } from './observability/metrics.ts';
import { newHealthServer, newMetricsServer } from './observability/server.ts';
import { onShutdown } from './observability/shutdown.ts';
import { classify } from './runtime/kube-errors.ts';
import { createEventRecorder, eventsV1Sink } from './runtime/events.ts';
import { migrateLedger } from './ledger/postgres/index.ts';

const LEASE_NAME = 'ssj-operator-leader';

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
    async (signal) => {
      log.info({ signal }, 'shutting down');
      for (const stop of stops) await stop();
      await Promise.all([metricsServer.close(), health.close()]);
      log.info({}, 'stopped');
    },
    { logger: log },
  );

  await waitForCrd(kc, log);

  // Until Lease-based election lands, this process is the single replica (docs/adr/0007). With
  // PostgreSQL its term is the fence row's next number, taken by the ledger in its own
  // transaction, so a restarted process fences its predecessor whatever the clocks say; until it
  // is taken the term reads 0, under which nothing is claimed (`load` throws
  // LedgerUnavailableError). Status-only mode has no fence row: its term is the start time in
  // milliseconds, and resourceVersion preconditions order its writes.
  if (options.leaderElection.enabled) {
    log.warn({}, 'leader election is not implemented yet: running as the single replica with its own term');
  }
  const holder = options.leaderElection.identity;
  const lease = { namespace: options.leaderElection.namespace, name: LEASE_NAME, uid: 'single-replica' };
  metrics.leader.set(1);

  let ledger: Ledger = statusLedger;
  let fence: () => Fence;
  if (options.databaseUrl === undefined) {
    const term = Date.now();
    metrics.leaderTerm.set(term);
    fence = () => ({ term: term, holder });
  } else {
    const pg = await openPostgresLedger({
      connectionString: options.databaseUrl,
      lease,
      holder,
      log,
      retentionMs: options.ledgerRetentionMs,
      onTerm: (term) => {
        metrics.leaderTerm.set(term);
      },
    });
    ledger = pg.ledger;
    ledgerReady = pg.ready;
    stops.push(pg.close);
    fence = () => ({ term: pg.term() ?? 0, holder });
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
    resyncPeriodMs: options.resyncPeriodMs,
    kube: kubeWriter(
      makeInstrumentedApiClient(kc, CoreV1Api, metrics, requests),
      makeInstrumentedApiClient(kc, CustomObjectsApi, metrics, requests),
    ),
    ledger,
    events,
    fence,
    log,
    metrics,
    fault: faultHookFrom(process.env[FAULT_ENV], (code) => process.exit(code)),
  });
  manager = running;
  // Stopped first: no reconcile may outlive the ledger or the Event sink it writes to.
  stops.unshift(
    () => running.stop(),
    () => events.flush(),
  );

  await running.start();
  log.info({ mode: ledger.mode, term: fence().term }, 'controller started');
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

/** Waits for the API server; exits when it answers that the CRD is missing or unreadable. */
async function waitForCrd(kc: KubeConfig, log: Logger): Promise<void> {
  const api = kc.makeApiClient(CustomObjectsApi);
  for (let attempt = 0; ; attempt++) {
    try {
      await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, limit: 1 });
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

function fatal(log: Logger, message: string): never {
  log.error({}, message);
  process.stderr.write(`ssj-operator: ${message}\n`);
  process.exit(1);
}

main().catch((err: unknown) => {
  process.stderr.write(`ssj-operator: ${errorText(err)}\n`);
  process.exit(1);
});

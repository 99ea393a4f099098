// A resilient informer: client-node's list-then-watch cache (`ListWatch`, what `makeInformer`
// builds) restarted with back-off whenever it gives up.
//
// Why a wrapper: client-node 2.0.1's ListWatch re-lists after a 410 Gone and re-watches after a
// clean close or its own 30 s inactivity timeout, but after any other failure (connection
// refused or reset, a failed list, 403, a CRD that is not installed) it emits `error` and stops
// for good until `start()` is called again. An operator must not go blind, or exit, because a
// watch broke.
//
// Guarantees:
// - `start()` resolves once the first list has been delivered to the cache (`hasSynced()` is
//   then true), however many failures it takes; or when `stop()` is called first (check
//   `hasSynced()`). It never rejects, so an un-awaited start cannot crash the process.
// - After a failure, the informer is restarted after a jittered exponential delay (by default
//   1 s doubling to 30 s, each delay between half and all of its ceiling); the delay goes back
//   to the start once a run has stayed healthy for `resetAfterMs` (60 s) before failing.
//   Each failure is logged (warn, with the classified error) and each restart counted through
//   `metrics.informerRestart(resource)`. `lastError()` tells a health check why it is failing.
// - The cache survives restarts: a restart re-watches from the last resourceVersion, or re-lists
//   (after 410 Gone), and a re-list reports objects that vanished meanwhile as `delete`.
// - Every watch event (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR) is counted through
//   `metrics.watchEvent(resource, type)`.
// - Handlers registered with `on` are called synchronously with the cached object; one that
//   throws is logged and does not disturb the informer or the other handlers.
// - `stop()` is final: it cancels any pending restart, closes the watch, and nothing is opened
//   afterwards (client-node's own reconnect delay is cut short and refused). Build a new
//   informer to watch again.
// - Every listed item and watch event goes through `transform` before the cache or a handler
//   sees it (client-go's SetTransform); by default it removes `metadata.managedFields`. The
//   operator's informers keep lean objects (./cache-transform.ts): 10,000 jobs must fit.
// - A quiet watch costs nothing but its bookmarks (WatchTiming below): the API server ends each
//   watch after 5 to 10 minutes, as client-go's reflector asks, so the connection goes back to
//   the pool and the next watch reuses it; the client gives a watch up only after 150 s without
//   a byte, more than two of the bookmarks the API server sends every minute.
//
// It does not:
// - validate objects (custom objects are cached as the API server sent them);
// - give `update` handlers the previous version of the object (client-node does not keep it);
// - resync periodically: that is the work queue's business (requeue after).

import { CoreV1Api, CustomObjectsApi, ListWatch, Watch } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesListObject, KubernetesObject, V1Pod } from '@kubernetes/client-node';
import { realClock, sleep } from './clock.ts';
import type { Cancel, Clock } from './clock.ts';
import { classify } from './kube-errors.ts';
import { leanJob, leanPod } from './cache-transform.ts';
import { GROUP, LABEL_JOB, PLURAL, VERSION } from '../api/names.ts';
import type { KubeError } from './kube-errors.ts';

export type InformerEvent = 'add' | 'update' | 'delete';

export interface InformerMetrics {
  watchEvent(resource: string, type: string): void;
  informerRestart(resource: string): void;
}

export interface InformerLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
  info?(obj: Record<string, unknown>, msg: string): void;
}

export interface Informer<T> {
  start(): Promise<void>;
  stop(): void;
  hasSynced(): boolean;
  /** Every cached object, in all namespaces the informer watches. */
  list(): readonly T[];
  /** A cached object; namespace '' for cluster-scoped objects. */
  get(namespace: string, name: string): T | undefined;
  /** Subscribes to cache changes; returns the function that unsubscribes. */
  on(event: InformerEvent, fn: (obj: T) => void): () => void;
  /** The classified error of the latest failure, until the next successful (re)start. */
  lastError(): KubeError | undefined;
}

export interface RestartBackoff {
  initialMs: number;
  maxMs: number;
  /** A run that lasted this long before failing restarts the back-off from `initialMs`. */
  resetAfterMs: number;
}

export const DEFAULT_RESTART_BACKOFF: RestartBackoff = {
  initialMs: 1000,
  maxMs: 30_000,
  resetAfterMs: 60_000,
};

/** The delay before restart number `attempt` (0-based): "equal jitter" below a capped doubling. */
export function restartDelay(attempt: number, backoff: RestartBackoff, random: () => number): number {
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.max(0, attempt));
  return ceiling / 2 + (Math.min(Math.max(random(), 0), 1) * ceiling) / 2;
}

/** The part of client-node's ListWatch the informer drives (a fake in unit tests). */
export interface ListWatchSource<T> {
  /** Lists when it has no resourceVersion, then opens the watch; settles once it is open or has failed. */
  start(): Promise<void>;
  stop(): void;
  on(event: InformerEvent, fn: (obj: T) => void): void;
  /** Called when the source has given up and needs `start()` again. */
  onError(fn: (err: unknown) => void): void;
  get(name: string, namespace?: string): T | undefined;
  list(): readonly T[];
}

export interface ListWatchSourceOptions<T extends KubernetesObject> {
  path: string;
  labelSelector?: string;
  list: () => Promise<KubernetesListObject<T>>;
  /** Turns a watch event's raw object into a cached object. */
  fromWatch: (raw: unknown) => T;
  onWatchEvent: (type: string) => void;
  /** The source's own reconnect delay; resolves early once the informer is stopped. */
  sleep: (ms: number) => Promise<void>;
  isStopped: () => boolean;
  logger: InformerLogger;
}

export type ListWatchFactory<T extends KubernetesObject> = (
  options: ListWatchSourceOptions<T>,
) => ListWatchSource<T>;

/**
 * How long each watch lasts, and how long it may stay silent.
 *
 * client-node's Watch aborts a watch after 30 s without a byte, and ListWatch opens the next one.
 * An aborted response cannot give its connection back, so every quiet watch cost a new TCP and
 * TLS connection, on the operator's CPU and the API server's, twice a minute for ever
 * (docs/adr/0020). client-go's reflector instead asks the server to end each watch after a
 * random 5 to 10 minutes (`timeoutSeconds`); a watch the server ends is complete, and its
 * connection is reused by the next one.
 */
export interface WatchTiming {
  /** The `timeoutSeconds` of each new watch: when the API server ends it, cleanly. */
  timeoutSeconds: () => number;
  /**
   * How long a watch may go without a byte before the client takes it for dead and opens another.
   * The API server's watch cache sends a bookmark to each watch about once a minute
   * (`defaultBookmarkFrequency`, k8s.io/apiserver) and one 2 s before its deadline.
   */
  silenceMs: number;
}

/** client-go's reflector: minWatchTimeout 5 minutes, each watch between one and two of it. */
const MIN_WATCH_TIMEOUT_S = 300;

export const DEFAULT_WATCH_TIMING: WatchTiming = {
  timeoutSeconds: () => Math.floor(MIN_WATCH_TIMEOUT_S * (1 + Math.random())),
  silenceMs: 150_000,
};

/** What every informer may be given besides what it watches. */
export interface InformerRuntime {
  metrics?: InformerMetrics;
  logger?: InformerLogger;
  clock?: Clock;
  random?: () => number;
  backoff?: Partial<RestartBackoff>;
}

export interface InformerOptions<T extends KubernetesObject> extends InformerRuntime {
  /** Names the resource in logs and metrics, e.g. "pods". */
  resource: string;
  path: string;
  labelSelector?: string;
  /** Lists everything at once; one of `list` and `listPage` is required. */
  list?: () => Promise<KubernetesListObject<T>>;
  /**
   * Lists one page (`limit` objects from `continue`) instead of everything at once, and wins
   * over `list`. Each page goes through `transform` as it arrives, so a large list
   * never holds every object in its full form at the same time.
   */
  listPage?: (page: { limit: number; continue?: string }) => Promise<ListPage<T>>;
  fromWatch?: (raw: unknown) => T;
  /** What the cache keeps of each object (after `fromWatch`); by default all but managedFields. */
  transform?: (obj: T) => T;
  listWatch: ListWatchFactory<T>;
}

/** One page of a paginated list: its items, the list's resourceVersion and the token of the next page. */
export interface ListPage<T> {
  readonly items: T[];
  readonly resourceVersion: string;
  readonly continue?: string | undefined;
}

/** Objects per page of a paginated list (client-go's pager uses 500 too). */
export const LIST_PAGE_SIZE = 500;

const noMetrics: InformerMetrics = { watchEvent: () => undefined, informerRestart: () => undefined };
const noLogger: InformerLogger = { warn: () => undefined };

export function createInformer<T extends KubernetesObject>(options: InformerOptions<T>): Informer<T> {
  const { resource } = options;
  const metrics = options.metrics ?? noMetrics;
  const logger = options.logger ?? noLogger;
  const clock = options.clock ?? realClock;
  const random = options.random ?? Math.random;
  const backoff = { ...DEFAULT_RESTART_BACKOFF, ...options.backoff };
  const fromWatch = options.fromWatch ?? ((raw: unknown) => raw as T);
  const transform = options.transform ?? dropManagedFields;
  const stopping = new AbortController();

  const listeners: Record<InformerEvent, Set<(obj: T) => void>> = {
    add: new Set(),
    update: new Set(),
    delete: new Set(),
  };
  let started = false;
  let synced = false;
  let listedThisRun = false;
  let run = 0; // numbers each (re)start, so that late news from an earlier one is ignored
  let failedRun = -1;
  let runStartedAt = 0;
  let attempt = 0;
  let pendingRestart: Cancel | undefined;
  let lastError: KubeError | undefined;
  let resolveSynced: () => void = () => undefined;
  const syncedPromise = new Promise<void>((resolve) => {
    resolveSynced = resolve;
  });

  const safe = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      try {
        logger.warn({ resource, err: classify(err) }, `${what} failed`);
      } catch {
        // nowhere left to report
      }
    }
  };

  const source = options.listWatch({
    path: options.path,
    ...(options.labelSelector === undefined ? {} : { labelSelector: options.labelSelector }),
    list: async () => {
      const { list: listAtOnce, listPage } = options;
      let list: KubernetesListObject<T>;
      if (listPage !== undefined) list = await listAll(listPage, transform);
      else if (listAtOnce !== undefined) {
        list = await listAtOnce();
        list.items = list.items.map(transform);
      } else throw new Error(`informer ${resource}: neither list nor listPage was given`);
      listedThisRun = true;
      return list;
    },
    fromWatch: (raw) => transform(fromWatch(raw)),
    onWatchEvent: (type) => {
      safe('watch event metric', () => {
        metrics.watchEvent(resource, type);
      });
    },
    sleep: (ms) => sleep(clock, ms, stopping.signal),
    isStopped: () => stopping.signal.aborted,
    logger,
  });

  for (const event of ['add', 'update', 'delete'] as const) {
    source.on(event, (obj) => {
      // A watch that was already on its way when stop() was called may still deliver.
      if (stopping.signal.aborted) return;
      for (const fn of listeners[event]) {
        safe(`${event} handler`, () => {
          fn(obj);
        });
      }
    });
  }
  source.onError((err) => {
    fail(run, err);
  });

  function begin(): void {
    if (stopping.signal.aborted) return;
    const thisRun = ++run;
    listedThisRun = false;
    runStartedAt = clock.now();
    let settled: Promise<void>;
    try {
      settled = source.start();
    } catch (err) {
      fail(thisRun, err);
      return;
    }
    settled.then(
      () => {
        if (thisRun !== run || stopping.signal.aborted) return;
        if (listedThisRun && !synced) {
          synced = true;
          resolveSynced();
        }
        if (failedRun !== thisRun && lastError !== undefined) {
          safe('log', () => logger.info?.({ resource }, 'watch restored'));
          lastError = undefined;
        }
      },
      (err: unknown) => {
        fail(thisRun, err);
      },
    );
  }

  function fail(failed: number, err: unknown): void {
    if (stopping.signal.aborted || failed !== run || failedRun === failed) return;
    failedRun = failed;
    const e = classify(err);
    lastError = e;
    if (clock.now() - runStartedAt >= backoff.resetAfterMs) attempt = 0;
    const delayMs = Math.round(restartDelay(attempt, backoff, random));
    attempt++;
    safe('log', () => {
      logger.warn({ resource, err: e, attempt, delayMs }, 'watch failed; restarting');
    });
    pendingRestart = clock.setTimer(delayMs, () => {
      pendingRestart = undefined;
      if (stopping.signal.aborted) return;
      safe('restart metric', () => {
        metrics.informerRestart(resource);
      });
      begin();
    });
  }

  return {
    start() {
      if (!started && !stopping.signal.aborted) {
        started = true;
        begin();
      }
      return stopping.signal.aborted ? Promise.resolve() : syncedPromise;
    },
    stop() {
      if (stopping.signal.aborted) return;
      stopping.abort();
      pendingRestart?.();
      pendingRestart = undefined;
      safe('stop', () => {
        source.stop();
      });
      resolveSynced();
    },
    hasSynced: () => synced,
    list: () => source.list(),
    get: (namespace, name) => source.get(name, namespace),
    on(event, fn) {
      listeners[event].add(fn);
      return () => listeners[event].delete(fn);
    },
    lastError: () => lastError,
  };
}

// The pages of one list share the resourceVersion of its first (the API server serves them from
// one snapshot); a continue token that has expired meanwhile (410) fails the list, and the
// informer restarts and lists again.
async function listAll<T extends KubernetesObject>(
  listPage: NonNullable<InformerOptions<T>['listPage']>,
  transform: (obj: T) => T,
): Promise<KubernetesListObject<T>> {
  const items: T[] = [];
  let resourceVersion = '';
  let cont: string | undefined;
  do {
    const page = await listPage({ limit: LIST_PAGE_SIZE, ...(cont === undefined ? {} : { continue: cont }) });
    for (const item of page.items) items.push(transform(item));
    if (resourceVersion === '') resourceVersion = page.resourceVersion;
    cont = page.continue === '' ? undefined : page.continue;
  } while (cont !== undefined);
  return { metadata: { resourceVersion }, items };
}

// The informer never reads managedFields, and they are often the largest part of an object.
function dropManagedFields<T>(obj: T): T {
  if (typeof obj !== 'object' || obj === null) return obj;
  const metadata = (obj as { metadata?: unknown }).metadata;
  if (typeof metadata === 'object' && metadata !== null && 'managedFields' in metadata) {
    delete (metadata as { managedFields?: unknown }).managedFields;
  }
  return obj;
}

// ---------------------------------------------------------------------------------------------
// client-node's ListWatch as a ListWatchSource.

interface WatchHooks {
  isStopped: () => boolean;
  fromWatch: (raw: unknown) => unknown;
  onWatchEvent: (type: string) => void;
  logger: InformerLogger;
}

// Subclassing is client-node's only seam here: ListWatch takes a Watch instance. The guard
// (1) refuses to open a watch once the informer is stopped (ListWatch would otherwise open one
// after its reconnect delay even when stopped meanwhile); (2) turns a rejection of Watch.watch
// (it awaits authentication outside its own try) into the `done(err)` ListWatch expects, instead
// of an unhandled rejection that would end the process; (3) counts events, converts objects and
// asks for bookmarks and a server-side end (WatchTiming).
class GuardedWatch extends Watch {
  readonly #hooks: WatchHooks;
  readonly #timing: WatchTiming;

  constructor(kc: KubeConfig, hooks: WatchHooks, timing: WatchTiming) {
    super(kc);
    this.#hooks = hooks;
    this.#timing = timing;
    // Private in client-node's types only, and the one knob of its silence timer
    // (kubernetes-client/javascript#3022 made it "time without data").
    (this as unknown as { requestTimeoutMs: number }).requestTimeoutMs = timing.silenceMs;
  }

  override async watch(...args: Parameters<Watch['watch']>): Promise<AbortController> {
    const [path, queryParams, callback, done] = args;
    if (this.#hooks.isStopped()) return aborted();
    const hooks = this.#hooks;
    const onEvent = (phase: string, apiObj: unknown, watchObj?: unknown): void => {
      hooks.onWatchEvent(phase);
      let obj = apiObj;
      if (phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED') {
        try {
          obj = hooks.fromWatch(apiObj);
        } catch (err) {
          hooks.logger.warn(
            { err: classify(err), path },
            'watch object not converted; caching it as received',
          );
        }
      }
      callback(phase, obj, watchObj);
    };
    try {
      const controller = await super.watch(
        path,
        { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: this.#timing.timeoutSeconds() },
        onEvent,
        done,
      );
      // Stopped while the request was on its way: ListWatch's stop could not abort it yet.
      if (this.#hooks.isStopped()) controller.abort();
      return controller;
    } catch (err) {
      done(err);
      return aborted();
    }
  }
}

function aborted(): AbortController {
  const c = new AbortController();
  c.abort();
  return c;
}

/** Builds sources on client-node's ListWatch (what `makeInformer` returns), with the guard above. */
export function clientNodeListWatch<T extends KubernetesObject>(
  kc: KubeConfig,
  timing: Partial<WatchTiming> = {},
): ListWatchFactory<T> {
  const full = { ...DEFAULT_WATCH_TIMING, ...timing };
  return (o) => {
    const watch = new GuardedWatch(
      kc,
      { isStopped: o.isStopped, fromWatch: o.fromWatch, onWatchEvent: o.onWatchEvent, logger: o.logger },
      full,
    );
    const lw = new ListWatch<T>(o.path, watch, o.list, false, o.labelSelector, undefined, {
      delayFn: o.sleep,
    });
    return {
      start: () => lw.start(),
      stop: () => void lw.stop(),
      on: (event, fn) => {
        lw.on(event, fn);
      },
      onError: (fn) => {
        lw.on('error', fn);
      },
      get: (name, namespace) => lw.get(name, namespace),
      list: () => lw.list(),
    };
  };
}

// ---------------------------------------------------------------------------------------------
// Informers the operator needs.

// The API's names, under the names this module's callers use; the Pod informer selects on the
// existence of the job label, which every Pod the operator owns carries.
export { GROUP as SSJ_GROUP, VERSION as SSJ_VERSION, PLURAL as SSJ_PLURAL, LABEL_JOB as JOB_LABEL };

export interface WatchScope extends InformerRuntime {
  /** One namespace, or all namespaces when absent. */
  namespace?: string;
  /** How long each watch lasts and may stay silent (tests shorten it). */
  watch?: Partial<WatchTiming>;
}

/**
 * ScheduledSingletonJobs, as the API server sends them (unvalidated), lean: without managedFields,
 * the Pod template held as JSON text (read it with `podTemplateOf`, ./cache-transform.ts).
 */
export function singletonJobInformer<T extends KubernetesObject = KubernetesObject>(
  kc: KubeConfig,
  scope: WatchScope = {},
): Informer<T> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const { namespace, watch, ...runtime } = scope;
  const base = `/apis/${GROUP}/${VERSION}`;
  return createInformer<T>({
    ...runtime,
    resource: PLURAL,
    path:
      namespace === undefined
        ? `${base}/${PLURAL}`
        : `${base}/namespaces/${encodeURIComponent(namespace)}/${PLURAL}`,
    listPage: async ({ limit, continue: cont }) => {
      const query = {
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        limit,
        ...(cont === undefined ? {} : { _continue: cont }),
      };
      const raw: unknown =
        namespace === undefined
          ? await api.listClusterCustomObject(query)
          : await api.listNamespacedCustomObject({ ...query, namespace });
      const list = asList<T>(raw);
      const meta = (list.metadata ?? {}) as { resourceVersion?: string; continue?: string };
      return { items: list.items, resourceVersion: meta.resourceVersion ?? '', continue: meta.continue };
    },
    transform: leanJob,
    listWatch: clientNodeListWatch<T>(kc, watch),
  });
}

/**
 * Pods labelled `ssj.dev/job` (never every Pod in the cluster), lean: only the fields the
 * controller reads (./cache-transform.ts `leanPod`), timestamps as Dates.
 */
export function podInformer(kc: KubeConfig, scope: WatchScope = {}): Informer<V1Pod> {
  const api = kc.makeApiClient(CoreV1Api);
  const { namespace, watch, ...runtime } = scope;
  return createInformer<V1Pod>({
    ...runtime,
    resource: 'pods',
    path:
      namespace === undefined ? '/api/v1/pods' : `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
    labelSelector: LABEL_JOB,
    listPage: async ({ limit, continue: cont }) => {
      const query = { labelSelector: LABEL_JOB, limit, ...(cont === undefined ? {} : { _continue: cont }) };
      const list =
        namespace === undefined
          ? await api.listPodForAllNamespaces(query)
          : await api.listNamespacedPod({ ...query, namespace });
      return {
        items: list.items,
        resourceVersion: list.metadata?.resourceVersion ?? '',
        continue: list.metadata?._continue,
      };
    },
    // The list is deserialised by the generated client (timestamps are Dates), watch events
    // arrive as plain JSON: leanPod reads both into one shape.
    transform: leanPod,
    listWatch: clientNodeListWatch<V1Pod>(kc, watch),
  });
}

function asList<T extends KubernetesObject>(raw: unknown): KubernetesListObject<T> {
  if (typeof raw !== 'object' || raw === null || !Array.isArray((raw as { items?: unknown }).items)) {
    throw new Error('list response has no items array');
  }
  return raw as KubernetesListObject<T>;
}

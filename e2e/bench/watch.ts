/**
 * The independent watcher: a plain client-node `Watch` (list, then watch from the list's
 * resourceVersion), kept open for as long as a scenario runs.
 *
 * Guarantees:
 * - Each event is stamped with the local wall-clock time (`performance.timeOrigin +
 *   performance.now()`, sub-millisecond) at which its line was parsed, before anything else is done
 *   with it. A Pod's creationTimestamp has one-second resolution, so arrival time is the measure.
 * - The watch is resumed from the last resourceVersion seen whenever it ends: client-node 2.0.1
 *   aborts a watch after 30 s without data, and the API server closes watches after a while. A
 *   resumed watch misses nothing; after a 410 Gone it lists again, and objects first seen in that
 *   list are stamped with the list's time (late, never early) and flagged `fromList`.
 *
 * Does not give: the time the API server committed an object (only when its event reached us,
 * which includes the watch cache's fan-out delay; every scenario pays the same).
 */
import { Watch, type KubeConfig } from '@kubernetes/client-node';

export interface KubeObject {
  readonly metadata?: {
    readonly name?: string;
    readonly resourceVersion?: string;
    readonly generation?: number;
    readonly labels?: Readonly<Record<string, string>>;
  };
  readonly status?: { readonly observedGeneration?: number };
}

export interface ListPage {
  readonly items: readonly KubeObject[];
  readonly resourceVersion: string;
  readonly continueToken: string | undefined;
}
export type Lister = (continueToken: string | undefined) => Promise<ListPage>;

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface ObservedEvent {
  readonly type: EventType;
  readonly object: KubeObject;
  /** Local wall-clock ms when the event was parsed. */
  readonly atMs: number;
  readonly fromList: boolean;
}

/** Wall-clock milliseconds with sub-millisecond resolution. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

interface WatchStatus {
  readonly code?: number;
}

export class ResumableWatch {
  private readonly kc: KubeConfig;
  private readonly path: string;
  private readonly list: Lister;
  private readonly onEvent: (event: ObservedEvent) => void;
  private readonly onProblem: (message: string) => void;
  private resourceVersion = '';
  private controller: AbortController | undefined;
  private stopped = false;
  private gone = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: {
    kc: KubeConfig;
    /** The collection's path, e.g. /api/v1/namespaces/x/pods. */
    path: string;
    list: Lister;
    onEvent: (event: ObservedEvent) => void;
    onProblem: (message: string) => void;
  }) {
    this.kc = options.kc;
    this.path = options.path;
    this.list = options.list;
    this.onEvent = options.onEvent;
    this.onProblem = options.onProblem;
  }

  /** Resolves once the initial list is delivered and the watch is connected. */
  async start(): Promise<void> {
    await this.relist();
    await this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.controller?.abort();
  }

  private async relist(): Promise<void> {
    let token: string | undefined;
    let first = true;
    do {
      const page = await this.list(token);
      const atMs = nowMs();
      if (first) this.resourceVersion = page.resourceVersion;
      first = false;
      for (const object of page.items) this.onEvent({ type: 'ADDED', object, atMs, fromList: true });
      token = page.continueToken;
    } while (token !== undefined && token !== '');
    this.gone = false;
  }

  private async connect(): Promise<void> {
    const watch = new Watch(this.kc);
    this.controller = await watch.watch(
      this.path,
      { resourceVersion: this.resourceVersion, allowWatchBookmarks: true },
      (type: string, object: unknown) => {
        const atMs = nowMs();
        this.failures = 0;
        const obj = object as KubeObject;
        if (type === 'ERROR') {
          const status = object as WatchStatus;
          if (status.code === 410) this.gone = true;
          else this.onProblem(`watch ${this.path}: error event ${JSON.stringify(object)}`);
          return;
        }
        const rv = obj.metadata?.resourceVersion;
        if (rv !== undefined) this.resourceVersion = rv;
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
          this.onEvent({ type, object: obj, atMs, fromList: false });
        }
      },
      (err: unknown) => {
        this.resume(err);
      },
    );
  }

  private resume(err: unknown): void {
    if (this.stopped) return;
    const timeout = err instanceof Error && err.name === 'TimeoutError';
    const failed = err !== null && err !== undefined && !timeout;
    if (failed) {
      this.failures++;
      this.onProblem(
        `watch ${this.path} ended: ${err instanceof Error ? err.message : JSON.stringify(err)}; resuming`,
      );
    }
    const delay = failed ? Math.min(5000, 100 * 2 ** this.failures) : 0;
    this.timer = setTimeout(() => {
      void (async () => {
        try {
          if (this.gone) await this.relist();
          if (!this.stopped) await this.connect();
        } catch (error) {
          this.resume(error instanceof Error ? error : new Error(String(error)));
        }
      })();
    }, delay);
  }
}

/** First-seen time of every object of a collection, by name. */
export class Arrivals {
  readonly at = new Map<string, { readonly atMs: number; readonly fromList: boolean }>();

  record(event: ObservedEvent): void {
    const name = event.object.metadata?.name;
    if (name === undefined || event.type === 'DELETED' || this.at.has(name)) return;
    this.at.set(name, { atMs: event.atMs, fromList: event.fromList });
  }

  get count(): number {
    return this.at.size;
  }
}

/** Which objects' status.observedGeneration has caught up with their generation. */
export class Observed {
  private readonly caughtUp = new Set<string>();
  private readonly generations = new Map<string, number>();

  record(event: ObservedEvent): void {
    const name = event.object.metadata?.name;
    if (name === undefined) return;
    const generation = event.object.metadata?.generation;
    const observed = event.object.status?.observedGeneration;
    if (event.type === 'DELETED') this.generations.delete(name);
    else if (observed !== undefined) this.generations.set(name, observed);
    if (
      event.type !== 'DELETED' &&
      generation !== undefined &&
      observed !== undefined &&
      observed >= generation
    ) {
      this.caughtUp.add(name);
    } else {
      this.caughtUp.delete(name);
    }
  }

  get count(): number {
    return this.caughtUp.size;
  }

  /** The latest status.observedGeneration seen for `name`. */
  observedGeneration(name: string): number | undefined {
    return this.generations.get(name);
  }
}

/** Polls `done` every 100 ms; resolves true when it holds, false at the deadline. */
export async function waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (done()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(100, deadline - Date.now()));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

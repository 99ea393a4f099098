// Records Kubernetes Events (events.k8s.io/v1) about our objects, aggregating repeats.
//
// Guarantees:
// - `event()` returns at once and never throws: an Event is best-effort. Every failure is logged
//   through the injected logger's `warn` and dropped.
// - The first occurrence of (involved object, type, reason, message) creates an Event; each repeat
//   of the same four updates THAT Event's `series` (count = occurrences so far,
//   lastObservedTime = the latest) with a JSON patch, instead of creating another object.
// - Writes for one Event are serialised: while a write is in flight, further repeats only bump
//   the in-memory count, and one patch carries them all when the write returns (so a burst of N
//   repeats costs at most two writes, not N).
// - If the Event was deleted meanwhile (its one-hour TTL, or by hand), the patch gets NotFound
//   and a new Event is created carrying the series so far.
// - The cache of recent Events is bounded (`maxEntries`, least recently used evicted first).
// - At most `maxInFlight` (16) writes are in flight at once; the others wait their turn, still
//   aggregating repeats. A burst of 1,000 Events (a tick's held Events released at once) would
//   otherwise be 1,000 concurrent requests, their bodies and sockets all alive together: the
//   heap of a 1,000-job burst (issue 9), and requests timing out behind each other.
//
// Simplified relative to client-go (tools/events' broadcaster and tools/record's
// EventCorrelator), on purpose:
// - no retry of a failed write (client-go retries up to 12 times, 10 s apart): the next repeat of
//   the event tries again, and one that never repeats is lost;
// - no spam filter (client-go's per-object token bucket) and no "similar events" aggregation by
//   message: a caller that emits distinct messages in a loop creates distinct Events;
// - no periodic series refresh or end-of-series write: each repeat is written right away
//   (coalesced as above), which is what `kubectl describe` shows;
// - the aggregation key includes the message (client-go's events/v1 key does not, the old
//   correlator does), so a changed message starts a new Event;
// - an entry evicted from the cache, or a process restart, starts a new Event for the next
//   repeat.
//
// Needs RBAC: create and patch on events.k8s.io events in the involved objects' namespaces.

import { EventsV1Api, EventsV1Event, V1MicroTime } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { classify } from './kube-errors.ts';

export const REPORTING_CONTROLLER = 'ssj.dev/ssj-operator';

export type EventType = 'Normal' | 'Warning';

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid: string };
}

export interface EventRecorder {
  event(obj: InvolvedObject, type: EventType, reason: string, message: string): void;
}

export interface EventLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface EventSeries {
  count: number;
  lastObservedTime: Date;
}

/** An events.k8s.io/v1 Event as we write it. */
export interface EventBody {
  apiVersion: 'events.k8s.io/v1';
  kind: 'Event';
  metadata: { name: string; namespace: string };
  eventTime: V1MicroTime;
  reportingController: string;
  reportingInstance: string;
  action: string;
  reason: string;
  type: EventType;
  note: string;
  regarding: { apiVersion: string; kind: string; name: string; namespace: string; uid: string };
  series?: { count: number; lastObservedTime: V1MicroTime };
}

/** Where Events are written: the API server in production, a fake in unit tests. */
export interface EventSink {
  /** Creates the Event; resolves with the name the server gave it. */
  create(namespace: string, event: EventBody): Promise<string>;
  /** Sets `series` on an existing Event. */
  patchSeries(namespace: string, name: string, series: EventSeries): Promise<void>;
}

export interface EventRecorderOptions {
  sink: EventSink;
  /** The process's identity (`--identity`): becomes `reportingInstance`. */
  identity: string;
  logger: EventLogger;
  /** Wall-clock time for eventTime and lastObservedTime. */
  now?: () => Date;
  /** Bound of the aggregation cache; 4096 (client-go's) when absent. */
  maxEntries?: number;
  /** Writes in flight at once; 16 when absent. */
  maxInFlight?: number;
}

export interface AggregatingEventRecorder extends EventRecorder {
  /** Resolves when every write started so far has finished (for shutdown and tests). */
  flush(): Promise<void>;
}

// Limits from the API server's validation of events.k8s.io/v1 Events.
const NOTE_MAX_BYTES = 1024;
const REASON_MAX = 128;
const INSTANCE_MAX = 128;
const NAME_MAX = 253;

interface Entry {
  readonly namespace: string;
  readonly obj: InvolvedObject;
  readonly type: EventType;
  readonly reason: string;
  readonly message: string;
  readonly firstAt: Date;
  lastAt: Date;
  count: number;
  written: number;
  name: string | undefined;
  writing: boolean;
}

export function createEventRecorder(options: EventRecorderOptions): AggregatingEventRecorder {
  const { sink, logger } = options;
  const now = options.now ?? (() => new Date());
  const maxEntries = options.maxEntries ?? 4096;
  const instance = options.identity.slice(0, INSTANCE_MAX);
  const cache = new Map<string, Entry>();
  const inFlight = new Set<Promise<void>>();
  const limit = pLimit(options.maxInFlight ?? 16);
  let seq = 0;

  const warn = (obj: Record<string, unknown>, msg: string): void => {
    try {
      logger.warn(obj, msg);
    } catch {
      // The logger is the last resort; there is nowhere else to report to.
    }
  };

  const eventName = (entry: Entry): string => {
    // Like client-go's "<object>.<unix nanos in hex>"; the sequence keeps two Events created in
    // the same millisecond by this process apart.
    const nanos = BigInt(now().getTime()) * 1_000_000n + BigInt(seq++ % 1_000_000);
    const suffix = `.${nanos.toString(16)}`;
    return entry.obj.metadata.name.slice(0, NAME_MAX - suffix.length) + suffix;
  };

  const body = (entry: Entry, count: number, lastAt: Date): EventBody => {
    const { apiVersion, kind, metadata } = entry.obj;
    const event: EventBody = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: eventName(entry), namespace: entry.namespace },
      eventTime: new V1MicroTime(entry.firstAt.getTime()),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: instance,
      // Our recorder has no separate "action": the reason names what happened.
      action: entry.reason.slice(0, REASON_MAX),
      reason: entry.reason.slice(0, REASON_MAX),
      type: entry.type,
      note: truncateUtf8(entry.message, NOTE_MAX_BYTES),
      regarding: {
        apiVersion,
        kind,
        name: metadata.name,
        namespace: metadata.namespace,
        uid: metadata.uid,
      },
    };
    if (count >= 2) event.series = { count, lastObservedTime: new V1MicroTime(lastAt.getTime()) };
    return event;
  };

  const write = async (entry: Entry): Promise<void> => {
    let recreated = false;
    while (entry.written < entry.count) {
      // Read when the write starts (after waiting for its turn): repeats meanwhile go with it.
      let count = entry.count;
      try {
        await limit(async () => {
          count = entry.count;
          const lastAt = entry.lastAt;
          if (entry.name === undefined) {
            entry.name = await sink.create(entry.namespace, body(entry, count, lastAt));
          } else {
            await sink.patchSeries(entry.namespace, entry.name, {
              count,
              lastObservedTime: new V1MicroTime(lastAt.getTime()),
            });
          }
        });
        entry.written = count;
      } catch (err) {
        const e = classify(err);
        if (entry.name !== undefined && e.kind === 'NotFound' && !recreated) {
          recreated = true;
          entry.name = undefined;
          continue;
        }
        warn(
          {
            err: e,
            namespace: entry.namespace,
            object: `${entry.obj.kind}/${entry.obj.metadata.name}`,
            reason: entry.reason,
            count,
          },
          'event not recorded',
        );
        // Best-effort: give these occurrences up; the next repeat writes the full count.
        entry.written = count;
        return;
      }
    }
  };

  const schedule = (entry: Entry): void => {
    if (entry.writing) return;
    entry.writing = true;
    const p = write(entry)
      .catch((err: unknown) => {
        warn({ err: classify(err) }, 'event recorder failed');
      })
      .finally(() => {
        entry.writing = false;
        inFlight.delete(p);
        // A repeat that arrived during a failed write's last moments still gets its turn.
        if (entry.written < entry.count) schedule(entry);
      });
    inFlight.add(p);
  };

  return {
    event(obj, type, reason, message) {
      try {
        const namespace = obj.metadata.namespace !== '' ? obj.metadata.namespace : 'default';
        const key = [
          obj.metadata.uid,
          obj.apiVersion,
          obj.kind,
          namespace,
          obj.metadata.name,
          type,
          reason,
          message,
        ].join('\u0000');
        const at = now();
        let entry = cache.get(key);
        if (entry !== undefined) {
          cache.delete(key); // re-inserted below: Map order is our LRU order
          entry.count++;
          entry.lastAt = at;
        } else {
          entry = {
            namespace,
            obj,
            type,
            reason,
            message,
            firstAt: at,
            lastAt: at,
            count: 1,
            written: 0,
            name: undefined,
            writing: false,
          };
        }
        cache.set(key, entry);
        while (cache.size > maxEntries) {
          const oldest = cache.keys().next();
          if (oldest.done === true) break;
          cache.delete(oldest.value);
        }
        schedule(entry);
      } catch (err) {
        warn({ err: classify(err), reason }, 'event not recorded');
      }
    },
    async flush() {
      while (inFlight.size > 0) await Promise.all(inFlight);
    },
  };
}

/** Writes to the API server's events.k8s.io/v1 Events. */
export function eventsV1Sink(kc: KubeConfig, client?: EventsV1Api): EventSink {
  const api = client ?? kc.makeApiClient(EventsV1Api);
  return {
    async create(namespace, event) {
      // The generated client serialises by the declared model, so any object with the fields works;
      // the instance only satisfies its class-typed parameter.
      const body = Object.assign(new EventsV1Event(), event);
      const created = await api.createNamespacedEvent({ namespace, body });
      return created.metadata?.name ?? event.metadata.name;
    },
    async patchSeries(namespace, name, series) {
      // JSON Patch (client-node's default): "add" replaces the member when it exists.
      const value = {
        count: series.count,
        lastObservedTime: new V1MicroTime(series.lastObservedTime.getTime()),
      };
      await api.patchNamespacedEvent({ namespace, name, body: [{ op: 'add', path: '/series', value }] });
    },
  };
}

function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > maxBytes - 3) break; // room for the ellipsis (3 bytes)
    out += ch;
    bytes += n;
  }
  return `${out}…`;
}

// The LeaseClient port (lease.ts) over @kubernetes/client-node 2.0.1: CoordinationV1Api for
// reads and writes, and the runtime's resilient informer (client-node's ListWatch and Watch) on
// the one Lease for the watch.
//
// Guarantees, beyond the port's contract:
// - `get` is a live read of the API server (no cache); a 404 is undefined.
// - `create` and `replace` send the API server's own precondition: `replace` PUTs the object as
//   last read, so its `metadata.resourceVersion` (and uid) must still match. 409 (Conflict or
//   AlreadyExists) and, for replace, 404 answer 'conflict'. (Leases allow create-on-update, so
//   a PUT to a Lease deleted since is refused as a 409, the resourceVersion not matching; the
//   404 is for servers that answer otherwise.) Other failures are thrown as the API client
//   raised them; `classify` (runtime/kube-errors.ts) reads them.
// - A call's `signal` aborts its HTTP request (client-node's generated methods take no signal:
//   a per-call middleware puts it on the request context, beside the API client's own deadline,
//   if it was made with observability/api-requests.ts).
// - `watch` lists and watches `/apis/coordination.k8s.io/v1/namespaces/<ns>/leases` with the
//   field selector `metadata.name=<name>`, so it receives that Lease's events only, and is
//   restarted with back-off whenever it fails (runtime/informer.ts); a Lease deleted while the
//   watch was down is reported once the re-list no longer finds it.
// - Lease times (renewTime, acquireTime) are passed as RFC 3339 strings with microseconds,
//   whatever shape the client produced (client-node leaves MicroTime as text when it reads,
//   and a Date would be written with milliseconds only).
//
// Does not give: a deadline of its own on requests (give the API client one, or a signal), nor
// any retry: the elector decides when to try again.

import { CoordinationV1Api, Observable } from '@kubernetes/client-node';
import type { KubeConfig, V1Lease } from '@kubernetes/client-node';
import { clientNodeListWatch, createInformer } from '../runtime/informer.ts';
import type { InformerRuntime } from '../runtime/informer.ts';
import { classify } from '../runtime/kube-errors.ts';
import { microTime } from './lease.ts';
import type { Lease, LeaseClient, LeaseSpec, WriteResult } from './lease.ts';

export interface KubeLeaseClientOptions {
  readonly kc: KubeConfig;
  /** The API client for get, create and replace; `kc.makeApiClient(CoordinationV1Api)` unless told. */
  readonly api?: CoordinationV1Api;
  /** Metrics, logger, clock and back-off of the watch's informer. */
  readonly watch?: InformerRuntime;
}

const API_VERSION = 'coordination.k8s.io/v1';

export function kubeLeaseClient(options: KubeLeaseClientOptions): LeaseClient {
  const { kc } = options;
  const api = options.api ?? kc.makeApiClient(CoordinationV1Api);

  return {
    async get(ref, signal) {
      try {
        return toLease(
          await api.readNamespacedLease({ namespace: ref.namespace, name: ref.name }, callOptions(signal)),
        );
      } catch (err) {
        if (classify(err).kind === 'NotFound') return undefined;
        throw err;
      }
    },

    create(ref, spec, signal) {
      const body: V1Lease = {
        apiVersion: API_VERSION,
        kind: 'Lease',
        metadata: { namespace: ref.namespace, name: ref.name },
        spec: wireSpec(spec),
      };
      return written(
        () => api.createNamespacedLease({ namespace: ref.namespace, body }, callOptions(signal)),
        false,
      );
    },

    replace(ref, lease, signal) {
      const body = {
        apiVersion: API_VERSION,
        kind: 'Lease',
        metadata: { ...lease.metadata, namespace: ref.namespace, name: ref.name },
        spec: wireSpec(lease.spec),
      } as V1Lease; // metadata is the object as the API server sent it
      return written(
        () =>
          api.replaceNamespacedLease({ namespace: ref.namespace, name: ref.name, body }, callOptions(signal)),
        true,
      );
    },

    watch(ref, onChange, signal) {
      if (signal.aborted) return;
      const fieldSelector = `metadata.name=${ref.name}`;
      const informer = createInformer<V1Lease>({
        ...options.watch,
        resource: 'leases',
        // client-node's ListWatch passes a field selector to the watch, but the runtime's
        // informer does not take one; the query in the path reaches the watch all the same
        // (Watch builds its URL from the path and adds its own parameters), and the list
        // below selects the same way.
        path: `/apis/${API_VERSION}/namespaces/${encodeURIComponent(ref.namespace)}/leases?fieldSelector=${encodeURIComponent(fieldSelector)}`,
        list: () => api.listNamespacedLease({ namespace: ref.namespace, fieldSelector }),
        listWatch: clientNodeListWatch<V1Lease>(kc),
      });
      const report = (raw: V1Lease, present: boolean): void => {
        if (raw.metadata?.name !== ref.name) return;
        onChange(present ? toLease(raw) : undefined);
      };
      informer.on('add', (l) => {
        report(l, true);
      });
      informer.on('update', (l) => {
        report(l, true);
      });
      informer.on('delete', (l) => {
        report(l, false);
      });
      signal.addEventListener(
        'abort',
        () => {
          informer.stop();
        },
        { once: true },
      );
      void informer.start();
    },
  };
}

async function written(send: () => Promise<V1Lease>, notFoundIsConflict: boolean): Promise<WriteResult> {
  try {
    return { kind: 'written', lease: toLease(await send()) };
  } catch (err) {
    const kind = classify(err).kind;
    if (kind === 'Conflict' || kind === 'AlreadyExists' || (notFoundIsConflict && kind === 'NotFound')) {
      return { kind: 'conflict' };
    }
    throw err;
  }
}

/** The Lease as the elector sees it; throws when the API server's answer lacks its identity. */
export function toLease(raw: V1Lease): Lease {
  const metadata = raw.metadata;
  const uid = metadata?.uid;
  const resourceVersion = metadata?.resourceVersion;
  if (metadata === undefined || uid === undefined || resourceVersion === undefined) {
    throw new Error('a Lease without metadata.uid or metadata.resourceVersion');
  }
  const spec: Record<string, unknown> = plain(raw.spec);
  for (const field of ['acquireTime', 'renewTime'] as const) {
    const value = spec[field];
    if (value instanceof Date) spec[field] = microTime(value);
  }
  // Not written back: a PUT without managedFields keeps the server's, and they are the bulk.
  const kept = plain(metadata);
  delete kept['managedFields'];
  return { metadata: { ...kept, uid, resourceVersion }, spec };
}

/** The own fields of a generated model instance, as a plain record. */
function plain(model: object | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(model ?? {}));
}

// The generated model types MicroTime as a Date; the serializer passes strings through as they are.
function wireSpec(spec: LeaseSpec): V1Lease['spec'] {
  return spec as V1Lease['spec'];
}

type CallOptions = Parameters<CoordinationV1Api['readNamespacedLease']>[1];

/** Per-call options that put `signal` on the request (with any signal already there). */
function callOptions(signal: AbortSignal | undefined): CallOptions {
  if (signal === undefined) return undefined;
  return {
    middleware: [
      {
        pre: (context) => {
          const own = context.getSignal();
          context.setSignal(own === undefined ? signal : AbortSignal.any([own, signal]));
          return new Observable(Promise.resolve(context));
        },
        post: (response) => new Observable(Promise.resolve(response)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
}

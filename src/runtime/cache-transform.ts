// What the informers keep of each object: client-go's `SetTransform` for client-node, which has
// no such hook (runtime/informer.ts applies these to every listed item and watch event before
// the cache or a handler sees it). 10,000 jobs and their Pods must fit in the operator's
// memory budget (DESIGN.md), and parsed JSON costs several times its size in V8.
//
// Guarantees:
// - `leanPod` keeps every field the controller reads of a Pod (controller/pod.ts `podView`,
//   `runOfPod`, `isTracked`, `isOwnedBy`, the manager's index by the job label, the cleanup by
//   name and UID) and the name, namespace and resourceVersion the cache itself needs; its
//   timestamps are Dates, whether the input came from a list (client-node's V1Pod) or a watch
//   event (plain JSON). test/unit/runtime/cache-transform.test.ts proves `podView` agrees.
// - `leanJob` drops `metadata.managedFields` and keeps the Pod template as its JSON text, off
//   the enumerable properties (`podTemplateOf` gives it back, parsed afresh each call): the
//   template is read only to build a Pod (a create or its dry-run, not every reconcile).
// - Neither throws, whatever the input: an object it cannot read is kept as it came.
//
// It does not:
// - keep what no code reads: a lean Pod has no containers (`spec.containers` is empty), no IPs,
//   no container state but `terminated`; only the ssj.dev/ labels and annotations. A lean Pod
//   is therefore never to be sent back to the API server; a lean job's template is not in
//   its JSON form either (a status write, which ignores the spec, does not miss it).
// - share templates between jobs: equal templates are stored once per job.

import type {
  V1ContainerStatus,
  V1OwnerReference,
  V1Pod,
  V1PodCondition,
  V1PodTemplateSpec,
} from '@kubernetes/client-node';
import { GROUP } from '../api/names.ts';

const OWN_PREFIX = `${GROUP}/`;
const template = Symbol('ssj.dev/pod-template-json');

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

function date(v: unknown): Date | undefined {
  if (v instanceof Date) return v;
  return typeof v === 'string' ? new Date(v) : undefined;
}

function ownEntries(v: unknown): Record<string, string> | undefined {
  if (!isObject(v)) return undefined;
  let kept: Record<string, string> | undefined;
  for (const [k, value] of Object.entries(v)) {
    if (k.startsWith(OWN_PREFIX) && typeof value === 'string') (kept ??= {})[k] = value;
  }
  return kept;
}

function list<T>(v: unknown, keep: (item: Json) => T | undefined): T[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const kept: T[] = [];
  for (const item of v) {
    const k = isObject(item) ? keep(item) : undefined;
    if (k !== undefined) kept.push(k);
  }
  return kept;
}

/** Drops the keys whose value is undefined, so that a lean object has no empty slots. */
function defined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) Reflect.deleteProperty(o, k);
  return o;
}

function ownerReference(r: Json): V1OwnerReference | undefined {
  // Only the controller reference identifies the owner (isOwnedBy).
  if (r['controller'] !== true) return undefined;
  return {
    apiVersion: str(r['apiVersion']) ?? '',
    kind: str(r['kind']) ?? '',
    name: str(r['name']) ?? '',
    uid: str(r['uid']) ?? '',
    controller: true,
  };
}

function condition(c: Json): V1PodCondition {
  const type = str(c['type']) ?? '';
  // A disruption's reason and message name why a run was Lost; other conditions' are not read.
  if (type === 'DisruptionTarget')
    return defined({
      type,
      status: str(c['status']) ?? '',
      reason: str(c['reason']),
      message: str(c['message']),
    });
  return { type, status: str(c['status']) ?? '' };
}

function containerStatus(c: Json): V1ContainerStatus {
  const state = isObject(c['state']) ? c['state'] : {};
  const t = state['terminated'];
  return defined({
    name: str(c['name']) ?? '',
    image: str(c['image']) ?? '',
    imageID: str(c['imageID']) ?? '',
    ready: c['ready'] === true,
    restartCount: num(c['restartCount']) ?? 0,
    state: isObject(t)
      ? {
          terminated: defined({
            exitCode: num(t['exitCode']) ?? 0,
            reason: str(t['reason']),
            finishedAt: date(t['finishedAt']),
          }),
        }
      : undefined,
  });
}

/** The Pod as the controller reads it (see the guarantees above); a non-object is returned as it is. */
export function leanPod(pod: unknown): V1Pod {
  if (!isObject(pod)) return pod as V1Pod;
  const meta = isObject(pod['metadata']) ? pod['metadata'] : {};
  const spec = isObject(pod['spec']) ? pod['spec'] : {};
  const status = isObject(pod['status']) ? pod['status'] : undefined;
  return defined({
    apiVersion: str(pod['apiVersion']),
    kind: str(pod['kind']),
    metadata: defined({
      name: str(meta['name']),
      namespace: str(meta['namespace']),
      uid: str(meta['uid']),
      resourceVersion: str(meta['resourceVersion']),
      creationTimestamp: date(meta['creationTimestamp']),
      deletionTimestamp: date(meta['deletionTimestamp']),
      deletionGracePeriodSeconds: num(meta['deletionGracePeriodSeconds']),
      labels: ownEntries(meta['labels']),
      annotations: ownEntries(meta['annotations']),
      finalizers: Array.isArray(meta['finalizers'])
        ? meta['finalizers'].filter((f): f is string => typeof f === 'string' && f.startsWith(OWN_PREFIX))
        : undefined,
      ownerReferences: list(meta['ownerReferences'], ownerReference),
    }),
    spec: defined({ containers: [], nodeName: str(spec['nodeName']) }),
    status:
      status === undefined
        ? undefined
        : defined({
            phase: str(status['phase']),
            reason: str(status['reason']),
            message: str(status['message']),
            startTime: date(status['startTime']),
            conditions: list(status['conditions'], condition),
            containerStatuses: list(status['containerStatuses'], containerStatus),
          }),
  });
}

/**
 * The job without managedFields, its Pod template kept as JSON text (in place: the object the
 * informer was handed is the one it caches).
 */
export function leanJob<T>(job: T): T {
  if (!isObject(job)) return job;
  const meta = job['metadata'];
  if (isObject(meta)) delete meta['managedFields'];
  const spec = job['spec'];
  if (isObject(spec) && isObject(spec['template'])) {
    // Not enumerable: structuredClone (withDefaults), spreads and JSON.stringify skip it.
    Object.defineProperty(spec, template, { value: JSON.stringify(spec['template']) });
    delete spec['template'];
  }
  return job;
}

/** The job's Pod template, whether the job went through `leanJob` (a fresh copy) or not (its own). */
export function podTemplateOf(job: { readonly spec: object }): V1PodTemplateSpec {
  const spec = job.spec as { [template]?: string; template?: V1PodTemplateSpec };
  const kept = spec[template];
  if (kept !== undefined) return JSON.parse(kept) as V1PodTemplateSpec;
  return spec.template ?? {};
}

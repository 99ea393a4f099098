// The leader Lease as the elector sees it, and the port through which it reads and writes it.
//
// The port (LeaseClient) is small so that the election algorithm runs against a fake in unit
// tests and against the API server through kube-lease-client.ts. Its contract:
// - `get` answers the Lease as it is now (a read from the API server, not from a cache), or
//   undefined when it does not exist; any other failure throws.
// - `create` and `replace` answer 'conflict' when the Lease is not as the caller last saw it:
//   it already exists (create), or it was written or deleted since the resourceVersion the
//   caller sends (replace, a precondition checked by the API server). Any other failure throws.
//   A write that throws may or may not have taken effect: the caller re-reads before trusting
//   its own idea of the Lease.
// - `replace` writes the object it is given: the metadata as last read (labels, annotations and
//   the resourceVersion precondition stay as they were) with the caller's spec.
// - `watch` reports the Lease's state after each change it sees (undefined once it is deleted)
//   until `signal` aborts, restarting by itself after a failure. It may repeat a state, report
//   one late, or miss intermediate ones; callers treat it as a hint to act sooner, never as
//   the truth.
// - Every call with a `signal` gives up when it aborts.

export interface LeaseRef {
  readonly namespace: string;
  readonly name: string;
}

/**
 * `spec` of a coordination.k8s.io/v1 Lease. Times are RFC 3339 strings with microseconds, as the
 * API server sends them; the elector writes them for people and never reads them. Fields it does
 * not know (preferredHolder, strategy) are kept as they were read.
 */
export interface LeaseSpec {
  readonly holderIdentity?: string | undefined;
  readonly leaseDurationSeconds?: number | undefined;
  readonly leaseTransitions?: number | undefined;
  readonly acquireTime?: string | undefined;
  readonly renewTime?: string | undefined;
  readonly [field: string]: unknown;
}

export interface LeaseMetadata {
  readonly uid: string;
  readonly resourceVersion: string;
  /** Everything else the API server sent (name, labels, ...), written back as it was. */
  readonly [field: string]: unknown;
}

export interface Lease {
  readonly metadata: LeaseMetadata;
  readonly spec: LeaseSpec;
}

export type WriteResult = { readonly kind: 'written'; readonly lease: Lease } | { readonly kind: 'conflict' };

export interface LeaseClient {
  get(ref: LeaseRef, signal?: AbortSignal): Promise<Lease | undefined>;
  create(ref: LeaseRef, spec: LeaseSpec, signal?: AbortSignal): Promise<WriteResult>;
  replace(ref: LeaseRef, lease: Lease, signal?: AbortSignal): Promise<WriteResult>;
  watch(ref: LeaseRef, onChange: (lease: Lease | undefined) => void, signal: AbortSignal): void;
}

/** The holder, '' when nobody holds the Lease. */
export function holderOf(lease: Lease): string {
  return lease.spec.holderIdentity ?? '';
}

export function transitionsOf(lease: Lease): number {
  const n = lease.spec.leaseTransitions;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/** The lease duration the holder declared, or undefined when the record has none usable. */
export function declaredDurationMs(lease: Lease): number | undefined {
  const s = lease.spec.leaseDurationSeconds;
  return typeof s === 'number' && Number.isFinite(s) && s > 0 ? s * 1000 : undefined;
}

/** metav1.MicroTime's wire form: RFC 3339 with six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/Z$/, '000Z');
}

export function describeLease(ref: LeaseRef): string {
  return `${ref.namespace}/${ref.name}`;
}

/**
 * What the fence suites share: the manifests of config/policy as kustomize renders them, a
 * binding of the test's own to a Lease in the test's own namespace, the leader Lease, and Pod
 * creates that report whether the API server admitted them.
 *
 * The Pod contract (DESIGN.md, "A run's identity"): a run's Pod is labelled `ssj.dev/job` and
 * annotated `ssj.dev/term` (the Lease's spec.leaseTransitions when its leader acquired it, in
 * decimal) and `ssj.dev/holder` (the Lease's spec.holderIdentity).
 */
import { randomBytes } from 'node:crypto';
import {
  AdmissionregistrationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1Lease,
  type V1Pod,
  type V1ValidatingAdmissionPolicy,
  type V1ValidatingAdmissionPolicyBinding,
} from '@kubernetes/client-node';
import { ANNOTATION_HOLDER, FENCE_POLICY_NAME, LABEL_JOB } from '../../../src/api/names.ts';
import { apiStatus, waitFor } from '../../support/kube.ts';
import { kustomize } from '../../support/manifests.ts';

export { kustomize };

/**
 * The term annotation of the contract. src/api/names.ts still names it ANNOTATION_EPOCH with the
 * value `ssj.dev/epoch`; DESIGN.md and the fence use `ssj.dev/term`.
 */
export const ANNOTATION_TERM = 'ssj.dev/term';
/** The leader Lease (DESIGN.md, "Names"). */
export const LEASE_NAME = 'ssj-operator-leader';
/** How long a Lease update may take to reach the fence: the informer's lag, with margin. */
export const FOLLOW_TIMEOUT_MS = 5_000;
/** How long a new or deleted binding may take to take effect (the policy refresh is 1 s). */
export const BINDING_TIMEOUT_MS = 15_000;

export interface PolicyManifests {
  fencePolicy: V1ValidatingAdmissionPolicy;
  fenceBinding: V1ValidatingAdmissionPolicyBinding;
  keeperPolicy: V1ValidatingAdmissionPolicy;
  keeperBinding: V1ValidatingAdmissionPolicyBinding;
}

/** The fence and the Lease-param keeper, as config/policy renders them. */
export async function policyManifests(): Promise<PolicyManifests> {
  const objects = await kustomize('config/policy');
  const policies = objects.filter(
    (o) => o['kind'] === 'ValidatingAdmissionPolicy',
  ) as V1ValidatingAdmissionPolicy[];
  const bindings = objects.filter(
    (o) => o['kind'] === 'ValidatingAdmissionPolicyBinding',
  ) as unknown as V1ValidatingAdmissionPolicyBinding[];
  const one = <T>(items: T[], what: string): T => {
    if (items.length !== 1) throw new Error(`config/policy: expected one ${what}, found ${items.length}`);
    return items[0]!;
  };
  const fencePolicy = one(
    policies.filter((p) => p.metadata?.name === FENCE_POLICY_NAME),
    `policy ${FENCE_POLICY_NAME}`,
  );
  const keeperPolicy = one(
    policies.filter((p) => p.metadata?.name !== FENCE_POLICY_NAME),
    'other policy (the Lease-param keeper)',
  );
  return {
    fencePolicy,
    fenceBinding: one(
      bindings.filter((b) => b.spec.policyName === FENCE_POLICY_NAME),
      'binding of the fence',
    ),
    keeperPolicy,
    keeperBinding: one(
      bindings.filter((b) => b.spec.policyName === keeperPolicy.metadata?.name),
      'binding of the keeper',
    ),
  };
}

/** A unique name for a test's own object. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/**
 * A copy of `base` (a binding from config/policy) named `name`, whose params are the Lease in
 * `namespace` and which applies to that namespace only.
 */
export function bindingFor(
  base: V1ValidatingAdmissionPolicyBinding,
  name: string,
  namespace: string,
): V1ValidatingAdmissionPolicyBinding {
  const { policyName, validationActions, paramRef } = base.spec;
  if (paramRef === undefined) throw new Error(`binding ${base.metadata?.name ?? ''} has no paramRef`);
  if (base.spec.matchResources !== undefined) throw new Error('expected a binding for every namespace');
  return {
    apiVersion: base.apiVersion,
    kind: base.kind,
    metadata: { name, labels: { 'ssj.dev/test': 'fence' } },
    spec: {
      policyName,
      validationActions,
      paramRef: { name: paramRef.name, namespace, parameterNotFoundAction: paramRef.parameterNotFoundAction },
      matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } } },
    },
  };
}

export async function createPolicy(kc: KubeConfig, policy: V1ValidatingAdmissionPolicy): Promise<void> {
  await kc.makeApiClient(AdmissionregistrationV1Api).createValidatingAdmissionPolicy({ body: policy });
}

export async function deletePolicy(kc: KubeConfig, name: string): Promise<void> {
  try {
    await kc.makeApiClient(AdmissionregistrationV1Api).deleteValidatingAdmissionPolicy({ name });
  } catch (error) {
    if (apiStatus(error)?.code !== 404) throw error;
  }
}

export async function createBinding(
  kc: KubeConfig,
  binding: V1ValidatingAdmissionPolicyBinding,
): Promise<void> {
  await kc
    .makeApiClient(AdmissionregistrationV1Api)
    .createValidatingAdmissionPolicyBinding({ body: binding });
}

export async function deleteBinding(kc: KubeConfig, name: string): Promise<void> {
  try {
    await kc.makeApiClient(AdmissionregistrationV1Api).deleteValidatingAdmissionPolicyBinding({ name });
  } catch (error) {
    if (apiStatus(error)?.code !== 404) throw error;
  }
}

/** A Lease's holder and term; `undefined` leaves the field out. */
export interface LeaseState {
  holder?: string | undefined;
  transitions?: number | undefined;
}

/** Creates the leader Lease in `namespace`, or replaces its spec. */
export async function putLease(kc: KubeConfig, namespace: string, state: LeaseState): Promise<void> {
  const coordination = kc.makeApiClient(CoordinationV1Api);
  const spec: V1Lease['spec'] = { leaseDurationSeconds: 15 };
  if (state.holder !== undefined) spec.holderIdentity = state.holder;
  if (state.transitions !== undefined) spec.leaseTransitions = state.transitions;
  let current: V1Lease | undefined;
  try {
    current = await coordination.readNamespacedLease({ namespace, name: LEASE_NAME });
  } catch (error) {
    if (apiStatus(error)?.code !== 404) throw error;
  }
  if (current === undefined) {
    await coordination.createNamespacedLease({ namespace, body: { metadata: { name: LEASE_NAME }, spec } });
  } else {
    await coordination.replaceNamespacedLease({
      namespace,
      name: LEASE_NAME,
      body: { metadata: { name: LEASE_NAME, resourceVersion: current.metadata?.resourceVersion }, spec },
    });
  }
}

export async function deleteLease(kc: KubeConfig, namespace: string): Promise<void> {
  try {
    await kc.makeApiClient(CoordinationV1Api).deleteNamespacedLease({ namespace, name: LEASE_NAME });
  } catch (error) {
    if (apiStatus(error)?.code !== 404) throw error;
  }
}

export interface PodSpec {
  name?: string;
  /** `ssj.dev/term`; left out when undefined. */
  term?: string | undefined;
  /** `ssj.dev/holder`; left out when undefined. */
  holder?: string | undefined;
  /** Whether the Pod carries `ssj.dev/job` (true unless told). */
  labelled?: boolean;
}

export function podBody(namespace: string, spec: PodSpec): V1Pod {
  const annotations: Record<string, string> = {};
  if (spec.term !== undefined) annotations[ANNOTATION_TERM] = spec.term;
  if (spec.holder !== undefined) annotations[ANNOTATION_HOLDER] = spec.holder;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: spec.name ?? uniqueName('run'),
      namespace,
      labels: spec.labelled === false ? { 'ssj.dev/test': 'fence' } : { [LABEL_JOB]: 'fenced-job' },
      annotations,
    },
    spec: {
      containers: [{ name: 'c', image: 'busybox:1.36', command: ['true'] }],
      restartPolicy: 'Never',
    },
  };
}

export type CreateResult =
  { kind: 'admitted'; name: string } | { kind: 'refused'; code: number; reason: string; message: string };

/** Creates the Pod (or only dry-runs the create) and says what the API server answered. */
export async function createPod(
  kc: KubeConfig,
  namespace: string,
  spec: PodSpec,
  options: { dryRun?: boolean } = {},
): Promise<CreateResult> {
  const body = podBody(namespace, spec);
  try {
    const created = await kc
      .makeApiClient(CoreV1Api)
      .createNamespacedPod({ namespace, body, ...(options.dryRun === true ? { dryRun: 'All' } : {}) });
    return { kind: 'admitted', name: created.metadata?.name ?? '' };
  } catch (error) {
    const status = apiStatus(error);
    if (status === undefined) throw error;
    return { kind: 'refused', code: status.code, reason: status.reason ?? '', message: status.message };
  }
}

/** A dry-run create: does the fence admit a Pod of this term and holder right now? */
export async function admits(
  kc: KubeConfig,
  namespace: string,
  term: string,
  holder: string,
): Promise<boolean> {
  const result = await createPod(kc, namespace, { term, holder }, { dryRun: true });
  if (result.kind === 'refused' && !result.message.includes(FENCE_POLICY_NAME)) {
    throw new Error(`refused, but not by the fence: HTTP ${result.code} ${result.message}`);
  }
  return result.kind === 'admitted';
}

export interface Expectation {
  admitted: readonly (readonly [term: string, holder: string])[];
  refused: readonly (readonly [term: string, holder: string])[];
}

/** Whether the fence, right now, admits and refuses what `expected` says. */
export async function fenceShows(kc: KubeConfig, namespace: string, expected: Expectation): Promise<boolean> {
  const [admitted, refused] = await Promise.all([
    Promise.all(expected.admitted.map(([term, holder]) => admits(kc, namespace, term, holder))),
    Promise.all(expected.refused.map(([term, holder]) => admits(kc, namespace, term, holder))),
  ]);
  return admitted.every(Boolean) && !refused.some(Boolean);
}

/** Waits until the fence shows `expected`; returns how long that took, in milliseconds. */
export async function waitForFence(
  kc: KubeConfig,
  namespace: string,
  expected: Expectation,
  timeoutMs: number,
  description: string,
): Promise<number> {
  const start = performance.now();
  await waitFor(() => fenceShows(kc, namespace, expected), { timeoutMs, intervalMs: 5, description });
  return performance.now() - start;
}

const PROBE_LOOPS = 3;

/** How fast the fence followed one Lease update, seen by dry-run creates sent back to back. */
export interface Takeover {
  /** The last stale answer to a probe sent after the Lease write returned, in ms after it; 0 if none. */
  staleAfterMs: number;
  /** When probes of both the old and the new term first answered from the new Lease, in ms after the write. */
  followedMs: number;
  /** The median round trip of one probe. */
  probeMs: number;
  /** The median gap between two probes' departures: the resolution of both numbers. */
  spacingMs: number;
}

/**
 * Writes `to` into the Lease while loops probe, back to back, a Pod of the old term and holder
 * (`from`) and one of the new; resolves once both have answered from the new Lease to a probe
 * sent after the write returned.
 */
export async function measureTakeover(
  kc: KubeConfig,
  namespace: string,
  from: readonly [term: string, holder: string],
  to: { holder: string; transitions: number },
  timeoutMs: number,
): Promise<Takeover> {
  interface Answer {
    sentAt: number;
    answeredAt: number;
    fresh: boolean;
    old: boolean;
  }
  const answers: Answer[] = [];
  let done = false;
  const probe = async (term: string, holder: string, old: boolean): Promise<void> => {
    while (!done) {
      const sentAt = performance.now();
      const admitted = await admits(kc, namespace, term, holder);
      answers.push({ sentAt, answeredAt: performance.now(), fresh: admitted !== old, old });
    }
  };
  // Several loops a side, so that probes leave every few milliseconds.
  const loops = Promise.all(
    Array.from({ length: PROBE_LOOPS }, () => [
      probe(from[0], from[1], true),
      probe(String(to.transitions), to.holder, false),
    ]).flat(),
  );
  try {
    await putLease(kc, namespace, to);
    const writtenAt = performance.now();
    const freshAfterWrite = (old: boolean): Answer | undefined =>
      answers.find((a) => a.old === old && a.sentAt > writtenAt && a.fresh);
    const deadline = writtenAt + timeoutMs;
    while (freshAfterWrite(true) === undefined || freshAfterWrite(false) === undefined) {
      if (performance.now() > deadline) {
        throw new Error(
          `the fence did not follow the Lease to term ${to.transitions} within ${timeoutMs} ms ` +
            '(a fence that never follows has a frozen Lease cache: kubernetes#130887)',
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const stale = answers.filter((a) => a.sentAt > writtenAt && !a.fresh);
    const trips = answers.map((a) => a.answeredAt - a.sentAt).sort((a, b) => a - b);
    const departures = answers.map((a) => a.sentAt).sort((a, b) => a - b);
    const gaps = departures
      .slice(1)
      .map((t, i) => t - departures[i]!)
      .sort((a, b) => a - b);
    return {
      staleAfterMs: Math.max(0, ...stale.map((a) => a.sentAt - writtenAt)),
      followedMs: Math.max(freshAfterWrite(true)!.answeredAt, freshAfterWrite(false)!.answeredAt) - writtenAt,
      probeMs: trips[Math.floor(trips.length / 2)] ?? 0,
      spacingMs: gaps[Math.floor(gaps.length / 2)] ?? 0,
    };
  } finally {
    done = true;
    await loops;
  }
}

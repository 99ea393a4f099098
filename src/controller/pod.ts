/**
 * A run's Pod: built from the job's template with the run's identity in its name, labels and
 * annotations, and read back into the facts the planner needs.
 */
import type { V1Pod, V1PodTemplateSpec } from '@kubernetes/client-node';
import {
  ANNOTATION_TERM,
  ANNOTATION_HOLDER,
  ANNOTATION_RUN_NOW_TOKEN,
  ANNOTATION_SCHEDULED_TIME,
  FINALIZER_RUN_RECORD,
  GROUP,
  KIND,
  LABEL_ATTEMPT,
  LABEL_JOB,
  LABEL_TICK,
  VERSION,
} from '../api/types.ts';
import { tickSeconds, type RunId } from '../run/identity.ts';
import type { PodPhase, PodView } from './snapshot.ts';

export interface PodOwner {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

export function buildPod(
  owner: PodOwner,
  template: V1PodTemplateSpec,
  run: RunId,
  name: string,
  fence: { readonly term: number; readonly holder: string },
): V1Pod {
  const labels: Record<string, string> = {
    ...template.metadata?.labels,
    [LABEL_JOB]: owner.name,
    [LABEL_TICK]: run.kind === 'scheduled' ? String(tickSeconds(run.tick)) : 'manual',
    [LABEL_ATTEMPT]: String(run.attempt),
  };
  const annotations: Record<string, string> = {
    ...template.metadata?.annotations,
    [ANNOTATION_TERM]: String(fence.term),
    [ANNOTATION_HOLDER]: fence.holder,
    ...(run.kind === 'scheduled'
      ? { [ANNOTATION_SCHEDULED_TIME]: run.tick.toISOString().replace('.000Z', 'Z') }
      : { [ANNOTATION_RUN_NOW_TOKEN]: run.token }),
  };
  const spec = template.spec ?? { containers: [] };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: owner.namespace,
      labels,
      annotations,
      // In the create body itself: from its first instant the Pod cannot leave unseen.
      finalizers: [FINALIZER_RUN_RECORD],
      ownerReferences: [
        {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: KIND,
          name: owner.name,
          uid: owner.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    // The template is plain JSON from the API server (not a client-node instance): spreading it is safe.
    spec: { ...(spec as object), containers: spec.containers, restartPolicy: spec.restartPolicy ?? 'Never' },
  };
}

/** The run a Pod belongs to, from its labels; null when they are missing or malformed. */
export function runOfPod(pod: V1Pod): RunId | null {
  const labels = pod.metadata?.labels ?? {};
  const attempt = Number(labels[LABEL_ATTEMPT]);
  if (!Number.isInteger(attempt) || attempt < 1) return null;
  const tick = labels[LABEL_TICK];
  if (tick === 'manual') {
    const token = pod.metadata?.annotations?.[ANNOTATION_RUN_NOW_TOKEN];
    return token === undefined ? null : { kind: 'manual', token, attempt };
  }
  const seconds = Number(tick);
  if (tick === undefined || !Number.isInteger(seconds)) return null;
  return { kind: 'scheduled', tick: new Date(seconds * 1000), attempt };
}

export function isTracked(pod: V1Pod): boolean {
  return pod.metadata?.finalizers?.includes(FINALIZER_RUN_RECORD) === true;
}

/** deletionTimestamp is when the grace period ends; the request came that much earlier. */
function deletionRequestedAt(pod: V1Pod): Date | undefined {
  const at = toDate(pod.metadata?.deletionTimestamp);
  if (at === undefined) return undefined;
  return new Date(at.getTime() - (pod.metadata?.deletionGracePeriodSeconds ?? 0) * 1000);
}

export function isOwnedBy(pod: V1Pod, uid: string): boolean {
  return (pod.metadata?.ownerReferences ?? []).some((r) => r.controller === true && r.uid === uid);
}

const PHASES: readonly PodPhase[] = ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'];

export function podView(pod: V1Pod): PodView {
  const status = pod.status ?? {};
  const phase = PHASES.find((p) => p === status.phase) ?? 'Pending';
  const terminated = (status.containerStatuses ?? [])
    .map((c) => c.state?.terminated)
    .filter((t) => t !== undefined);
  const finishedAt = terminated.reduce<Date | undefined>((latest, t) => {
    const at = t.finishedAt === undefined ? undefined : new Date(t.finishedAt);
    return at !== undefined && (latest === undefined || at > latest) ? at : latest;
  }, undefined);
  const failedContainer = terminated.find((t) => t.exitCode !== 0);
  const disruption = (status.conditions ?? []).find(
    (c) => c.type === 'DisruptionTarget' && c.status === 'True',
  );
  return {
    name: pod.metadata?.name ?? '',
    uid: pod.metadata?.uid ?? '',
    run: runOfPod(pod),
    phase,
    deleting: pod.metadata?.deletionTimestamp !== undefined,
    deletionRequestedAt: deletionRequestedAt(pod),
    tracked: isTracked(pod),
    bound: (pod.spec?.nodeName ?? '') !== '',
    disrupted: disruption !== undefined,
    disruptionReason: disruption?.reason,
    disruptionMessage: disruption?.message,
    createdAt: toDate(pod.metadata?.creationTimestamp) ?? new Date(0),
    startedAt: toDate(status.startTime),
    finishedAt,
    reason: status.reason ?? failedContainer?.reason,
    message:
      status.message ??
      (failedContainer === undefined ? undefined : `container exited with code ${failedContainer.exitCode}`),
  };
}

function toDate(v: Date | string | undefined): Date | undefined {
  if (v === undefined) return undefined;
  const d = v instanceof Date ? v : new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

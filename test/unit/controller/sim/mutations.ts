/**
 * Deliberately broken controllers, one per hole the claim protocol closes. The mutation test
 * (../properties.test.ts) runs the properties against each and requires the checkers to catch
 * it: a checker that passes a broken controller proves nothing.
 *
 * Each mutation is the real reconciler with one rule removed, through the two seams the
 * simulation already has: the planner (ReconcilerDeps.plan) and the API server's client.
 */
import type { KubeWriter } from '../../../../src/controller/ports.ts';
import { applyWrite, plan, type Action, type Plan, type PlanInput } from '../../../../src/controller/plan.ts';
import { isTerminal } from '../../../../src/controller/snapshot.ts';
import { nextAttempt, podName, runKey } from '../../../../src/run/identity.ts';

export const MUTATIONS = [
  /** Creates the Pod without claiming its run first. */
  'skip the claim',
  /** Takes the finalizer off a finished Pod and records nothing about it. */
  'release before record',
  /** Starts the next attempt while the current one's Pod still runs. */
  'retry while an attempt may run',
  /** Creates Pods without the tracking finalizer. */
  'drop the finalizer',
  /** Writes the status without the streak's cursor, so every rewrite counts the history again. */
  'forget the streak cursor',
] as const;

export type Mutation = (typeof MUTATIONS)[number];

export interface Mutated {
  readonly plan?: ((input: PlanInput) => Plan) | undefined;
  readonly wrapKube?: ((kube: KubeWriter) => KubeWriter) | undefined;
}

export function mutationOf(m: Mutation | undefined): Mutated {
  switch (m) {
    case undefined:
      return {};
    case 'skip the claim':
      return { plan: skipClaims };
    case 'release before record':
      return { plan: releaseBeforeRecord };
    case 'retry while an attempt may run':
      return { plan: retryEarly };
    case 'drop the finalizer':
      return {
        wrapKube: (kube) => ({
          ...kube,
          createPod: (pod) => {
            const stripped = structuredClone(pod);
            if (stripped.metadata !== undefined) stripped.metadata.finalizers = [];
            return kube.createPod(stripped);
          },
        }),
      };
    case 'forget the streak cursor':
      return {
        wrapKube: (kube) => ({
          ...kube,
          replaceJobStatus: (job) => {
            const forgetful = structuredClone(job);
            if (forgetful.status?.ledger !== undefined) delete forgetful.status.ledger.streakCursor;
            return kube.replaceJobStatus(forgetful);
          },
        }),
      };
    default: {
      const never: never = m;
      throw new Error(`unknown mutation ${String(never)}`);
    }
  }
}

const isClaim = (a: Action): boolean => a.kind === 'ledger' && a.write.kind === 'claim';

function skipClaims(input: PlanInput): Plan {
  const p = plan(input);
  const claimed = new Set(
    p.actions.flatMap((a) => (a.kind === 'ledger' && a.write.kind === 'claim' ? [runKey(a.write.run)] : [])),
  );
  return {
    ...p,
    actions: p.actions.filter((a) => !isClaim(a)),
    ledger: { ...p.ledger, runs: p.ledger.runs.filter((r) => !claimed.has(runKey(r.id))) },
  };
}

function releaseBeforeRecord(input: PlanInput): Plan {
  const p = plan(input);
  const { snapshot } = input;
  const done = snapshot.pods.filter((pod) => pod.tracked && isTerminal(pod.phase) && pod.run !== null);
  const keys = new Set(done.map((pod) => (pod.run === null ? '' : runKey(pod.run))));
  const before = new Map(snapshot.ledger.runs.map((r) => [runKey(r.id), r]));
  const actions: Action[] = p.actions.filter(
    (a) =>
      !(a.kind === 'ledger' && a.write.kind === 'finished' && keys.has(runKey(a.write.run))) &&
      !(a.kind === 'releasePod' && done.some((pod) => pod.name === a.podName)),
  );
  for (const pod of done) actions.push({ kind: 'releasePod', podName: pod.name, uid: pod.uid });
  const runs = p.ledger.runs.map((r) => (keys.has(runKey(r.id)) ? (before.get(runKey(r.id)) ?? r) : r));
  return { ...p, actions, ledger: { ...p.ledger, runs } };
}

function retryEarly(input: PlanInput): Plan {
  const p = plan(input);
  const { snapshot } = input;
  const running = p.ledger.runs.find(
    (r) =>
      r.state !== 'Finished' &&
      r.id.attempt < snapshot.job.policy.maxAttempts &&
      snapshot.pods.some((pod) => pod.name === r.podName && pod.phase === 'Running'),
  );
  if (running === undefined) return p;
  const run = nextAttempt(running.id);
  const name = podName(snapshot.job.name, run);
  const claim = { kind: 'claim', run, podName: name, at: input.now } as const;
  if (p.ledger.runs.some((r) => r.podName === name)) return p;
  return {
    ...p,
    actions: [...p.actions, { kind: 'ledger', write: claim }, { kind: 'createPod', run, podName: name }],
    ledger: applyWrite(p.ledger, claim),
  };
}

// The failover suite's per-Pod term check (e2e/support/checker.ts `podTermProblems`) seen failing
// on the broken variants it exists for, against the real API server: this test plays the elector
// on a Lease (acquire, renew, take over, release) and writes, as a stale or confused leader
// would, Pods whose term and holder do not match the Lease in force when they were created. The
// check must name each such Pod, and pass the Pods a correct leader writes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CoordinationV1Api, CoreV1Api, type V1Lease, type V1Pod } from '@kubernetes/client-node';
import {
  ANNOTATION_HOLDER,
  ANNOTATION_TERM,
  LABEL_JOB,
  LEADER_LEASE,
  LeaseRecorder,
  PodRecorder,
  podTermProblems,
} from '../../../e2e/support/checker.ts';
import {
  deleteNamespace,
  loadKubeConfig,
  newNamespace,
  requireCluster,
  waitFor,
} from '../../support/kube.ts';

const kc = loadKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const leases = kc.makeApiClient(CoordinationV1Api);

describe('podTermProblems against a Lease played by hand', () => {
  let namespace = '';
  let lease: LeaseRecorder | undefined;
  let pods: PodRecorder | undefined;
  let writes = 0;

  before(async () => {
    await requireCluster(kc);
    namespace = await newNamespace('pod-term');
    lease = await LeaseRecorder.start(kc, namespace);
    pods = await PodRecorder.start(kc, namespace);
  });
  after(async () => {
    lease?.stop();
    pods?.stop();
    await deleteNamespace(namespace);
  });

  /** Writes the Lease as the elector does: holder and leaseTransitions (the term number). */
  async function holdLease(holder: string, transitions: number): Promise<void> {
    const spec = { holderIdentity: holder, leaseTransitions: transitions, leaseDurationSeconds: 15 };
    // A write counter, so that a renewal (same holder, same term) is a new resourceVersion too.
    const annotations = { 'ssj.dev/test-write': String(++writes) };
    const current = await leases
      .readNamespacedLease({ name: LEADER_LEASE, namespace })
      .catch(() => undefined);
    const body: V1Lease =
      current === undefined
        ? { metadata: { name: LEADER_LEASE, annotations }, spec }
        : {
            metadata: { name: LEADER_LEASE, resourceVersion: current.metadata?.resourceVersion, annotations },
            spec,
          };
    if (current === undefined) await leases.createNamespacedLease({ namespace, body });
    else await leases.replaceNamespacedLease({ name: LEADER_LEASE, namespace, body });
    const seen = (): boolean => {
      const v = lease?.current();
      return v?.holder === holder && v.transitions === transitions;
    };
    await waitFor(seen, {
      timeoutMs: 10_000,
      description: `the recorder to see ${holder || 'a release'} at ${transitions}`,
    });
  }

  async function createPod(name: string, annotations: Record<string, string>): Promise<void> {
    const body: V1Pod = {
      metadata: { name, labels: { [LABEL_JOB]: 'payroll' }, annotations },
      spec: { containers: [{ name: 'c', image: 'busybox:1.36', command: ['true'] }], restartPolicy: 'Never' },
    };
    await core.createNamespacedPod({ namespace, body });
    await waitFor(() => pods?.all().some((p) => p.name === name) === true, {
      timeoutMs: 10_000,
      description: `the recorder to see ${name}`,
    });
  }

  const term = (n: number, holder: string): Record<string, string> => ({
    [ANNOTATION_TERM]: String(n),
    [ANNOTATION_HOLDER]: holder,
  });

  it('passes the Pods each term writes while it holds the Lease, and names every Pod written out of term', async () => {
    if (lease === undefined || pods === undefined) throw new Error('recorders did not start');
    await holdLease('replica-a', 1);
    await createPod('good-a', term(1, 'replica-a'));
    await holdLease('replica-a', 1); // a renewal: a new resourceVersion, the same term
    await createPod('good-a-after-renewal', term(1, 'replica-a'));
    await holdLease('replica-b', 2); // B takes over
    await createPod('good-b', term(2, 'replica-b'));
    assert.deepEqual(podTermProblems(pods.all(), lease), [], 'correct terms pass');

    // The broken variants: what a leader without fencing, or with a confused term, writes.
    await createPod('stale-a', term(1, 'replica-a')); // A resumes after B took over
    await createPod('wrong-holder', term(2, 'replica-a')); // B's number, A's name
    await createPod('unknown-term', term(7, 'replica-b')); // a term the Lease never showed
    await createPod('unannotated', {});
    await holdLease('', 2); // B releases
    await createPod('after-release', term(2, 'replica-b'));

    const problems = podTermProblems(pods.all(), lease);
    const named = (pod: string): string[] =>
      problems.filter((p) => p.startsWith(`${pod}:`) || p.startsWith(`${pod} (`));
    for (const good of ['good-a', 'good-a-after-renewal', 'good-b'])
      assert.deepEqual(named(good), [], `${good} passes: ${problems.join('\n')}`);
    for (const bad of ['stale-a', 'wrong-holder', 'unknown-term', 'unannotated', 'after-release'])
      assert.ok(named(bad).length > 0, `${bad} is reported; problems were:\n${problems.join('\n')}`);
    assert.match(
      named('stale-a').join('\n'),
      /while the Lease showed holder "replica-b" at leaseTransitions 2/,
    );
  });
});

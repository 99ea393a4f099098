// The API-server fence (config/policy; DESIGN.md invariant 3, third layer) on a real
// kube-apiserver of the pinned release: a run's Pod is admitted only while the leader Lease
// shows the term and holder the Pod carries, and the refusal is a 403 that names the policy, by
// create and by server-side dry-run alike.
//
// The policy is applied as config/policy renders it; the binding is config/policy's, renamed,
// pointed at a Lease in the test's own namespace and limited to that namespace. The API server
// is the suite's own (private-api-server.ts says why: removing the last Lease-param binding
// breaks an API server's Lease cache, kubernetes#130887).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api, VersionApi } from '@kubernetes/client-node';
import { FENCE_POLICY_NAME } from '../../../src/api/names.ts';
import { apiStatus, waitFor } from '../../support/kube.ts';
import {
  BINDING_TIMEOUT_MS,
  FOLLOW_TIMEOUT_MS,
  LEASE_NAME,
  bindingFor,
  createBinding,
  createPod,
  createPolicy,
  deleteBinding,
  kustomize,
  measureTakeover,
  policyManifests,
  putLease,
  uniqueName,
  waitForFence,
  type PolicyManifests,
  type Takeover,
} from './fence.ts';
import { podNamespace, startPrivateApiServer, type PrivateApiServer } from './private-api-server.ts';

const HOLDER = 'ssj-operator-7d9f_a1b2c3';
const TERM = 7;

describe('the manifests of config/policy', () => {
  let manifests: PolicyManifests;

  before(async () => {
    manifests = await policyManifests();
  });

  it('make a fence named FENCE_POLICY_NAME that checks created Pods labelled ssj.dev/job against a Lease, failing closed', () => {
    const spec = manifests.fencePolicy.spec!;
    assert.equal(manifests.fencePolicy.metadata?.name, FENCE_POLICY_NAME);
    assert.deepEqual(spec.paramKind, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease' });
    assert.equal(spec.failurePolicy, 'Fail');
    assert.deepEqual(spec.matchConstraints?.resourceRules, [
      { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] },
    ]);
    assert.deepEqual(spec.matchConstraints.objectSelector, {
      matchExpressions: [{ key: 'ssj.dev/job', operator: 'Exists' }],
    });
    assert.ok((spec.validations ?? []).length > 0);
    for (const validation of spec.validations ?? []) {
      assert.equal(validation.reason, 'Forbidden', validation.expression);
      assert.ok(validation.messageExpression !== undefined, validation.expression);
    }
  });

  it('bind it to the leader Lease of ssj-system, denying when the Lease is missing', () => {
    const spec = manifests.fenceBinding.spec;
    assert.deepEqual(spec.validationActions, ['Deny']);
    assert.deepEqual(spec.paramRef, {
      name: LEASE_NAME,
      namespace: 'ssj-system',
      parameterNotFoundAction: 'Deny',
    });
    assert.equal(spec.matchResources, undefined, 'the binding fences every namespace');
  });

  it('keep a binding of a Lease-param policy that never matches anything (kubernetes#130887)', () => {
    const spec = manifests.keeperPolicy.spec!;
    assert.deepEqual(spec.paramKind, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease' });
    assert.equal(spec.failurePolicy, 'Ignore');
    assert.ok(spec.matchConstraints?.objectSelector?.matchExpressions?.length === 1);
    assert.equal(manifests.keeperBinding.spec.paramRef?.parameterNotFoundAction, 'Allow');
  });

  it('are part of config/default, whose bindings take the Lease namespace from the Deployment', async () => {
    const objects = await kustomize('config/default');
    const deployment = objects.find((o) => o['kind'] === 'Deployment');
    const namespace = (deployment?.['metadata'] as { namespace?: string } | undefined)?.namespace;
    assert.equal(namespace, 'ssj-system');
    const bindings = objects.filter((o) => o['kind'] === 'ValidatingAdmissionPolicyBinding');
    assert.equal(bindings.length, 2);
    for (const binding of bindings) {
      const paramRef = (binding['spec'] as { paramRef?: { namespace?: string; name?: string } }).paramRef;
      assert.deepEqual(
        { name: paramRef?.name, namespace: paramRef?.namespace },
        { name: LEASE_NAME, namespace },
      );
    }
    assert.ok(objects.some((o) => o['kind'] === 'ValidatingAdmissionPolicy'));
  });
});

describe('the term fence on a real kube-apiserver', () => {
  let server: PrivateApiServer;
  let ns = '';
  const bindingName = uniqueName('fence-test');

  before(async () => {
    server = await startPrivateApiServer();
    const manifests = await policyManifests();
    ns = await podNamespace(server.kc, 'fence');
    await putLease(server.kc, ns, { holder: HOLDER, transitions: TERM });
    await createPolicy(server.kc, manifests.fencePolicy);
    await createBinding(server.kc, bindingFor(manifests.fenceBinding, bindingName, ns));
    await waitForFence(
      server.kc,
      ns,
      { admitted: [[String(TERM), HOLDER]], refused: [[String(TERM - 1), HOLDER]] },
      BINDING_TIMEOUT_MS,
      'the fence in force',
    );
  });

  after(async () => {
    await deleteBinding(server.kc, bindingName);
    await server.stop();
  });

  it('runs on the pinned release', async (t) => {
    const version = await server.kc.makeApiClient(VersionApi).getCode();
    t.diagnostic(`kube-apiserver ${version.gitVersion}`);
    assert.match(version.gitVersion, /^v1\.36\./);
  });

  it('admits a Pod of the current term and holder', async () => {
    const result = await createPod(server.kc, ns, { name: 'current', term: String(TERM), holder: HOLDER });
    assert.deepEqual(result, { kind: 'admitted', name: 'current' });
    const pod = await server.kc
      .makeApiClient(CoreV1Api)
      .readNamespacedPod({ namespace: ns, name: 'current' });
    assert.equal(pod.metadata?.annotations?.['ssj.dev/term'], String(TERM));
  });

  it('refuses a Pod of an earlier term (a stale leader) as 403 Forbidden, naming the policy and both terms', async () => {
    const result = await createPod(server.kc, ns, { name: 'stale', term: String(TERM - 1), holder: HOLDER });
    assert.equal(result.kind, 'refused');
    assert.equal(result.code, 403);
    assert.equal(result.reason, 'Forbidden');
    assert.ok(result.message.includes(FENCE_POLICY_NAME), result.message);
    assert.ok(
      result.message.includes(`Pod ${ns}/stale (term ${TERM - 1}, holder ${HOLDER})`),
      result.message,
    );
    assert.ok(
      result.message.includes(`Lease ${ns}/${LEASE_NAME} (term ${TERM}, holder ${HOLDER})`),
      result.message,
    );
    await assertNoPod(server, ns, 'stale');
  });

  it('refuses a Pod of a later term than the Lease shows (terms restart when a Lease is re-created)', async () => {
    const result = await createPod(server.kc, ns, { name: 'later', term: String(TERM + 1), holder: HOLDER });
    assert.equal(result.kind, 'refused');
    assert.equal(result.code, 403);
    assert.ok(result.message.includes(FENCE_POLICY_NAME), result.message);
    await assertNoPod(server, ns, 'later');
  });

  it('refuses a Pod of the current term from another holder, naming both holders', async () => {
    const result = await createPod(server.kc, ns, {
      name: 'other',
      term: String(TERM),
      holder: 'someone-else',
    });
    assert.equal(result.kind, 'refused');
    assert.equal(result.code, 403);
    assert.equal(result.reason, 'Forbidden');
    assert.ok(result.message.includes(FENCE_POLICY_NAME), result.message);
    assert.ok(result.message.includes('holder someone-else'), result.message);
    assert.ok(result.message.includes(`holder ${HOLDER}`), result.message);
    await assertNoPod(server, ns, 'other');
  });

  it('refuses a labelled Pod that carries no term or holder', async () => {
    const result = await createPod(server.kc, ns, { name: 'bare' });
    assert.equal(result.kind, 'refused');
    assert.equal(result.code, 403);
    assert.ok(result.message.includes(FENCE_POLICY_NAME), result.message);
    assert.ok(result.message.includes('term <none>'), result.message);
  });

  it('leaves a Pod without the ssj.dev/job label alone, whatever it carries', async () => {
    const result = await createPod(server.kc, ns, {
      name: 'unlabelled',
      term: String(TERM - 1),
      holder: 'someone-else',
      labelled: false,
    });
    assert.deepEqual(result, { kind: 'admitted', name: 'unlabelled' });
  });

  it('checks a server-side dry-run create too: a stale term is refused, the current one admitted and not stored', async () => {
    const stale = await createPod(
      server.kc,
      ns,
      { name: 'dry-stale', term: String(TERM - 1), holder: HOLDER },
      { dryRun: true },
    );
    assert.equal(stale.kind, 'refused');
    assert.equal(stale.code, 403);
    assert.ok(stale.message.includes(FENCE_POLICY_NAME), stale.message);
    const current = await createPod(
      server.kc,
      ns,
      { name: 'dry-current', term: String(TERM), holder: HOLDER },
      { dryRun: true },
    );
    assert.deepEqual(current, { kind: 'admitted', name: 'dry-current' });
    await assertNoPod(server, ns, 'dry-current');
  });

  it('follows a takeover within a short wait: the old term refused, the new admitted (staleness window printed)', async (t) => {
    const takeovers: Takeover[] = [];
    let from: [string, string] = [String(TERM), HOLDER];
    for (let i = 1; i <= 10; i++) {
      const to = { holder: `ssj-operator-${i}_takeover`, transitions: TERM + i };
      takeovers.push(await measureTakeover(server.kc, ns, from, to, FOLLOW_TIMEOUT_MS));
      from = [String(to.transitions), to.holder];
    }
    const stat = (values: number[]): string => {
      const sorted = [...values].sort((a, b) => a - b);
      const at = (q: number): string =>
        sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(1);
      return `min ${at(0)}, median ${at(0.5)}, max ${at(1)} ms`;
    };
    const staleCount = takeovers.filter((x) => x.staleAfterMs > 0).length;
    t.diagnostic(
      `${takeovers.length} takeovers; probe round trip ${stat(takeovers.map((x) => x.probeMs))}, ` +
        `a probe leaving every ${stat(takeovers.map((x) => x.spacingMs))}; ` +
        `both probes fresh ${stat(takeovers.map((x) => x.followedMs))} after the Lease write returned; ` +
        `a probe sent after the write was answered from the old Lease in ${staleCount} of ${takeovers.length} ` +
        `takeovers (latest such probe sent ${stat(takeovers.map((x) => x.staleAfterMs))} after the write)`,
    );
    await putLease(server.kc, ns, { holder: HOLDER, transitions: TERM });
    await waitForFence(
      server.kc,
      ns,
      { admitted: [[String(TERM), HOLDER]], refused: [from] },
      FOLLOW_TIMEOUT_MS,
      'the Lease back at the first term',
    );
  });

  it('refuses every Pod once the Lease is released (no holder), even one claiming the empty holder', async () => {
    await putLease(server.kc, ns, { holder: '', transitions: TERM });
    await waitForFence(
      server.kc,
      ns,
      { admitted: [], refused: [[String(TERM), HOLDER]] },
      FOLLOW_TIMEOUT_MS,
      'the release seen',
    );
    const result = await createPod(server.kc, ns, { term: String(TERM), holder: '' });
    assert.equal(result.kind, 'refused');
    assert.ok(result.message.includes('holder <none>'), result.message);
    await putLease(server.kc, ns, { holder: HOLDER, transitions: TERM });
    await waitForFence(
      server.kc,
      ns,
      { admitted: [[String(TERM), HOLDER]], refused: [] },
      FOLLOW_TIMEOUT_MS,
      'the Lease held again',
    );
  });

  it('counts a Lease without leaseTransitions as term 0', async () => {
    await putLease(server.kc, ns, { holder: HOLDER });
    await waitForFence(
      server.kc,
      ns,
      {
        admitted: [['0', HOLDER]],
        refused: [
          ['1', HOLDER],
          [String(TERM), HOLDER],
        ],
      },
      FOLLOW_TIMEOUT_MS,
      'term 0 in force',
    );
    await putLease(server.kc, ns, { holder: HOLDER, transitions: TERM });
  });

  it('refuses every labelled Pod while the Lease does not exist (422 naming the policy), and admits once it appears', async (t) => {
    const freshNs = await podNamespace(server.kc, 'fence-fresh');
    const freshBinding = uniqueName('fence-test-fresh');
    await createBinding(server.kc, bindingFor((await policyManifests()).fenceBinding, freshBinding, freshNs));
    try {
      const refused = await waitFor(
        async () => {
          const result = await createPod(server.kc, freshNs, { term: '1', holder: HOLDER }, { dryRun: true });
          return result.kind === 'refused' ? result : undefined;
        },
        { timeoutMs: BINDING_TIMEOUT_MS, intervalMs: 50, description: 'the fresh binding in force' },
      );
      // parameterNotFoundAction Deny is a configuration error under failurePolicy Fail: the API
      // server answers 422 Invalid (no validation's reason applies), and still names the policy.
      assert.equal(refused.code, 422, refused.message);
      assert.equal(refused.reason, 'Invalid');
      assert.ok(refused.message.includes(FENCE_POLICY_NAME), refused.message);
      assert.ok(refused.message.includes('no params found'), refused.message);

      await putLease(server.kc, freshNs, { holder: HOLDER, transitions: 1 });
      const created = performance.now();
      await waitForFence(
        server.kc,
        freshNs,
        { admitted: [['1', HOLDER]], refused: [['0', HOLDER]] },
        FOLLOW_TIMEOUT_MS,
        'the new Lease seen by the fence',
      );
      t.diagnostic(
        `a new Lease reached the fence ${(performance.now() - created).toFixed(1)} ms after its create`,
      );
    } finally {
      await deleteBinding(server.kc, freshBinding);
    }
  });
});

async function assertNoPod(server: PrivateApiServer, namespace: string, name: string): Promise<void> {
  try {
    await server.kc.makeApiClient(CoreV1Api).readNamespacedPod({ namespace, name });
    assert.fail(`Pod ${namespace}/${name} exists`);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    assert.equal(apiStatus(error)?.code, 404);
  }
}

// The KubeWriter (src/controller/kube-writer.ts) against the real API server: what each call
// returns for what the API server really answers, and that removing the tracking finalizer never
// touches another Pod or another owner's finalizer.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1Pod,
} from '@kubernetes/client-node';
import { FENCE_POLICY_NAME, FINALIZER_RUN_RECORD, LABEL_JOB } from '../../../src/api/types.ts';
import { kubeWriter } from '../../../src/controller/kube-writer.ts';
import { FinalizerRefusedError, type KubeWriter, type PodRefusal } from '../../../src/controller/ports.ts';
import { makeInstrumentedApiClient } from '../../../src/observability/api-requests.ts';
import { newMetrics } from '../../../src/observability/metrics.ts';
import {
  REPOSITORY_ROOT,
  apiStatus,
  deleteNamespaceAndReleasePods,
  kubectl,
  loadKubeConfig,
  newNamespace,
  requireCluster,
  waitFor,
} from '../../support/kube.ts';
import { join } from 'node:path';

const FOREIGN = 'example.com/keep-me';
const TIMEOUT = 30_000;

function podBody(
  namespace: string,
  name: string,
  extra: { finalizers?: string[]; serviceAccountName?: string; containerName?: string } = {},
): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: { [LABEL_JOB]: 'writer' },
      finalizers: extra.finalizers ?? [FINALIZER_RUN_RECORD],
    },
    spec: {
      containers: [{ name: extra.containerName ?? 'c', image: 'busybox:1.36', command: ['true'] }],
      restartPolicy: 'Never',
      ...(extra.serviceAccountName === undefined ? {} : { serviceAccountName: extra.serviceAccountName }),
    },
  };
}

/** A namespace of the test's own, ready for Pods (its default ServiceAccount exists). */
async function podNamespace(kc: KubeConfig, prefix: string): Promise<string> {
  const ns = await newNamespace(prefix, kc);
  const core = kc.makeApiClient(CoreV1Api);
  await waitFor(() => core.readNamespacedServiceAccount({ namespace: ns, name: 'default' }), {
    timeoutMs: TIMEOUT,
    description: `the default ServiceAccount of ${ns}`,
  });
  return ns;
}

function assertRefused(
  result: { kind: string },
  reason: PodRefusal['reason'],
  message: RegExp,
): asserts result is PodRefusal {
  assert.equal(result.kind, 'refused', JSON.stringify(result));
  const refusal = result as PodRefusal;
  assert.equal(refusal.reason, reason);
  assert.match(refusal.message, message);
  assert.equal(refusal.fenced, false);
}

describe('KubeWriter (real API server)', () => {
  const admin = loadKubeConfig();
  const core = admin.makeApiClient(CoreV1Api);
  let kube: KubeWriter;
  let ns = '';
  let quotaNs = '';

  const live = async (name: string, namespace = ns): Promise<V1Pod | undefined> => {
    try {
      return await core.readNamespacedPod({ namespace, name });
    } catch (err) {
      if (apiStatus(err)?.code === 404) return undefined;
      throw err;
    }
  };

  before(async () => {
    await requireCluster(admin);
    const metrics = newMetrics({ processMetrics: false });
    kube = kubeWriter(
      makeInstrumentedApiClient(admin, CoreV1Api, metrics),
      makeInstrumentedApiClient(admin, CustomObjectsApi, metrics),
    );
    ns = await podNamespace(admin, 'kw');
    quotaNs = await podNamespace(admin, 'kw-quota');
    await core.createNamespacedResourceQuota({
      namespace: quotaNs,
      body: { metadata: { name: 'no-pods' }, spec: { hard: { pods: '0' } } },
    });
    // Until kube-controller-manager has computed its usage, the quota refuses with "status
    // unknown": wait for the real answer.
    await waitFor(
      async () =>
        (await core.readNamespacedResourceQuota({ namespace: quotaNs, name: 'no-pods' })).status?.hard?.[
          'pods'
        ] === '0',
      { timeoutMs: TIMEOUT, description: 'the quota no-pods computed' },
    );
  });

  after(async () => {
    await deleteNamespaceAndReleasePods(ns, admin);
    await deleteNamespaceAndReleasePods(quotaNs, admin);
  });

  describe('createPod and dryRunPod', () => {
    it('create returns the Pod as the API server stored it', async () => {
      const result = await kube.createPod(podBody(ns, 'stored'));
      assert.equal(result.kind, 'created');
      const stored = await live('stored');
      assert.ok(stored !== undefined);
      assert.equal(result.pod.metadata?.uid, stored.metadata?.uid);
      assert.equal(result.pod.metadata?.resourceVersion, stored.metadata?.resourceVersion);
      assert.deepEqual(result.pod.metadata?.finalizers, [FINALIZER_RUN_RECORD]);
    });

    it('a second create of the same name returns exists, with the live Pod', async () => {
      const first = await kube.createPod(podBody(ns, 'twice'));
      assert.ok(first.kind === 'created');
      const second = await kube.createPod(podBody(ns, 'twice'));
      assert.equal(second.kind, 'exists');
      assert.equal(second.pod?.metadata?.uid, first.pod.metadata?.uid);
    });

    it('a Pod naming a missing ServiceAccount is refused as Forbidden, by create and by dry-run', async () => {
      const pod = podBody(ns, 'no-sa', { serviceAccountName: 'missing' });
      const message = /serviceaccount "missing" not found/;
      assertRefused(await kube.dryRunPod(pod), 'Forbidden', message);
      assertRefused(await kube.createPod(pod), 'Forbidden', message);
      assert.equal(await live('no-sa'), undefined);
    });

    it('a namespace whose ResourceQuota allows no Pods refuses as Forbidden, by create and by dry-run', async () => {
      const pod = podBody(quotaNs, 'over-quota');
      const message = /exceeded quota: no-pods/;
      assertRefused(await kube.dryRunPod(pod), 'Forbidden', message);
      assertRefused(await kube.createPod(pod), 'Forbidden', message);
      assert.equal(await live('over-quota', quotaNs), undefined);
    });

    it('an invalid template is refused as Invalid, with the field in the message', async () => {
      const pod = podBody(ns, 'invalid', { containerName: 'Not_Valid' });
      const message = /spec\.containers\[0\]\.name: Invalid value: "Not_Valid"/;
      assertRefused(await kube.dryRunPod(pod), 'Invalid', message);
      assertRefused(await kube.createPod(pod), 'Invalid', message);
    });

    it('a valid dry-run is ok and creates nothing; a dry-run of a name that exists is ok too', async () => {
      assert.deepEqual(await kube.dryRunPod(podBody(ns, 'dry')), { kind: 'ok' });
      assert.equal(await live('dry'), undefined);
      await kube.createPod(podBody(ns, 'dry-existing'));
      assert.deepEqual(await kube.dryRunPod(podBody(ns, 'dry-existing')), { kind: 'ok' });
    });
  });

  describe('removeFinalizer', () => {
    it('removes ours and keeps a foreign finalizer', async () => {
      const created = await kube.createPod(
        podBody(ns, 'two-finalizers', { finalizers: [FOREIGN, FINALIZER_RUN_RECORD] }),
      );
      assert.ok(created.kind === 'created');
      assert.equal(
        await kube.removeFinalizer(ns, 'two-finalizers', created.pod.metadata?.uid ?? ''),
        'removed',
      );
      assert.deepEqual((await live('two-finalizers'))?.metadata?.finalizers, [FOREIGN]);
    });

    it('with a stale UID is gone and changes nothing', async () => {
      const first = await kube.createPod(podBody(ns, 'reused-name'));
      assert.ok(first.kind === 'created');
      const staleUid = first.pod.metadata?.uid ?? '';
      // The name is taken again by another Pod, carrying the same finalizer.
      await core.patchNamespacedPod({
        namespace: ns,
        name: 'reused-name',
        body: [{ op: 'remove', path: '/metadata/finalizers' }],
      });
      await core.deleteNamespacedPod({ namespace: ns, name: 'reused-name', gracePeriodSeconds: 0 });
      await waitFor(async () => (await live('reused-name')) === undefined, {
        timeoutMs: TIMEOUT,
        description: 'the first reused-name gone',
      });
      const second = await kube.createPod(
        podBody(ns, 'reused-name', { finalizers: [FINALIZER_RUN_RECORD, FOREIGN] }),
      );
      assert.ok(second.kind === 'created');
      const versionBefore = second.pod.metadata?.resourceVersion;

      assert.equal(await kube.removeFinalizer(ns, 'reused-name', staleUid), 'gone');
      const now = await live('reused-name');
      assert.ok(now?.metadata !== undefined);
      assert.deepEqual(now.metadata.finalizers, [FINALIZER_RUN_RECORD, FOREIGN]);
      assert.equal(now.metadata.resourceVersion, versionBefore, 'the other Pod was not written at all');
    });

    it('is gone for a Pod that does not exist or no longer has our finalizer', async () => {
      assert.equal(await kube.removeFinalizer(ns, 'never-created', 'some-uid'), 'gone');
      const created = await kube.createPod(podBody(ns, 'foreign-only', { finalizers: [FOREIGN] }));
      assert.ok(created.kind === 'created');
      assert.equal(await kube.removeFinalizer(ns, 'foreign-only', created.pod.metadata?.uid ?? ''), 'gone');
      assert.deepEqual((await live('foreign-only'))?.metadata?.finalizers, [FOREIGN]);
    });

    it('retries once when the list moved between its read and its patch, and keeps the others', async () => {
      const first = 'example.com/first';
      const created = await kube.createPod(
        podBody(ns, 'moving', { finalizers: [first, FINALIZER_RUN_RECORD, FOREIGN] }),
      );
      assert.ok(created.kind === 'created');
      // A real client whose first read of the Pod is followed, before the patch, by another
      // writer removing the finalizer in front of ours (so ours moves from index 1 to 0) and
      // adding one at the end.
      let reads = 0;
      const racing = Object.create(admin.makeApiClient(CoreV1Api)) as CoreV1Api;
      racing.readNamespacedPod = async (param) => {
        reads++;
        const pod = await core.readNamespacedPod(param);
        if (reads === 1) {
          await core.patchNamespacedPod({
            namespace: ns,
            name: 'moving',
            body: [
              { op: 'remove', path: '/metadata/finalizers/0' },
              { op: 'add', path: '/metadata/finalizers/-', value: 'example.com/late' },
            ],
          });
        }
        return pod;
      };
      const racingKube = kubeWriter(racing, admin.makeApiClient(CustomObjectsApi));
      assert.equal(
        await racingKube.removeFinalizer(ns, 'moving', created.pod.metadata?.uid ?? ''),
        'removed',
      );
      assert.equal(reads, 2, 'one fresh read for the retry');
      assert.deepEqual((await live('moving'))?.metadata?.finalizers, [FOREIGN, 'example.com/late']);
    });

    /** A kube writer whose Pod reads are counted. */
    const counting = (): { kube: ReturnType<typeof kubeWriter>; reads: () => number } => {
      let reads = 0;
      const client = Object.create(admin.makeApiClient(CoreV1Api)) as CoreV1Api;
      client.readNamespacedPod = async (param) => {
        reads++;
        return core.readNamespacedPod(param);
      };
      return { kube: kubeWriter(client, admin.makeApiClient(CustomObjectsApi)), reads: () => reads };
    };

    it('with the cached Pod, removes ours without reading the Pod first', async () => {
      const created = await kube.createPod(
        podBody(ns, 'cached', { finalizers: [FOREIGN, FINALIZER_RUN_RECORD] }),
      );
      assert.ok(created.kind === 'created');
      const { kube: counted, reads } = counting();
      assert.equal(
        await counted.removeFinalizer(ns, 'cached', created.pod.metadata?.uid ?? '', created.pod),
        'removed',
      );
      assert.equal(reads(), 0, 'no read: the patch tests what the cached copy says');
      assert.deepEqual((await live('cached'))?.metadata?.finalizers, [FOREIGN]);
    });

    it('a stale cached copy (ours moved, or the name is another Pod now) costs a live read and changes nothing else', async () => {
      const first = 'example.com/first';
      const created = await kube.createPod(
        podBody(ns, 'stale-cache', { finalizers: [first, FINALIZER_RUN_RECORD, FOREIGN] }),
      );
      assert.ok(created.kind === 'created');
      await core.patchNamespacedPod({
        namespace: ns,
        name: 'stale-cache',
        body: [{ op: 'remove', path: '/metadata/finalizers/0' }],
      });
      const moved = counting();
      assert.equal(
        await moved.kube.removeFinalizer(ns, 'stale-cache', created.pod.metadata?.uid ?? '', created.pod),
        'removed',
      );
      assert.equal(moved.reads(), 1, 'the cached index failed the test: one live read');
      assert.deepEqual((await live('stale-cache'))?.metadata?.finalizers, [FOREIGN]);

      const old = await kube.createPod(podBody(ns, 'renamed'));
      assert.ok(old.kind === 'created');
      await core.patchNamespacedPod({
        namespace: ns,
        name: 'renamed',
        body: [{ op: 'remove', path: '/metadata/finalizers' }],
      });
      await core.deleteNamespacedPod({ namespace: ns, name: 'renamed', gracePeriodSeconds: 0 });
      await waitFor(async () => (await live('renamed')) === undefined, {
        timeoutMs: TIMEOUT,
        description: 'the first renamed gone',
      });
      const other = await kube.createPod(podBody(ns, 'renamed', { finalizers: [FINALIZER_RUN_RECORD] }));
      assert.ok(other.kind === 'created');
      const versionBefore = other.pod.metadata?.resourceVersion;
      // The cache still shows the first Pod, and its run is the one being released.
      const stale = counting();
      assert.equal(
        await stale.kube.removeFinalizer(ns, 'renamed', old.pod.metadata?.uid ?? '', old.pod),
        'gone',
      );
      const now = await live('renamed');
      assert.deepEqual(now?.metadata?.finalizers, [FINALIZER_RUN_RECORD], 'the other Pod keeps ours');
      assert.equal(now.metadata.resourceVersion, versionBefore, 'the other Pod was not written at all');
    });

    it('a deleted Pod goes once our finalizer, its last, is removed', async () => {
      const created = await kube.createPod(podBody(ns, 'deleted'));
      assert.ok(created.kind === 'created');
      await core.deleteNamespacedPod({ namespace: ns, name: 'deleted' });
      assert.ok((await live('deleted'))?.metadata?.deletionTimestamp, 'held by the finalizer');
      assert.equal(await kube.removeFinalizer(ns, 'deleted', created.pod.metadata?.uid ?? ''), 'removed');
      await waitFor(async () => (await live('deleted')) === undefined, {
        timeoutMs: TIMEOUT,
        description: 'the deleted Pod gone',
      });
    });

    it('throws FinalizerRefusedError with the server message when the patch is forbidden', async () => {
      const created = await kube.createPod(podBody(ns, 'not-mine'));
      assert.ok(created.kind === 'created');
      // A ServiceAccount that may read Pods but not patch them.
      const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
      await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'reader' } } });
      await rbac.createNamespacedRole({
        namespace: ns,
        body: {
          metadata: { name: 'pod-reader' },
          rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }],
        },
      });
      await rbac.createNamespacedRoleBinding({
        namespace: ns,
        body: {
          metadata: { name: 'pod-reader' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
          subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns }],
        },
      });
      const token = (
        await core.createNamespacedServiceAccountToken({
          namespace: ns,
          name: 'reader',
          body: { spec: { audiences: [], expirationSeconds: 600 } },
        })
      ).status?.token;
      const cluster = admin.getCurrentCluster();
      assert.ok(token !== undefined && cluster !== null);
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'local', server: cluster.server, caData: cluster.caData }],
        users: [{ name: 'reader', token }],
        contexts: [{ name: 'local', cluster: 'local', user: 'reader' }],
        currentContext: 'local',
      });
      const asReader = kubeWriter(kc.makeApiClient(CoreV1Api), kc.makeApiClient(CustomObjectsApi));
      const uid = created.pod.metadata?.uid ?? '';
      // RBAC may take a moment to see the new binding: until then even the read is refused.
      await waitFor(() => asReader.getPod(ns, 'not-mine'), {
        timeoutMs: TIMEOUT,
        description: 'read allowed',
      });
      await assert.rejects(asReader.removeFinalizer(ns, 'not-mine', uid), (err: unknown) => {
        assert.ok(err instanceof FinalizerRefusedError, String(err));
        assert.match(err.message, /cannot patch resource "pods"/);
        return true;
      });
      assert.deepEqual((await live('not-mine'))?.metadata?.finalizers, [FINALIZER_RUN_RECORD]);
    });
  });

  describe('getJob', () => {
    before(async () => {
      await kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(REPOSITORY_ROOT, 'crds')]);
      await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/singletonjobs.ssj.dev']);
    });

    it('reads the job live, and is undefined for one that does not exist', async () => {
      const custom = admin.makeApiClient(CustomObjectsApi);
      const body = {
        apiVersion: 'ssj.dev/v1alpha1',
        kind: 'ScheduledSingletonJob',
        metadata: { name: 'live' },
        spec: {
          schedule: '0 2 * * *',
          template: { spec: { containers: [{ name: 'c', image: 'busybox:1.36', command: ['true'] }] } },
        },
      };
      const created = (await waitFor(
        () =>
          custom.createNamespacedCustomObject({
            group: 'ssj.dev',
            version: 'v1alpha1',
            namespace: ns,
            plural: 'singletonjobs',
            body,
          }),
        { timeoutMs: TIMEOUT, description: 'the job created' },
      )) as { metadata?: { uid?: string } };
      const job = await kube.getJob(ns, 'live');
      assert.equal(job?.metadata?.uid, created.metadata?.uid);
      assert.equal(job?.spec.schedule, '0 2 * * *');
      assert.equal(await kube.getJob(ns, 'missing'), undefined);
    });
  });

  describe('a refusal by the fencing admission policy', () => {
    const admission = admin.makeApiClient(AdmissionregistrationV1Api);
    const bindingName = `kw-fence-${Math.random().toString(16).slice(2, 10)}`;
    let ownPolicy = false;
    let fenceNs = '';

    before(async () => {
      fenceNs = await podNamespace(admin, 'kw-fence');
      try {
        // A stand-in with the real policy's name (config/policy may not be installed here):
        // it refuses every Pod, but is bound to this test's namespace only.
        await admission.createValidatingAdmissionPolicy({
          body: {
            metadata: { name: FENCE_POLICY_NAME },
            spec: {
              failurePolicy: 'Fail',
              matchConstraints: {
                resourceRules: [
                  { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] },
                ],
              },
              // Forbidden, as DESIGN.md's fence refuses (a policy's default reason is Invalid).
              validations: [
                { expression: 'false', message: 'the term of this Pod is over', reason: 'Forbidden' },
              ],
            },
          },
        });
        ownPolicy = true;
      } catch (err) {
        if (apiStatus(err)?.code !== 409) throw err;
      }
      await admission.createValidatingAdmissionPolicyBinding({
        body: {
          metadata: { name: bindingName },
          spec: {
            policyName: FENCE_POLICY_NAME,
            validationActions: ['Deny'],
            matchResources: {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': fenceNs } },
            },
          },
        },
      });
    });

    after(async () => {
      await admission.deleteValidatingAdmissionPolicyBinding({ name: bindingName }).catch(() => undefined);
      if (ownPolicy)
        await admission.deleteValidatingAdmissionPolicy({ name: FENCE_POLICY_NAME }).catch(() => undefined);
      await deleteNamespaceAndReleasePods(fenceNs, admin);
    });

    it('is Forbidden and fenced, by create and by dry-run', async () => {
      const pod = podBody(fenceNs, 'fenced');
      // The policy takes effect once the API server's admission cache has it.
      const refused = await waitFor(
        async () => {
          const result = await kube.dryRunPod(pod);
          return result.kind === 'refused' ? result : undefined;
        },
        { timeoutMs: TIMEOUT, description: 'the policy in force' },
      );
      assert.equal(refused.reason, 'Forbidden');
      assert.equal(refused.fenced, true, refused.message);
      assert.ok(refused.message.includes(FENCE_POLICY_NAME));
      const created = await kube.createPod(pod);
      assert.ok(created.kind === 'refused');
      assert.equal(created.fenced, true);
      assert.equal(await live('fenced', fenceNs), undefined);
    });
  });
});

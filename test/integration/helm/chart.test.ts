// The Helm chart (config/helm/ssj-operator) installs what config/default installs. Helm reads
// only files inside the chart, so the chart renders copies of config/ and crds/ (kept by
// config/helm/sync.sh) and templates the rest; this suite proves the copies equal their sources,
// that the rendered objects are config/default's, that the API server accepts them, that `helm
// install` creates them and `helm uninstall` removes them, and that each value renders what it
// says. The API server is the suite's own (private-api-server.ts): installing and uninstalling
// the fence's bindings on the shared one would break its Lease cache (kubernetes#130887).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { REPOSITORY_ROOT, apiStatus, waitFor } from '../../support/kube.ts';
import { startPrivateApiServer, type PrivateApiServer } from '../policy/private-api-server.ts';
import {
  BUILD_TIMEOUT_MS,
  CHART,
  HELM_LABELS,
  NAMESPACE,
  RELEASE,
  byKey,
  find,
  helm,
  helmBinary,
  kubectlRun,
  kustomize,
  objectKey,
  parseManifests,
  render,
  renderText,
  withoutHelmMetadata,
  type Manifest,
} from './helm.ts';

const execFileAsync = promisify(execFile);

interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  resources?: unknown;
  ports?: { name: string; containerPort: number }[];
}

function containerOf(objects: readonly Manifest[]): Container {
  const deployment = find(objects, 'Deployment', 'ssj-operator') as unknown as {
    spec: { template: { spec: { containers: Container[] } } };
  };
  const container = deployment.spec.template.spec.containers.find(({ name }) => name === 'manager');
  assert.ok(container, 'the Deployment has no container named manager');
  return container;
}

describe('the Helm chart config/helm/ssj-operator', () => {
  // Fails the suite, loudly, when helm cannot be built. Its own timeout: the first build on a
  // machine takes longer than a test may (run-tests.sh --test-timeout).
  before(
    async () => {
      await helmBinary();
    },
    { timeout: BUILD_TIMEOUT_MS },
  );

  it('passes helm lint --strict, with the default values and with every optional object on', async () => {
    await helm(['lint', '--strict', CHART]);
    await helm([
      'lint',
      '--strict',
      CHART,
      '--set',
      'metrics.enabled=true,serviceMonitor.enabled=true,prometheusRule.enabled=true',
      '--set',
      'ledger.secret.name=ssj-ledger,watchNamespace=team-a,fence.keepLeaseParamKeeper=true',
    ]);
  });

  it('keeps byte-for-byte copies of crds/ and of the config/ manifests it renders (config/helm/sync.sh --check)', async () => {
    try {
      await execFileAsync(join(REPOSITORY_ROOT, 'config/helm/sync.sh'), ['--check'], { encoding: 'utf8' });
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      assert.fail(`the chart's copies differ from their sources:\n${stdout}${stderr}`);
    }
    const crd = 'ssj.dev_singletonjobs.yaml';
    assert.ok(
      (await readFile(join(CHART, 'crds', crd))).equals(await readFile(join(REPOSITORY_ROOT, 'crds', crd))),
      `config/helm/ssj-operator/crds/${crd} differs from crds/${crd}: run config/helm/sync.sh`,
    );
  });

  it('renders, with the default values, exactly the objects of kubectl kustomize config/default', async (t) => {
    const fromKustomize = byKey(
      (await kustomize('config/default')).filter(
        (object) => !(object.apiVersion === 'v1' && object.kind === 'Namespace'),
      ),
    );
    const fromHelm = byKey((await render()).map(withoutHelmMetadata));
    assert.deepEqual(
      [...fromHelm.keys()],
      [...fromKustomize.keys()],
      'the chart (actual) renders other objects than config/default (expected)',
    );
    for (const [key, expected] of fromKustomize) {
      await t.test(key, () => {
        assert.deepEqual(
          fromHelm.get(key),
          expected,
          `${key}: the chart (actual) differs from config/default (expected)`,
        );
      });
    }
  });

  it('puts every namespaced object, subject and Lease reference in the release namespace', async () => {
    const text = await renderText({ namespace: 'team-ops' });
    assert.doesNotMatch(text, /ssj-system/, 'the render for namespace team-ops still names ssj-system');
    const objects = parseManifests(text, 'helm template');
    const binding = find(objects, 'ValidatingAdmissionPolicyBinding', 'ssj-operator-term-fence.ssj.dev') as {
      spec?: { paramRef?: { namespace?: string; name?: string } };
    };
    assert.deepEqual(
      { name: binding.spec?.paramRef?.name, namespace: binding.spec?.paramRef?.namespace },
      { name: 'ssj-operator-leader', namespace: 'team-ops' },
    );
    const clusterBinding = find(objects, 'ClusterRoleBinding', 'ssj-operator') as {
      subjects?: { kind: string; name: string; namespace?: string }[];
    };
    assert.deepEqual(clusterBinding.subjects, [
      { kind: 'ServiceAccount', name: 'ssj-operator', namespace: 'team-ops' },
    ]);
    for (const object of objects) {
      for (const label of HELM_LABELS) {
        if (object.kind === 'CustomResourceDefinition') continue;
        assert.ok(
          object.metadata.labels?.[label] !== undefined,
          `${objectKey(object)} lacks Helm's label ${label}`,
        );
      }
    }
  });

  describe('values', () => {
    it('watchNamespace adds --namespace, and by default the operator watches every namespace', async () => {
      const byDefault = containerOf(await render());
      assert.ok(
        !(byDefault.args ?? []).some((arg) => arg.startsWith('--namespace')),
        `default args: ${JSON.stringify(byDefault.args)}`,
      );
      const scoped = containerOf(await render({ set: ['watchNamespace=team-a'] }));
      assert.deepEqual(
        (scoped.args ?? []).filter((arg) => arg.startsWith('--namespace')),
        ['--namespace=team-a'],
      );
    });

    it('ledger.secret sets DATABASE_URL from that Secret key (ssj-ledger/url, optional, by default), or leaves it unset', async () => {
      const databaseUrl = async (set: string[]): Promise<unknown> =>
        (containerOf(await render({ set })).env ?? []).filter(({ name }) => name === 'DATABASE_URL');
      const fromSecret = (secretKeyRef: Record<string, unknown>): unknown => [
        { name: 'DATABASE_URL', valueFrom: { secretKeyRef } },
      ];
      assert.deepEqual(await databaseUrl([]), fromSecret({ name: 'ssj-ledger', key: 'url', optional: true }));
      assert.deepEqual(
        await databaseUrl([
          'ledger.secret.name=pg-ledger',
          'ledger.secret.key=dsn',
          'ledger.secret.optional=false',
        ]),
        fromSecret({ name: 'pg-ledger', key: 'dsn' }),
      );
      assert.deepEqual(await databaseUrl(['ledger.secret.name=']), []);
    });

    it('replicas sets the Deployment replicas (3 by default)', async () => {
      const replicas = async (set: string[]): Promise<unknown> =>
        (find(await render({ set }), 'Deployment', 'ssj-operator') as { spec?: { replicas?: unknown } }).spec
          ?.replicas;
      assert.equal(await replicas([]), 3);
      assert.equal(await replicas(['replicas=5']), 5);
    });

    it('metrics.enabled, serviceMonitor.enabled and prometheusRule.enabled add exactly the objects of config/prometheus, off by default', async () => {
      const monitoring = ['Service', 'ServiceMonitor', 'PrometheusRule'];
      const kinds = (objects: readonly Manifest[]): string[] =>
        objects.map((object) => object.kind).filter((kind) => monitoring.includes(kind));
      assert.deepEqual(kinds(await render()), []);
      assert.deepEqual(kinds(await render({ set: ['metrics.enabled=true'] })), ['Service']);
      assert.deepEqual(kinds(await render({ set: ['prometheusRule.enabled=true'] })), ['PrometheusRule']);

      const everything = await render({
        set: ['metrics.enabled=true', 'serviceMonitor.enabled=true', 'prometheusRule.enabled=true'],
      });
      const rendered = byKey(
        everything.filter((object) => monitoring.includes(object.kind)).map(withoutHelmMetadata),
      );
      const expected = byKey(await kustomize('config/prometheus'));
      assert.deepEqual(
        [...rendered.keys()],
        [...expected.keys()],
        'the chart (actual) and config/prometheus (expected)',
      );
      for (const [key, object] of expected) {
        assert.deepEqual(
          rendered.get(key),
          object,
          `${key}: the chart (actual) differs from config/prometheus (expected)`,
        );
      }
      const monitor = find(everything, 'ServiceMonitor', 'ssj-operator') as {
        spec?: { endpoints?: { honorLabels?: boolean }[] };
      };
      assert.deepEqual(
        monitor.spec?.endpoints?.map((endpoint) => endpoint.honorLabels),
        [true],
        'Prometheus must keep the per-job namespace label',
      );
      await assert.rejects(
        render({ set: ['serviceMonitor.enabled=true'] }),
        /serviceMonitor\.enabled needs metrics\.enabled/,
      );
    });

    it('resources.limits.memory sizes the V8 old generation at half, unless heap.maxOldSpaceMegabytes says otherwise', async () => {
      const heap = async (set: string[]): Promise<unknown> =>
        (containerOf(await render({ set })).env ?? []).find(({ name }) => name === 'NODE_OPTIONS')?.value;
      assert.equal(await heap([]), '--max-semi-space-size=1 --max-old-space-size=256');
      assert.equal(
        await heap(['resources.limits.memory=1Gi']),
        '--max-semi-space-size=1 --max-old-space-size=512',
      );
      assert.equal(
        await heap(['resources.limits.memory=1Gi', 'heap.maxOldSpaceMegabytes=700']),
        '--max-semi-space-size=1 --max-old-space-size=700',
      );
      await assert.rejects(render({ set: ['resources.limits.memory=null'] }), /heap\.maxOldSpaceMegabytes/);
    });

    it('serviceMonitor.labels labels the ServiceMonitor for a Prometheus selector', async () => {
      const monitor = find(
        await render({
          set: [
            'metrics.enabled=true',
            'serviceMonitor.enabled=true',
            'serviceMonitor.labels.release=kube-prom',
          ],
        }),
        'ServiceMonitor',
        'ssj-operator',
      );
      assert.equal(monitor.metadata.labels?.['release'], 'kube-prom');
    });

    it('fence.keepLeaseParamKeeper marks the lease-param keeper, and only it, to outlive helm uninstall; fence.enabled=false leaves the fence out', async () => {
      const kept = (await render({ set: ['fence.keepLeaseParamKeeper=true'] }))
        .filter(
          (object) =>
            (object.metadata['annotations'] as Record<string, string> | undefined)?.[
              'helm.sh/resource-policy'
            ] === 'keep',
        )
        .map(objectKey)
        .sort();
      assert.deepEqual(
        kept,
        [
          'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy//ssj-operator-lease-param-keeper.ssj.dev',
          'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding//ssj-operator-lease-param-keeper.ssj.dev',
        ].sort(),
      );
      const withoutFence = await render({ set: ['fence.enabled=false'] });
      assert.deepEqual(
        withoutFence
          .filter((object) => object.apiVersion.startsWith('admissionregistration.k8s.io/'))
          .map(objectKey),
        [],
      );
    });
  });

  describe('on a private kube-apiserver', () => {
    let server: PrivateApiServer;

    before(async () => {
      server = await startPrivateApiServer();
    });

    after(async () => {
      await server.stop();
    });

    const kubectl = (args: readonly string[], input?: string) =>
      kubectlRun(['--kubeconfig', server.kubeconfigPath, ...args], input);

    it('accepts helm template --include-crds by kubectl apply --server-side --dry-run=server', async () => {
      await kubectl(['create', 'namespace', NAMESPACE]);
      try {
        const { stdout } = await kubectl(
          ['apply', '--server-side', '--dry-run=server', '-f', '-'],
          await renderText(),
        );
        const applied = stdout.split('\n').filter((line) => line.includes('serverside-applied'));
        assert.equal(applied.length, (await render()).length, stdout);
      } finally {
        await kubectl(['delete', 'namespace', NAMESPACE, '--wait=false']);
      }
    });

    const read = async (object: Manifest): Promise<KubernetesObject | undefined> => {
      try {
        return await KubernetesObjectApi.makeApiClient(server.kc).read({
          apiVersion: object.apiVersion,
          kind: object.kind,
          metadata: { name: object.metadata.name, namespace: object.metadata.namespace ?? '' },
        });
      } catch (error) {
        if (apiStatus(error)?.code === 404) return undefined;
        throw error;
      }
    };
    const helmOn = (verb: string, namespace: string, ...args: string[]) =>
      helm([verb, RELEASE, ...args, '--kubeconfig', server.kubeconfigPath, '--namespace', namespace]);
    const waitUntilGone = (objects: readonly Manifest[]) =>
      Promise.all(
        objects.map((object) =>
          waitFor(async () => (await read(object)) === undefined, {
            timeoutMs: 30_000,
            description: `helm uninstall to remove ${objectKey(object)}`,
          }),
        ),
      );
    const isCrd = (object: Manifest): boolean => object.kind === 'CustomResourceDefinition';
    const isKeeper = (object: Manifest): boolean =>
      object.metadata.labels?.['app.kubernetes.io/component'] === 'lease-param-keeper';

    it('helm install creates every object (three replicas), helm upgrade changes them in place, helm uninstall removes all but the CRD', async () => {
      const namespace = 'ssj-helm';
      const objects = await render({ namespace });
      await helmOn('install', namespace, CHART, '--create-namespace');
      for (const object of objects) {
        assert.ok((await read(object)) !== undefined, `helm install did not create ${objectKey(object)}`);
      }
      const deployment = find(objects, 'Deployment', 'ssj-operator');
      const replicas = async (): Promise<unknown> =>
        ((await read(deployment)) as { spec?: { replicas?: number } } | undefined)?.spec?.replicas;
      assert.equal(await replicas(), 3);

      // The fence's objects must never be deleted and re-created (kubernetes#130887): same uid.
      const fence = objects.filter((object) => object.apiVersion.startsWith('admissionregistration.k8s.io/'));
      assert.equal(fence.length, 4);
      const uids = async (): Promise<(string | undefined)[]> =>
        Promise.all(fence.map(async (object) => (await read(object))?.metadata?.uid));
      const before = await uids();
      await helmOn('upgrade', namespace, CHART, '--reuse-values', '--set', 'replicas=2');
      assert.equal(await replicas(), 2);
      assert.deepEqual(await uids(), before, 'helm upgrade re-created a fence object');

      // docs/helm.md's CRD upgrade: Helm 4 created the CRD by server-side apply as manager
      // "helm", so a newer CRD must take over Helm's fields (--force-conflicts).
      const crdText = await readFile(join(CHART, 'crds/ssj.dev_singletonjobs.yaml'), 'utf8');
      const marker = 'ssj-helm-test, a newer CRD';
      const newer = crdText.replace(/^(\s+description: )(.*)$/m, `$1${marker}`);
      assert.notEqual(newer, crdText);
      await kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], newer);
      const crdObject = find(objects, 'CustomResourceDefinition', 'singletonjobs.ssj.dev');
      assert.match(JSON.stringify(await read(crdObject)), new RegExp(marker));
      // Back to the chart's CRD, for the next install: Helm 4 applies crds/ on every install,
      // and a field kubectl set to another value would conflict (docs/helm.md).
      await kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], crdText);

      await helmOn('uninstall', namespace);
      await waitUntilGone(objects.filter((object) => !isCrd(object)));
      const crd = await read(find(objects, 'CustomResourceDefinition', 'singletonjobs.ssj.dev'));
      assert.ok(crd !== undefined, 'helm uninstall deleted the CRD');
      assert.equal(crd.metadata?.deletionTimestamp, undefined, 'helm uninstall is deleting the CRD');
    });

    it('with fence.keepLeaseParamKeeper, helm uninstall leaves the keeper and a new helm install adopts it', async () => {
      const namespace = 'ssj-helm-keep';
      const objects = await render({ namespace, set: ['fence.keepLeaseParamKeeper=true'] });
      const keeper = objects.filter(isKeeper);
      assert.equal(keeper.length, 2);
      for (let round = 1; round <= 2; round++) {
        await helmOn(
          'install',
          namespace,
          CHART,
          '--create-namespace',
          '--set',
          'fence.keepLeaseParamKeeper=true',
        );
        await helmOn('uninstall', namespace);
        await waitUntilGone(objects.filter((object) => !isCrd(object) && !isKeeper(object)));
        for (const object of keeper) {
          const live = await read(object);
          assert.ok(live !== undefined, `round ${round}: helm uninstall removed ${objectKey(object)}`);
          assert.equal(live.metadata?.deletionTimestamp, undefined, objectKey(object));
        }
      }
    });
  });
});

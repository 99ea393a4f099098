// The clean-up after uninstalling (src/controller/finalizer-cleanup.ts and `ssj-operator cleanup`)
// against the real API server: our finalizer goes from every Pod labelled ssj.dev/job, every other
// finalizer stays, unlabelled Pods are not touched, and Pods already deleted actually disappear.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { FINALIZER_RUN_RECORD, LABEL_JOB } from '../../../src/api/types.ts';
import { removeRunRecordFinalizers } from '../../../src/controller/finalizer-cleanup.ts';
import { kubeWriter } from '../../../src/controller/kube-writer.ts';
import type { KubeWriter } from '../../../src/controller/ports.ts';
import { nopLogger } from '../../../src/observability/log.ts';
import {
  REPOSITORY_ROOT,
  apiStatus,
  deleteNamespaceAndReleasePods,
  kubeconfigPath,
  kubectl,
  loadKubeConfig,
  newNamespace,
  requireCluster,
  waitFor,
} from '../../support/kube.ts';

const execFileAsync = promisify(execFile);
const FOREIGN = 'example.com/keep-me';
const TIMEOUT = 30_000;

function pod(name: string, finalizers: string[], labelled = true): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, finalizers, ...(labelled ? { labels: { [LABEL_JOB]: 'nightly' } } : {}) },
    spec: { containers: [{ name: 'c', image: 'busybox:1.36', command: ['true'] }], restartPolicy: 'Never' },
  };
}

/**
 * A namespace holding: `ours` (our finalizer), `shared` (ours and a foreign one), `deleted` (ours,
 * already deleted, so held in Terminating), `clean` (labelled, no finalizer) and `unlabelled`
 * (ours, but no ssj.dev/job label: not ours to clean).
 */
async function populate(kc: KubeConfig, prefix: string): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const ns = await newNamespace(prefix, kc);
  await waitFor(() => core.readNamespacedServiceAccount({ namespace: ns, name: 'default' }), {
    timeoutMs: TIMEOUT,
    description: `the default ServiceAccount of ${ns}`,
  });
  for (const body of [
    pod('ours', [FINALIZER_RUN_RECORD]),
    pod('shared', [FOREIGN, FINALIZER_RUN_RECORD]),
    pod('deleted', [FINALIZER_RUN_RECORD]),
    pod('clean', []),
    pod('unlabelled', [FINALIZER_RUN_RECORD], false),
  ]) {
    await core.createNamespacedPod({ namespace: ns, body });
  }
  await core.deleteNamespacedPod({ namespace: ns, name: 'deleted' });
  return ns;
}

async function finalizersOf(kc: KubeConfig, ns: string, name: string): Promise<string[] | 'absent'> {
  try {
    const p = await kc.makeApiClient(CoreV1Api).readNamespacedPod({ namespace: ns, name });
    return p.metadata?.finalizers ?? [];
  } catch (err) {
    if (apiStatus(err)?.code === 404) return 'absent';
    throw err;
  }
}

/** The state populate() leaves, once cleaned: asserts it. */
async function assertCleaned(kc: KubeConfig, ns: string): Promise<void> {
  assert.deepEqual(await finalizersOf(kc, ns, 'ours'), []);
  assert.deepEqual(await finalizersOf(kc, ns, 'shared'), [FOREIGN]);
  assert.deepEqual(await finalizersOf(kc, ns, 'clean'), []);
  assert.deepEqual(
    await finalizersOf(kc, ns, 'unlabelled'),
    [FINALIZER_RUN_RECORD],
    'unlabelled Pods are left alone',
  );
  await waitFor(async () => (await finalizersOf(kc, ns, 'deleted')) === 'absent', {
    timeoutMs: TIMEOUT,
    description: `the deleted Pod ${ns}/deleted gone`,
  });
}

/** Runs `ssj-operator cleanup --namespace=<ns>` as a child process; returns its summary line. */
async function runCleanup(kubeconfig: string, ns: string): Promise<Record<string, unknown>> {
  const { stdout } = await execFileAsync(
    join(REPOSITORY_ROOT, 'e2e/toolchain/node'),
    ['src/main.ts', 'cleanup', `--namespace=${ns}`],
    {
      cwd: REPOSITORY_ROOT,
      env: { ...process.env, KUBECONFIG: kubeconfig, DATABASE_URL: '' },
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  const lines = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const summary = lines.find((l) => l['msg'] === 'finalizers removed');
  assert.ok(summary !== undefined, stdout);
  return summary;
}

describe('removing the tracking finalizer after uninstalling', () => {
  const kc = loadKubeConfig();
  const namespaces: string[] = [];
  let kube: KubeWriter;
  let core: CoreV1Api;

  before(async () => {
    await requireCluster(kc);
    core = kc.makeApiClient(CoreV1Api);
    kube = kubeWriter(core, kc.makeApiClient(CustomObjectsApi));
  });

  after(async () => {
    for (const ns of namespaces) await deleteNamespaceAndReleasePods(ns, kc);
  });

  it('in one namespace: removes ours from labelled Pods, keeps foreign ones, and deleted Pods go', async () => {
    const ns = await populate(kc, 'cleanup-one');
    const other = await populate(kc, 'cleanup-other');
    namespaces.push(ns, other);
    // Pages of two, so that following the continue token is part of the proof.
    const result = await removeRunRecordFinalizers({
      core,
      kube,
      namespace: ns,
      log: nopLogger,
      pageSize: 2,
    });
    assert.deepEqual(result, { removed: 3, gone: 0, failed: 0 });
    await assertCleaned(kc, ns);
    assert.deepEqual(
      await finalizersOf(kc, other, 'ours'),
      [FINALIZER_RUN_RECORD],
      'another namespace is untouched',
    );

    const again = await removeRunRecordFinalizers({ core, kube, namespace: ns, log: nopLogger });
    assert.deepEqual(again, { removed: 0, gone: 0, failed: 0 }, 'running it again is a no-op');
  });

  it('in all namespaces: lists Pods of every namespace', async () => {
    const a = await populate(kc, 'cleanup-all-a');
    const b = await populate(kc, 'cleanup-all-b');
    namespaces.push(a, b);
    // The cluster is shared with other suites: the removals outside this test's namespaces are
    // recorded, not sent, so that only the listing spans the whole cluster.
    const elsewhere: string[] = [];
    const scoped: Pick<KubeWriter, 'removeFinalizer'> = {
      removeFinalizer: (namespace, name, uid) => {
        if (namespace === a || namespace === b) return kube.removeFinalizer(namespace, name, uid);
        elsewhere.push(`${namespace}/${name}`);
        return Promise.resolve('gone');
      },
    };
    const result = await removeRunRecordFinalizers({ core, kube: scoped, namespace: '', log: nopLogger });
    assert.equal(result.removed, 6);
    assert.equal(result.failed, 0);
    await assertCleaned(kc, a);
    await assertCleaned(kc, b);
  });

  it('as the subcommand `ssj-operator cleanup --namespace`, logging the count and exiting 0', async () => {
    const ns = await populate(kc, 'cleanup-cli');
    namespaces.push(ns);
    const summary = await runCleanup(kubeconfigPath(), ns);
    assert.equal(summary['removed'], 3);
    assert.equal(summary['failed'], 0);
    await assertCleaned(kc, ns);
  });

  it("as the subcommand, with only the rights of config/rbac (the operator's ServiceAccount)", async () => {
    await kubectl([
      'apply',
      '--server-side',
      '--force-conflicts',
      '-k',
      join(REPOSITORY_ROOT, 'config/rbac'),
    ]);
    const token = (
      await core.createNamespacedServiceAccountToken({
        namespace: 'ssj-system',
        name: 'ssj-operator',
        body: { spec: { audiences: [], expirationSeconds: 600 } },
      })
    ).status?.token;
    const cluster = kc.getCurrentCluster();
    assert.ok(token !== undefined && token !== '' && cluster !== null);
    const operator = new KubeConfig();
    operator.loadFromOptions({
      clusters: [{ name: 'local', server: cluster.server, caData: cluster.caData }],
      users: [{ name: 'ssj-operator', token }],
      contexts: [{ name: 'local', cluster: 'local', user: 'ssj-operator' }],
      currentContext: 'local',
    });
    const dir = await mkdtemp(join(tmpdir(), 'ssj-cleanup-'));
    try {
      const kubeconfig = join(dir, 'kubeconfig');
      await writeFile(kubeconfig, operator.exportConfig());
      const ns = await populate(kc, 'cleanup-rbac');
      namespaces.push(ns);
      const summary = await runCleanup(kubeconfig, ns);
      assert.equal(summary['removed'], 3);
      assert.equal(summary['failed'], 0);
      await assertCleaned(kc, ns);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

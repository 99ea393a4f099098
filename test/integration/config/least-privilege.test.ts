// The manifests in config/ are what users apply. This suite applies config/rbac to the real
// cluster and runs the operator as that ServiceAccount (a bound token, not admin), proving the
// ClusterRole grants what the operator uses: it must schedule a job, create its Pod and write
// its status without a single Forbidden.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import {
  REPOSITORY_ROOT,
  deleteNamespace,
  kubectl,
  loadKubeConfig,
  newNamespace,
  requireCluster,
  waitFor,
} from '../../support/kube.ts';

describe('the operator under config/rbac', () => {
  const admin = loadKubeConfig();
  let ns: string;
  let dir: string;
  let operator: ChildProcess | undefined;
  let logs = '';

  before(async () => {
    await requireCluster(admin);
    await kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(REPOSITORY_ROOT, 'crds')]);
    await kubectl([
      'apply',
      '--server-side',
      '--force-conflicts',
      '-k',
      join(REPOSITORY_ROOT, 'config/rbac'),
    ]);
    ns = await newNamespace('ssj-rbac', admin);
    dir = await mkdtemp(join(tmpdir(), 'ssj-rbac-'));
  });

  after(async () => {
    if (operator !== undefined && operator.exitCode === null) {
      operator.kill('SIGTERM');
      await new Promise((resolve) => operator?.once('exit', resolve));
    }
    await deleteNamespace(ns, admin);
    await rm(dir, { recursive: true, force: true });
  });

  it('schedules a job, creates its Pod and writes its status with only the granted rights', async () => {
    const core = admin.makeApiClient(CoreV1Api);
    const token = (
      await core.createNamespacedServiceAccountToken({
        namespace: 'ssj-system',
        name: 'ssj-operator',
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      })
    ).status?.token;
    assert.ok(token !== undefined && token !== '');
    const cluster = admin.getCurrentCluster();
    assert.ok(cluster);
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'local', server: cluster.server, caData: cluster.caData }],
      users: [{ name: 'ssj-operator', token }],
      contexts: [{ name: 'local', cluster: 'local', user: 'ssj-operator' }],
      currentContext: 'local',
    });
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, kc.exportConfig());

    await admin.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: 'ssj.dev',
      version: 'v1alpha1',
      namespace: ns,
      plural: 'singletonjobs',
      body: {
        apiVersion: 'ssj.dev/v1alpha1',
        kind: 'ScheduledSingletonJob',
        metadata: { name: 'every-2s' },
        spec: {
          schedule: '*/2 * * * * *',
          template: { spec: { containers: [{ name: 'c', image: 'busybox:1.36', command: ['true'] }] } },
        },
      },
    });

    operator = spawn(
      join(REPOSITORY_ROOT, 'e2e/toolchain/node'),
      [
        'src/main.ts',
        `--namespace=${ns}`,
        '--metrics-bind-address=127.0.0.1:0',
        '--health-probe-bind-address=127.0.0.1:0',
        '--leader-election-namespace=ssj-system',
      ],
      {
        cwd: REPOSITORY_ROOT,
        env: { ...process.env, KUBECONFIG: kubeconfig, DATABASE_URL: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    operator.stdout?.on('data', (chunk: Buffer) => (logs += chunk.toString()));
    operator.stderr?.on('data', (chunk: Buffer) => (logs += chunk.toString()));

    await waitFor(
      async () => {
        const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'ssj.dev/job=every-2s' });
        return pods.items.length > 0;
      },
      { timeoutMs: 30_000 },
    );
    await waitFor(
      async () => {
        const job = (await admin.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
          group: 'ssj.dev',
          version: 'v1alpha1',
          namespace: ns,
          plural: 'singletonjobs',
          name: 'every-2s',
        })) as { status?: { lastScheduleTime?: string } };
        return job.status?.lastScheduleTime !== undefined;
      },
      { timeoutMs: 15_000 },
    );
    assert.equal(operator.exitCode, null, `the operator exited: ${logs}`);
    assert.doesNotMatch(logs, /forbidden/i, 'the operator was refused something it needs');
  });
});

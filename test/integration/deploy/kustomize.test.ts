// `make deploy` and `make undeploy` (e2e/deploy/) against config/default, on a kube-apiserver
// and kube-controller-manager of this file's own: they install and remove cluster-scoped
// objects (the CRD, ClusterRoles, admission policies), and removing the policies freezes that
// API server's Lease cache (kubernetes#130887), which must never happen to the shared cluster.
// The controller-manager is there for what an uninstall relies on: the Deployment and ReplicaSet
// controllers (the operator's Pods, admitted by Pod Security), the garbage collector (a job's
// Pods), and the namespace controller. There is no scheduler and no kubelet: the operator's
// Pods stay Pending, and no operator runs.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type V1Pod,
} from '@kubernetes/client-node';
import { parseManifests } from '../../support/manifests.ts';
import { startPrivateApiServer, type PrivateApiServer } from '../policy/private-api-server.ts';
import { REPOSITORY_ROOT, apiStatus, newNamespace, waitFor } from '../../support/kube.ts';

const execFileAsync = promisify(execFile);
const NS = 'ssj-system';
const LEASE = 'ssj-operator-leader';
const FINALIZER = 'ssj.dev/run-record';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

describe('config/default installed and removed by make deploy / make undeploy', () => {
  let server: PrivateApiServer;
  let controllerManager: ChildProcess | undefined;
  let dir: string;
  let kubectlBin: string;

  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    ...process.env,
    KUBECONFIG: server.kubeconfigPath,
    KUBECTL: kubectlBin,
    ...extra,
  });
  const script = async (name: string, extra: Record<string, string> = {}): Promise<Run> => {
    try {
      const { stdout, stderr } = await execFileAsync(join(REPOSITORY_ROOT, 'e2e/deploy', name), {
        cwd: REPOSITORY_ROOT,
        env: env(extra),
        encoding: 'utf8',
        timeout: 300_000,
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code?: unknown; stdout?: string; stderr?: string };
      return {
        code: typeof e.code === 'number' ? e.code : -1,
        stdout: e.stdout ?? '',
        stderr: e.stderr ?? '',
      };
    }
  };
  const kubectl = async (args: readonly string[]): Promise<string> =>
    (
      await execFileAsync(kubectlBin, ['--kubeconfig', server.kubeconfigPath, ...args], {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      })
    ).stdout;
  const rendered = async (): Promise<string> =>
    kubectl(['kustomize', join(REPOSITORY_ROOT, 'config/default')]);
  /** kind/namespace/name of every object in a YAML or JSON list. */
  const identities = (objects: readonly Record<string, unknown>[]): string[] =>
    objects
      .map((o) => {
        const meta = (o['metadata'] ?? {}) as { name?: string; namespace?: string };
        return `${String(o['kind'])}/${meta.namespace ?? ''}/${meta.name ?? ''}`;
      })
      .sort();
  const renderedObjects = async (): Promise<Record<string, unknown>[]> =>
    parseManifests(await rendered(), 'kubectl kustomize config/default');
  /** Which of config/default's objects the server has now. */
  const existing = async (): Promise<string[]> => {
    const input = await rendered();
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(
        kubectlBin,
        ['--kubeconfig', server.kubeconfigPath, 'get', '-f', '-', '--ignore-not-found', '-o', 'json'],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let text = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (text += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
      child.once('error', reject);
      child.once('exit', (code) => {
        if (code === 0) resolve(text);
        else reject(new Error(`kubectl get -f - exited ${String(code)}: ${err}`));
      });
      child.stdin.end(input);
    });
    if (out.trim() === '') return [];
    const parsed = JSON.parse(out) as { kind?: string; items?: Record<string, unknown>[] };
    return identities(parsed.kind === 'List' ? (parsed.items ?? []) : [parsed]);
  };

  before(async () => {
    const bin = (
      await execFileAsync(join(REPOSITORY_ROOT, 'e2e/cluster/binaries.sh'), { encoding: 'utf8' })
    ).stdout.trim();
    kubectlBin = join(bin, 'kubectl');
    server = await startPrivateApiServer();
    dir = await mkdtemp(join(tmpdir(), 'ssj-deploy-kcm-'));
    const log = openSync(join(dir, 'kube-controller-manager.log'), 'a');
    try {
      // up.sh's flags, but with the admin's credentials for every controller (this API server's
      // signing key is not ours to read), which only the ServiceAccount token controller needs.
      controllerManager = spawn(
        join(bin, 'kube-controller-manager'),
        [
          `--kubeconfig=${server.kubeconfigPath}`,
          '--leader-elect=false',
          '--controllers=*',
          '--bind-address=127.0.0.1',
          '--secure-port=0',
          '--v=1',
        ],
        { detached: true, stdio: ['ignore', log, log] },
      );
    } finally {
      closeSync(log);
    }
    const kcm = controllerManager;
    process.once('exit', killControllerManager);
    // The ServiceAccount controller at work: the controller-manager runs.
    await waitFor(
      async () => {
        if (kcm.exitCode !== null)
          throw new Error(await readFile(join(dir, 'kube-controller-manager.log'), 'utf8'));
        await server.kc
          .makeApiClient(CoreV1Api)
          .readNamespacedServiceAccount({ namespace: 'default', name: 'default' });
        return true;
      },
      {
        timeoutMs: 90_000,
        intervalMs: 500,
        description: 'kube-controller-manager to create default/default',
      },
    );
  });

  /** Its whole process group; on a normal or uncaught exit of this file too. */
  const killControllerManager = (): void => {
    const kcm = controllerManager;
    if (kcm?.pid === undefined || kcm.exitCode !== null || kcm.signalCode !== null) return;
    try {
      process.kill(-kcm.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };

  after(async () => {
    const kcm = controllerManager;
    if (kcm?.pid !== undefined && kcm.exitCode === null && kcm.signalCode === null) {
      const exited = new Promise((resolve) => kcm.once('exit', resolve));
      process.kill(-kcm.pid, 'SIGTERM');
      await exited;
    }
    process.removeListener('exit', killControllerManager);
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('deploy creates every object of config/default, three replicas that Pod Security restricted admits, and a working fence', async () => {
    const run = await script('deploy.sh');
    assert.equal(run.code, 0, `deploy.sh failed:\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /fence check: a stale term's Pod is refused, and the fence follows the Lease/);

    assert.deepEqual(
      await existing(),
      identities(await renderedObjects()),
      'objects on the server (actual) against config/default (expected)',
    );

    const apps = server.kc.makeApiClient(AppsV1Api);
    const deployment = await apps.readNamespacedDeployment({ namespace: NS, name: 'ssj-operator' });
    assert.equal(deployment.spec?.replicas, 3);
    const namespace = await server.kc.makeApiClient(CoreV1Api).readNamespace({ name: NS });
    assert.equal(namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');

    // The ReplicaSet controller's Pods exist only if Pod Security admitted them.
    const core = server.kc.makeApiClient(CoreV1Api);
    await waitFor(
      async () =>
        (
          await core.listNamespacedPod({
            namespace: NS,
            labelSelector: 'app.kubernetes.io/name=ssj-operator',
          })
        ).items.length === 3,
      { timeoutMs: 60_000, intervalMs: 500, description: 'three operator Pods created by the ReplicaSet' },
    );

    // And a dry run in a namespace of the test's own, enforcing restricted, with a broken twin
    // that must be refused (so this check can fail).
    const restricted = `ssj-pss-${randomBytes(4).toString('hex')}`;
    await core.createNamespace({
      body: {
        metadata: {
          name: restricted,
          labels: {
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': 'latest',
          },
        },
      },
    });
    await core.createNamespacedServiceAccount({
      namespace: restricted,
      body: { metadata: { name: 'ssj-operator' } },
    });
    const template = deployment.spec.template;
    const podSpec = template.spec;
    assert.ok(podSpec !== undefined);
    const pod = (spec: typeof podSpec): V1Pod => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'from-template', namespace: restricted, labels: template.metadata?.labels },
      spec,
    });
    await core.createNamespacedPod({ namespace: restricted, body: pod(podSpec), dryRun: 'All' });
    const weaker = structuredClone(podSpec);
    const container = weaker.containers[0];
    assert.ok(container?.securityContext !== undefined);
    container.securityContext.allowPrivilegeEscalation = true;
    await assert.rejects(
      core.createNamespacedPod({ namespace: restricted, body: pod(weaker), dryRun: 'All' }),
      (error: unknown) => {
        const status = apiStatus(error);
        assert.equal(status?.code, 403);
        assert.match(status.message, /violates PodSecurity "restricted:latest"/);
        return true;
      },
    );
  });

  it('undeploy removes every object, and the tracking finalizer from every Pod, a deleted one included', async () => {
    // Pods as the operator would have left them: one running, one deleted and held by its
    // finalizer. The fence admits them only from the Lease's holder and term, so the test takes
    // the Lease as a leader would.
    const coordination = server.kc.makeApiClient(CoordinationV1Api);
    const lease = await coordination.readNamespacedLease({ namespace: NS, name: LEASE });
    const term = (lease.spec?.leaseTransitions ?? 0) + 1;
    await coordination.replaceNamespacedLease({
      namespace: NS,
      name: LEASE,
      body: {
        metadata: { name: LEASE, namespace: NS, resourceVersion: lease.metadata?.resourceVersion },
        spec: { holderIdentity: 'test-leader', leaseDurationSeconds: 15, leaseTransitions: term },
      },
    });
    const team = await newNamespace('ssj-team', server.kc);
    const core = server.kc.makeApiClient(CoreV1Api);
    await waitFor(
      async () => {
        await core.readNamespacedServiceAccount({ namespace: team, name: 'default' });
        return true;
      },
      { timeoutMs: 30_000, description: `the default ServiceAccount of ${team}` },
    );
    const job = (await server.kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: 'ssj.dev',
      version: 'v1alpha1',
      namespace: team,
      plural: 'singletonjobs',
      body: {
        apiVersion: 'ssj.dev/v1alpha1',
        kind: 'ScheduledSingletonJob',
        metadata: { name: 'nightly' },
        spec: {
          schedule: '0 2 * * *',
          template: { spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] } },
        },
      },
    })) as { metadata: { uid: string } };
    const runPod = (name: string, tick: number): V1Pod => ({
      metadata: {
        name,
        namespace: team,
        labels: { 'ssj.dev/job': 'nightly', 'ssj.dev/tick': String(tick), 'ssj.dev/attempt': '1' },
        annotations: { 'ssj.dev/term': String(term), 'ssj.dev/holder': 'test-leader' },
        finalizers: [FINALIZER],
        ownerReferences: [
          {
            apiVersion: 'ssj.dev/v1alpha1',
            kind: 'ScheduledSingletonJob',
            name: 'nightly',
            uid: job.metadata.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox:1.36' }] },
    });
    for (const [name, tick] of [
      ['nightly-1767225600', 1767225600],
      ['nightly-1767312000', 1767312000],
    ] as const) {
      // The fence's cache follows the Lease write within milliseconds, not at once.
      await waitFor(
        async () => {
          await core.createNamespacedPod({ namespace: team, body: runPod(name, tick) });
          return true;
        },
        { timeoutMs: 10_000, description: `Pod ${name} admitted by the fence` },
      );
    }
    await core.deleteNamespacedPod({ namespace: team, name: 'nightly-1767225600' });
    const held = await core.readNamespacedPod({ namespace: team, name: 'nightly-1767225600' });
    assert.ok(held.metadata?.deletionTimestamp !== undefined, 'the deleted Pod is held by its finalizer');
    // A Lease nobody renews: the operator that held it is gone.
    await coordination.patchNamespacedLease({
      namespace: NS,
      name: LEASE,
      body: [{ op: 'replace', path: '/spec/holderIdentity', value: '' }],
    });

    const run = await script('undeploy.sh');
    assert.equal(run.code, 0, `undeploy.sh failed:\n${run.stdout}\n${run.stderr}`);

    assert.deepEqual(await existing(), [], 'objects of config/default left on the server');
    const left = (await core.listPodForAllNamespaces({ labelSelector: 'ssj.dev/job' })).items;
    assert.deepEqual(
      left.map(
        (p) =>
          `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''} ${JSON.stringify(p.metadata?.finalizers ?? [])}`,
      ),
      [],
      'run Pods left behind',
    );
    await assert.rejects(
      core.readNamespace({ name: NS }),
      (error: unknown) => apiStatus(error)?.code === 404,
    );
  });

  it('a redeploy after undeploy fails its fence check, naming kubernetes#130887 and the restart, and passes after one', async () => {
    const frozen = await script('deploy.sh', { SSJ_FENCE_CHECK_TIMEOUT_SECONDS: '8' });
    assert.notEqual(
      frozen.code,
      0,
      `deploy.sh passed on a frozen Lease cache:\n${frozen.stdout}\n${frozen.stderr}`,
    );
    assert.match(
      frozen.stderr,
      /fence check FAILED: the API-server fence does not follow the leader Lease ssj-system\/ssj-operator-leader/,
    );
    assert.match(frozen.stderr, /kubernetes#130887/);
    assert.match(frozen.stderr, /restart every kube-apiserver/);

    await server.restart();
    const fixed = await script('deploy.sh');
    assert.equal(fixed.code, 0, `deploy.sh failed after the restart:\n${fixed.stdout}\n${fixed.stderr}`);
    assert.deepEqual(await existing(), identities(await renderedObjects()));
  });

  it('undeploy with KEEP_LEASE_PARAM_KEEPER=1 leaves only the keeper, and a redeploy then needs no restart', async () => {
    const kept = await script('undeploy.sh', { KEEP_LEASE_PARAM_KEEPER: '1' });
    assert.equal(kept.code, 0, `undeploy.sh failed:\n${kept.stdout}\n${kept.stderr}`);
    assert.deepEqual(await existing(), [
      'ValidatingAdmissionPolicy//ssj-operator-lease-param-keeper.ssj.dev',
      'ValidatingAdmissionPolicyBinding//ssj-operator-lease-param-keeper.ssj.dev',
    ]);

    const again = await script('deploy.sh');
    assert.equal(again.code, 0, `deploy.sh failed over a kept keeper:\n${again.stdout}\n${again.stderr}`);
    assert.match(again.stdout, /fence check: a stale term's Pod is refused/);
  });
});

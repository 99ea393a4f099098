/**
 * End to end on the real node: the operator as a platform team runs it. `make deploy`'s script
 * builds the operator's image from this checkout the way the Dockerfile describes it, imports it
 * into the node, and config/default runs its three replicas there as Pods under their
 * ServiceAccount; one of them leads, and a job runs through it.
 *
 * The test leaves the cluster as it found it: undeploy (keeping the Lease keeper's policy, so the
 * API server's Lease cache does not freeze: docs/adr/0010-api-server-fence.md), then the CRD
 * again, which the other suites need.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import {
  kubeconfigPath,
  kubectl,
  loadKubeConfig,
  REPOSITORY_ROOT,
  waitFor,
} from '../../test/support/kube.ts';
import { ANNOTATION_HOLDER, expectedPodName, historyRuns, LEADER_LEASE } from '../support/checker.ts';
import { openScenario, scheduleAt, secondsFromNow } from '../support/scenario.ts';
import { nodeTemplate, realNodeName, requireRealNode } from './node.ts';

const execFileAsync = promisify(execFile);
const NS = 'ssj-system';

async function script(name: string, env: Record<string, string> = {}): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync(`e2e/deploy/${name}`, [], {
      cwd: REPOSITORY_ROOT,
      env: { ...process.env, KUBECONFIG: kubeconfigPath(), ...env },
      encoding: 'utf8',
      timeout: 300_000,
    });
    return stdout + stderr;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${name} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, { cause: error });
  }
}

describe('the operator deployed on the node', () => {
  before(async () => {
    await requireRealNode(loadKubeConfig());
  });

  it('make deploy runs the three replicas of the locally built image on the node under their ServiceAccount, and a job runs through the leader', async (t) => {
    const kc = loadKubeConfig();
    t.after(async () => {
      await script('undeploy.sh', { KEEP_LEASE_PARAM_KEEPER: '1' });
      await kubectl(['apply', '--server-side', '--force-conflicts', '-f', `${REPOSITORY_ROOT}crds/`]);
      await waitFor(
        async () =>
          (await kubectl([
            'wait',
            '--for',
            'condition=Established',
            '--timeout=30s',
            'crd/singletonjobs.ssj.dev',
          ])) !== '',
        { timeoutMs: 60_000, description: 'the CRD Established again' },
      );
    });
    const out = await script('deploy.sh');
    assert.match(out, /deployment "ssj-operator" successfully rolled out/);

    const node = realNodeName();
    const pods = (await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: NS })).items.filter(
      (p) =>
        p.metadata?.labels?.['app.kubernetes.io/name'] === 'ssj-operator' &&
        p.metadata.deletionTimestamp === undefined,
    );
    assert.equal(pods.length, 3, 'three replicas');
    for (const p of pods) {
      const name = p.metadata?.name ?? '';
      assert.equal(p.spec?.nodeName, node, `${name} runs on the node`);
      assert.equal(p.spec.serviceAccountName, 'ssj-operator', `${name} runs as its ServiceAccount`);
      assert.equal(p.status?.phase, 'Running', `${name} is Running`);
      const status = p.status.containerStatuses?.[0];
      assert.equal(status?.ready, true, `${name} passed its readiness probe`);
      assert.match(status.image, /ssj-operator:latest$/, `${name} runs the locally built image`);
    }
    const replicas = new Set(pods.map((p) => p.metadata?.name));
    const leader = await waitFor(
      async () => {
        const lease = await kc
          .makeApiClient(CoordinationV1Api)
          .readNamespacedLease({ namespace: NS, name: LEADER_LEASE });
        const holder = lease.spec?.holderIdentity ?? '';
        return [...replicas].find((r) => r !== undefined && holder.startsWith(`${r}_`));
      },
      { timeoutMs: 30_000, description: 'one replica holds the leader Lease' },
    );

    const s = await openScenario('node-deployed', 'status');
    t.after(() => s.close());
    const tick = secondsFromNow(4000);
    await s.createJob('through', {
      schedule: scheduleAt([tick]),
      template: nodeTemplate('echo "run by the deployed operator"'),
    });
    const name = expectedPodName('through', tick);
    await s.waitForJob(
      'through',
      (j) => historyRuns(j).find((h) => h.podName === name && h.outcome === 'Succeeded'),
      `${name} Succeeded`,
      40_000,
    );
    const [pod] = s.pods.byName(name);
    assert.ok(
      pod?.annotations[ANNOTATION_HOLDER]?.startsWith(`${leader}_`),
      `${name} was created by the leader ${leader} (holder ${pod?.annotations[ANNOTATION_HOLDER]})`,
    );
    assert.equal((await s.kubectl(['logs', name])).trim(), 'run by the deployed operator');
    await s.invariants(['through']);
  });
});

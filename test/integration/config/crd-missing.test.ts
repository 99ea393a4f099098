// The operator needs the CRD but does not install it (DESIGN.md: users install it). Without it
// the operator must end at once with one clear line, not retry for ever or print a stack trace.
// This suite removes the CRD and puts it back; integration files run one at a time.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ApiextensionsV1Api } from '@kubernetes/client-node';
import {
  REPOSITORY_ROOT,
  apiStatus,
  kubeconfigPath,
  kubectl,
  loadKubeConfig,
  requireCluster,
  waitFor,
} from '../../support/kube.ts';

const CRD = 'singletonjobs.ssj.dev';

describe('the operator without its CRD', () => {
  const kc = loadKubeConfig();

  before(async () => {
    await requireCluster(kc);
    await kubectl(['delete', 'crd', CRD, '--ignore-not-found', '--wait=true']);
    const api = kc.makeApiClient(ApiextensionsV1Api);
    await waitFor(
      async () => {
        try {
          await api.readCustomResourceDefinition({ name: CRD });
          return false;
        } catch (err) {
          return apiStatus(err)?.code === 404;
        }
      },
      { timeoutMs: 30_000, description: 'the CRD to be gone' },
    );
  });

  after(async () => {
    await kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(REPOSITORY_ROOT, 'crds')]);
    // Not `kubectl wait`: it fails on a CRD whose status has no conditions yet.
    const api = kc.makeApiClient(ApiextensionsV1Api);
    await waitFor(
      async () => {
        const crd = await api.readCustomResourceDefinition({ name: CRD });
        return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') === true;
      },
      { timeoutMs: 60_000, description: 'the CRD to be Established again' },
    );
  });

  it('exits 1 with one line that says how to install it', async () => {
    const child = spawn(
      join(REPOSITORY_ROOT, 'e2e/toolchain/node'),
      ['src/main.ts', '--metrics-bind-address=127.0.0.1:0', '--health-probe-bind-address=127.0.0.1:0'],
      {
        cwd: REPOSITORY_ROOT,
        env: { ...process.env, KUBECONFIG: kubeconfigPath(), DATABASE_URL: '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 1);
    assert.equal(
      stderr.trim(),
      `ssj-operator: the CRD ${CRD} is not installed: run "kubectl apply --server-side -f crds/"`,
    );
  });
});

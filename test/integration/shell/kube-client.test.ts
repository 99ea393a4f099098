// The instrumented client and the kubeconfig loader, through client-node's real request pipeline
// against the real kube-apiserver of the local cluster.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

import { ApiException, CoreV1Api, KubeConfig, V1ObjectMeta, V1Pod } from '@kubernetes/client-node';

import { loadKubeConfig } from '../../../src/config/kubeconfig.ts';
import { makeInstrumentedApiClient } from '../../../src/observability/api-requests.ts';
import { newMetrics } from '../../../src/observability/metrics.ts';
import {
  deleteNamespace,
  loadKubeConfig as loadTestKubeConfig,
  newNamespace,
  requireCluster,
} from '../../support/kube.ts';

function kubeConfigWithToken(admin: KubeConfig, token: string): KubeConfig {
  const cluster = admin.getCurrentCluster();
  assert.ok(cluster);
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'local', server: cluster.server, caData: cluster.caData, skipTLSVerify: false }],
    users: [{ name: 'sa', token }],
    contexts: [{ name: 'local', cluster: 'local', user: 'sa' }],
    currentContext: 'local',
  });
  return kc;
}

describe('makeInstrumentedApiClient', () => {
  const admin = loadTestKubeConfig();
  let ns: string;

  before(async () => {
    await requireCluster(admin);
    ns = await newNamespace('ssj-client', admin);
  });
  after(async () => {
    await deleteNamespace(ns, admin);
  });

  function pod(name: string): V1Pod {
    const p = new V1Pod();
    p.metadata = new V1ObjectMeta();
    p.metadata.name = name;
    p.spec = { containers: [{ name: 'c', image: 'busybox:1.36' }] };
    return p;
  }

  it('talks to the kubeconfig server with its credentials and counts each response by verb, resource and code', async () => {
    const metrics = newMetrics({ processMetrics: false });
    const core = makeInstrumentedApiClient(admin, CoreV1Api, metrics);

    const list = await core.listNamespacedPod({ namespace: ns });
    assert.deepEqual(list.items, []);
    await core.createNamespacedPod({ namespace: ns, body: pod('p') });
    await assert.rejects(
      core.createNamespacedPod({ namespace: ns, body: pod('p') }),
      (error: unknown) => error instanceof ApiException && error.code === 409,
    );

    const text = await metrics.registry.metrics();
    assert.match(text, /^ssj_api_requests_total\{verb="list",resource="pods",code="200"\} 1$/m);
    assert.match(text, /^ssj_api_requests_total\{verb="create",resource="pods",code="201"\} 1$/m);
    assert.match(text, /^ssj_api_requests_total\{verb="create",resource="pods",code="409"\} 1$/m);
  });

  it('sends a bearer token from the kubeconfig: the API server acts as that ServiceAccount', async () => {
    const core = admin.makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'probe' } } });
    const request = await core.createNamespacedServiceAccountToken({
      namespace: ns,
      name: 'probe',
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = request.status?.token;
    assert.ok(token !== undefined && token !== '');

    const metrics = newMetrics({ processMetrics: false });
    const asProbe = makeInstrumentedApiClient(kubeConfigWithToken(admin, token), CoreV1Api, metrics);
    // The ServiceAccount has no rights: the refusal names the identity the API server saw.
    await assert.rejects(asProbe.listNamespacedPod({ namespace: ns }), (error: unknown) => {
      assert.ok(error instanceof ApiException);
      assert.equal(error.code, 403);
      assert.match(String(error.body), new RegExp(`system:serviceaccount:${ns}:probe`));
      return true;
    });
    assert.match(
      await metrics.registry.metrics(),
      /^ssj_api_requests_total\{verb="list",resource="pods",code="403"\} 1$/m,
    );
  });

  it('counts a request to an address where no server listens as code "error"', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));

    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'gone', server: `https://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'gone', cluster: 'gone', user: 'u' }],
      currentContext: 'gone',
    });
    const metrics = newMetrics({ processMetrics: false });
    const core = makeInstrumentedApiClient(kc, CoreV1Api, metrics);
    await assert.rejects(core.readNamespacedPod({ namespace: 'a', name: 'p' }));
    assert.match(
      await metrics.registry.metrics(),
      /^ssj_api_requests_total\{verb="get",resource="pods",code="error"\} 1$/m,
    );
  });
});

describe('loadKubeConfig', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssj-kubeconfig-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const file = (cluster: string, server: string, current: boolean): string =>
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{ name: ${cluster}, cluster: { server: "${server}" } }]`,
      `users: [{ name: ${cluster}-user, user: { token: t } }]`,
      `contexts: [{ name: ${cluster}, context: { cluster: ${cluster}, user: ${cluster}-user } }]`,
      current ? `current-context: ${cluster}` : '',
    ].join('\n');

  it('merges a list of files, keeping the first current context, as kubectl does', async () => {
    const a = join(dir, 'a.yaml');
    const b = join(dir, 'b.yaml');
    await writeFile(a, file('one', 'https://one.example:6443', true));
    await writeFile(b, file('two', 'https://two.example:6443', true));
    const kc = loadKubeConfig([a, b].join(delimiter));
    assert.equal(kc.getCurrentContext(), 'one');
    assert.equal(kc.getCurrentCluster()?.server, 'https://one.example:6443');
    assert.deepEqual(
      kc.getClusters().map((c) => c.name),
      ['one', 'two'],
    );
  });

  it('takes the current context from a later file when the first sets none', async () => {
    const a = join(dir, 'c.yaml');
    const b = join(dir, 'd.yaml');
    await writeFile(a, file('three', 'https://three.example:6443', false));
    await writeFile(b, file('four', 'https://four.example:6443', true));
    assert.equal(loadKubeConfig(`${a}${delimiter}${b}`).getCurrentContext(), 'four');
  });

  it('fails clearly on a file that does not exist', () => {
    assert.throws(() => loadKubeConfig(join(dir, 'missing.yaml')), /ENOENT|no such file/);
  });
});

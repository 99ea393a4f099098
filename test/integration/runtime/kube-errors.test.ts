// classify() on errors the real API server (and a dead port) produce, through client-node.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig, V1ConfigMap } from '@kubernetes/client-node';
import { classify } from '../../../src/runtime/kube-errors.ts';
import type { KubeError } from '../../../src/runtime/kube-errors.ts';
import { deleteNamespace, loadKubeConfig, newNamespace, requireCluster } from '../../support/kube.ts';

async function failure(call: () => Promise<unknown>): Promise<KubeError> {
  try {
    await call();
  } catch (err) {
    return classify(err);
  }
  throw new Error('the call was expected to fail');
}

const configMap = (name: string, extra: Record<string, unknown> = {}, value = 'b') =>
  Object.assign(new V1ConfigMap(), { metadata: { name, ...extra }, data: { a: value } });

describe('classify (real API server)', () => {
  let kc: KubeConfig;
  let api: CoreV1Api;
  let ns = '';

  before(async () => {
    kc = loadKubeConfig();
    await requireCluster(kc);
    api = kc.makeApiClient(CoreV1Api);
    ns = await newNamespace('rt-errors', kc);
  });

  after(async () => {
    if (ns !== '') await deleteNamespace(ns, kc);
  });

  it('a missing object is NotFound', async () => {
    const e = await failure(() => api.readNamespacedConfigMap({ namespace: ns, name: 'missing' }));
    assert.equal(e.kind, 'NotFound');
    assert.equal(e.code, 404);
    assert.match(e.message, /"missing" not found/);
  });

  it('creating an object twice is AlreadyExists', async () => {
    await api.createNamespacedConfigMap({ namespace: ns, body: configMap('twice') });
    const e = await failure(() => api.createNamespacedConfigMap({ namespace: ns, body: configMap('twice') }));
    assert.equal(e.kind, 'AlreadyExists');
    assert.equal(e.reason, 'AlreadyExists');
  });

  it('an update with a stale resourceVersion is Conflict', async () => {
    const created = await api.createNamespacedConfigMap({ namespace: ns, body: configMap('stale') });
    const rv = created.metadata?.resourceVersion ?? '';
    // A real change (an identical update would keep the resourceVersion).
    await api.replaceNamespacedConfigMap({
      namespace: ns,
      name: 'stale',
      body: configMap('stale', { resourceVersion: rv }, 'changed'),
    });
    const e = await failure(() =>
      api.replaceNamespacedConfigMap({
        namespace: ns,
        name: 'stale',
        body: configMap('stale', { resourceVersion: rv }, 'again'),
      }),
    );
    assert.equal(e.kind, 'Conflict');
    assert.equal(e.code, 409);
  });

  it('an invalid object is Invalid, with the field in its causes', async () => {
    const e = await failure(() =>
      api.createNamespacedConfigMap({ namespace: ns, body: configMap('Not_Valid') }),
    );
    assert.equal(e.kind, 'Invalid');
    assert.equal(e.code, 422);
    assert.ok(
      e.causes?.some((c) => c.field === 'metadata.name'),
      JSON.stringify(e),
    );
  });

  it('a request the user may not make is Forbidden', async () => {
    const impersonating = new KubeConfig();
    impersonating.loadFromOptions({
      clusters: kc.clusters,
      users: kc.users.map((u) => ({ ...u, impersonateUser: 'ssj-nobody' })),
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
    const e = await failure(() =>
      impersonating.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: ns }),
    );
    assert.equal(e.kind, 'Forbidden');
    assert.equal(e.code, 403);
  });

  it('an API server that refuses connections is Transient', async () => {
    // A port that was free a moment ago: nothing listens on it.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => {
          resolve(p);
        });
      });
    });
    const dead = new KubeConfig();
    dead.loadFromOptions({
      clusters: kc.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${port}` })),
      users: kc.users,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
    const e = await failure(() => dead.makeApiClient(CoreV1Api).listNamespacedConfigMap({ namespace: ns }));
    assert.equal(e.kind, 'Transient');
    assert.equal(e.reason, 'ECONNREFUSED');
  });
});

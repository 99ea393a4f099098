// KeepAliveKubeConfig against the real kube-apiserver: API clients share connections instead of
// opening one (a TCP and a TLS handshake) per request, as client-node 2.0.1 does by itself.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';

import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';

import { KeepAliveKubeConfig, loadKubeConfig } from '../../../src/config/kubeconfig.ts';
import { kubeconfigPath, requireCluster } from '../../support/kube.ts';

/** How many connections undici opens while `work` runs. */
async function connectionsOpened(work: () => Promise<void>): Promise<number> {
  let opened = 0;
  const onConnect = (): void => {
    opened++;
  };
  subscribe('undici:client:beforeConnect', onConnect);
  try {
    await work();
  } finally {
    unsubscribe('undici:client:beforeConnect', onConnect);
  }
  return opened;
}

async function fiftyReads(kc: KubeConfig): Promise<number> {
  kc.loadFromFile(kubeconfigPath());
  await requireCluster(kc);
  const api = kc.makeApiClient(CoreV1Api);
  return connectionsOpened(async () => {
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 5 }, () => api.readNamespace({ name: 'default' })));
    }
  });
}

describe('KeepAliveKubeConfig', () => {
  it('reuses connections across requests: 50 reads, 5 at a time, open at most 10 connections (HTTP/1.1: one per request in flight, reused; client-node alone opens 50)', async () => {
    const opened = await fiftyReads(new KeepAliveKubeConfig());
    assert.ok(opened <= 10, `opened ${opened} connections`);
  });

  it('(the contrast) client-node as it is opens a connection per request', async () => {
    assert.equal(await fiftyReads(new KubeConfig()), 50);
  });

  it('is what loadKubeConfig returns', () => {
    assert.ok(loadKubeConfig(kubeconfigPath()) instanceof KeepAliveKubeConfig);
  });
});

// The resilient informers against the real API server: they sync, select what they should, and
// come back by themselves after their connection is cut and the API server is unreachable.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { CoreV1Api, CustomObjectsApi, V1Pod } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import {
  JOB_LABEL,
  SSJ_GROUP,
  SSJ_PLURAL,
  SSJ_VERSION,
  podInformer,
  singletonJobInformer,
} from '../../../src/runtime/informer.ts';
import type { Informer, InformerMetrics, WatchTiming } from '../../../src/runtime/informer.ts';
import { loadKubeConfig as loadOperatorKubeConfig } from '../../../src/config/kubeconfig.ts';
import {
  REPOSITORY_ROOT,
  apiStatus,
  deleteNamespace,
  kubeconfigPath,
  kubectl,
  loadKubeConfig,
  newNamespace,
  requireCluster,
  waitFor,
} from '../../support/kube.ts';
import { CuttableProxy, apiServerAddress } from './cuttable-proxy.ts';

const TIMEOUT = 30_000;

function recordingMetrics() {
  const events: string[] = [];
  let restarts = 0;
  const metrics: InformerMetrics = {
    watchEvent: (resource, type) => events.push(`${resource}:${type}`),
    informerRestart: () => {
      restarts++;
    },
  };
  return { metrics, events, restarts: () => restarts };
}

function recordingLogger() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  return {
    lines,
    logger: {
      warn: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'warn', obj, msg }),
      info: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'info', obj, msg }),
    },
  };
}

async function createPod(kc: KubeConfig, namespace: string, name: string, labels: Record<string, string>) {
  const api = kc.makeApiClient(CoreV1Api);
  const body = Object.assign(new V1Pod(), {
    metadata: { name, labels },
    spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] },
  });
  // A new namespace refuses Pods until kube-controller-manager has made its default ServiceAccount.
  await waitFor(
    async () => {
      try {
        return await api.createNamespacedPod({ namespace, body });
      } catch (err) {
        if (apiStatus(err)?.code === 409) return true;
        throw err;
      }
    },
    { timeoutMs: TIMEOUT, description: `pod ${namespace}/${name} created` },
  );
}

async function deletePod(kc: KubeConfig, namespace: string, name: string) {
  await kc.makeApiClient(CoreV1Api).deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 });
}

const names = (informer: Informer<V1Pod>) =>
  informer
    .list()
    .map((p) => p.metadata?.name ?? '')
    .sort();

describe('pod informer (real API server)', () => {
  let kc: KubeConfig;
  let ns = '';
  const informers: Informer<unknown>[] = [];
  const proxies: CuttableProxy[] = [];

  before(async () => {
    kc = loadKubeConfig();
    await requireCluster(kc);
    ns = await newNamespace('rt-informer', kc);
  });

  after(async () => {
    for (const i of informers) i.stop();
    for (const p of proxies) await p.close();
    if (ns !== '') await deleteNamespace(ns, kc);
  });

  it('syncs, and caches only the Pods labelled ssj.dev/job, from the list and from the watch', async () => {
    await createPod(kc, ns, 'listed', { [JOB_LABEL]: 'listed' });
    await createPod(kc, ns, 'plain-before', { app: 'other' });
    const { metrics, events } = recordingMetrics();
    const informer = podInformer(kc, { namespace: ns, metrics });
    informers.push(informer);
    const added: string[] = [];
    informer.on('add', (p) => added.push(p.metadata?.name ?? ''));

    await informer.start();
    assert.equal(informer.hasSynced(), true);
    assert.deepEqual(names(informer), ['listed']);

    await createPod(kc, ns, 'watched', { [JOB_LABEL]: 'watched' });
    await createPod(kc, ns, 'plain-after', { app: 'other' });
    await waitFor(() => informer.get(ns, 'watched'), {
      timeoutMs: TIMEOUT,
      description: 'watched pod cached',
    });
    // A change made after the unlabelled Pod was created: once it has arrived, the watch has
    // passed the unlabelled Pod too, so its absence from the cache is not a matter of timing.
    await kubectl(['-n', ns, 'annotate', 'pod', 'watched', 'ssj.dev/touch=1']);
    await waitFor(() => informer.get(ns, 'watched')?.metadata?.annotations?.['ssj.dev/touch'] === '1', {
      timeoutMs: TIMEOUT,
      description: 'annotation seen',
    });
    assert.deepEqual(names(informer), ['listed', 'watched']);
    assert.deepEqual(added.sort(), ['listed', 'watched']);
    assert.ok(events.includes('pods:ADDED') && events.includes('pods:MODIFIED'), events.join(','));

    // The same shape whether an object came from the list or from the watch.
    for (const name of ['listed', 'watched']) {
      const pod = informer.get(ns, name);
      assert.ok(pod?.metadata?.creationTimestamp instanceof Date, `${name}: creationTimestamp is a Date`);
      assert.equal(pod.metadata.managedFields, undefined, `${name}: managedFields dropped`);
    }
  });

  it('watching all namespaces, still sees only labelled Pods', async () => {
    const informer = podInformer(kc);
    informers.push(informer);
    await informer.start();
    await waitFor(() => informer.get(ns, 'listed'), { timeoutMs: TIMEOUT, description: 'labelled pod seen' });
    for (const pod of informer.list()) {
      assert.ok(pod.metadata?.labels?.[JOB_LABEL] !== undefined, `${pod.metadata?.name} has the label`);
    }
  });

  it('comes back by itself after its connection is reset and the API server is unreachable for a while', async () => {
    const proxy = await CuttableProxy.start(apiServerAddress(kc));
    proxies.push(proxy);
    const { metrics, restarts } = recordingMetrics();
    const { logger, lines } = recordingLogger();
    const informer = podInformer(proxy.kubeConfig(kc), {
      namespace: ns,
      metrics,
      logger,
      backoff: { initialMs: 200, maxMs: 1000 },
    });
    informers.push(informer);
    const deleted: string[] = [];
    informer.on('delete', (p) => deleted.push(p.metadata?.name ?? ''));
    await informer.start();
    assert.ok(informer.get(ns, 'listed'));

    await proxy.cut();
    // Changes while the informer cannot see the API server.
    await deletePod(kc, ns, 'listed');
    await createPod(kc, ns, 'during-outage', { [JOB_LABEL]: 'during-outage' });
    await waitFor(() => restarts() >= 2, {
      timeoutMs: TIMEOUT,
      description: 'at least two restarts while the API server is unreachable',
    });
    assert.equal(informer.lastError()?.kind, 'Transient', JSON.stringify(informer.lastError()));
    assert.ok(informer.get(ns, 'listed'), 'the cache is kept (stale) while disconnected');

    await proxy.resume();
    await waitFor(() => informer.get(ns, 'during-outage'), {
      timeoutMs: TIMEOUT,
      description: 'the pod created during the outage',
    });
    await waitFor(() => informer.get(ns, 'listed') === undefined, {
      timeoutMs: TIMEOUT,
      description: 'the pod deleted during the outage to leave the cache',
    });
    assert.deepEqual(deleted, ['listed']);
    assert.equal(informer.lastError(), undefined);
    assert.ok(
      lines.some((l) => l.level === 'warn' && l.msg === 'watch failed; restarting'),
      'each failure is logged',
    );
    assert.ok(lines.some((l) => l.msg === 'watch restored'));
  });
});

describe('ScheduledSingletonJob informer (real API server)', () => {
  let kc: KubeConfig;
  let ns = '';
  let informer: Informer<unknown> | undefined;

  before(async () => {
    kc = loadKubeConfig();
    await requireCluster(kc);
    await kubectl(['apply', '--server-side', '-f', `${REPOSITORY_ROOT}crds/ssj.dev_singletonjobs.yaml`]);
    await kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/singletonjobs.ssj.dev']);
    ns = await newNamespace('rt-ssj-informer', kc);
  });

  after(async () => {
    informer?.stop();
    if (ns !== '') await deleteNamespace(ns, kc);
  });

  it('syncs the jobs of its namespace and sees new ones through the watch', async () => {
    const api = kc.makeApiClient(CustomObjectsApi);
    const job = (name: string) => ({
      apiVersion: `${SSJ_GROUP}/${SSJ_VERSION}`,
      kind: 'ScheduledSingletonJob',
      metadata: { name },
      spec: {
        schedule: '0 2 * * *',
        template: { spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] } },
      },
    });
    const create = (name: string) =>
      api.createNamespacedCustomObject({
        group: SSJ_GROUP,
        version: SSJ_VERSION,
        namespace: ns,
        plural: SSJ_PLURAL,
        body: job(name),
      });
    await create('first');
    const jobs = singletonJobInformer(kc, { namespace: ns });
    informer = jobs;
    await jobs.start();
    assert.ok(jobs.get(ns, 'first'));
    await create('second');
    await waitFor(() => jobs.get(ns, 'second'), { timeoutMs: TIMEOUT, description: 'second job cached' });
    assert.equal(jobs.list().length, 2);
  });
});

// What a quiet watch costs (docs/adr/0020). The sockets that carried an informer's own requests
// are read off undici's diagnostics channel, so other clients of the process do not count.
describe('a quiet watch (real API server)', () => {
  let kc: KubeConfig;
  let ns = '';
  const informers: Informer<unknown>[] = [];

  before(async () => {
    kc = loadKubeConfig();
    await requireCluster(kc);
    ns = await newNamespace('rt-quiet-watch', kc);
  });

  after(async () => {
    for (const i of informers) i.stop();
    if (ns !== '') await deleteNamespace(ns, kc);
  });

  /** Watches `timing` the Pods of the test's namespace until four watches have been opened. */
  async function fourWatches(timing: Partial<WatchTiming>): Promise<{ watches: number; sockets: number }> {
    const prefix = `/api/v1/namespaces/${ns}/pods`;
    const sockets = new Set<unknown>();
    let watches = 0;
    const onHeaders = (message: unknown): void => {
      const { request, socket } = message as { request: { path: string }; socket: unknown };
      if (!request.path.startsWith(prefix)) return;
      sockets.add(socket);
      if (request.path.includes('watch=true')) watches++;
    };
    subscribe('undici:client:sendHeaders', onHeaders);
    try {
      // A keep-alive client of its own (KeepAliveKubeConfig, as the operator's), so no other
      // informer's connections are in its pool.
      const informer = podInformer(loadOperatorKubeConfig(kubeconfigPath()), {
        namespace: ns,
        watch: timing,
      });
      informers.push(informer);
      await informer.start();
      await waitFor(() => watches >= 4, { timeoutMs: TIMEOUT, description: 'four watches opened' });
      informer.stop();
      return { watches, sockets: sockets.size };
    } finally {
      unsubscribe('undici:client:sendHeaders', onHeaders);
    }
  }

  it('a watch the API server ends at its timeoutSeconds hands its connection to the next: the list and four watches on two connections at most', async () => {
    // Two: the first watch may be sent before the list's connection is back in the pool.
    const { watches, sockets } = await fourWatches({ timeoutSeconds: () => 1 });
    assert.ok(watches >= 4);
    assert.ok(sockets <= 2, `${watches} watches on ${sockets} connections`);
  });

  it('(the contrast) a watch the client gives up for silence, as client-node does after 30 s, costs a connection each time', async () => {
    const { watches, sockets } = await fourWatches({ timeoutSeconds: () => 3600, silenceMs: 1000 });
    assert.ok(sockets >= watches, `${watches} watches on ${sockets} connections`);
  });
});

// The KubeWriter's contract (src/controller/ports.ts): every call returns within its request
// timeout or throws. Proved against real sockets that accept a connection and then never answer,
// or answer the headers and never finish the body: no fake client, no API server needed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { CoreV1Api, CustomObjectsApi, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { ScheduledSingletonJob } from '../../../src/api/types.ts';
import { kubeWriter } from '../../../src/controller/kube-writer.ts';
import type { KubeWriter } from '../../../src/controller/ports.ts';
import { makeInstrumentedApiClient } from '../../../src/observability/api-requests.ts';
import { newMetrics, type Metrics } from '../../../src/observability/metrics.ts';
import { classify } from '../../../src/runtime/kube-errors.ts';

const TIMEOUT_MS = 300;
// Generous: the point is "it ends, near its deadline", not a benchmark.
const SLACK_MS = 3_000;

interface Silent {
  server: Server;
  sockets: Socket[];
  port: number;
}

/** A TCP server that accepts every connection; `onData` decides whether it ever writes. */
async function listen(onData: (socket: Socket) => void): Promise<Silent> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.once('data', () => {
      onData(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, sockets, port: (server.address() as AddressInfo).port };
}

async function close(s: Silent | undefined): Promise<void> {
  if (s === undefined) return;
  for (const socket of s.sockets) socket.destroy();
  await new Promise((resolve) => s.server.close(resolve));
}

function kubeConfigFor(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'hung', server, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'hung', cluster: 'hung', user: 'u' }],
    currentContext: 'hung',
  });
  return kc;
}

function writerFor(kc: KubeConfig, metrics: Metrics): KubeWriter {
  const options = { requestTimeoutMs: TIMEOUT_MS };
  return kubeWriter(
    makeInstrumentedApiClient(kc, CoreV1Api, metrics, options),
    makeInstrumentedApiClient(kc, CustomObjectsApi, metrics, options),
  );
}

const pod: V1Pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: 'a' },
  spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] },
};
const job = {
  apiVersion: 'ssj.dev/v1alpha1',
  kind: 'ScheduledSingletonJob',
  metadata: { name: 'j', namespace: 'a', resourceVersion: '1' },
} as ScheduledSingletonJob;

const calls: [string, (kube: KubeWriter) => Promise<unknown>][] = [
  ['createPod', (kube) => kube.createPod(pod)],
  ['dryRunPod', (kube) => kube.dryRunPod(pod)],
  ['getPod', (kube) => kube.getPod('a', 'p')],
  ['deletePod', (kube) => kube.deletePod('a', 'p', 'u')],
  ['removeFinalizer', (kube) => kube.removeFinalizer('a', 'p', 'u')],
  ['getJob', (kube) => kube.getJob('a', 'j')],
  ['replaceJobStatus', (kube) => kube.replaceJobStatus(job)],
];

/** Runs the call and returns how it failed and how long it took; fails the test if it succeeded. */
async function timedFailure(call: () => Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const start = performance.now();
  try {
    await call();
  } catch (err) {
    return { err, ms: performance.now() - start };
  }
  assert.fail('the call was expected to fail');
}

describe('KubeWriter against a server that never answers', () => {
  let silent: Silent | undefined;
  let headersOnly: Silent | undefined;

  before(async () => {
    // Never writes a byte: the TLS handshake itself hangs.
    silent = await listen(() => undefined);
    // Answers the headers of a 100-byte JSON body and sends one byte of it.
    headersOnly = await listen((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{');
    });
  });

  after(async () => {
    await close(silent);
    await close(headersOnly);
  });

  for (const [name, call] of calls) {
    it(`${name} fails as Transient within its request timeout when the server never answers`, async () => {
      const metrics = newMetrics({ processMetrics: false });
      const kube = writerFor(kubeConfigFor(`https://127.0.0.1:${silent?.port ?? 0}`), metrics);
      const { err, ms } = await timedFailure(() => call(kube));
      const e = classify(err);
      assert.equal(e.kind, 'Transient', `${e.kind}: ${e.message}`);
      assert.equal(e.reason, 'TimeoutError');
      assert.match(e.message, /no answer within 300 ms/);
      assert.ok(ms >= TIMEOUT_MS - 20, `gave up after ${ms} ms, before its deadline`);
      assert.ok(ms < TIMEOUT_MS + SLACK_MS, `took ${ms} ms`);
    });
  }

  it('a response whose body never ends fails as Transient within the request timeout', async () => {
    const metrics = newMetrics({ processMetrics: false });
    const kube = writerFor(kubeConfigFor(`http://127.0.0.1:${headersOnly?.port ?? 0}`), metrics);
    const { err, ms } = await timedFailure(() => kube.getPod('a', 'p'));
    const e = classify(err);
    assert.equal(e.kind, 'Transient', `${e.kind}: ${e.message}`);
    assert.match(e.message, /GET \/api\/v1\/namespaces\/a\/pods\/p: no answer within 300 ms/);
    assert.ok(ms < TIMEOUT_MS + SLACK_MS, `took ${ms} ms`);
  });

  it('a request that timed out is counted with code "error"', async () => {
    const metrics = newMetrics({ processMetrics: false });
    const kube = writerFor(kubeConfigFor(`https://127.0.0.1:${silent?.port ?? 0}`), metrics);
    await timedFailure(() => kube.getPod('a', 'p'));
    assert.match(
      await metrics.registry.metrics(),
      /^ssj_api_requests_total\{verb="get",resource="pods",code="error"\} 1$/m,
    );
  });
});

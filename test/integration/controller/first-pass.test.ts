// The manager's first pass (src/controller/manager.ts, `onFirstPass`), against the real API
// server: it is told once per term, after every job queued at the term's start has been
// reconciled (its status written), which is when the process compacts its heap (ADR 0018).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../../../src/api/types.ts';
import { kubeWriter } from '../../../src/controller/kube-writer.ts';
import { Manager, type LeadTerm } from '../../../src/controller/manager.ts';
import type { KubeWriter } from '../../../src/controller/ports.ts';
import { statusLedger } from '../../../src/ledger/status-ledger.ts';
import { newLogger } from '../../../src/observability/log.ts';
import { newMetrics } from '../../../src/observability/metrics.ts';
import {
  deleteNamespace,
  loadKubeConfig,
  newNamespace,
  requireCluster,
  waitFor,
} from '../../support/kube.ts';

const JOBS = 5;
const TIMEOUT = 30_000;

function job(name: string): Record<string, unknown> {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'ScheduledSingletonJob',
    metadata: { name },
    // Mid-June, never due while the test runs.
    spec: {
      schedule: '0 0 12 15 6 *',
      timeZone: 'UTC',
      template: { spec: { containers: [{ name: 'c', image: 'busybox:1.36', command: ['true'] }] } },
    },
  };
}

function term(signal: AbortSignal, number: number): LeadTerm {
  return {
    fence: { term: number, holder: 'first-pass-test' },
    signal,
    valid: () => true,
    end: () => undefined,
    confirm: () => Promise.resolve(true),
  };
}

describe('the first pass of a term (real API server)', () => {
  let kc: KubeConfig;
  let namespace: string;

  before(async () => {
    kc = loadKubeConfig();
    await requireCluster(kc);
    namespace = await newNamespace('first-pass', kc);
    for (let i = 0; i < JOBS; i++) await createJob(`job-${i}`);
  });

  async function createJob(name: string): Promise<void> {
    await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace,
      body: job(name),
    });
  }

  after(async () => {
    await deleteNamespace(namespace, kc);
  });

  it('is told once per term, after every job queued at its start has had its status written', async () => {
    const real = kubeWriter(kc.makeApiClient(CoreV1Api), kc.makeApiClient(CustomObjectsApi));
    const written = new Set<string>();
    const kube: KubeWriter = {
      ...real,
      replaceJobStatus: async (j) => {
        // Slowed, so that a first pass told early finds fewer jobs written than there are.
        await new Promise((resolve) => setTimeout(resolve, 100));
        const result = await real.replaceJobStatus(j);
        written.add(j.metadata?.name ?? '');
        return result;
      },
    };
    const told: number[] = [];
    const manager = new Manager({
      kc,
      namespace,
      workers: 2,
      resyncPeriodMs: 0,
      kube,
      ledger: statusLedger,
      events: { event: () => undefined },
      log: newLogger('fatal'),
      metrics: newMetrics({ processMetrics: false }),
      onFirstPass: () => told.push(written.size),
    });
    await manager.start();
    try {
      const first = new AbortController();
      const leading = manager.lead(term(first.signal, 1));
      await waitFor(() => told.length > 0, { timeoutMs: TIMEOUT, description: 'the first pass' });
      assert.deepEqual(told, [JOBS], 'told once, with every job written by then');
      // A change after the first pass is work, not a first pass.
      await createJob('job-late');
      await waitFor(() => written.has('job-late'), {
        timeoutMs: TIMEOUT,
        description: 'the late job reconciled',
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.deepEqual(told, [JOBS], 'not told again within the term');
      first.abort();
      await leading;

      // The next term queues every job again: a first pass of its own.
      const second = new AbortController();
      const next = manager.lead(term(second.signal, 2));
      await waitFor(() => told.length > 1, {
        timeoutMs: TIMEOUT,
        description: "the second term's first pass",
      });
      assert.equal(told.length, 2);
      second.abort();
      await next;
    } finally {
      await manager.stop();
    }
  });
});

// The manager's first pass (src/controller/manager.ts, `onFirstPass`), against the real API
// server: it is told once per term, after every job queued at the term's start has been
// reconciled (its status written), which is when the process compacts its heap (ADR 0018); and
// it writes no status that only the new term would change (status.ts, `statusChanged`).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
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

  /** A manager of the namespace whose status writes go through `kube`. */
  function newManager(kube: KubeWriter, onFirstPass: () => void): Manager {
    return new Manager({
      kc,
      namespace,
      workers: 2,
      resyncPeriodMs: 0,
      kube,
      ledger: statusLedger,
      events: { event: () => undefined },
      log: newLogger('fatal'),
      metrics: newMetrics({ processMetrics: false }),
      onFirstPass,
    });
  }

  const realWriter = (): KubeWriter =>
    kubeWriter(kc.makeApiClient(CoreV1Api), kc.makeApiClient(CustomObjectsApi));

  /** Each job's resourceVersion and the term its status names, by name. */
  async function statuses(): Promise<Map<string, { resourceVersion: string; term: number | undefined }>> {
    const list = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace,
    })) as {
      items: {
        metadata: { name: string; resourceVersion: string };
        status?: { ledger?: { term?: number } };
      }[];
    };
    return new Map(
      list.items.map((j) => [
        j.metadata.name,
        { resourceVersion: j.metadata.resourceVersion, term: j.status?.ledger?.term },
      ]),
    );
  }

  it('is told once per term, after every job queued at its start has had its status written', async () => {
    const real = realWriter();
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
    const manager = newManager(kube, () => told.push(written.size));
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

  it('writes no status that only the new term would change, and stamps its term on the next write', async () => {
    const real = realWriter();
    const written: string[] = [];
    const kube: KubeWriter = {
      ...real,
      replaceJobStatus: async (j) => {
        const result = await real.replaceJobStatus(j);
        written.push(j.metadata?.name ?? '');
        return result;
      },
    };
    let passes = 0;
    const manager = newManager(kube, () => passes++);
    await manager.start();
    try {
      // A term that brings every job's status up to date.
      const first = new AbortController();
      const leading = manager.lead(term(first.signal, 10));
      await waitFor(() => passes === 1, { timeoutMs: TIMEOUT, description: 'the first term’s first pass' });
      first.abort();
      await leading;
      const before = await statuses();
      written.length = 0;

      const second = new AbortController();
      const next = manager.lead(term(second.signal, 11));
      await waitFor(() => passes === 2, { timeoutMs: TIMEOUT, description: 'the next term’s first pass' });
      assert.deepEqual([...written], [], 'no status write for the new term alone');
      assert.deepEqual(await statuses(), before);

      // A change is written, and carries the term that wrote it.
      const changed = [...before.keys()][0] ?? '';
      await kc.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace,
          name: changed,
          body: { spec: { schedule: '0 0 12 16 6 *' } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      await waitFor(() => written.includes(changed), {
        timeoutMs: TIMEOUT,
        description: 'the edited job written',
      });
      assert.equal((await statuses()).get(changed)?.term, 11);
      second.abort();
      await next;
    } finally {
      await manager.stop();
    }
  });
});

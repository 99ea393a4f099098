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
import { GROUP, PLURAL, VERSION, type ScheduledSingletonJob } from '../../../src/api/types.ts';
import { LABEL_JOB } from '../../../src/api/names.ts';
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

function job(name: string, container = 'c'): Record<string, unknown> {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'ScheduledSingletonJob',
    metadata: { name },
    // Mid-June, never due while the test runs.
    spec: {
      schedule: '0 0 12 15 6 *',
      timeZone: 'UTC',
      template: { spec: { containers: [{ name: container, image: 'busybox:1.36', command: ['true'] }] } },
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

  async function createJob(name: string, container?: string): Promise<void> {
    await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace,
      body: job(name, container),
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

  /** Each job's resourceVersion, the term its status names and its Ready reason, by name. */
  async function statuses(): Promise<
    Map<string, { resourceVersion: string; term: number | undefined; ready: string | undefined }>
  > {
    const list = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace,
    })) as { items: ScheduledSingletonJob[] };
    return new Map(
      list.items.map((j) => [
        j.metadata?.name ?? '',
        {
          resourceVersion: j.metadata?.resourceVersion ?? '',
          term: j.status?.ledger?.term,
          ready: j.status?.conditions?.find((c) => c.type === 'Ready')?.reason,
        },
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

  it('a new process writes no status and dry-runs no template that its term alone would not change', async () => {
    // One job whose template the API server refuses, which must stay reported without a new check.
    await createJob('job-bad-template', 'Bad_Name');
    const real = realWriter();
    const written: string[] = [];
    const dryRuns: string[] = [];
    const kube: KubeWriter = {
      ...real,
      replaceJobStatus: async (j) => {
        const result = await real.replaceJobStatus(j);
        written.push(j.metadata?.name ?? '');
        return result;
      },
      dryRunPod: async (pod) => {
        dryRuns.push(pod.metadata?.labels?.[LABEL_JOB] ?? '');
        return real.dryRunPod(pod);
      },
    };
    // Each manager is a process of its own: nothing it knows passes to the next but the statuses.
    const leadOneTerm = async (number: number, during: () => Promise<void>): Promise<void> => {
      let passed = false;
      const manager = newManager(kube, () => (passed = true));
      await manager.start();
      try {
        const t = new AbortController();
        const leading = manager.lead(term(t.signal, number));
        await waitFor(() => passed, { timeoutMs: TIMEOUT, description: `term ${number}'s first pass` });
        await during();
        t.abort();
        await leading;
      } finally {
        await manager.stop();
      }
    };
    await leadOneTerm(10, () => Promise.resolve());
    assert.ok(dryRuns.includes('job-bad-template'), 'the new job’s template was checked');
    const before = await statuses();
    assert.match(before.get('job-bad-template')?.ready ?? '', /InvalidTemplate/);
    written.length = 0;
    dryRuns.length = 0;

    await leadOneTerm(11, async () => {
      assert.deepEqual([...written], [], 'no status write for the new term alone');
      assert.deepEqual([...dryRuns], [], 'no dry run for an unchanged spec');
      assert.deepEqual(await statuses(), before);

      // A change is checked and written, and the write carries the term that made it.
      const changed = 'job-0';
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
      assert.deepEqual([...dryRuns], [changed]);
      assert.equal((await statuses()).get(changed)?.term, 11);
    });
  });
});

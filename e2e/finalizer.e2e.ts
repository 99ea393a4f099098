/**
 * End to end: the tracking finalizer `ssj.dev/run-record` (ADR 0008). Every run's Pod carries it
 * while its run is open and loses it once the outcome is recorded; a Pod deleted while no
 * operator runs waits for one; and neither a foreground deletion of a job, nor the deletion of
 * its namespace, nor a job deleted while the operator is down leaves a Pod stuck.
 *
 * Pods are bound to a node that does not exist (ABSENT_NODE), so a deletion is graceful as on a
 * real cluster; the test plays that node's kubelet (`stopDeleted`, `kubeletStopsDeletedPods`):
 * it stops the Pod and confirms the deletion, after which only finalizers can keep it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { apiStatus, deleteNamespace, waitFor } from '../test/support/kube.ts';
import {
  condition,
  expectedPodName,
  GROUP,
  hasRunRecordFinalizer,
  historyRuns,
  listJobPods,
  PLURAL,
  VERSION,
} from './support/checker.ts';
import { kubeletStopsDeletedPods } from './support/kubelet.ts';
import {
  boundTemplate,
  holdsFor,
  instantsInOneMinute,
  openScenario,
  scheduleAt,
  secondsFromNow,
  type LedgerMode,
  type Scenario,
} from './support/scenario.ts';

describe('the tracking finalizer ssj.dev/run-record', () => {
  for (const mode of ['status', 'postgres'] as const satisfies readonly LedgerMode[]) {
    it(`a run's Pod carries the finalizer ssj.dev/run-record from its create on while its run is open, and loses it only once its outcome is recorded (${mode} ledger)`, async (t) => {
      const s = await openScenario(`fin-open-${mode === 'postgres' ? 'pg' : 'st'}`, mode);
      t.after(() => s.close());
      await s.startOperator();
      const tick = secondsFromNow(4000);
      const job = await s.createJob('held', { schedule: scheduleAt([tick]) });
      const name = expectedPodName('held', tick);

      const seen = await s.waitForPod(name);
      assert.ok(hasRunRecordFinalizer(seen.first), `${name} has the finalizer as created`);
      await s.waitForJob(
        'held',
        (j) => condition(j, 'Running')?.reason === 'PodPending',
        'Running=True PodPending',
      );
      assert.ok(hasRunRecordFinalizer(await mustReadPod(s, name)), 'it keeps it while Pending');
      await s.kubelet.run(s.namespace, name);
      await s.waitForJob(
        'held',
        (j) => condition(j, 'Running')?.reason === 'PodRunning',
        'Running=True PodRunning',
      );
      await holdsFor(
        async () => hasRunRecordFinalizer(await mustReadPod(s, name)),
        2000,
        `${name} keeping the finalizer while Running`,
      );

      await s.kubelet.succeed(s.namespace, name);
      // Read the Pod, then the record: whenever the Pod shows the finalizer gone, the record (read
      // after it) must already be there. With PostgreSQL the durable record is the row.
      const recorded = async (): Promise<boolean> =>
        mode === 'postgres'
          ? (await s.ledger!.runs(job.metadata.uid)).some(
              (r) => r.pod_name === name && r.state === 'Finished' && r.outcome === 'Succeeded',
            )
          : historyRuns(await s.job('held')).some((h) => h.podName === name && h.outcome === 'Succeeded');
      const deadline = Date.now() + 15_000;
      for (;;) {
        const pod = await mustReadPod(s, name);
        const released = !hasRunRecordFinalizer(pod);
        const isRecorded = await recorded();
        if (released) {
          assert.ok(isRecorded, `${name} lost its finalizer before its outcome was recorded`);
          break;
        }
        assert.ok(
          Date.now() < deadline,
          `${name} still holds the finalizer 15 s after it succeeded\n${s.operatorTail()}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const pod = await mustReadPod(s, name);
      assert.equal(pod.status?.phase, 'Succeeded', 'the released Pod stays, kept as history');
      assert.equal(pod.metadata?.deletionTimestamp, undefined);
      await s.invariants(['held']);
    });
  }

  it('a Pod deleted while the operator is stopped stays Terminating, held by the finalizer, until the operator returns; the restarted operator records it Lost (Warning Event RunLost), releases it, the Pod goes and is never created again', async (t) => {
    const s = await openScenario('fin-down', 'postgres');
    t.after(() => s.close());
    await s.startOperator();
    const tick = secondsFromNow(4000);
    const job = await s.createJob('victim', { schedule: scheduleAt([tick]), template: boundTemplate() });
    const uid = job.metadata.uid;
    const name = expectedPodName('victim', tick);
    await s.waitForPod(name);
    await s.kubelet.run(s.namespace, name);
    await s.waitForRows(
      uid,
      (rows) => rows.find((r) => r.pod_name === name && r.state === 'Running'),
      `${name} Running`,
    );

    await s.stopOperator();
    await s.kubectl(['delete', 'pod', name, '--wait=false']);
    // Its node stops it and confirms the deletion: from now on only the finalizer keeps it.
    const stopped = await s.kubelet.stopDeleted(s.namespace, name);
    assert.equal(stopped.status?.phase, 'Failed');
    await holdsFor(
      async () => {
        const p = await readPod(s, name);
        return p !== undefined && p.metadata?.deletionTimestamp !== undefined && hasRunRecordFinalizer(p);
      },
      5000,
      `${name} Terminating, held by the finalizer, while no operator runs`,
    );
    const held = await mustReadPod(s, name);
    assert.equal(held.metadata?.deletionGracePeriodSeconds, 0, 'nothing but the finalizer keeps it');
    assert.deepEqual(
      (await s.ledger!.runs(uid)).map((r) => [r.pod_name, r.state]),
      [[name, 'Running']],
      'nothing was recorded while the operator was stopped',
    );

    await s.startOperator();
    await s.waitForPodGone(name, 20_000);
    const rows = await s.waitForRows(
      uid,
      (r) => (r.find((x) => x.pod_name === name)?.outcome === 'Lost' ? r : undefined),
      `${name} Lost in the ledger`,
    );
    assert.equal(rows.length, 1, 'one run of the tick');
    const lost = await s.waitForJob(
      'victim',
      (j) => (j.status?.lastRun?.podName === name && j.status.lastRun.outcome === 'Lost' ? j : undefined),
      'lastRun Lost',
    );
    assert.equal(condition(lost, 'Degraded')?.reason, 'Lost');
    const event = await s.waitForEvent(
      'victim',
      (e) => e.type === 'Warning' && e.reason === 'RunLost',
      'a Warning Event RunLost',
    );
    const row = rows.find((r) => r.pod_name === name);
    t.diagnostic(`${name}: Lost (${String(row?.reason)}: ${String(row?.message)}); Event: ${event.note}`);
    await holdsFor(
      () => s.pods.byName(name).length === 1 && s.pods.live('victim').length === 0,
      4000,
      `${name} not created again`,
    );
    await s.invariants(['victim']);
  });

  it('deleting a job with propagationPolicy Foreground completes within 30 s while the operator runs: no deadlock through blockOwnerDeletion, its finished and running Pods go, and the running one is recorded first', async (t) => {
    const s = await openScenario('fin-fg', 'postgres');
    t.after(() => s.close());
    await s.startOperator();
    const node = kubeletStopsDeletedPods(s.kc, s.namespace);
    t.after(() => node.stop());
    const [t1, t2] = instantsInOneMinute(4000, [0, 3000]) as [Date, Date];
    const job = await s.createJob('fg', { schedule: scheduleAt([t1, t2]), template: boundTemplate() });
    const p1 = expectedPodName('fg', t1);
    const p2 = expectedPodName('fg', t2);
    await s.waitForPod(p1);
    await s.kubelet.run(s.namespace, p1);
    await s.kubelet.succeed(s.namespace, p1);
    await s.waitForRows(
      job.metadata.uid,
      (r) => r.find((x) => x.pod_name === p1 && x.outcome === 'Succeeded'),
      `${p1} Succeeded`,
    );
    await s.waitForPod(p2, 10_000);
    await s.kubelet.run(s.namespace, p2);
    await s.waitForJob(
      'fg',
      (j) => condition(j, 'Running')?.reason === 'PodRunning',
      'Running=True PodRunning',
    );
    const before = await listJobPods(s.kc, s.namespace, 'fg');
    assert.deepEqual(
      before.map((p) => p.metadata?.name).sort(),
      [p1, p2].sort(),
      'a finished and a running Pod',
    );
    for (const p of before) {
      const owner = p.metadata?.ownerReferences?.find((o) => o.uid === job.metadata.uid);
      assert.equal(owner?.blockOwnerDeletion, true, `${p.metadata?.name ?? '?'} blocks its owner's deletion`);
    }

    const custom = s.kc.makeApiClient(CustomObjectsApi);
    const deletedAt = Date.now();
    await custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: s.namespace,
      name: 'fg',
      body: { propagationPolicy: 'Foreground' },
    });
    const deleting = await s.job('fg');
    assert.ok(
      (deleting.metadata as { finalizers?: string[] }).finalizers?.includes('foregroundDeletion') === true,
      'a foreground deletion: the job waits for its Pods',
    );
    await waitFor(async () => !(await jobExists(s, 'fg')), {
      timeoutMs: 30_000,
      intervalMs: 250,
      description: 'the job, deleted in the foreground, to be gone',
    }).catch(async (error: unknown) => {
      const left = await listJobPods(s.kc, s.namespace, 'fg');
      assert.fail(
        `${String(error)}\nPods left: ${left
          .map(
            (p) =>
              `${p.metadata?.name ?? '?'} ${p.status?.phase ?? '?'} finalizers=${JSON.stringify(p.metadata?.finalizers)}`,
          )
          .join(', ')}\n${s.operatorTail()}`,
      );
    });
    t.diagnostic(`the foreground deletion took ${Date.now() - deletedAt} ms`);
    assert.deepEqual(await listJobPods(s.kc, s.namespace, 'fg'), [], 'its Pods are gone');
    const rows = await s.ledger!.runs(job.metadata.uid);
    assert.deepEqual(
      rows.map((r) => [r.pod_name, r.state]).sort(),
      [
        [p1, 'Finished'],
        [p2, 'Finished'],
      ].sort(),
      'the running Pod was recorded before its finalizer let it go',
    );
    t.diagnostic(`${p2}: ${rows.find((r) => r.pod_name === p2)?.outcome ?? '?'}`);
    await s.invariants(['fg']);
  });

  it('deleting the namespace of a job with a running Pod completes within 60 s while the operator runs', async (t) => {
    const s = await openScenario('fin-ns', 'status');
    t.after(() => s.close());
    await s.startOperator();
    const node = kubeletStopsDeletedPods(s.kc, s.namespace);
    t.after(() => node.stop());
    const tick = secondsFromNow(4000);
    await s.createJob('doomed', { schedule: scheduleAt([tick]), template: boundTemplate() });
    const name = expectedPodName('doomed', tick);
    await s.waitForPod(name);
    await s.kubelet.run(s.namespace, name);
    await s.waitForJob(
      'doomed',
      (j) => condition(j, 'Running')?.reason === 'PodRunning',
      'Running=True PodRunning',
    );
    assert.ok(hasRunRecordFinalizer(await mustReadPod(s, name)), 'the running Pod holds the finalizer');

    const core = s.kc.makeApiClient(CoreV1Api);
    const deletedAt = Date.now();
    await deleteNamespace(s.namespace, s.kc);
    // kube-controller-manager's namespace controller waits out the running Pod's grace period
    // estimate (30 s, checked again after half of it) before it looks again.
    await waitFor(
      async () => {
        try {
          await core.readNamespace({ name: s.namespace });
          return false;
        } catch (error) {
          if (apiStatus(error)?.code === 404) return true;
          throw error;
        }
      },
      { timeoutMs: 60_000, intervalMs: 500, description: `the namespace ${s.namespace} to be gone` },
    ).catch(async (error: unknown) => {
      const left = await core.listNamespacedPod({ namespace: s.namespace });
      const ns = await core.readNamespace({ name: s.namespace }).catch(() => undefined);
      assert.fail(
        `${String(error)}\nnamespace conditions: ${JSON.stringify(ns?.status?.conditions)}\nPods left: ${left.items
          .map(
            (p) =>
              `${p.metadata?.name ?? '?'} ${p.status?.phase ?? '?'} finalizers=${JSON.stringify(p.metadata?.finalizers)}`,
          )
          .join(', ')}\n${s.operatorTail()}`,
      );
    });
    t.diagnostic(`the namespace deletion took ${Date.now() - deletedAt} ms`);
    assert.ok(s.pods.byName(name)[0]?.deletedAt !== undefined, `${name} was seen deleted`);
    await s.invariants(['doomed']);
  });

  it('a Pod whose job is deleted (background propagation) while the operator is stopped keeps the finalizer; the restarted operator removes it and the Pod goes', async (t) => {
    const s = await openScenario('fin-orphan', 'status');
    t.after(() => s.close());
    await s.startOperator();
    const node = kubeletStopsDeletedPods(s.kc, s.namespace);
    t.after(() => node.stop());
    const tick = secondsFromNow(4000);
    await s.createJob('gone', { schedule: scheduleAt([tick]), template: boundTemplate() });
    const name = expectedPodName('gone', tick);
    await s.waitForPod(name);
    await s.kubelet.run(s.namespace, name);
    await s.waitForJob(
      'gone',
      (j) => condition(j, 'Running')?.reason === 'PodRunning',
      'Running=True PodRunning',
    );

    await s.stopOperator();
    await s.kubectl(['delete', 'singletonjob', 'gone', '--cascade=background', '--wait=true']);
    // The garbage collector deletes the orphaned Pod; its node stops it and confirms.
    await waitFor(() => [...node.stopped].some((k) => k.startsWith(`${name}/`)), {
      timeoutMs: 30_000,
      intervalMs: 250,
      description: `the garbage collector to delete ${name} and its node to stop it`,
    });
    await holdsFor(
      async () => {
        const p = await readPod(s, name);
        return p !== undefined && p.metadata?.deletionTimestamp !== undefined && hasRunRecordFinalizer(p);
      },
      4000,
      `${name} Terminating, held by the finalizer, while no operator runs`,
    );
    assert.equal(
      (await mustReadPod(s, name)).metadata?.deletionGracePeriodSeconds,
      0,
      'only the finalizer keeps it',
    );

    await s.startOperator();
    await s.waitForPodGone(name, 20_000);
    assert.equal(s.pods.byName(name).length, 1, `${name} was created once`);
    await s.invariants(['gone']);
  });
});

async function readPod(s: Scenario, name: string): Promise<V1Pod | undefined> {
  try {
    return await s.kc.makeApiClient(CoreV1Api).readNamespacedPod({ namespace: s.namespace, name });
  } catch (error) {
    if (apiStatus(error)?.code === 404) return undefined;
    throw error;
  }
}

async function mustReadPod(s: Scenario, name: string): Promise<V1Pod> {
  const pod = await readPod(s, name);
  assert.ok(pod !== undefined, `Pod ${name} does not exist`);
  return pod;
}

async function jobExists(s: Scenario, name: string): Promise<boolean> {
  try {
    await s.job(name);
    return true;
  } catch (error) {
    if (apiStatus(error)?.code === 404) return false;
    throw error;
  }
}

/**
 * End to end: --ledger-retention removes finished runs from PostgreSQL once they are older than
 * the retention period, and keeps the row that anchors the walk for due ticks, so no old tick
 * becomes due again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expectedPodName } from './support/checker.ts';
import { autoKubelet } from './support/kubelet.ts';
import { nextMultiple, openScenario } from './support/scenario.ts';

describe('ledger retention', () => {
  it('deletes finished runs older than --ledger-retention, keeps the latest tick, and never runs an old tick again', async (t) => {
    const s = await openScenario('retention', 'postgres');
    t.after(() => s.close());
    await s.startOperator({ args: ['--ledger-retention=4s'] });
    const kubelet = autoKubelet(s.kc, s.namespace, () => 'succeed');
    t.after(() => kubelet.stop());

    const job = await s.createJob('keep', { schedule: '*/2 * * * * *', successfulRunsHistoryLimit: 1 });
    const uid = job.metadata.uid;
    const first = nextMultiple(2, new Date(job.metadata.creationTimestamp));
    const firstPod = expectedPodName('keep', first);
    await s.waitForRows(
      uid,
      (rows) => rows.find((r) => r.pod_name === firstPod && r.state === 'Finished'),
      `${firstPod} finished in the ledger`,
    );
    // Retention runs every half period: the first run's row goes once it is 4 s old.
    await s.waitForRows(
      uid,
      (rows) => (rows.some((r) => r.pod_name === firstPod) ? undefined : rows),
      `${firstPod} removed by retention`,
      30_000,
    );
    await kubelet.stop();
    const rows = await s.ledger!.runs(uid);
    assert.ok(rows.length > 0, 'the rows of recent runs, and the latest tick, stay');
    await s.invariants(['keep']);
    assert.equal(
      s.pods.all('keep').filter((p) => p.name === firstPod).length,
      1,
      'the first tick, removed from the ledger, did not run again',
    );
  });
});

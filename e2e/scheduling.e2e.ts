/**
 * End to end: the operator, run as users run it, schedules Pods on a seconds schedule, records
 * what happened to them in both ledgers, cleans up history, and lets garbage collection remove a
 * deleted job's Pods.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitFor } from '../test/support/kube.ts';
import {
  ANNOTATION_TERM,
  ANNOTATION_HOLDER,
  ANNOTATION_SCHEDULED_TIME,
  assertStatusAgreesWithLedger,
  condition,
  expectedPodName,
  historyRuns,
  outcomesByPod,
  KIND,
  LABEL_ATTEMPT,
  LABEL_JOB,
  LABEL_TICK,
  listJobPods,
  rfc3339,
} from './support/checker.ts';
import { autoKubelet } from './support/kubelet.ts';
import { nextMultiple, openScenario, type LedgerMode } from './support/scenario.ts';

describe('scheduling on a seconds schedule', () => {
  it('creates exactly the Pods <job>-<tick> of the ticks since creation, labelled, annotated and owned as DESIGN.md says, and shows them in kubectl get ssj', async (t) => {
    const s = await openScenario('names', 'status');
    t.after(() => s.close());
    await s.startOperator();
    const kubelet = autoKubelet(s.kc, s.namespace, () => 'succeed');
    t.after(() => kubelet.stop());

    const job = await s.createJob('tick', { schedule: '*/5 * * * * *', successfulRunsHistoryLimit: 10 });
    const first = nextMultiple(5, new Date(job.metadata.creationTimestamp));
    const ticks = [0, 1, 2].map((i) => new Date(first.getTime() + i * 5000));
    for (const tick of ticks) await s.waitForPod(expectedPodName('tick', tick), 25_000);
    const last = ticks[2]!;
    await s.waitForJob(
      'tick',
      (j) =>
        j.status?.lastRun?.podName === expectedPodName('tick', last) &&
        j.status.lastScheduleTime === rfc3339(last),
      'the third tick recorded as the last run',
    );
    await kubelet.stop();

    // Exactly the ticks from the first after creation to the newest one seen, with no gap and no extra.
    const pods = s.pods.all('tick');
    const newest = Math.max(...pods.map((p) => Number(p.labels[LABEL_TICK])));
    const expected: string[] = [];
    for (let tick = first.getTime() / 1000; tick <= newest; tick += 5)
      expected.push(expectedPodName('tick', tick));
    assert.deepEqual(
      pods.map((p) => p.name).sort(),
      expected.sort(),
      'the Pods are exactly one per tick since creation',
    );

    for (const pod of pods) {
      const tick = Number(pod.labels[LABEL_TICK]);
      assert.equal(pod.labels[LABEL_JOB], 'tick');
      assert.equal(pod.labels[LABEL_ATTEMPT], '1');
      assert.equal(pod.annotations[ANNOTATION_SCHEDULED_TIME], rfc3339(new Date(tick * 1000)));
      assert.match(pod.annotations[ANNOTATION_TERM] ?? '', /^\d+$/, `${pod.name}: ${ANNOTATION_TERM}`);
      assert.ok(
        (pod.annotations[ANNOTATION_HOLDER] ?? '') !== '',
        `${pod.name}: ${ANNOTATION_HOLDER} is empty`,
      );
      const owners = pod.ownerReferences.filter((o) => o.controller === true);
      assert.equal(owners.length, 1, `${pod.name}: one controller owner reference`);
      assert.deepEqual(
        {
          apiVersion: owners[0]!.apiVersion,
          kind: owners[0]!.kind,
          name: owners[0]!.name,
          uid: owners[0]!.uid,
        },
        { apiVersion: 'ssj.dev/v1alpha1', kind: KIND, name: 'tick', uid: job.metadata.uid },
      );
      assert.equal(pod.last.spec?.restartPolicy, 'Never', `${pod.name}: restartPolicy`);
    }

    const status = await s.job('tick');
    const ready = condition(status, 'Ready');
    assert.equal(ready?.status, 'True', `Ready: ${JSON.stringify(ready)}`);
    assert.equal(ready.reason, 'Scheduled');
    assert.equal(ready.observedGeneration, status.metadata.generation);
    assert.equal(condition(status, 'Suspended')?.status, 'False');
    assert.equal(condition(status, 'Degraded')?.reason, 'LastRunSucceeded');
    const next = status.status?.nextScheduleTime;
    assert.ok(
      next !== undefined && Date.parse(next) > newest * 1000,
      `nextScheduleTime ${String(next)} is after the last tick`,
    );
    assert.equal(Date.parse(next) % 5000, 0, 'nextScheduleTime is a tick of */5');

    // What a user sees.
    await s.kubectl(['wait', '--for=condition=Ready', 'singletonjob/tick', '--timeout=20s']);
    const table = parseTable(await s.kubectl(['get', 'ssj', 'tick']));
    const row = table[0]!;
    assert.equal(row['SCHEDULE'], '*/5 * * * * *');
    assert.equal(row['TIMEZONE'], 'UTC');
    assert.equal(row['SUSPEND'], 'false');
    assert.match(row['LAST SCHEDULE'] ?? '', /^\d+s$/, `LAST SCHEDULE column: ${JSON.stringify(row)}`);
    assert.match(
      row['NEXT'] ?? '',
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
      `NEXT column: ${JSON.stringify(row)}`,
    );
    assert.equal(row['LAST RESULT'], 'Succeeded');

    await s.invariants(['tick']);
  });

  for (const mode of ['status', 'postgres'] as const satisfies readonly LedgerMode[]) {
    it(`records each Pod's phases and outcome (${mode} ledger): Running, then Succeeded clears Degraded, Failed sets Degraded=True reason Failed`, async (t) => {
      const s = await openScenario(`outcomes-${mode}`, mode);
      t.after(() => s.close());
      await s.startOperator();
      const job = await s.createJob('work', { schedule: '*/5 * * * * *' });
      const uid = job.metadata.uid;
      const first = nextMultiple(5, new Date(job.metadata.creationTimestamp));
      const p1 = expectedPodName('work', first);

      await s.waitForPod(p1);
      await s.kubelet.run(s.namespace, p1);
      await s.waitForJob(
        'work',
        (j) => condition(j, 'Running')?.reason === 'PodRunning' && j.status?.active?.podName === p1,
        'Running=True PodRunning for the first Pod',
      );
      if (s.ledger !== undefined)
        await s.waitForRows(
          uid,
          (rows) => rows.find((r) => r.pod_name === p1 && r.state === 'Running'),
          `${p1} Running in the ledger`,
        );

      await s.kubelet.succeed(s.namespace, p1);
      const afterSuccess = await s.waitForJob(
        'work',
        (j) =>
          j.status?.lastRun?.podName === p1 && j.status.lastRun.outcome === 'Succeeded' ? j : undefined,
        'lastRun Succeeded',
      );
      assert.equal(condition(afterSuccess, 'Degraded')?.status, 'False');
      assert.equal(condition(afterSuccess, 'Degraded')?.reason, 'LastRunSucceeded');
      assert.ok(afterSuccess.status?.lastSuccessfulTime !== undefined, 'lastSuccessfulTime is set');
      assert.equal(afterSuccess.status.active, undefined, 'no active run once it finished');
      assert.equal(condition(afterSuccess, 'Running')?.status, 'False');

      // The next run's Pod fails.
      const next = await waitFor(
        () => s.pods.all('work').find((p) => Number(p.labels[LABEL_TICK]) * 1000 > first.getTime()),
        { timeoutMs: 15_000, description: 'the Pod of a later tick' },
      );
      const p2 = next.name;
      await s.kubelet.run(s.namespace, p2);
      await s.kubelet.fail(s.namespace, p2, { exitCode: 3 });
      const afterFailure = await s.waitForJob(
        'work',
        (j) => (j.status?.lastRun?.podName === p2 && j.status.lastRun.outcome === 'Failed' ? j : undefined),
        'lastRun Failed',
      );
      const degraded = condition(afterFailure, 'Degraded');
      assert.equal(degraded?.status, 'True', `Degraded: ${JSON.stringify(degraded)}`);
      assert.equal(degraded.reason, 'Failed');
      assert.equal(
        condition(afterFailure, 'Ready')?.status,
        'True',
        'a failed run does not make the job un-Ready',
      );
      const outcomes = outcomesByPod(afterFailure);
      assert.equal(outcomes[p1], '1:Succeeded');
      assert.equal(outcomes[p2], '1:Failed');

      await s.waitForEvent(
        'work',
        (x) => x.reason === 'RunFailed' && x.type === 'Warning',
        'a Warning Event RunFailed',
      );
      await s.waitForEvent(
        'work',
        (x) => x.reason === 'RunSucceeded' && x.type === 'Normal',
        'a Normal Event RunSucceeded',
      );

      if (s.ledger !== undefined) {
        const rows = await s.waitForRows(
          uid,
          (r) => (r.find((x) => x.pod_name === p2)?.state === 'Finished' ? r : undefined),
          `${p2} finished in the ledger`,
        );
        const r1 = rows.find((r) => r.pod_name === p1);
        const r2 = rows.find((r) => r.pod_name === p2);
        assert.equal(r1?.outcome, 'Succeeded');
        assert.equal(r1.tick?.getTime(), first.getTime());
        assert.equal(r1.run_kind, 'scheduled');
        assert.ok(
          r1.started_at !== null && r1.finished_at !== null,
          `${p1}: started_at and finished_at are recorded`,
        );
        assert.equal(r2?.outcome, 'Failed');
        assert.equal(r2.namespace, s.namespace);
        assert.equal(r2.job_name, 'work');
        assert.equal(r2.attempt, 1);
        assert.match(r2.message ?? '', /3/, `${p2}: the message names the exit code: ${String(r2.message)}`);
        assertStatusAgreesWithLedger(await s.job('work'), rows);
      }
      await s.invariants(['work']);
    });
  }

  it('keeps successfulRunsHistoryLimit finished Pods and failedRunsHistoryLimit failed ones, deleting the oldest, while the ledger keeps every run', async (t) => {
    const s = await openScenario('history', 'postgres');
    t.after(() => s.close());
    await s.startOperator();
    const kubelet = autoKubelet(s.kc, s.namespace, (pod) =>
      pod.metadata?.labels?.[LABEL_JOB] === 'bad' ? 'fail' : 'succeed',
    );
    t.after(() => kubelet.stop());
    const good = await s.createJob('good', { schedule: '*/3 * * * * *', successfulRunsHistoryLimit: 2 });
    const bad = await s.createJob('bad', { schedule: '*/3 * * * * *', failedRunsHistoryLimit: 1 });

    const finished = (job: string, phase: string) => s.pods.all(job).filter((p) => p.phases.includes(phase));
    await waitFor(() => finished('good', 'Succeeded').length >= 5 && finished('bad', 'Failed').length >= 4, {
      timeoutMs: 30_000,
      description: '5 runs of good succeeded and 4 of bad failed',
    });
    await kubelet.stop();
    // Once the newest runs have finished, only the newest finished Pods are left.
    const newestNames = (job: string, n: number) =>
      s.pods
        .all(job)
        .filter((p) => p.phases.includes('Succeeded') || p.phases.includes('Failed'))
        .sort((a, b) => Number(b.labels[LABEL_TICK]) - Number(a.labels[LABEL_TICK]))
        .slice(0, n)
        .map((p) => p.name)
        .sort();
    await waitFor(
      async () => {
        const live = (await listJobPods(s.kc, s.namespace, 'good'))
          .filter((p) => p.status?.phase === 'Succeeded')
          .map((p) => p.metadata?.name ?? '')
          .sort();
        return JSON.stringify(live) === JSON.stringify(newestNames('good', 2));
      },
      { timeoutMs: 15_000, description: 'only the 2 newest succeeded Pods of good left' },
    );
    await waitFor(
      async () => {
        const live = (await listJobPods(s.kc, s.namespace, 'bad'))
          .filter((p) => p.status?.phase === 'Failed')
          .map((p) => p.metadata?.name ?? '')
          .sort();
        return JSON.stringify(live) === JSON.stringify(newestNames('bad', 1));
      },
      { timeoutMs: 15_000, description: 'only the newest failed Pod of bad left' },
    );
    const older = finished('good', 'Succeeded')
      .map((p) => p.name)
      .filter((name) => !newestNames('good', 2).includes(name))
      .sort();
    assert.ok(older.length >= 3);
    const deletedNames = () =>
      s.pods
        .all('good')
        .filter((p) => p.deletedAt !== undefined)
        .map((p) => p.name)
        .sort();
    // The watch may report the last deletion a moment after the list stopped showing it.
    await waitFor(() => JSON.stringify(deletedNames()) === JSON.stringify(older), {
      timeoutMs: 5000,
      description: 'the watch to see the deletions',
    }).catch(() => undefined);
    assert.deepEqual(deletedNames(), older, 'exactly the older succeeded Pods were deleted');
    const deleted = s.pods.all('good').filter((p) => p.deletedAt !== undefined);

    const ledger = s.ledger!;
    const goodRows = await ledger.runs(good.metadata.uid);
    for (const p of deleted) {
      assert.equal(
        goodRows.find((r) => r.pod_name === p.name)?.outcome,
        'Succeeded',
        `${p.name} stays in the ledger`,
      );
    }
    const badRows = await ledger.runs(bad.metadata.uid);
    assert.ok(
      badRows.filter((r) => r.outcome === 'Failed').length >= 3,
      'every failed run of bad stays in the ledger',
    );
    await s.invariants(['good', 'bad']);
  });

  it('deleting a job removes its Pods through their owner references, its PostgreSQL rows stay, and a new job of the same name starts a fresh history', async (t) => {
    const s = await openScenario('delete', 'postgres');
    t.after(() => s.close());
    await s.startOperator();
    const kubelet = autoKubelet(s.kc, s.namespace, () => 'succeed');
    t.after(() => kubelet.stop());
    const job = await s.createJob('doomed', { schedule: '*/3 * * * * *' });
    await waitFor(() => s.pods.all('doomed').length >= 2, { timeoutMs: 20_000, description: 'two runs' });
    await kubelet.stop();
    const rowsBefore = await s.waitForRows(
      job.metadata.uid,
      (rows) => (rows.length >= 2 ? rows : undefined),
      'two ledger rows',
    );

    await s.kubectl(['delete', 'singletonjob', 'doomed', '--wait=false']);
    // kube-controller-manager's garbage collector; it rediscovers new CRDs every 30 s.
    await waitFor(async () => (await listJobPods(s.kc, s.namespace, 'doomed')).length === 0, {
      timeoutMs: 75_000,
      intervalMs: 500,
      description: "the deleted job's Pods to be garbage-collected",
    });
    const rowsAfter = await s.ledger!.runs(job.metadata.uid);
    for (const r of rowsBefore) {
      assert.ok(
        rowsAfter.some((a) => a.run_key === r.run_key),
        `ledger row ${r.pod_name} survives the job's deletion`,
      );
    }

    // The same name again: a new UID, so a history of its own.
    const again = await s.createJob('doomed', { schedule: '*/3 * * * * *' });
    assert.notEqual(again.metadata.uid, job.metadata.uid);
    const fresh = await s.waitForRows(
      again.metadata.uid,
      (rows) => (rows.length >= 1 ? rows : undefined),
      'a run of the new job',
    );
    for (const r of fresh) {
      assert.ok(
        (r.tick?.getTime() ?? 0) > Date.parse(again.metadata.creationTimestamp),
        `${r.pod_name} is a tick of the new job, not an inherited one`,
      );
    }
    const newPod = await waitFor(
      () => s.pods.all('doomed').find((p) => p.ownerReferences.some((o) => o.uid === again.metadata.uid)),
      { timeoutMs: 10_000, description: 'a Pod owned by the new job' },
    );
    assert.ok(!rowsBefore.some((r) => r.pod_name === newPod.name), 'the new job does not reuse an old run');
    const newStatus = await s.job('doomed');
    for (const h of historyRuns(newStatus)) {
      assert.ok(
        fresh.some((r) => r.pod_name === h.podName) ||
          Date.parse(h.tick ?? '') > Date.parse(again.metadata.creationTimestamp),
        `the new job's status.history holds only its own runs, not ${String(h.podName)}`,
      );
    }
    assert.equal(
      (await s.ledger!.runs(job.metadata.uid)).length,
      rowsAfter.length,
      "the old job's rows are untouched",
    );
    await s.invariants(['doomed']);
  });
});

/** Parses kubectl's table output by the header's column positions (values may be empty). */
function parseTable(text: string): Record<string, string>[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines[0] ?? '';
  const starts: { name: string; at: number }[] = [];
  const re = /\S+(?: \S+)*/g;
  for (let m = re.exec(header); m !== null; m = re.exec(header)) starts.push({ name: m[0], at: m.index });
  return lines
    .slice(1)
    .map((line) =>
      Object.fromEntries(
        starts.map((c, i) => [c.name, line.slice(c.at, starts[i + 1]?.at ?? line.length).trim()]),
      ),
    );
}

/**
 * End to end: the users' controls. suspend, concurrencyPolicy Forbid and Replace, retries with
 * backoff, maxPendingSeconds and the run-now annotation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitFor } from '../test/support/kube.ts';
import {
  ANNOTATION_RUN_NOW_TOKEN,
  condition,
  expectedManualPodName,
  expectedPodName,
  historyNotRun,
  historyRuns,
  outcomesByPod,
  LABEL_ATTEMPT,
  LABEL_TICK,
  listJobPods,
  rfc3339,
  assertStatusAgreesWithLedger,
} from './support/checker.ts';
import { autoKubelet } from './support/kubelet.ts';
import {
  boundTemplate,
  holdsFor,
  instantsInOneMinute,
  nextMultiple,
  openScenario,
  scheduleAt,
  secondsFromNow,
  untilTime,
} from './support/scenario.ts';

describe("users' controls", () => {
  it('a suspended job creates no Pod; resuming records the ticks it slept through as one Skipped range and fires no backlog', async (t) => {
    const s = await openScenario('suspend', 'postgres');
    t.after(() => s.close());
    await s.startOperator();
    const kubelet = autoKubelet(s.kc, s.namespace, () => 'succeed');
    t.after(() => kubelet.stop());
    const job = await s.createJob('paused', { schedule: '*/3 * * * * *', suspend: true });
    const suspended = await s.waitForJob(
      'paused',
      (j) =>
        condition(j, 'Ready')?.reason === 'Suspended' && condition(j, 'Suspended')?.status === 'True'
          ? j
          : undefined,
      'Ready=True reason Suspended, Suspended=True',
    );
    assert.equal(condition(suspended, 'Ready')?.status, 'True');
    assert.equal(suspended.status?.nextScheduleTime, undefined, 'no next tick while suspended');

    const second = new Date(nextMultiple(3, new Date(job.metadata.creationTimestamp)).getTime() + 3000);
    await untilTime(new Date(second.getTime() + 500));
    assert.deepEqual(
      s.pods.all('paused').map((p) => p.name),
      [],
      'no Pod while suspended',
    );

    const resumedAt = Date.now();
    await s.kubectl(['patch', 'singletonjob', 'paused', '--type=merge', '-p', '{"spec":{"suspend":false}}']);

    const skipped = await waitFor(
      async () => (await s.ledger!.ticksNotRun(job.metadata.uid)).find((r) => r.outcome === 'Skipped'),
      { timeoutMs: 10_000, description: 'a Skipped range for the suspension in the ledger' },
    );
    assert.equal(skipped.reason, 'Suspended');
    assert.ok(skipped.count >= 2, `the range counts the ${skipped.count} ticks slept through (at least 2)`);
    assert.ok(
      skipped.first_tick.getTime() > Date.parse(job.metadata.creationTimestamp),
      'the range starts after creation',
    );
    assert.ok(skipped.last_tick.getTime() <= resumedAt + 1000, 'the range ends at the resume');
    const rows = await s.ledger!.ticksNotRun(job.metadata.uid);
    assert.equal(
      rows.filter((r) => r.outcome === 'Skipped').length,
      1,
      'one record for the whole suspension',
    );

    // No backlog: Pods come only for ticks after the resume, one per tick.
    await waitFor(() => s.pods.all('paused').length >= 2, {
      timeoutMs: 15_000,
      description: 'two runs after resuming',
    });
    for (const p of s.pods.all('paused')) {
      assert.ok(Number(p.labels[LABEL_TICK]) * 1000 > resumedAt, `${p.name} is for a tick after the resume`);
    }
    const resumed = await s.waitForJob(
      'paused',
      (j) => (historyNotRun(j, 'Skipped').some((h) => h.reason === 'Suspended') ? j : undefined),
      'status.history shows the Skipped range',
    );
    assert.equal(condition(resumed, 'Ready')?.reason, 'Scheduled');
    assert.equal(condition(resumed, 'Suspended')?.status, 'False');
    await s.invariants(['paused']);
  });

  it('editing the schedule fires no backlog: the new schedule counts from the edit', async (t) => {
    const s = await openScenario('edit', 'status');
    t.after(() => s.close());
    await s.startOperator();
    const kubelet = autoKubelet(s.kc, s.namespace, () => 'succeed');
    t.after(() => kubelet.stop());
    const job = await s.createJob('edited', { schedule: '*/5 * * * * *' });
    const t1 = nextMultiple(5, new Date(job.metadata.creationTimestamp));
    await s.waitForJob(
      'edited',
      (j) => j.status?.lastRun?.podName === expectedPodName('edited', t1),
      'the first run finished',
    );
    // Edit 3.5 s after that tick: the new schedule (every 2 s) has a tick between the last run and
    // the edit, which a walk from the last run would fire at once.
    await untilTime(new Date(t1.getTime() + 3500));
    const editedAt = Date.now();
    await s.kubectl([
      'patch',
      'singletonjob',
      'edited',
      '--type=merge',
      '-p',
      '{"spec":{"schedule":"*/2 * * * * *"}}',
    ]);
    const next = await waitFor(
      () => s.pods.all('edited').find((p) => Number(p.labels[LABEL_TICK]) * 1000 > t1.getTime()),
      { timeoutMs: 10_000, description: 'a run of the new schedule' },
    );
    const tick = Number(next.labels[LABEL_TICK]);
    assert.ok(
      tick * 1000 > editedAt,
      `${next.name} is for a tick after the edit, not one between the last run and the edit`,
    );
    assert.equal(tick % 2, 0, 'a tick of the new schedule');
    await s.waitForEvent('edited', (e) => e.reason === 'ScheduleChanged', 'an Event ScheduleChanged');
    const after = await s.job('edited');
    assert.deepEqual(
      historyNotRun(after, 'Missed'),
      [],
      'the edit records no Missed ticks (no controller was absent)',
    );
    await s.invariants(['edited']);
  });

  it('concurrencyPolicy Forbid: a tick that comes while a run is Running is recorded Skipped, and the next tick after it ends runs', async (t) => {
    const s = await openScenario('forbid', 'status');
    t.after(() => s.close());
    await s.startOperator();
    const job = await s.createJob('forbid', { schedule: '*/4 * * * * *', concurrencyPolicy: 'Forbid' });
    const t1 = nextMultiple(4, new Date(job.metadata.creationTimestamp));
    const t2 = new Date(t1.getTime() + 4000);
    const p1 = expectedPodName('forbid', t1);
    await s.waitForPod(p1);
    await s.kubelet.run(s.namespace, p1);

    const skippedJob = await s.waitForJob(
      'forbid',
      (j) => (historyNotRun(j, 'Skipped').some((h) => h.tick === rfc3339(t2)) ? j : undefined),
      `the tick ${rfc3339(t2)} recorded Skipped while ${p1} runs`,
      12_000,
    );
    const record = historyNotRun(skippedJob, 'Skipped').find((h) => h.tick === rfc3339(t2))!;
    assert.equal(record.reason, 'RunActive');
    assert.equal(s.pods.byName(expectedPodName('forbid', t2)).length, 0, 'no Pod for the skipped tick');
    await s.waitForEvent('forbid', (e) => e.reason === 'TickSkipped', 'an Event TickSkipped');

    await s.kubelet.succeed(s.namespace, p1);
    const next = await waitFor(
      () => s.pods.all('forbid').find((p) => Number(p.labels[LABEL_TICK]) * 1000 > t2.getTime()),
      { timeoutMs: 12_000, description: 'a Pod for a tick after the run ended' },
    );
    assert.ok(Number(next.labels[LABEL_TICK]) * 1000 >= t2.getTime() + 4000);
    await s.invariants(['forbid']);
  });

  it("concurrencyPolicy Replace: the running Pod is deleted and recorded Replaced, and the new tick's Pod is created only once the old one has stopped or is gone", async (t) => {
    const s = await openScenario('replace', 'postgres');
    t.after(() => s.close());
    await s.startOperator();
    const [t1, t2] = instantsInOneMinute(4000, [0, 8000]) as [Date, Date];
    const job = await s.createJob('replace', {
      schedule: scheduleAt([t1, t2]),
      concurrencyPolicy: 'Replace',
      // Bound to a node, p1 stays Terminating after its deletion until its "kubelet" confirms.
      template: boundTemplate(),
    });
    const p1 = expectedPodName('replace', t1);
    const p2 = expectedPodName('replace', t2);
    await s.waitForPod(p1);
    await s.kubelet.run(s.namespace, p1);

    await waitFor(() => s.pods.byName(p1)[0]?.terminatingAt, {
      timeoutMs: 15_000,
      description: `${p1} deleted at ${rfc3339(t2)}`,
    });
    const rows = await s.waitForRows(
      job.metadata.uid,
      (r) => (r.find((x) => x.pod_name === p1)?.outcome === 'Replaced' ? r : undefined),
      `${p1} Replaced in the ledger`,
    );
    assert.equal(rows.find((r) => r.pod_name === p1)?.state, 'Finished');
    await holdsFor(
      () => s.pods.byName(p2).length === 0,
      3000,
      `no Pod ${p2} while ${p1} is still terminating`,
    );

    await s.forceDelete(p1);
    const created = await s.waitForPod(p2, 10_000);
    const old = s.pods.byName(p1)[0]!;
    // The operator creates the new Pod once the old one's containers have stopped (its phase is
    // terminal) or it is gone: the stand-in kubelet reports Failed a moment before it deletes, as a
    // kubelet does, and the operator may see the Failed first.
    const stoppedOrGone = Math.min(old.stoppedAt ?? Infinity, old.deletedAt ?? Infinity);
    assert.ok(stoppedOrGone <= created.addedAt, `${p2} appeared after ${p1} had stopped or was gone`);
    const replacedJob = await s.waitForJob(
      'replace',
      (j) => (historyRuns(j).some((h) => h.podName === p1 && h.outcome === 'Replaced') ? j : undefined),
      `${p1} Replaced in status.history`,
    );
    await s.waitForEvent('replace', (e) => e.reason === 'RunReplaced', 'an Event RunReplaced');
    assertStatusAgreesWithLedger(replacedJob, await s.ledger!.runs(job.metadata.uid));
    await s.invariants(['replace']);
  });

  it("retries: a failed attempt is retried as <pod>-2 after backoffSeconds, and attempt 3 waits until attempt 2's terminating Pod is gone", async (t) => {
    const s = await openScenario('retry', 'status');
    t.after(() => s.close());
    await s.startOperator();
    const tick = secondsFromNow(4000);
    await s.createJob('retry', {
      schedule: scheduleAt([tick]),
      retry: { maxAttempts: 3, backoffSeconds: 3 },
      // Bound to a node, a deleted Pod stays Terminating until its "kubelet" confirms.
      template: boundTemplate(),
    });
    const a1 = expectedPodName('retry', tick);
    const a2 = expectedPodName('retry', tick, 2);
    const a3 = expectedPodName('retry', tick, 3);

    await s.waitForPod(a1);
    await s.kubelet.run(s.namespace, a1);
    const failedAt = Date.now();
    await s.kubelet.fail(s.namespace, a1, { exitCode: 1 });
    const second = await s.waitForPod(a2, 15_000);
    // The API server keeps finishedAt to the second, so the 3 s backoff can start up to 1 s early.
    assert.ok(
      second.addedAt >= failedAt + 2000,
      `${a2} waited for the backoff (${second.addedAt - failedAt} ms after the failure)`,
    );
    assert.equal(second.labels[LABEL_ATTEMPT], '2');
    assert.equal(second.labels[LABEL_TICK], String(tick.getTime() / 1000));
    assert.ok(
      s.pods.byName(a1)[0]?.phases.includes('Failed'),
      'attempt 1 had finished before attempt 2 was created',
    );
    await s.waitForEvent('retry', (e) => e.reason === 'RetryStarted', 'an Event RetryStarted');

    // Attempt 2 is deleted while running: it stays Terminating, still Running, so it may still run.
    await s.kubelet.run(s.namespace, a2);
    await s.kubectl(['delete', 'pod', a2, '--wait=false']);
    await waitFor(() => s.pods.byName(a2)[0]?.terminatingAt, {
      timeoutMs: 5000,
      description: `${a2} terminating`,
    });
    await holdsFor(
      () => s.pods.byName(a3).length === 0,
      5000,
      `no attempt 3 while ${a2} may still run (past the backoff)`,
    );
    const meanwhile = await s.job('retry');
    assert.notEqual(
      meanwhile.status?.lastRun?.podName,
      a2,
      `${a2} is not recorded as finished while its Pod still exists: ${JSON.stringify(meanwhile.status?.lastRun)}`,
    );

    const goneAt = Date.now();
    await s.forceDelete(a2);
    await s.waitForJob(
      'retry',
      (j) => j.status?.lastRun?.podName === a2 && j.status.lastRun.outcome === 'Lost',
      `${a2} recorded Lost once its Pod is gone`,
    );
    const third = await s.waitForPod(a3, 15_000);
    assert.ok(third.addedAt >= goneAt + 2000, `${a3} waited for the backoff after the loss`);
    await s.kubelet.run(s.namespace, a3);
    await s.kubelet.succeed(s.namespace, a3);
    const done = await s.waitForJob(
      'retry',
      (j) => (j.status?.lastRun?.podName === a3 && j.status.lastRun.outcome === 'Succeeded' ? j : undefined),
      `${a3} Succeeded`,
    );
    assert.equal(condition(done, 'Degraded')?.status, 'False');
    assert.deepEqual(outcomesByPod(done), { [a1]: '1:Failed', [a2]: '2:Lost', [a3]: '3:Succeeded' });
    await holdsFor(() => s.pods.all('retry').length === 3, 1500, 'no further attempt after a success');
    await s.invariants(['retry']);
  });

  it('maxPendingSeconds: a Pod still Pending after the limit is deleted and its run recorded TimedOut, not run again', async (t) => {
    const s = await openScenario('pending', 'postgres');
    t.after(() => s.close());
    await s.startOperator();
    const tick = secondsFromNow(4000);
    const job = await s.createJob('slow', { schedule: scheduleAt([tick]), maxPendingSeconds: 3 });
    const name = expectedPodName('slow', tick);
    const pod = await s.waitForPod(name);
    const gone = await s.waitForPodGone(name, 15_000);
    const pendingFor = (gone.deletedAt ?? 0) - pod.addedAt;
    assert.ok(pendingFor >= 2000 && pendingFor <= 7000, `deleted after ${pendingFor} ms Pending (limit 3 s)`);
    assert.deepEqual(gone.phases, ['Pending']);

    const timedOut = await s.waitForJob(
      'slow',
      (j) => (j.status?.lastRun?.podName === name && j.status.lastRun.outcome === 'TimedOut' ? j : undefined),
      'lastRun TimedOut',
    );
    assert.equal(condition(timedOut, 'Degraded')?.reason, 'TimedOut');
    const rows = await s.waitForRows(
      job.metadata.uid,
      (r) => (r[0]?.outcome === 'TimedOut' ? r : undefined),
      'TimedOut row',
    );
    assert.equal(rows.length, 1);
    assertStatusAgreesWithLedger(timedOut, rows);
    await s.waitForEvent(
      'slow',
      (e) => e.reason === 'RunTimedOut' && e.type === 'Warning',
      'a Warning Event RunTimedOut',
    );
    await holdsFor(() => s.pods.all('slow').length === 1, 2000, 'no second Pod for the tick');
    await s.invariants(['slow']);
  });

  it('run-now: annotating ssj.dev/run-now=<token> starts one Pod <job>-m<sha256 prefix>; the same token again starts nothing, a new token runs again', async (t) => {
    const s = await openScenario('runnow', 'status');
    t.after(() => s.close());
    await s.startOperator();
    await s.createJob('manual', { schedule: '@yearly' });
    await s.waitForJob('manual', (j) => condition(j, 'Ready')?.status === 'True', 'Ready');

    await s.kubectl(['annotate', 'singletonjob', 'manual', 'ssj.dev/run-now=tok1']);
    const n1 = expectedManualPodName('manual', 'tok1');
    const pod = await s.waitForPod(n1);
    assert.equal(pod.labels[LABEL_TICK], 'manual');
    assert.equal(pod.labels[LABEL_ATTEMPT], '1');
    assert.equal(pod.annotations[ANNOTATION_RUN_NOW_TOKEN], 'tok1');
    await s.kubelet.run(s.namespace, n1);
    await s.kubelet.succeed(s.namespace, n1);
    const ran = await s.waitForJob(
      'manual',
      (j) => (j.status?.lastRun?.podName === n1 && j.status.lastRun.outcome === 'Succeeded' ? j : undefined),
      'the manual run Succeeded',
    );
    assert.equal(ran.status?.lastRun?.manualToken, 'tok1');

    // The same token again, after taking it off: already handled.
    await s.kubectl(['annotate', 'singletonjob', 'manual', 'ssj.dev/run-now-']);
    await s.kubectl(['annotate', 'singletonjob', 'manual', 'ssj.dev/run-now=tok1']);
    await holdsFor(() => s.pods.all('manual').length === 1, 3000, 'no second Pod for tok1');
    assert.equal((await listJobPods(s.kc, s.namespace, 'manual')).length, 1);

    // A new token runs (the operator was listening all along).
    await s.kubectl(['annotate', '--overwrite', 'singletonjob', 'manual', 'ssj.dev/run-now=tok2']);
    await s.waitForPod(expectedManualPodName('manual', 'tok2'));
    assert.equal(s.pods.all('manual').length, 2);
    await s.invariants(['manual']);
  });
});

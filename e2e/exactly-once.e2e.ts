/**
 * End to end: exactly one Pod per tick while two operator processes act at once (there is no
 * leader election yet, so both act: what a rolling update does today), in both ledgers; and a
 * Pod create the API server refuses (a missing ServiceAccount, a ResourceQuota) is reported while
 * the rest of the bookkeeping goes on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CoreV1Api, type V1PodSpec } from '@kubernetes/client-node';
import { apiStatus, waitFor, type ApiStatus } from '../test/support/kube.ts';
import {
  ANNOTATION_HOLDER,
  assertLedgerPodNamesUnique,
  assertOnePodPerRun,
  assertStatusAgreesWithLedger,
  condition,
  expectedPodName,
  hasRunRecordFinalizer,
  historyRuns,
  HistoryRecorder,
  LABEL_TICK,
  podsWithRunRecordFinalizer,
  rfc3339,
} from './support/checker.ts';
import { autoKubelet } from './support/kubelet.ts';
import {
  CONTAINER,
  holdsFor,
  nextMultiple,
  openScenario,
  scheduleAt,
  secondsFromNow,
  type LedgerMode,
  type Scenario,
} from './support/scenario.ts';

/** How long the two operators act at once. */
const RACE_MS = 60_000;

describe('exactly once, with two operators and refused creates', () => {
  for (const mode of ['status', 'postgres'] as const satisfies readonly LedgerMode[]) {
    it(`two operators without leader election acting at once for 60 s (${mode} ledger) never create a Pod name twice, record every Pod that succeeded as Succeeded, give no tick two records, and leave no Pod holding the ssj.dev/run-record finalizer`, async (t) => {
      const s = await openScenario(`twice-${mode === 'postgres' ? 'pg' : 'st'}`, mode);
      t.after(() => s.close());
      const history = await HistoryRecorder.start(s.kc, s.namespace);
      t.after(() => {
        history.stop();
      });
      // Without leader election (as by mistake): both act, and nothing but the ledger, the
      // finalizer and resourceVersion keeps them apart.
      const alone = { args: ['--leader-elect=false'] };
      const [a, b] = await Promise.all([s.startOperator(alone), s.startExtraOperator(alone)]);
      const kubelet = autoKubelet(s.kc, s.namespace, () => 'succeed');
      t.after(() => kubelet.stop());
      const job = await s.createJob('racy', {
        schedule: '*/2 * * * * *',
        successfulRunsHistoryLimit: 0,
        failedRunsHistoryLimit: 0,
      });

      await holdsFor(
        () => a.exited === undefined && b.exited === undefined,
        RACE_MS,
        'both operators running',
      );
      await Promise.all([a.stop(), b.stop()]);
      const created = s.pods.all('racy');
      const holders = new Set(created.map((p) => p.annotations[ANNOTATION_HOLDER]));
      t.diagnostic(
        `${created.length} Pods in ${RACE_MS / 1000} s, created by ${holders.size} operator(s); logs: ${a.logFile}, ${b.logFile}`,
      );
      assert.ok(created.length >= 15, `the job ran while both acted (${created.length} Pods)`);

      // A last, healthy operator, with the job suspended so that no new run opens: it records what
      // the two left open, and releases every finalizer.
      await s.kubectl(['patch', 'singletonjob', 'racy', '--type=merge', '-p', '{"spec":{"suspend":true}}']);
      const last = await s.startOperator();
      await s.waitForJob(
        'racy',
        (j) => condition(j, 'Suspended')?.status === 'True' && (j.status?.ledger?.claims ?? []).length === 0,
        'the last operator has the job suspended with no run open',
        30_000,
      );
      try {
        await waitFor(
          async () => (await podsWithRunRecordFinalizer(s.kc, s.namespace, 'racy')).length === 0,
          {
            timeoutMs: 20_000,
            intervalMs: 250,
            description: 'no Pod of the job holding the ssj.dev/run-record finalizer',
          },
        );
      } catch (error) {
        const held = await podsWithRunRecordFinalizer(s.kc, s.namespace, 'racy');
        assert.fail(
          `${held.length} Pod(s) still hold the finalizer after the last operator ran: ${held
            .map((p) => `${p.metadata?.name ?? '?'} (${p.status?.phase ?? '?'})`)
            .join(', ')}\n${String(error)}\n${last.tail()}`,
        );
      }
      await kubelet.stop();

      // No Pod name was ever created twice: one UID per name over every ADDED the watch saw.
      assertOnePodPerRun(s.pods.all());

      // Every Pod the kubelet completed Succeeded is recorded Succeeded, and only so.
      const succeeded = s.pods.all('racy').filter((p) => p.phases.includes('Succeeded'));
      assert.ok(succeeded.length >= 15, `the kubelet completed ${succeeded.length} Pods`);
      const wrong: string[] = [];
      const unrecorded: string[] = [];
      for (const p of succeeded) {
        const records = history.runRecords('racy', p.name);
        if (records.length === 0) unrecorded.push(p.name);
        for (const r of records)
          if (r.record.outcome !== 'Succeeded')
            wrong.push(
              `${p.name}: ${r.record.outcome} (${r.record.reason ?? ''}: ${r.record.message ?? ''})`,
            );
      }
      assert.deepEqual(
        wrong,
        [],
        `${wrong.length} record(s) of the ${succeeded.length} Pods that succeeded are not Succeeded`,
      );
      assert.deepEqual(
        unrecorded,
        [],
        `${unrecorded.length} of the ${succeeded.length} Pods that succeeded were never recorded in status.history`,
      );
      // No tick has two records, in any status written during the test.
      assert.ok(history.statusesSeen('racy') > succeeded.length, 'the recorder saw the status writes');
      assert.deepEqual(history.problems('racy'), [], 'no tick has two records in status.history');

      if (s.ledger !== undefined) {
        const uid = job.metadata.uid;
        const rows = await s.ledger.runs(uid);
        assert.deepEqual(
          await s.ledger.duplicateRunIdentities(),
          [],
          'ssj.runs has no two rows for one (job, tick, attempt)',
        );
        assertLedgerPodNamesUnique(rows);
        const byPod = new Map(rows.map((r) => [r.pod_name, r]));
        const rowProblems: string[] = [];
        for (const p of succeeded) {
          const row = byPod.get(p.name);
          if (row === undefined) rowProblems.push(`${p.name}: no row`);
          else if (row.state !== 'Finished' || row.outcome !== 'Succeeded')
            rowProblems.push(
              `${p.name}: ${row.state} ${String(row.outcome)} (${String(row.reason)}: ${String(row.message)})`,
            );
        }
        assert.deepEqual(rowProblems, [], 'every ssj.runs row of a Pod that succeeded is Succeeded');
        assert.deepEqual(
          await s.ledger.runTicksAlsoNotRun(uid),
          [],
          'no tick is both run and recorded Skipped or Missed in SQL',
        );
        assertStatusAgreesWithLedger(await s.job('racy'), rows);
      }
      await s.invariants(['racy']);
    });
  }

  it('a Pod create refused for a missing ServiceAccount shows Ready=False reason CreateRefused and a Warning Event CreateRefused quoting the API server; once the ServiceAccount exists the Pod is created and Ready is True again', async (t) => {
    const s = await openScenario('refused-sa', 'status');
    t.after(() => s.close());
    const spec: V1PodSpec = { serviceAccountName: 'runner', containers: [CONTAINER] };
    // The API server itself refuses such a Pod (the ServiceAccount admission plugin).
    const refusal = await refusedCreate(s, spec);
    assert.equal(refusal.code, 403, `a Pod naming a missing ServiceAccount is Forbidden: ${refusal.message}`);
    assert.match(refusal.message, /serviceaccount "runner" not found/);
    const quoted = withoutPodName(refusal.message);

    await s.startOperator();
    await s.createJob('needs-sa', { schedule: '*/2 * * * * *', template: { spec } });
    const refused = await s.waitForJob(
      'needs-sa',
      (j) =>
        condition(j, 'Ready')?.status === 'False' &&
        condition(j, 'Ready')?.reason === 'CreateRefused' &&
        (j.status?.ledger?.claims ?? []).length > 0
          ? j
          : undefined,
      'Ready=False reason CreateRefused, with a tick claimed',
    );
    const ready = condition(refused, 'Ready');
    assert.ok(
      ready?.message.includes(quoted) === true,
      `Ready's message quotes the API server ("${quoted}"): ${ready?.message ?? ''}`,
    );
    const claimed = refused.status?.ledger?.claims?.[0]?.podName ?? '';
    const event = await s.waitForEvent(
      'needs-sa',
      (e) => e.type === 'Warning' && e.reason === 'CreateRefused',
      'a Warning Event CreateRefused',
    );
    assert.ok(event.note.includes(quoted), `the Event quotes the API server ("${quoted}"): ${event.note}`);
    await holdsFor(
      () => s.pods.all('needs-sa').length === 0,
      3000,
      'no Pod of the job while its ServiceAccount is missing',
    );

    await s.kubectl(['create', 'serviceaccount', 'runner']);
    const fixedAt = Date.now();
    const pod = await waitFor(() => s.pods.all('needs-sa')[0], {
      timeoutMs: 20_000,
      description: 'a Pod of the job once its ServiceAccount exists',
    });
    assert.ok(pod.addedAt >= fixedAt, `${pod.name} was created after the ServiceAccount`);
    assert.equal(pod.last.spec?.serviceAccountName, 'runner');
    await s.waitForJob(
      'needs-sa',
      (j) => condition(j, 'Ready')?.status === 'True' && condition(j, 'Ready')?.reason === 'Scheduled',
      'Ready=True reason Scheduled again',
    );
    t.diagnostic(`claimed while refused: ${claimed}; created once the ServiceAccount existed: ${pod.name}`);
    if (pod.name !== claimed) {
      // A later tick ran: the claim refused meanwhile must have ended with a record, not be left open.
      const j = await s.job('needs-sa');
      assert.ok(
        historyRuns(j).some((h) => h.podName === claimed),
        `${claimed}, claimed while refused, is recorded (status.history: ${JSON.stringify(j.status?.history)})`,
      );
    }
    await s.kubelet.run(s.namespace, pod.name);
    await s.kubelet.succeed(s.namespace, pod.name);
    await s.waitForJob(
      'needs-sa',
      (j) => historyRuns(j).some((h) => h.podName === pod.name && h.outcome === 'Succeeded'),
      `${pod.name} recorded Succeeded`,
    );
    assert.equal(s.pods.byName(pod.name).length, 1, `${pod.name} was created once`);
    await s.invariants(['needs-sa']);
  });

  it("a Pod create refused by a ResourceQuota (Forbidden, exceeded quota) shows Ready=False CreateRefused with a Warning Event quoting the API server while the bookkeeping goes on: the job's own Pod that ran is recorded Succeeded, another job's running Pod is recorded Succeeded while the creates are refused, the refused run ends Failed CreateRefused after startingDeadlineSeconds, and creates resume once the quota frees", async (t) => {
    const s = await openScenario('refused-quota', 'postgres');
    t.after(() => s.close());
    await s.startOperator();
    const core = s.kc.makeApiClient(CoreV1Api);

    // Two runs' Pods Running: the holder's, which keeps running, and the ticker's first.
    const t0 = secondsFromNow(4000);
    const holder = await s.createJob('holder', { schedule: scheduleAt([t0]) });
    const ticker = await s.createJob('ticker', { schedule: '*/2 * * * * *', startingDeadlineSeconds: 6 });
    const holderPod = expectedPodName('holder', t0);
    const firstPod = expectedPodName('ticker', nextMultiple(2, new Date(ticker.metadata.creationTimestamp)));
    await s.waitForPod(firstPod);
    await s.kubelet.run(s.namespace, firstPod);
    await s.waitForPod(holderPod);
    await s.kubelet.run(s.namespace, holderPod);
    for (const name of ['holder', 'ticker'])
      await s.waitForJob(
        name,
        (j) => condition(j, 'Running')?.reason === 'PodRunning',
        'Running=True PodRunning',
      );

    // A quota of one Pod, with two running: nothing more fits until both have ended.
    await core.createNamespacedResourceQuota({
      namespace: s.namespace,
      body: { metadata: { name: 'one-pod' }, spec: { hard: { pods: '1' } } },
    });
    await waitFor(
      async () =>
        (await core.readNamespacedResourceQuota({ namespace: s.namespace, name: 'one-pod' })).status?.used?.[
          'pods'
        ] === '2',
      { timeoutMs: 20_000, intervalMs: 250, description: 'the quota controller to count the 2 running Pods' },
    );
    const probe = await refusedCreate(s, { containers: [CONTAINER] });
    assert.equal(probe.code, 403, `a Pod over the quota is Forbidden: ${probe.message}`);
    const quotaRefusal = /exceeded quota: one-pod, requested: pods=1, used: pods=\d+, limited: pods=1/;
    assert.match(probe.message, quotaRefusal);

    // The ticker's first Pod succeeds: recorded, and the next tick's create is refused (the holder
    // still fills the quota).
    await s.kubelet.succeed(s.namespace, firstPod);
    const refused = await s.waitForJob(
      'ticker',
      (j) =>
        condition(j, 'Ready')?.reason === 'CreateRefused' && (j.status?.ledger?.claims ?? []).length > 0
          ? j
          : undefined,
      'Ready=False CreateRefused with a tick claimed',
      15_000,
    );
    assert.equal(condition(refused, 'Ready')?.status, 'False');
    assert.match(
      condition(refused, 'Ready')?.message ?? '',
      quotaRefusal,
      "Ready's message quotes the API server",
    );
    const refusedClaim = refused.status?.ledger?.claims?.[0];
    assert.ok(refusedClaim?.tick !== undefined, 'the refused run is a scheduled tick');
    const refusedPod = refusedClaim.podName;
    await s.waitForJob(
      'ticker',
      (j) => historyRuns(j).some((h) => h.podName === firstPod && h.outcome === 'Succeeded'),
      `${firstPod} recorded Succeeded`,
    );
    const event = await s.waitForEvent(
      'ticker',
      (e) => e.type === 'Warning' && e.reason === 'CreateRefused' && quotaRefusal.test(e.note),
      'a Warning Event CreateRefused quoting the quota refusal',
    );
    t.diagnostic(`Event: ${event.note}`);
    await waitFor(
      async () => {
        const pods = await core.listNamespacedPod({
          namespace: s.namespace,
          labelSelector: 'ssj.dev/job=ticker',
        });
        const p = pods.items.find((x) => x.metadata?.name === firstPod);
        return p !== undefined && !hasRunRecordFinalizer(p);
      },
      {
        timeoutMs: 10_000,
        description: `${firstPod} released (finalizer removed) while creates are refused`,
      },
    );

    // Refused past startingDeadlineSeconds (6 s): the run ends Failed CreateRefused, never created.
    const failed = await s.waitForJob(
      'ticker',
      (j) => historyRuns(j).find((h) => h.podName === refusedPod && h.outcome === 'Failed'),
      `${refusedPod} recorded Failed after startingDeadlineSeconds`,
      20_000,
    );
    assert.equal(failed.reason, 'CreateRefused');
    assert.equal(s.pods.byName(refusedPod).length, 0, `${refusedPod} was never created`);
    const stillRefused = await s.waitForJob(
      'ticker',
      (j) =>
        condition(j, 'Ready')?.reason === 'CreateRefused' &&
        Date.parse(j.status?.ledger?.['latestTick'] as string) > Date.parse(refusedClaim.tick ?? '')
          ? j
          : undefined,
      'the ticks after the refused one accounted for while creates are still refused',
    );
    assert.equal(condition(stillRefused, 'Ready')?.status, 'False');
    assert.equal(
      condition(await s.job('holder'), 'Running')?.reason,
      'PodRunning',
      "the holder's run is still tracked as running",
    );

    // The holder's running Pod succeeds while the ticker's creates are refused: recorded.
    assert.equal(condition(await s.job('ticker'), 'Ready')?.reason, 'CreateRefused');
    await s.kubelet.succeed(s.namespace, holderPod);
    const succeededAt = Date.now();
    await s.waitForJob(
      'holder',
      (j) => j.status?.lastRun?.podName === holderPod && j.status.lastRun.outcome === 'Succeeded',
      `${holderPod} recorded Succeeded`,
      10_000,
    );

    // The quota frees: the ticker's creates go through again, and Ready returns to True.
    const resumed = await waitFor(() => s.pods.all('ticker').find((p) => p.addedAt > succeededAt), {
      timeoutMs: 20_000,
      description: 'a Pod of the ticker once the quota frees',
    });
    await s.waitForJob(
      'ticker',
      (j) => condition(j, 'Ready')?.status === 'True' && condition(j, 'Ready')?.reason === 'Scheduled',
      'Ready=True reason Scheduled again',
    );
    t.diagnostic(
      `refused: ${refusedPod}; resumed with ${resumed.name} (tick ${resumed.labels[LABEL_TICK] ?? '?'})`,
    );

    const rows = await s.ledger!.runs(ticker.metadata.uid);
    const refusedRow = rows.find((r) => r.pod_name === refusedPod);
    assert.equal(refusedRow?.outcome, 'Failed', `${refusedPod} is Failed in ssj.runs`);
    assert.equal(refusedRow.reason, 'CreateRefused');
    assert.equal(rows.find((r) => r.pod_name === firstPod)?.outcome, 'Succeeded');
    assert.equal(
      (await s.ledger!.runs(holder.metadata.uid)).find((r) => r.pod_name === holderPod)?.outcome,
      'Succeeded',
    );
    assert.deepEqual(
      await s.ledger!.duplicateRunIdentities(),
      [],
      'no two rows for one (job, tick, attempt)',
    );
    assert.deepEqual(
      await s.ledger!.runTicksAlsoNotRun(ticker.metadata.uid),
      [],
      'no tick with two outcomes',
    );
    await s.kubelet.run(s.namespace, resumed.name);
    await s.kubelet.succeed(s.namespace, resumed.name);
    const settled = await s.waitForJob(
      'ticker',
      (j) => (historyRuns(j).some((h) => h.podName === resumed.name) ? j : undefined),
      `${resumed.name} recorded`,
    );
    assertStatusAgreesWithLedger(settled, await s.ledger!.runs(ticker.metadata.uid));
    await s.invariants(['holder', 'ticker']);
    t.diagnostic(`first refused tick ${rfc3339(new Date(refusedClaim.tick))}`);
  });
});

/** Creates a Pod like a run's (dry run) and returns the API server's refusal; fails if it was accepted. */
async function refusedCreate(s: Scenario, spec: V1PodSpec): Promise<ApiStatus> {
  try {
    await s.kc.makeApiClient(CoreV1Api).createNamespacedPod({
      namespace: s.namespace,
      body: { metadata: { name: 'probe' }, spec: Object.assign({ restartPolicy: 'Never' }, spec) },
      dryRun: 'All',
    });
  } catch (error) {
    const status = apiStatus(error);
    if (status !== undefined) return status;
    throw error;
  }
  return assert.fail('the API server accepted the probe Pod: the refusal this test needs does not happen');
}

/** The API server's reason, without the `pods "<name>" is forbidden: ` that names the Pod. */
function withoutPodName(message: string): string {
  return message.replace(/^pods "[^"]*" is forbidden: /, '');
}

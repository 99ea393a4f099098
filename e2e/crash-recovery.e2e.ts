/**
 * End to end: what happens when things die. A run's Pod vanishes (deleted, evicted); the operator
 * crashes between claiming a tick and creating its Pod, or between creating it and recording it
 * (the SSJ_FAULT_EXIT_AT switch); the operator is down while ticks pass.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitFor } from '../test/support/kube.ts';
import { startPrivateServer } from '../test/support/postgres.ts';
import {
  assertStatusAgreesWithLedger,
  condition,
  expectedPodName,
  historyNotRun,
  LABEL_TICK,
  listJobPods,
  rfc3339,
  type LedgerRunRow,
} from './support/checker.ts';
import { autoKubelet } from './support/kubelet.ts';
import { describeExit } from './support/operator.ts';
import {
  boundTemplate,
  holdsFor,
  nextMultiple,
  openScenario,
  scheduleAt,
  secondsFromNow,
  untilTime,
  type LedgerMode,
  type Scenario,
} from './support/scenario.ts';

const FAULT_EXIT_CODE = 86;

describe('crash detection and recovery', () => {
  it('a Pod deleted mid-run is recorded Lost (Warning Event RunLost, Degraded=True) only once it is gone, and not run again; an evicted Pod is Lost too', async (t) => {
    const s = await openScenario('lost', 'postgres');
    t.after(() => s.close());
    await s.startOperator();
    const tick = secondsFromNow(4000);
    // Bound to a node, the deleted Pod stays Terminating (still Running) until its "kubelet" confirms.
    const deleted = await s.createJob('deleted', { schedule: scheduleAt([tick]), template: boundTemplate() });
    const evicted = await s.createJob('evicted', { schedule: scheduleAt([tick]) });
    const pd = expectedPodName('deleted', tick);
    const pe = expectedPodName('evicted', tick);
    await s.waitForPod(pd);
    await s.waitForPod(pe);
    await s.kubelet.run(s.namespace, pd);
    await s.kubelet.run(s.namespace, pe);
    await s.waitForJob('deleted', (j) => condition(j, 'Running')?.reason === 'PodRunning', 'Running=True');
    await s.waitForJob('evicted', (j) => condition(j, 'Running')?.reason === 'PodRunning', 'Running=True');

    await s.kubectl(['delete', 'pod', pd, '--wait=false']);
    await s.kubelet.evict(s.namespace, pe);
    await waitFor(() => s.pods.byName(pd)[0]?.terminatingAt, {
      timeoutMs: 5000,
      description: `${pd} terminating`,
    });
    // While the Pod is Terminating it may still run: nothing is recorded yet.
    await holdsFor(
      async () => {
        const j = await s.job('deleted');
        return j.status?.lastRun === undefined && condition(j, 'Running')?.status === 'True';
      },
      3000,
      `${pd} still the active run while Terminating`,
    );
    await s.forceDelete(pd);

    const lost = await s.waitForJob(
      'deleted',
      (j) => (j.status?.lastRun?.podName === pd && j.status.lastRun.outcome === 'Lost' ? j : undefined),
      'lastRun Lost',
    );
    assert.equal(condition(lost, 'Degraded')?.status, 'True');
    assert.equal(condition(lost, 'Degraded')?.reason, 'Lost');
    assert.equal(condition(lost, 'Running')?.status, 'False');
    const evictedJob = await s.waitForJob(
      'evicted',
      (j) => (j.status?.lastRun?.podName === pe && j.status.lastRun.outcome === 'Lost' ? j : undefined),
      'lastRun Lost',
    );
    assert.equal(evictedJob.status?.lastRun?.reason, 'Evicted');
    assert.equal(condition(evictedJob, 'Degraded')?.reason, 'Lost');

    const lostEvent = await s.waitForEvent(
      'deleted',
      (x) => x.reason === 'RunLost' && x.type === 'Warning',
      'a Warning Event RunLost',
    );
    assert.match(lostEvent.note, new RegExp(pd));

    const rows = await s.waitForRows(
      deleted.metadata.uid,
      (r) => (r.find((x) => x.pod_name === pd)?.outcome === 'Lost' ? r : undefined),
      `${pd} Lost in the ledger`,
    );
    assert.equal(rows.length, 1, 'one run of the tick');
    assertStatusAgreesWithLedger(await s.job('deleted'), rows);
    const evictedRows = await s.waitForRows(
      evicted.metadata.uid,
      (r) => (r.find((x) => x.pod_name === pe)?.outcome === 'Lost' ? r : undefined),
      `${pe} Lost in the ledger`,
    );
    assert.equal(evictedRows[0]?.reason, 'Evicted');

    // Not run again: no second Pod of that name, no attempt 2 (maxAttempts is 1).
    await holdsFor(
      () => s.pods.all('deleted').length === 1 && s.pods.all('evicted').length === 1,
      4000,
      'no other Pod of either job',
    );
    assert.deepEqual(
      (await listJobPods(s.kc, s.namespace, 'deleted')).map((p) => p.metadata?.name),
      [],
      'the deleted Pod was not re-created',
    );
    await s.invariants(['deleted', 'evicted']);
  });

  for (const mode of ['postgres', 'status'] as const satisfies readonly LedgerMode[]) {
    for (const point of ['after-claim', 'after-create'] as const) {
      it(`an operator that exits at ${point} (${mode} ledger) is finished by its successor under the same Pod name, created exactly once`, async (t) => {
        const s = await openScenario(`fault-${point}-${mode === 'postgres' ? 'pg' : 'st'}`, mode);
        t.after(() => s.close());
        const crashing = s.spawnOperator({ env: { SSJ_FAULT_EXIT_AT: point } });
        await crashing.waitForLog((l) => l.msg === 'controller started', 30_000, '"controller started"');
        const tick = secondsFromNow(4000);
        const job = await s.createJob('once', { schedule: scheduleAt([tick]) });
        const name = expectedPodName('once', tick);

        const exit = await crashing.waitForExit(20_000);
        assert.equal(
          exit.code,
          FAULT_EXIT_CODE,
          `the fault switch exits with ${FAULT_EXIT_CODE}, got ${describeExit(exit)}\n${crashing.tail()}`,
        );

        // What the crash left behind: a claim, and the Pod only if it crashed after creating it.
        const podsAfterCrash = (await listJobPods(s.kc, s.namespace, 'once')).map((p) => p.metadata?.name);
        assert.deepEqual(
          podsAfterCrash,
          point === 'after-claim' ? [] : [name],
          'Pods when the operator died',
        );
        const leftUid = podsAfterCrash.length === 1 ? s.pods.byName(name)[0]?.uid : undefined;
        if (s.ledger !== undefined) {
          const rows = await s.ledger.runs(job.metadata.uid);
          assert.deepEqual(
            rows.map((r) => [r.pod_name, r.state]),
            [[name, 'Claimed']],
            'the claim is durable in PostgreSQL before the Pod exists or is recorded',
          );
        } else {
          const claims = (await s.job('once')).status?.ledger?.claims ?? [];
          assert.deepEqual(
            claims.map((c) => c.podName),
            [name],
            'the claim is durable in status.ledger.claims before the Pod exists or is recorded',
          );
        }

        await s.startOperator();
        const pod = await s.waitForPod(name);
        if (leftUid !== undefined)
          assert.equal(pod.uid, leftUid, 'the Pod created before the crash is adopted');
        await s.kubelet.run(s.namespace, name);
        await s.kubelet.succeed(s.namespace, name);
        const done = await s.waitForJob(
          'once',
          (j) =>
            j.status?.lastRun?.podName === name && j.status.lastRun.outcome === 'Succeeded' ? j : undefined,
          'the claimed run recorded Succeeded',
        );
        assert.deepEqual(done.status?.ledger?.claims ?? [], [], 'no claim left open');
        assert.equal(s.pods.byName(name).length, 1, `${name} was created exactly once`);
        assert.equal(s.pods.all('once').length, 1, 'the job has exactly one Pod');
        if (s.ledger !== undefined) {
          const rows = await s.waitForRows(
            job.metadata.uid,
            (r) => (r.every((x) => x.state === 'Finished') ? r : undefined),
            'the run finished in the ledger',
          );
          assert.deepEqual(
            rows.map((r) => [r.pod_name, r.attempt, r.outcome]),
            [[name, 1, 'Succeeded']],
            'one ledger row for the tick',
          );
          assertStatusAgreesWithLedger(done, rows);
        }
        await s.invariants(['once']);
      });
    }
  }

  it('after downtime the ticks that passed are Missed and only the latest runs; with startingDeadlineSeconds passed, the latest is Missed too', async (t) => {
    const s = await openScenario('missed', 'postgres');
    t.after(() => s.close());
    await s.startOperator();
    const kubelet = autoKubelet(s.kc, s.namespace, () => 'succeed');
    t.after(() => kubelet.stop());
    const period = 6;
    const plain = await s.createJob('plain', { schedule: `*/${period} * * * * *` });
    const strict = await s.createJob('strict', {
      schedule: `*/${period} * * * * *`,
      startingDeadlineSeconds: 2,
    });
    const created = Math.max(
      Date.parse(plain.metadata.creationTimestamp),
      Date.parse(strict.metadata.creationTimestamp),
    );
    const t1 = nextMultiple(period, new Date(created));
    await s.waitForPod(expectedPodName('plain', t1));
    await s.waitForPod(expectedPodName('strict', t1));
    await s.waitForJob(
      'strict',
      (j) => j.status?.lastRun?.podName === expectedPodName('strict', t1),
      'the first run finished',
    );

    await s.stopOperator();
    const stoppedAt = Date.now();
    // Three ticks pass with no operator; it comes back 3.5 s after the third, past strict's 2 s deadline.
    const t4 = new Date(t1.getTime() + 3 * period * 1000);
    assert.ok(stoppedAt < t1.getTime() + period * 1000, 'the operator was stopped before the second tick');
    await untilTime(new Date(t4.getTime() + 3500));
    const restart = await s.startOperator();

    // plain: the latest tick at the first reconcile runs; every earlier one since t1 is Missed.
    const firstNew = await waitFor(
      () => s.pods.all('plain').find((p) => Number(p.labels[LABEL_TICK]) * 1000 > t1.getTime()),
      { timeoutMs: 15_000, description: 'the first Pod of plain after the restart' },
    );
    const latest = Number(firstNew.labels[LABEL_TICK]) * 1000;
    assert.ok(
      latest >= t4.getTime(),
      `the Pod after the restart is for the latest tick (${rfc3339(new Date(latest))}), not an older one`,
    );
    // Latest when the operator chose it: a Pod chosen just before the next tick can land just
    // after it (the claim and the create take time on a busy machine), so allow 2 s past the
    // period. An older tick run late would be at least two periods old here.
    assert.ok(
      latest <= restart.spawnedAt.getTime() + 15_000 && firstNew.addedAt - latest < period * 1000 + 2000,
      `it is the latest tick at the moment it was chosen (created ${firstNew.addedAt - latest} ms after it)`,
    );
    const missedPlain = await waitFor(
      async () => {
        const rows = await s.ledger!.ticksNotRun(plain.metadata.uid);
        return ticksCovered(rows, 'Missed') >= (latest - t1.getTime()) / 1000 / period - 1 ? rows : undefined;
      },
      { timeoutMs: 10_000, description: 'the ticks between t1 and the latest recorded Missed' },
    );
    for (let tk = t1.getTime() + period * 1000; tk < latest; tk += period * 1000) {
      assert.ok(
        covers(missedPlain, tk, 'Missed'),
        `plain: tick ${rfc3339(new Date(tk))} is Missed in the ledger`,
      );
      assert.equal(
        s.pods.byName(expectedPodName('plain', tk)).length,
        0,
        `plain: no Pod for the missed tick ${rfc3339(new Date(tk))}`,
      );
    }
    assert.ok(
      missedPlain.every((r) => r.outcome !== 'Missed' || r.reason === 'NoController'),
      'plain: Missed because no controller acted',
    );

    // strict: the latest tick was more than startingDeadlineSeconds late: Missed as well.
    const strictRows = await waitFor(
      async () => {
        const rows = await s.ledger!.ticksNotRun(strict.metadata.uid);
        return rows.some((r) => r.reason === 'DeadlineExceeded') ? rows : undefined;
      },
      { timeoutMs: 15_000, description: 'strict: the latest tick Missed with reason DeadlineExceeded' },
    );
    const deadline = strictRows.find((r) => r.reason === 'DeadlineExceeded')!;
    assert.equal(deadline.outcome, 'Missed');
    assert.ok(deadline.first_tick.getTime() >= t4.getTime(), 'the tick past its deadline is the latest one');
    for (let tk = t1.getTime() + period * 1000; tk <= deadline.first_tick.getTime(); tk += period * 1000) {
      assert.ok(covers(strictRows, tk, 'Missed'), `strict: tick ${rfc3339(new Date(tk))} is Missed`);
      assert.equal(
        s.pods.byName(expectedPodName('strict', tk)).length,
        0,
        `strict: no Pod for ${rfc3339(new Date(tk))}`,
      );
    }
    // The status shows the misses too.
    await s.waitForJob(
      'strict',
      (j) => historyNotRun(j, 'Missed').some((h) => h.reason === 'DeadlineExceeded'),
      'status.history lists the Missed ticks',
      10_000,
    );
    await s.waitForJob(
      'plain',
      (j) => historyNotRun(j, 'Missed').length > 0,
      'status.history lists the Missed ticks',
      10_000,
    );
    assertRunsOnePerTick(await s.ledger!.runs(plain.metadata.uid));
    await s.invariants(['plain', 'strict']);
  });

  it('while PostgreSQL is down no tick is claimed and Ready=False LedgerUnavailable; when it returns, the outcome seen meanwhile is recorded and scheduling resumes', async (t) => {
    // A server of the test's own: the shared one is never stopped.
    const server = await startPrivateServer();
    let opened: Scenario | undefined;
    t.after(async () => {
      try {
        await opened?.close();
      } finally {
        await server.destroy();
      }
    });
    const s = (opened = await openScenario('pgdown', 'postgres', server.url));
    await s.startOperator();
    const job = await s.createJob('steady', { schedule: '*/3 * * * * *' });
    const uid = job.metadata.uid;
    const p1 = expectedPodName('steady', nextMultiple(3, new Date(job.metadata.creationTimestamp)));
    await s.waitForPod(p1);
    await s.kubelet.run(s.namespace, p1);
    await s.waitForRows(
      uid,
      (rows) => rows.find((r) => r.pod_name === p1 && r.state === 'Running'),
      `${p1} Running`,
    );

    await server.stop();
    const downAt = Date.now();
    await s.kubelet.succeed(s.namespace, p1); // observed while the ledger is down
    await s.waitForJob(
      'steady',
      (j) =>
        condition(j, 'Ready')?.reason === 'LedgerUnavailable' && condition(j, 'Ready')?.status === 'False',
      'Ready=False LedgerUnavailable',
      15_000,
    );
    const before = s.pods.all('steady').length;
    await holdsFor(
      () => s.pods.all('steady').length === before,
      4000,
      'no new Pod while the ledger is down (a tick passes)',
    );

    // The server may answer before start() has seen it ready: the outage ends when it is started.
    const startingAt = Date.now();
    await server.start();
    const upAt = Date.now();
    await s.waitForJob(
      'steady',
      (j) => condition(j, 'Ready')?.reason === 'Scheduled',
      'Ready=True once it is back',
      30_000,
    );
    const rows = await s.waitForRows(
      uid,
      (r) => (r.find((x) => x.pod_name === p1)?.outcome === 'Succeeded' ? r : undefined),
      `${p1} recorded Succeeded once the ledger is back`,
      30_000,
    );
    assert.equal(rows.find((r) => r.pod_name === p1)?.state, 'Finished');
    const resumed = await waitFor(() => s.pods.all('steady').find((p) => p.addedAt > upAt), {
      timeoutMs: 15_000,
      description: 'a Pod once the ledger is back',
    });
    for (const p of s.pods.all('steady')) {
      assert.ok(
        p.addedAt < downAt + 500 || p.addedAt > startingAt,
        `${p.name} was not created while the ledger was down`,
      );
    }
    // Every Pod is known to the ledger.
    const known = await s.waitForRows(
      uid,
      (r) => (r.some((x) => x.pod_name === resumed.name) ? r : undefined),
      `a ledger row for ${resumed.name}`,
    );
    for (const p of s.pods.all('steady')) {
      assert.ok(
        known.some((r) => r.pod_name === p.name),
        `${p.name} has a ledger row`,
      );
    }
    await s.invariants(['steady']);
  });
});

/** How many ticks of `outcome` the rows account for. */
function ticksCovered(rows: readonly { outcome: string; count: number }[], outcome: string): number {
  return rows.filter((r) => r.outcome === outcome).reduce((n, r) => n + r.count, 0);
}

function covers(
  rows: readonly { outcome: string; first_tick: Date; last_tick: Date }[],
  tick: number,
  outcome: string,
): boolean {
  return rows.some(
    (r) => r.outcome === outcome && r.first_tick.getTime() <= tick && tick <= r.last_tick.getTime(),
  );
}

function assertRunsOnePerTick(rows: readonly LedgerRunRow[]): void {
  const ticks = rows.filter((r) => r.tick !== null).map((r) => `${String(r.tick?.getTime())}/${r.attempt}`);
  assert.equal(new Set(ticks).size, ticks.length, 'one ledger row per (tick, attempt)');
}

/**
 * End to end on the real node (e2e/node/up.sh): containerd, runc and a kubelet run every Pod, so
 * phases, exit codes, deadlines, restarts, evictions and deletions are the kubelet's own, not
 * the simulated kubelet's. Each case is judged by the independent checker: the Pod recorder
 * (every Pod ever seen, with its phases), the PostgreSQL ledger or status.history, and the
 * invariants every end-to-end test ends with.
 */
import assert from 'node:assert/strict';
import { before, describe, it, type TestContext } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { loadKubeConfig } from '../../test/support/kube.ts';
import {
  expectedPodName,
  historyNotRun,
  historyRuns,
  rfc3339,
  type LedgerRunRow,
  type RecordedPod,
} from '../support/checker.ts';
import {
  holdsFor,
  instantsInOneMinute,
  openScenario,
  scheduleAt,
  secondsFromNow,
  type Scenario,
} from '../support/scenario.ts';
import { nodeTemplate, requireRealNode } from './node.ts';

/** Long enough for the node to start a container (sandbox, network, runc) after the tick. */
const RUN_TIMEOUT_MS = 40_000;

async function finishedRow(s: Scenario, uid: string, pod: string): Promise<LedgerRunRow> {
  return s.waitForRows(
    uid,
    (r) => r.find((x) => x.pod_name === pod && x.state === 'Finished'),
    `the run of ${pod} finished in the ledger`,
    RUN_TIMEOUT_MS,
  );
}

/**
 * A scenario with the operator started (PostgreSQL ledger) and one job `job` whose only tick is
 * 3 s away, running `template`; with the job's UID and the name of that tick's Pod.
 */
async function oneTickJob(
  t: TestContext,
  prefix: string,
  job: string,
  template: Record<string, unknown>,
): Promise<{ s: Scenario; uid: string; name: string }> {
  const s = await openScenario(prefix, 'postgres');
  t.after(() => s.close());
  await s.startOperator();
  const tick = secondsFromNow(3000);
  const created = await s.createJob(job, { schedule: scheduleAt([tick]), template });
  return { s, uid: created.metadata.uid, name: expectedPodName(job, tick) };
}

function onlyPod(s: Scenario, job: string): RecordedPod {
  const pods = s.pods.all(job);
  assert.equal(pods.length, 1, `one Pod for ${job}, saw [${pods.map((p) => p.name).join(', ')}]`);
  return pods[0]!;
}

describe('runs on a real node', () => {
  before(async () => {
    await requireRealNode(loadKubeConfig());
  });

  it('a container that exits 0 is Succeeded, and `kubectl logs` of the finished run shows its output', async (t) => {
    const { s, uid, name } = await oneTickJob(
      t,
      'node-ok',
      'ok',
      nodeTemplate('echo "run of $HOSTNAME starts"; sleep 2; echo "run of $HOSTNAME ends"'),
    );
    const row = await finishedRow(s, uid, name);
    assert.equal(row.outcome, 'Succeeded');
    assert.equal(row.reason, 'PodSucceeded');
    assert.ok(row.started_at !== null, 'the ledger recorded the start the kubelet reported');
    const pod = onlyPod(s, 'ok');
    assert.ok(
      pod.phases.includes('Running'),
      `the kubelet reported Running (phases: ${pod.phases.join(' → ')})`,
    );
    assert.equal(pod.phases.at(-1), 'Succeeded');
    const terminated = pod.last.status?.containerStatuses?.[0]?.state?.terminated;
    assert.equal(terminated?.exitCode, 0, 'the container exited 0');

    await s.waitForJob(
      'ok',
      (j) => historyRuns(j).find((h) => h.podName === name && h.outcome === 'Succeeded'),
      `status.history records ${name} Succeeded`,
    );
    const logs = await s.kubectl(['logs', name]);
    assert.equal(logs.trim(), `run of ${name} starts\nrun of ${name} ends`, 'kubectl logs shows the run');
    await s.invariants(['ok']);
  });

  it('a container that exits 1 is Failed, with its exit code in the record', async (t) => {
    const { s, uid, name } = await oneTickJob(
      t,
      'node-fail',
      'fails',
      nodeTemplate('echo "giving up"; exit 1'),
    );
    const row = await finishedRow(s, uid, name);
    assert.equal(row.outcome, 'Failed');
    assert.equal(row.reason, 'Error', "the kubelet's reason for a container that exited non-zero");
    assert.match(row.message ?? '', /exited with code 1\b/);
    const recorded = await s.waitForJob(
      'fails',
      (j) => historyRuns(j).find((h) => h.podName === name && h.outcome === 'Failed'),
      `status.history records ${name} Failed`,
    );
    assert.match(recorded.message ?? '', /exited with code 1\b/);
    assert.equal(onlyPod(s, 'fails').phases.at(-1), 'Failed');
    assert.equal((await s.kubectl(['logs', name])).trim(), 'giving up');
    await s.invariants(['fails']);
  });

  it('a container that outlives activeDeadlineSeconds is Failed (DeadlineExceeded)', async (t) => {
    const { s, uid, name } = await oneTickJob(
      t,
      'node-deadline',
      'late',
      nodeTemplate('echo started; sleep 120', { activeDeadlineSeconds: 3 }),
    );
    const row = await finishedRow(s, uid, name);
    assert.equal(row.outcome, 'Failed');
    assert.equal(row.reason, 'DeadlineExceeded');
    const pod = onlyPod(s, 'late');
    assert.ok(pod.phases.includes('Running'), `it ran first (phases: ${pod.phases.join(' → ')})`);
    assert.equal(pod.last.status?.reason, 'DeadlineExceeded', "the kubelet's own reason on the Pod");
    await s.invariants(['late']);
  });

  it('restartPolicy OnFailure: the kubelet restarts the failed container inside the one Pod, and it stays one run', async (t) => {
    const { s, uid, name } = await oneTickJob(
      t,
      'node-restart',
      'again',
      nodeTemplate(
        'if [ -e /data/tried ]; then echo "second start"; exit 0; fi; touch /data/tried; echo "first start"; exit 1',
        { restartPolicy: 'OnFailure', scratch: true },
      ),
    );
    const row = await finishedRow(s, uid, name);
    assert.equal(row.outcome, 'Succeeded', 'the restart inside the Pod succeeded');
    const pod = onlyPod(s, 'again');
    const restarts = pod.last.status?.containerStatuses?.[0]?.restartCount ?? 0;
    assert.ok(restarts >= 1, `the container was restarted in place (restartCount ${restarts})`);
    const rows = await s.ledger!.runs(uid);
    assert.deepEqual(
      rows.map((r) => [r.pod_name, r.attempt]),
      [[name, 1]],
      'one run, one attempt, for the tick',
    );
    assert.equal((await s.kubectl(['logs', name])).trim(), 'second start');
    await s.invariants(['again']);
  });

  for (const how of ['evicted through the Eviction API', 'deleted'] as const) {
    it(`a run ${how} mid-run is Lost and not run again, and its Pod is held by the tracking finalizer until the outcome is recorded`, async (t) => {
      const evict = how !== 'deleted';
      const { s, uid, name } = await oneTickJob(
        t,
        evict ? 'node-evict' : 'node-delete',
        'stopped',
        nodeTemplate('echo started; sleep 120'),
      );
      await s.waitForRows(
        uid,
        (r) => r.find((x) => x.pod_name === name && x.state === 'Running'),
        `${name} recorded Running`,
        RUN_TIMEOUT_MS,
      );
      if (evict) {
        await s.kc.makeApiClient(CoreV1Api).createNamespacedPodEviction({
          name,
          namespace: s.namespace,
          body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: s.namespace } },
        });
      } else {
        await s.kubectl(['delete', 'pod', name, '--wait=false']);
      }

      const gone = await s.waitForPodGone(name, RUN_TIMEOUT_MS);
      // Read once, at once: the record must already be there when the Pod has gone.
      const rows = await s.ledger!.runs(uid);
      const row = rows.find((r) => r.pod_name === name);
      assert.equal(row?.state, 'Finished', `the outcome was recorded before ${name} was let go`);
      assert.equal(row.outcome, 'Lost');
      if (evict)
        assert.equal(row.reason, 'EvictionByEvictionAPI', 'the eviction is named, not the killed container');
      else assert.equal(row.reason, 'PodDeleted');
      assert.ok(
        gone.terminatingAt !== undefined && gone.stoppedAt !== undefined && gone.releasedAt !== undefined,
      );
      assert.ok(
        gone.terminatingAt <= gone.stoppedAt && gone.stoppedAt <= gone.releasedAt,
        `the finalizer held ${name} from its deletion until its containers had stopped (terminating ${gone.terminatingAt}, stopped ${gone.stoppedAt}, released ${gone.releasedAt})`,
      );
      assert.equal(gone.phases.at(-1), 'Failed', 'the kubelet stopped it');

      await holdsFor(
        async () => s.pods.all('stopped').length === 1 && (await s.ledger!.runs(uid)).length === 1,
        6000,
        'no second Pod and no second run for the tick',
      );
      await s.invariants(['stopped']);
    });
  }

  it("concurrencyPolicy Replace with a running container: it is stopped and recorded Replaced, and the new tick's Pod is created once it has stopped", async (t) => {
    const s = await openScenario('node-replace', 'postgres');
    t.after(() => s.close());
    await s.startOperator();
    const [t1, t2] = instantsInOneMinute(3000, [0, 10_000]) as [Date, Date];
    const { uid } = (
      await s.createJob('replace', {
        schedule: scheduleAt([t1, t2]),
        concurrencyPolicy: 'Replace',
        template: nodeTemplate('echo "$HOSTNAME starts"; sleep 120'),
      })
    ).metadata;
    const p1 = expectedPodName('replace', t1);
    const p2 = expectedPodName('replace', t2);
    const rows = await s.waitForRows(
      uid,
      (r) =>
        r.find((x) => x.pod_name === p1)?.outcome === 'Replaced' && r.find((x) => x.pod_name === p2)
          ? r
          : undefined,
      `${p1} Replaced and ${p2} claimed`,
      RUN_TIMEOUT_MS,
    );
    assert.equal(rows.find((r) => r.pod_name === p1)?.state, 'Finished');
    const [old] = s.pods.byName(p1);
    assert.ok(old?.phases.includes('Running'), `${p1} was running when it was replaced`);
    const next = await s.waitForPod(p2);
    await s.waitForRows(
      uid,
      (r) => r.find((x) => x.pod_name === p2 && x.state === 'Running'),
      `${p2} running`,
      RUN_TIMEOUT_MS,
    );
    const stopped = s.pods.byName(p1)[0]!;
    assert.ok(
      stopped.stoppedAt !== undefined && next.addedAt >= stopped.stoppedAt,
      `${p2} was created (${next.addedAt}) only after ${p1} had stopped (${stopped.stoppedAt})`,
    );
    await s.invariants(['replace']);
  });

  it('concurrencyPolicy Forbid with a running container: a tick during the run is Skipped, and the next tick after it ends runs', async (t) => {
    const s = await openScenario('node-forbid', 'status');
    t.after(() => s.close());
    await s.startOperator();
    const [t1, t2, t3] = instantsInOneMinute(3000, [0, 4000, 16_000]) as [Date, Date, Date];
    await s.createJob('forbid', {
      schedule: scheduleAt([t1, t2, t3]),
      concurrencyPolicy: 'Forbid',
      template: nodeTemplate('echo working; sleep 6'),
    });
    const p1 = expectedPodName('forbid', t1);
    const p3 = expectedPodName('forbid', t3);
    const skipped = await s.waitForJob(
      'forbid',
      (j) => historyNotRun(j, 'Skipped').find((h) => h.tick === rfc3339(t2)),
      `the tick ${rfc3339(t2)} recorded Skipped while ${p1} runs`,
      RUN_TIMEOUT_MS,
    );
    assert.equal(skipped.reason, 'RunActive');
    await s.waitForJob(
      'forbid',
      (j) => {
        const runs = historyRuns(j);
        return (
          runs.some((h) => h.podName === p1 && h.outcome === 'Succeeded') &&
          runs.some((h) => h.podName === p3 && h.outcome === 'Succeeded')
        );
      },
      `${p1} and then ${p3} Succeeded`,
      RUN_TIMEOUT_MS,
    );
    assert.deepEqual(
      s.pods
        .all('forbid')
        .map((p) => p.name)
        .sort(),
      [p1, p3].sort(),
      'no Pod for the skipped tick',
    );
    const first = s.pods.byName(p1)[0]!;
    const third = s.pods.byName(p3)[0]!;
    assert.ok(
      first.stoppedAt !== undefined && third.addedAt > first.stoppedAt,
      `${p3} came after ${p1} ended`,
    );
    await s.invariants(['forbid']);
  });
});

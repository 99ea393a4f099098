/**
 * End to end: bad input never stops the operator (DESIGN.md invariant 6). An invalid time zone,
 * schedule or Pod template gets Ready=False with its reason and a Warning Event on that job alone,
 * while a valid job in the same namespace keeps running.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitFor } from '../test/support/kube.ts';
import { condition, historyNotRun, LABEL_TICK } from './support/checker.ts';
import { autoKubelet } from './support/kubelet.ts';
import { nextMultiple, openScenario, untilTime } from './support/scenario.ts';

describe('bad input', () => {
  it('a job with an unknown time zone, an unparseable schedule or a template the API server refuses gets Ready=False with its reason and a Warning Event, while a valid job keeps running', async (t) => {
    const s = await openScenario('badinput', 'status');
    t.after(() => s.close());
    await s.startOperator();
    const kubelet = autoKubelet(s.kc, s.namespace, () => 'succeed');
    t.after(() => kubelet.stop());

    await s.createJob('good', { schedule: '*/3 * * * * *' });
    const badAt = Date.now();
    // Each passes the CRD's validation (checked: the zone pattern admits Mars/Base, the schedule has
    // six fields); only the operator, or the API server's Pod validation, can refuse them.
    const bad: { name: string; reason: string; mentions: RegExp }[] = [
      { name: 'bad-zone', reason: 'InvalidTimeZone', mentions: /Mars\/Base/ },
      { name: 'bad-schedule', reason: 'InvalidSchedule', mentions: /61/ },
      { name: 'bad-template', reason: 'InvalidTemplate', mentions: /Bad_Name/ },
    ];
    await s.createJob('bad-zone', { schedule: '*/3 * * * * *', timeZone: 'Mars/Base' });
    await s.createJob('bad-schedule', { schedule: '61 * * * * *' });
    await s.createJob('bad-template', {
      schedule: '*/3 * * * * *',
      template: { spec: { containers: [{ name: 'Bad_Name', image: 'busybox:1.36' }] } },
    });

    for (const b of bad) {
      const job = await s.waitForJob(
        b.name,
        (j) => (condition(j, 'Ready')?.status === 'False' ? j : undefined),
        `Ready=False (${b.reason})`,
      );
      const ready = condition(job, 'Ready')!;
      assert.equal(ready.reason, b.reason, `${b.name}: ${JSON.stringify(ready)}`);
      assert.match(ready.message, b.mentions, `${b.name}: the message names the problem`);
      assert.equal(ready.observedGeneration, job.metadata.generation);
    }

    // The valid job keeps running meanwhile: three more runs after the bad jobs arrived.
    await waitFor(
      () => s.pods.all('good').filter((p) => Number(p.labels[LABEL_TICK]) * 1000 > badAt + 1000).length >= 3,
      { timeoutMs: 20_000, description: 'three runs of the valid job after the bad ones were created' },
    );
    for (const b of bad) assert.deepEqual(s.pods.all(b.name), [], `${b.name} has no Pod`);
    assert.equal(s.operator?.exited, undefined, 'the operator is still running');

    // Each refusal is reported as a Warning Event on its job, naming the problem.
    for (const b of bad) {
      await s.waitForEvent(
        b.name,
        (e) => e.type === 'Warning' && (e.reason === b.reason || b.mentions.test(e.note)),
        `a Warning Event naming the problem (${b.reason})`,
        5000,
      );
    }
    await s.invariants(['good']);
  });

  it('a job whose invalid time zone is fixed is scheduled from the fix: the ticks it spent invalid are neither run nor recorded as Missed by an absent controller', async (t) => {
    const s = await openScenario('fixed', 'status');
    t.after(() => s.close());
    await s.startOperator();
    const kubelet = autoKubelet(s.kc, s.namespace, () => 'succeed');
    t.after(() => kubelet.stop());
    const job = await s.createJob('zone', { schedule: '*/3 * * * * *', timeZone: 'Mars/Base' });
    await s.waitForJob(
      'zone',
      (j) => condition(j, 'Ready')?.reason === 'InvalidTimeZone',
      'Ready=False InvalidTimeZone',
    );
    // Two ticks pass while the job is invalid.
    await untilTime(new Date(nextMultiple(3, new Date(job.metadata.creationTimestamp)).getTime() + 3500));
    assert.deepEqual(s.pods.all('zone'), [], 'no Pod while invalid');

    const fixedAt = Date.now();
    await s.kubectl([
      'patch',
      'singletonjob',
      'zone',
      '--type=merge',
      '-p',
      '{"spec":{"timeZone":"Europe/Berlin"}}',
    ]);
    const fixed = await s.waitForJob(
      'zone',
      (j) =>
        condition(j, 'Ready')?.reason === 'Scheduled' &&
        j.status?.observedGeneration === j.metadata.generation
          ? j
          : undefined,
      'Ready=True Scheduled after the fix',
    );
    assert.equal(condition(fixed, 'Ready')?.observedGeneration, fixed.metadata.generation);
    await waitFor(() => s.pods.all('zone').length >= 1, {
      timeoutMs: 10_000,
      description: 'a run after the fix',
    });
    for (const p of s.pods.all('zone')) {
      assert.ok(
        Number(p.labels[LABEL_TICK]) * 1000 > fixedAt,
        `${p.name} is for a tick after the fix (${new Date(fixedAt).toISOString()}): fixing the spec fires no backlog`,
      );
    }
    const noController = historyNotRun(await s.job('zone'), 'Missed').filter(
      (h) => h.reason === 'NoController',
    );
    assert.deepEqual(
      noController,
      [],
      'ticks passed while the spec was invalid are not "missed while no controller acted"',
    );
    await s.invariants(['zone']);
  });
});

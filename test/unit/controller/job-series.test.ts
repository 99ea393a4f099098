// The per-job series (ssj_job_consecutive_failures, ssj_job_periods_since_success): they exist
// only while a job is failing or overdue, and only on the leader, so cardinality stays bounded
// by the jobs in trouble, never by the jobs there are.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import { Manager, termObserver, type LeadTerm } from '../../../src/controller/manager.ts';
import type { KubeWriter } from '../../../src/controller/ports.ts';
import { statusLedger } from '../../../src/ledger/status-ledger.ts';
import { newLogger } from '../../../src/observability/log.ts';
import { newMetrics, type Metrics } from '../../../src/observability/metrics.ts';

/** The sample lines of a scrape (every line that is not a comment). */
async function samples(metrics: Metrics, prefix = ''): Promise<string[]> {
  const text = await metrics.registry.metrics();
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#') && l.startsWith(prefix));
}

const perJob = (metrics: Metrics): Promise<string[]> => samples(metrics, 'ssj_job_');
const job = (i: number) => ({ namespace: `ns-${i % 10}`, name: `job-${i}` });

describe('per-job series', () => {
  it('the streak gauge exists while a job fails and goes when a success resets it', async () => {
    const metrics = newMetrics({ processMetrics: false });
    const obs = termObserver(metrics, new AbortController().signal);
    obs.jobHealth(job(1), { consecutiveFailures: 0, periodsSinceSuccess: 0.5 });
    assert.deepEqual(await perJob(metrics), []);
    obs.jobHealth(job(1), { consecutiveFailures: 3, periodsSinceSuccess: 0.5 });
    assert.deepEqual(await perJob(metrics), [
      'ssj_job_consecutive_failures{namespace="ns-1",singletonjob="job-1"} 3',
    ]);
    obs.jobHealth(job(1), { consecutiveFailures: 0, periodsSinceSuccess: 0.2 });
    assert.deepEqual(await perJob(metrics), []);
  });

  it('the overdue gauge exists from 2 periods without a success, and not while suspended or invalid', async () => {
    const metrics = newMetrics({ processMetrics: false });
    const obs = termObserver(metrics, new AbortController().signal);
    obs.jobHealth(job(2), { consecutiveFailures: 0, periodsSinceSuccess: 1.99 });
    assert.deepEqual(await perJob(metrics), []);
    obs.jobHealth(job(2), { consecutiveFailures: 0, periodsSinceSuccess: 2.5 });
    assert.deepEqual(await perJob(metrics), [
      'ssj_job_periods_since_success{namespace="ns-2",singletonjob="job-2"} 2.5',
    ]);
    obs.jobHealth(job(2), { consecutiveFailures: 0, periodsSinceSuccess: undefined });
    assert.deepEqual(await perJob(metrics), []);
  });

  it('a deleted job loses its series', async () => {
    const metrics = newMetrics({ processMetrics: false });
    const obs = termObserver(metrics, new AbortController().signal);
    obs.jobHealth(job(3), { consecutiveFailures: 4, periodsSinceSuccess: 5 });
    assert.equal((await perJob(metrics)).length, 2);
    obs.jobHealth(job(3), undefined);
    assert.deepEqual(await perJob(metrics), []);
  });

  it('after its term, a late reconcile adds no series', async () => {
    const metrics = newMetrics({ processMetrics: false });
    const term = new AbortController();
    const obs = termObserver(metrics, term.signal);
    term.abort();
    obs.jobHealth(job(4), { consecutiveFailures: 4, periodsSinceSuccess: 5 });
    assert.deepEqual(await perJob(metrics), []);
  });

  it('when the manager’s term ends, every per-job series goes: a follower exports none', async () => {
    const metrics = newMetrics({ processMetrics: false });
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:9' }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const unused = (): never => {
      throw new Error('no API call is expected');
    };
    const kube: KubeWriter = {
      createPod: unused,
      getPod: unused,
      deletePod: unused,
      removeFinalizer: unused,
      getJob: unused,
      replaceJobStatus: unused,
      dryRunPod: unused,
    };
    const manager = new Manager({
      kc,
      workers: 1,
      resyncPeriodMs: 0,
      kube,
      ledger: statusLedger,
      events: { event: () => undefined },
      log: newLogger('fatal'),
      metrics,
    });
    const ends = new AbortController();
    const term: LeadTerm = {
      fence: { term: 1, holder: 'me' },
      signal: ends.signal,
      valid: () => true,
      end: () => {
        ends.abort();
      },
      confirm: () => Promise.resolve(true),
    };
    const leading = manager.lead(term);
    // What the term's reconciles reported.
    metrics.jobConsecutiveFailures.set({ namespace: 'a', singletonjob: 'x' }, 2);
    metrics.jobPeriodsSinceSuccess.set({ namespace: 'a', singletonjob: 'y' }, 7);
    assert.equal((await perJob(metrics)).length, 2);
    ends.abort();
    await leading;
    assert.deepEqual(await perJob(metrics), []);
  });
});

describe('cardinality', () => {
  it('10,000 healthy jobs add no per-job series; 100 failing and overdue ones add 2 each', async () => {
    const metrics = newMetrics({ processMetrics: false });
    const obs = termObserver(metrics, new AbortController().signal);
    const before = (await samples(metrics)).length;
    for (let i = 0; i < 10_000; i++)
      obs.jobHealth(job(i), { consecutiveFailures: 0, periodsSinceSuccess: 1 });
    assert.equal((await perJob(metrics)).length, 0);
    assert.equal((await samples(metrics)).length, before);
    for (let i = 0; i < 100; i++) obs.jobHealth(job(i), { consecutiveFailures: 3, periodsSinceSuccess: 3 });
    const series = await perJob(metrics);
    assert.equal(series.filter((s) => s.startsWith('ssj_job_consecutive_failures{')).length, 100);
    assert.equal(series.filter((s) => s.startsWith('ssj_job_periods_since_success{')).length, 100);
    assert.equal((await samples(metrics)).length, before + 200);
    console.log(
      `series: ${before} without process metrics; 10,000 healthy jobs add 0; 100 failing and overdue add ${series.length}`,
    );
  });

  it('a fresh operator’s registry: every sample counted, process metrics included', async () => {
    const metrics = newMetrics();
    const all = await samples(metrics);
    const own = all.filter((l) => l.startsWith('ssj_'));
    assert.ok(own.length > 0);
    assert.equal(own.filter((l) => l.startsWith('ssj_job_')).length, 0);
    console.log(`fresh registry: ${all.length} samples, ${own.length} of them ssj_`);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { EVENT_LOOP_SAMPLE_MS, newMetrics } from '../../../src/observability/metrics.ts';

const required = [
  'ssj_tick_skew_seconds',
  'ssj_runs_total',
  'ssj_ticks_not_run_total',
  'ssj_pod_creates_total',
  'ssj_reconcile_duration_seconds',
  'ssj_reconcile_errors_total',
  'ssj_workqueue_depth',
  'ssj_workqueue_adds_total',
  'ssj_workqueue_retries_total',
  'ssj_watch_events_total',
  'ssj_informer_restarts_total',
  'ssj_ledger_unavailable',
  'ssj_leader',
  'ssj_leader_term',
  'ssj_leader_transitions_total',
  'ssj_leader_failover_seconds',
  'ssj_status_writes_total',
  'ssj_api_requests_total',
];

describe('metrics', () => {
  it('names every operator metric ssj_, and keeps the standard process metric names', () => {
    const metrics = newMetrics();
    const names = metrics.registry.getMetricsAsArray().map((m) => m.name);
    const own = names.filter((n) => !n.startsWith('process_') && !n.startsWith('nodejs_'));
    assert.ok(own.length >= required.length);
    for (const name of own) assert.match(name, /^ssj_[a-z_]+$/);
    assert.ok(names.includes('process_resident_memory_bytes'), 'process metrics collected');
  });

  it('samples the event loop every 50 ms, not every 10 as prom-client would (a wake-up each)', async () => {
    const metrics = newMetrics();
    await metrics.registry.metrics(); // a scrape starts the histogram afresh
    await new Promise((resolve) => setTimeout(resolve, 10 * EVENT_LOOP_SAMPLE_MS));
    const text = await metrics.registry.metrics();
    // Node's histogram records the interval between two samples, so its minimum is the period.
    const min = Number(/^nodejs_eventloop_lag_min_seconds (\S+)$/m.exec(text)?.[1]);
    assert.ok(min < 1, `samples were taken (min ${min} s)`);
    assert.ok(min >= (0.8 * EVENT_LOOP_SAMPLE_MS) / 1000, `sampled every ${min} s`);
  });

  it('defines every metric the design names', () => {
    const names = new Set(
      newMetrics({ processMetrics: false })
        .registry.getMetricsAsArray()
        .map((m) => m.name),
    );
    for (const name of required) assert.ok(names.has(name), name);
  });

  it('gives each call its own registry, so counts are not shared', async () => {
    const a = newMetrics({ processMetrics: false });
    const b = newMetrics({ processMetrics: false });
    a.runs.inc({ outcome: 'Succeeded' });
    assert.match(await a.registry.metrics(), /^ssj_runs_total\{outcome="Succeeded"\} 1$/m);
    assert.doesNotMatch(await b.registry.metrics(), /^ssj_runs_total\{outcome="Succeeded"\}/m);
  });

  it('exposes values in the Prometheus text format', async () => {
    const m = newMetrics({ processMetrics: false });
    m.tickSkew.observe(0.042);
    m.ticksNotRun.inc({ outcome: 'Missed', reason: 'NoController' }, 3);
    m.podCreates.inc({ result: 'already_exists' });
    m.watchEvents.inc({ resource: 'pods', type: 'ADDED' });
    m.leader.set(1);
    m.leaderTerm.set(7);
    m.apiRequests.inc({ verb: 'create', resource: 'pods', code: '201' });
    const text = await m.registry.metrics();
    assert.match(text, /^# TYPE ssj_tick_skew_seconds histogram$/m);
    assert.match(text, /^ssj_tick_skew_seconds_bucket\{le="0.05"\} 1$/m);
    assert.match(text, /^ssj_tick_skew_seconds_bucket\{le="0.025"\} 0$/m);
    assert.match(text, /^ssj_ticks_not_run_total\{outcome="Missed",reason="NoController"\} 3$/m);
    assert.match(text, /^ssj_pod_creates_total\{result="already_exists"\} 1$/m);
    assert.match(text, /^ssj_watch_events_total\{resource="pods",type="ADDED"\} 1$/m);
    assert.match(text, /^ssj_leader 1$/m);
    assert.match(text, /^ssj_leader_term 7$/m);
    assert.match(text, /^ssj_api_requests_total\{verb="create",resource="pods",code="201"\} 1$/m);
  });

  it('resolves tick skew finely below one second, up to a minute', async () => {
    const m = newMetrics({ processMetrics: false });
    m.tickSkew.observe(0.2);
    const text = await m.registry.metrics();
    const bounds = [...text.matchAll(/^ssj_tick_skew_seconds_bucket\{le="([^"]+)"\}/gm)].map((x) => x[1]);
    const finite = bounds.filter((b) => b !== '+Inf').map(Number);
    assert.equal(finite[0], 0.01);
    assert.equal(finite.at(-1), 60);
    assert.ok(finite.filter((b) => b < 1).length >= 6, `buckets below 1 s: ${finite.join(', ')}`);
  });
});

// The two halves of the metric-name check, on expressions and scrapes whose answer is known:
// the names an expression selects (and only those), and the names a scrape declares.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { declaredSeriesNames, selectedMetricNames, seriesCounts } from './metric-names.ts';

describe('selectedMetricNames', () => {
  const table: [string, string[]][] = [
    [
      'histogram_quantile(0.99, sum by (le) (rate(ssj_tick_skew_seconds_bucket{job=~"$job"}[$__rate_interval])))',
      ['ssj_tick_skew_seconds_bucket'],
    ],
    [
      'max by (namespace, singletonjob) (ssj_job_consecutive_failures) >= 3',
      ['ssj_job_consecutive_failures'],
    ],
    [
      '(a_total unless a_total offset 10m) and on (job, instance) ((time() - process_start_time_seconds < 600) or (process_start_time_seconds offset 10m))',
      ['a_total', 'process_start_time_seconds'],
    ],
    ['label_replace(up, "dst", "$1 or rate(x)", "src", "(.*)")', ['up']],
    ['{__name__="ssj_leader", job="a"}', ['ssj_leader']],
    ['sum(rate(a[5m] @ end())) / on () group_left (b) c', ['a', 'c']],
    ['1e3 * foo + 0x1F - Inf', ['foo']],
    ['sum without (pod) (nodejs_heap_size_used_bytes) > bool 1', ['nodejs_heap_size_used_bytes']],
    ['count(x >= 3) or vector(0)', ['x']],
    ['(max by (namespace) (ssj_leader) < 1) or absent(ssj_leader)', ['ssj_leader']],
    ['max_over_time(foo:bar[10m:1m])', ['foo:bar']],
    ['sum(rate(ssj_runs_total{outcome=~"Lost|Failed"}[$__rate_interval])) by (outcome)', ['ssj_runs_total']],
  ];
  for (const [expr, names] of table) {
    it(`${expr} selects ${names.join(', ')}`, () => {
      assert.deepEqual(selectedMetricNames(expr), names);
    });
  }
});

describe('declaredSeriesNames and seriesCounts', () => {
  const scrape = [
    '# HELP h a histogram',
    '# TYPE h histogram',
    'h_bucket{le="1"} 0',
    'h_bucket{le="+Inf"} 0',
    'h_sum 0',
    'h_count 0',
    '# HELP s a summary',
    '# TYPE s summary',
    's{quantile="0.5"} 1',
    's_sum 1',
    's_count 1',
    '# HELP c_total a counter',
    '# TYPE c_total counter',
    'c_total{outcome="Lost"} 2',
    '# HELP g a labelled gauge with no series',
    '# TYPE g gauge',
    '',
  ].join('\n');

  it('declares a histogram by its _bucket, _sum and _count only, a summary by its name too, counters and gauges by their name, series or not', () => {
    assert.deepEqual([...declaredSeriesNames(scrape)].sort(), [
      'c_total',
      'g',
      'h_bucket',
      'h_count',
      'h_sum',
      's',
      's_count',
      's_sum',
    ]);
  });

  it('counts series by family', () => {
    assert.deepEqual(Object.fromEntries(seriesCounts(scrape)), { h: 4, s: 3, c_total: 1 });
  });
});

// Every metric name in every alert expression and dashboard query is one a running operator
// exports: the operator is started as users run it (e2e/toolchain/node src/main.ts, against the
// local cluster, watching a namespace of this test's own) and its /metrics is scraped.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deleteNamespace, loadKubeConfig, newNamespace, requireCluster } from '../../support/kube.ts';
import { type OperatorProcess, startOperator } from '../../../e2e/support/operator.ts';
import { declaredSeriesNames, selectedMetricNames, seriesCounts } from './metric-names.ts';
import {
  dashboardExpressions,
  type Expression,
  loadDashboard,
  loadRuleGroups,
  ruleExpressions,
} from './monitoring-files.ts';

/** `<name> (in <where>)` for every name an expression selects that the scrape does not declare. */
function undeclared(expressions: readonly Expression[], declared: ReadonlySet<string>): string[] {
  return expressions.flatMap(({ where, expr }) =>
    selectedMetricNames(expr)
      .filter((name) => !declared.has(name))
      .map((name) => `${name} (in ${where})`),
  );
}

describe('the metrics the alerts and the dashboard query, against a running operator', () => {
  const kc = loadKubeConfig();
  let namespace = '';
  let operator: OperatorProcess | undefined;
  let scrape = '';
  const rules = ruleExpressions(loadRuleGroups());
  const dashboard = dashboardExpressions(loadDashboard());

  before(async () => {
    await requireCluster(kc);
    namespace = await newNamespace('ssj-obs-metrics', kc);
    operator = await startOperator({ namespace });
    const addr = operator.metricsAddress;
    assert.ok(addr !== undefined, `the operator did not log its metrics address\n${operator.tail()}`);
    const response = await fetch(`http://${addr}/metrics`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(response.status, 200);
    scrape = await response.text();
  });

  after(async () => {
    await operator?.stop();
    if (namespace !== '') await deleteNamespace(namespace, kc);
  });

  it('the rules and the dashboard select metrics at all (the check below is not vacuous)', () => {
    const names = new Set([...rules, ...dashboard].flatMap((e) => selectedMetricNames(e.expr)));
    assert.ok(rules.length >= 7, `only ${rules.length} rule expressions`);
    assert.ok(dashboard.length >= 20, `only ${dashboard.length} dashboard queries`);
    for (const name of [
      'ssj_job_consecutive_failures',
      'ssj_tick_skew_seconds_bucket',
      'process_start_time_seconds',
    ]) {
      assert.ok(names.has(name), `${name} is not among the selected names: ${[...names].join(', ')}`);
    }
  });

  it('every metric name in every alert expression is declared by the operator’s /metrics', () => {
    assert.deepEqual(undeclared(rules, declaredSeriesNames(scrape)), []);
  });

  it('every metric name in every dashboard query is declared by the operator’s /metrics', () => {
    assert.deepEqual(undeclared(dashboard, declaredSeriesNames(scrape)), []);
  });

  it('a misspelled metric name in an expression is reported, a correct one is not', () => {
    const declared = declaredSeriesNames(scrape);
    const expr = 'sum by (outcome) (rate(ssj_run_total{outcome="Lost"}[5m])) / sum(rate(ssj_runs_total[5m]))';
    assert.deepEqual(undeclared([{ where: 'a typo', expr }], declared), ['ssj_run_total (in a typo)']);
  });

  it('a fresh operator with no jobs declares the per-job gauges and exports no per-job series', (t) => {
    const declared = declaredSeriesNames(scrape);
    for (const name of ['ssj_job_consecutive_failures', 'ssj_job_periods_since_success']) {
      assert.ok(declared.has(name), `${name} has no # TYPE line`);
    }
    const perJob = scrape.split('\n').filter((l) => /^ssj_job_/.test(l));
    assert.deepEqual(perJob, []);
    const counts = seriesCounts(scrape);
    const own = [...counts].filter(([name]) => name.startsWith('ssj_'));
    const total = (list: [string, number][]) => list.reduce((sum, [, n]) => sum + n, 0);
    // Figures for docs/observability.md: the series a fresh operator exports, whatever its job count.
    t.diagnostic(`series: ${total([...counts])} in all, ${total(own)} ssj_*`);
    t.diagnostic(own.map(([name, n]) => `${name}=${n}`).join(' '));
  });
});

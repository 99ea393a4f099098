// The Grafana dashboard in config/grafana, validated without a Grafana: it parses, takes its
// data source from the `${datasource}` variable, lays out its panels without overlap, has the
// panels the issue asks for, every query parses as PromQL (promtool, with Grafana's variables
// substituted), and each panel is described in docs/observability.md. Its metric names are
// checked against a running operator in exported-metrics.test.ts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { REPOSITORY_ROOT } from '../../support/kube.ts';
import { dashboardExpressions, dashboardPanels, isRecord, loadDashboard } from './monitoring-files.ts';
import { promtool } from './promtool.ts';

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

describe('config/grafana/ssj-operator.json', () => {
  const dashboard = loadDashboard();
  const panels = dashboardPanels(dashboard).filter((p) => p['type'] !== 'row');
  const targets = panels.flatMap((p) =>
    (Array.isArray(p['targets']) ? p['targets'] : []).filter(isRecord).map((t) => ({ panel: p, target: t })),
  );
  let dir = '';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssj-dashboard-'));
  });
  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('declares a Prometheus data source variable, and every panel and query uses it', () => {
    const templating = dashboard['templating'];
    const variables = isRecord(templating) && Array.isArray(templating['list']) ? templating['list'] : [];
    const ds = variables.filter(isRecord).find((v) => v['name'] === 'datasource');
    assert.ok(ds !== undefined, 'no datasource variable');
    assert.equal(ds['type'], 'datasource');
    assert.equal(ds['query'], 'prometheus');
    for (const panel of panels)
      assert.deepEqual(panel['datasource'], DATASOURCE, `panel "${String(panel['title'])}"`);
    for (const { panel, target } of targets) {
      assert.deepEqual(target['datasource'], DATASOURCE, `a query of "${String(panel['title'])}"`);
    }
  });

  it('every panel has a unique id and title, a description, at least one query, and a place on the 24-column grid that no other panel takes', () => {
    const ids = dashboardPanels(dashboard).map((p) => p['id']);
    assert.equal(new Set(ids).size, ids.length, 'duplicate panel ids');
    const titles = panels.map((p) => String(p['title']));
    assert.equal(new Set(titles).size, titles.length, 'duplicate panel titles');
    const taken = new Map<string, string>();
    for (const panel of dashboardPanels(dashboard)) {
      const title = String(panel['title']);
      if (panel['type'] !== 'row') {
        assert.ok(
          typeof panel['description'] === 'string' && panel['description'] !== '',
          `${title}: description`,
        );
        assert.ok(
          targets.some((t) => t.panel === panel),
          `${title}: no query`,
        );
      }
      const grid = panel['gridPos'];
      assert.ok(isRecord(grid), `${title}: gridPos`);
      const [x, y, w, h] = [grid['x'], grid['y'], grid['w'], grid['h']].map(Number) as [
        number,
        number,
        number,
        number,
      ];
      assert.ok(x >= 0 && w > 0 && x + w <= 24 && h > 0, `${title}: gridPos ${JSON.stringify(grid)}`);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const other = taken.get(`${i},${j}`);
          assert.equal(other, undefined, `${title} overlaps ${String(other)}`);
          taken.set(`${i},${j}`, title);
        }
      }
    }
  });

  it('has the panels the issue asks for: runs, skew, failing jobs, missed ticks, leadership, ledger, API, reconcile, queue, memory', () => {
    const queries = (type?: string) =>
      targets
        .filter((t) => type === undefined || t.panel['type'] === type)
        .map((t) => String(t.target['expr']));
    const some = (pattern: RegExp, type?: string) => {
      assert.ok(
        queries(type).some((q) => pattern.test(q)),
        `no ${type ?? ''} panel queries ${String(pattern)}`,
      );
    };
    some(/sum by \(outcome\) \(rate\(ssj_runs_total/);
    some(/histogram_quantile\(0\.99, sum by \(le\) \(rate\(ssj_tick_skew_seconds_bucket/);
    some(/ssj_job_consecutive_failures/, 'table');
    some(/ssj_job_periods_since_success/, 'table');
    some(/ssj_ticks_not_run_total\{[^}]*outcome="Missed"/);
    some(/ssj_leader\{/);
    some(/ssj_leader_transitions_total/);
    some(/ssj_leader_failover_seconds/);
    some(/ssj_ledger_write_duration_seconds_bucket/);
    some(/ssj_ledger_write_errors_total/);
    some(/sum by \(verb, code\) \(rate\(ssj_api_requests_total/);
    some(/ssj_reconcile_duration_seconds_bucket/);
    some(/ssj_workqueue_depth/);
    some(/process_resident_memory_bytes/);
  });

  it('every query parses as PromQL (promtool check rules, with Grafana variables substituted)', async () => {
    // Grafana expands these before Prometheus sees the query; any valid value will do.
    const substitute = (expr: string) =>
      expr
        .replaceAll('$__rate_interval', '2m')
        .replaceAll('$__interval', '1m')
        .replaceAll('$__range', '6h')
        .replace(/\$\{?(\w+)\}?/g, '.+');
    const expressions = dashboardExpressions(dashboard);
    const rules = expressions.map((e, i) => ({ record: `dashboard:query_${i}`, expr: substitute(e.expr) }));
    const file = join(dir, 'dashboard-queries.yaml');
    await writeFile(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
    const run = await promtool(['check', 'rules', '--lint=none', file], dir);
    assert.equal(run.code, 0, `promtool rejected a dashboard query:\n${run.stdout}${run.stderr}`);
    assert.match(run.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
  });

  it('docs/observability.md describes every panel, by its title', async () => {
    const docs = await readFile(join(REPOSITORY_ROOT, 'docs/observability.md'), 'utf8');
    const missing = panels.map((p) => String(p['title'])).filter((title) => !docs.includes(`**${title}**`));
    assert.deepEqual(missing, []);
  });
});

// The PrometheusRule in config/prometheus, checked by the real promtool: it parses and lints,
// its unit tests (config/prometheus/tests/*.yaml) pass, every alert is tested both firing and
// silent, and every alert carries what an on-call engineer needs (severity, summary, description,
// a runbook link that resolves to a heading of docs/runbooks.md).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { REPOSITORY_ROOT } from '../../support/kube.ts';
import {
  isRecord,
  loadRuleGroups,
  RULE_FILE_NAME,
  RULE_TESTS_DIR,
  RUNBOOKS_FILE,
  type RuleGroup,
  writeRuleFile,
} from './monitoring-files.ts';
import { promtool } from './promtool.ts';

const RUNBOOK_BASE = 'https://github.com/ssj-dev/ssj-operator/blob/main/docs/runbooks.md#';
const testFiles = readdirSync(RULE_TESTS_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

/** GitHub's anchor for a Markdown heading. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

interface AlertCase {
  readonly file: string;
  readonly alertname: string;
  readonly fires: boolean;
}

function alertCases(file: string): AlertCase[] {
  const doc: unknown = parse(readFileSync(join(RULE_TESTS_DIR, file), 'utf8'));
  if (!isRecord(doc) || !Array.isArray(doc['tests'])) throw new Error(`${file} has no tests`);
  assert.deepEqual(doc['rule_files'], [RULE_FILE_NAME], `${file}: rule_files must be [${RULE_FILE_NAME}]`);
  return doc['tests'].filter(isRecord).flatMap((group) =>
    (Array.isArray(group['alert_rule_test']) ? group['alert_rule_test'] : []).filter(isRecord).map((c) => ({
      file,
      alertname: String(c['alertname']),
      fires: Array.isArray(c['exp_alerts']) && c['exp_alerts'].length > 0,
    })),
  );
}

describe('config/prometheus/rules.yaml, checked by promtool', () => {
  let groups: RuleGroup[];
  let alerts: string[];
  let dir = '';

  before(async () => {
    groups = loadRuleGroups();
    alerts = groups.flatMap((g) => g.rules.flatMap((r) => (r.alert === undefined ? [] : [r.alert])));
    dir = await mkdtemp(join(tmpdir(), 'ssj-rules-'));
    await writeRuleFile(dir, groups);
    for (const file of testFiles) await copyFile(join(RULE_TESTS_DIR, file), join(dir, file));
  });

  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('ships the seven alerts of the issue', () => {
    assert.deepEqual([...alerts].sort(), [
      'SSJJobFailing',
      'SSJJobOverdue',
      'SSJLeaderFlapping',
      'SSJLedgerUnavailable',
      'SSJNoLeader',
      'SSJRunsLost',
      'SSJTicksMissed',
    ]);
  });

  it('promtool check rules accepts the PrometheusRule spec.groups, with every lint fatal', async () => {
    const run = await promtool(['check', 'rules', '--lint=all', '--lint-fatal', RULE_FILE_NAME], dir);
    assert.equal(run.code, 0, `promtool check rules failed:\n${run.stdout}${run.stderr}`);
    assert.match(run.stdout, new RegExp(`SUCCESS: ${alerts.length} rules found`), run.stdout);
  });

  for (const file of testFiles) {
    it(`promtool test rules passes config/prometheus/tests/${file}`, async () => {
      const run = await promtool(['test', 'rules', file], dir);
      assert.equal(run.code, 0, `promtool test rules ${file} failed:\n${run.stdout}${run.stderr}`);
      assert.match(run.stdout, /SUCCESS/, run.stdout);
    });
  }

  it('every alert is unit-tested both firing and silent, and healthy.yaml expects each one silent', () => {
    const cases = testFiles.flatMap(alertCases);
    const unknown = cases
      .filter((c) => !alerts.includes(c.alertname))
      .map((c) => `${c.file}: ${c.alertname}`);
    assert.deepEqual(unknown, [], 'tests of alerts the rules do not define');
    for (const alert of alerts) {
      const of = cases.filter((c) => c.alertname === alert);
      assert.ok(
        of.some((c) => c.fires),
        `${alert}: no test expects it to fire`,
      );
      assert.ok(
        of.some((c) => !c.fires && c.file !== 'healthy.yaml'),
        `${alert}: no test outside healthy.yaml expects it silent`,
      );
      assert.ok(
        of.some((c) => !c.fires && c.file === 'healthy.yaml'),
        `${alert}: healthy.yaml does not expect it silent`,
      );
    }
    assert.ok(
      cases.filter((c) => c.file === 'healthy.yaml').every((c) => !c.fires),
      'healthy.yaml expects an alert to fire',
    );
  });

  it('every alert has a severity, a summary, a description and a runbook_url to its own heading in docs/runbooks.md', async () => {
    const runbooks = await readFile(RUNBOOKS_FILE, 'utf8');
    const anchors = new Set([...runbooks.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => anchor(m[1] ?? '')));
    for (const rule of groups.flatMap((g) => g.rules)) {
      const name = rule.alert ?? rule.record ?? '?';
      if (rule.alert === undefined) continue;
      assert.match(rule.labels['severity'] ?? '', /^(critical|warning)$/, `${name}: severity`);
      assert.ok((rule.annotations['summary'] ?? '') !== '', `${name}: summary`);
      assert.ok((rule.annotations['description'] ?? '') !== '', `${name}: description`);
      const url = rule.annotations['runbook_url'] ?? '';
      assert.equal(url, RUNBOOK_BASE + name.toLowerCase(), `${name}: runbook_url`);
      assert.ok(anchors.has(name.toLowerCase()), `${name}: docs/runbooks.md has no heading "${name}"`);
    }
  });

  it('the kustomization ships the ServiceMonitor, with honorLabels, and the PrometheusRule', async () => {
    const kustomization: unknown = parse(
      await readFile(join(REPOSITORY_ROOT, 'config/prometheus/kustomization.yaml'), 'utf8'),
    );
    assert.ok(isRecord(kustomization));
    assert.deepEqual(kustomization['resources'], ['monitor.yaml', 'rules.yaml']);
    const monitor = parseAllDocuments(
      await readFile(join(REPOSITORY_ROOT, 'config/prometheus/monitor.yaml'), 'utf8'),
    )
      .map((d): unknown => d.toJS() as unknown)
      .filter(isRecord)
      .find((d) => d['kind'] === 'ServiceMonitor');
    assert.ok(monitor !== undefined, 'monitor.yaml has no ServiceMonitor');
    const spec = monitor['spec'];
    const endpoints = isRecord(spec) && Array.isArray(spec['endpoints']) ? spec['endpoints'] : [];
    assert.ok(endpoints.length > 0, 'the ServiceMonitor has no endpoints');
    for (const endpoint of endpoints) {
      // Without it Prometheus renames the per-job `namespace` label to exported_namespace, and
      // every per-job alert would name the operator's namespace instead of the job's.
      assert.ok(
        isRecord(endpoint) && endpoint['honorLabels'] === true,
        'an endpoint without honorLabels: true',
      );
    }
  });
});

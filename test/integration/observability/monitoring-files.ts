/**
 * The shipped monitoring objects, read as the tests see them: config/prometheus/rules.yaml (a
 * PrometheusRule), its unit tests in config/prometheus/tests/, and the Grafana dashboard.
 *
 * Guarantees:
 * - `loadRuleGroups()` returns spec.groups of the one PrometheusRule, narrowed to the fields the
 *   tests read, and throws (naming the field) when the file is not that shape.
 * - `writeRuleFile(dir)` writes those groups as a plain Prometheus rule file, the only form
 *   promtool reads, under the name the unit tests list in `rule_files`.
 * - `dashboardExpressions()` lists every PromQL query of the dashboard: panel targets (rows
 *   included) and templating queries, each with where it came from.
 *
 * Does not give: a full schema check of either format; promtool (rules) and the dashboard
 * test (panels) check what they rely on.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { REPOSITORY_ROOT } from '../../support/kube.ts';

export const RULES_FILE = join(REPOSITORY_ROOT, 'config/prometheus/rules.yaml');
export const RULE_TESTS_DIR = join(REPOSITORY_ROOT, 'config/prometheus/tests');
export const DASHBOARD_FILE = join(REPOSITORY_ROOT, 'config/grafana/ssj-operator.json');
export const RUNBOOKS_FILE = join(REPOSITORY_ROOT, 'docs/runbooks.md');
/** The name config/prometheus/tests/*.yaml list in `rule_files`. */
export const RULE_FILE_NAME = 'ssj-operator-rules.yaml';

export interface Rule {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface RuleGroup {
  readonly name: string;
  readonly rules: readonly Rule[];
  /** The group as written, for promtool. */
  readonly raw: Record<string, unknown>;
}

export interface Expression {
  readonly where: string;
  readonly expr: string;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringMap(value: unknown, where: string): Record<string, string> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw new Error(`${where} is not a mapping`);
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new Error(`${where}.${key} is not a string`);
    out[key] = v;
  }
  return out;
}

export function parseRuleGroups(text: string): RuleGroup[] {
  const doc: unknown = parse(text);
  if (!isRecord(doc)) throw new Error('rules.yaml is not a mapping');
  if (doc['apiVersion'] !== 'monitoring.coreos.com/v1' || doc['kind'] !== 'PrometheusRule') {
    throw new Error('rules.yaml is not a monitoring.coreos.com/v1 PrometheusRule');
  }
  const spec = doc['spec'];
  if (!isRecord(spec) || !Array.isArray(spec['groups'])) throw new Error('rules.yaml has no spec.groups');
  return spec['groups'].map((group: unknown, g) => {
    const where = `spec.groups[${g}]`;
    if (!isRecord(group) || typeof group['name'] !== 'string' || !Array.isArray(group['rules'])) {
      throw new Error(`${where} needs a name and rules`);
    }
    const rules = group['rules'].map((rule: unknown, r): Rule => {
      const at = `${where}.rules[${r}]`;
      if (!isRecord(rule) || typeof rule['expr'] !== 'string') throw new Error(`${at} has no expr`);
      const alert = rule['alert'];
      const record = rule['record'];
      const duration = rule['for'];
      return {
        ...(typeof alert === 'string' ? { alert } : {}),
        ...(typeof record === 'string' ? { record } : {}),
        ...(typeof duration === 'string' ? { for: duration } : {}),
        expr: rule['expr'],
        labels: stringMap(rule['labels'], `${at}.labels`),
        annotations: stringMap(rule['annotations'], `${at}.annotations`),
      };
    });
    return { name: group['name'], rules, raw: group };
  });
}

export function loadRuleGroups(): RuleGroup[] {
  return parseRuleGroups(readFileSync(RULES_FILE, 'utf8'));
}

/** Writes the groups as a Prometheus rule file in `dir`; returns its path. */
export async function writeRuleFile(dir: string, groups: readonly RuleGroup[]): Promise<string> {
  const file = join(dir, RULE_FILE_NAME);
  await writeFile(file, stringify({ groups: groups.map((g) => g.raw) }));
  return file;
}

export function ruleExpressions(groups: readonly RuleGroup[]): Expression[] {
  return groups.flatMap((g) =>
    g.rules.map((r) => ({ where: `rule ${r.alert ?? r.record ?? '?'} (group ${g.name})`, expr: r.expr })),
  );
}

export function loadDashboard(): Record<string, unknown> {
  const doc: unknown = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8'));
  if (!isRecord(doc)) throw new Error('the dashboard is not a JSON object');
  return doc;
}

/** Panels, with the panels of collapsed rows. */
export function dashboardPanels(dashboard: Record<string, unknown>): Record<string, unknown>[] {
  const top = Array.isArray(dashboard['panels']) ? dashboard['panels'] : [];
  return top
    .filter(isRecord)
    .flatMap((p) => [p, ...(Array.isArray(p['panels']) ? p['panels'].filter(isRecord) : [])]);
}

export function dashboardExpressions(dashboard: Record<string, unknown>): Expression[] {
  const out: Expression[] = [];
  for (const panel of dashboardPanels(dashboard)) {
    const targets = Array.isArray(panel['targets']) ? panel['targets'].filter(isRecord) : [];
    for (const t of targets) {
      if (typeof t['expr'] === 'string') {
        out.push({
          where: `panel "${String(panel['title'])}" target ${String(t['refId'])}`,
          expr: t['expr'],
        });
      }
    }
  }
  const templating = dashboard['templating'];
  const variables = isRecord(templating) && Array.isArray(templating['list']) ? templating['list'] : [];
  for (const v of variables.filter(isRecord)) {
    if (v['type'] !== 'query') continue;
    const query = isRecord(v['query']) ? v['query']['query'] : v['query'];
    if (typeof query === 'string') {
      out.push({ where: `variable $${String(v['name'])}`, expr: templatingExpression(query) });
    }
  }
  return out;
}

/** The PromQL inside a Grafana variable query: label_values(expr, label), query_result(expr), or expr. */
function templatingExpression(query: string): string {
  const labelValues = /^\s*label_values\(\s*(.*?)\s*,\s*[A-Za-z_]\w*\s*\)\s*$/s.exec(query);
  if (labelValues?.[1] !== undefined) return labelValues[1];
  const result = /^\s*query_result\(\s*(.*)\s*\)\s*$/s.exec(query);
  if (result?.[1] !== undefined) return result[1];
  return query;
}

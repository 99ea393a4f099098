/**
 * Metric names on both sides of the check "every query names a metric the operator exports":
 * the names a PromQL expression selects, and the names a /metrics scrape declares.
 *
 * Guarantees:
 * - `selectedMetricNames(expr)` returns every metric name the expression selects: each
 *   identifier that is not a function (followed by `(`), a keyword or modifier, a label name
 *   (inside `{...}` or a `by`/`without`/`on`/`ignoring`/`group_*` list), a string, a duration or
 *   a Grafana variable (`$x`, `${x}`). A name spelled `{__name__="..."}` is returned too.
 * - `declaredSeriesNames(scrape)` returns the series names each `# TYPE` line allows: a
 *   histogram's `_bucket`, `_sum` and `_count` (not its bare name, which selects nothing), a
 *   summary's bare name with `_sum` and `_count`, a counter or gauge's own name. A metric
 *   declared with no sample yet (a labelled gauge with no series) is declared all the same.
 *
 * Does not give: a PromQL parser. An expression promtool or Grafana would reject may still yield
 * names here; the rules are parsed by `promtool check rules`.
 */

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'inf',
  'nan',
  'atan2',
]);

export function selectedMetricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/__name__\s*=\s*"([^"]*)"/g)) {
    if (m[1] !== undefined) names.add(m[1]);
  }
  const bare = expr
    // Strings first: they may hold braces, brackets and words.
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+-?[\w.$]+/g, ' ')
    .replace(/@\s*(?:start\(\)|end\(\)|[\d.]+)/g, ' ')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ');
  for (const m of bare.matchAll(/(?<![\w.:])[A-Za-z_:][\w:]*/g)) {
    const word = m[0];
    const after = bare.slice(m.index + word.length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names].sort();
}

export function declaredSeriesNames(scrape: string): Set<string> {
  const names = new Set<string>();
  for (const line of scrape.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)\s*$/.exec(line);
    if (m === null) continue;
    const [, name = '', type = ''] = m;
    switch (type) {
      case 'histogram':
        for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
        break;
      case 'summary':
        for (const suffix of ['', '_sum', '_count']) names.add(name + suffix);
        break;
      default:
        names.add(name);
    }
  }
  return names;
}

/** Sample lines (series) of a scrape, counted by the metric family of their `# TYPE` line. */
export function seriesCounts(scrape: string): Map<string, number> {
  const families = new Map<string, string>();
  for (const m of scrape.matchAll(/^# TYPE (\S+) (\S+)\s*$/gm)) families.set(m[1] ?? '', m[2] ?? '');
  const counts = new Map<string, number>();
  for (const line of scrape.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const name = /^[A-Za-z_:][\w:]*/.exec(line)?.[0] ?? '';
    const stem = name.replace(/_(bucket|sum|count)$/, '');
    const type = families.get(stem);
    const family = type === 'histogram' || type === 'summary' ? stem : name;
    counts.set(family, (counts.get(family) ?? 0) + 1);
  }
  return counts;
}

/**
 * Reads the Prometheus text exposition format (what /metrics serves) into samples. Pure.
 *
 * Handles what prom-client writes: `# HELP`/`# TYPE` comments, `name value` and
 * `name{label="value",...} value`, label values with `\\`, `\"` and `\n` escapes. Ignores
 * timestamps. Does not give: the OpenMetrics format's exemplars or units.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const sample = parseLine(line);
    if (sample !== undefined) samples.push(sample);
  }
  return samples;
}

function parseLine(line: string): Sample | undefined {
  const brace = line.indexOf('{');
  const space = line.indexOf(' ');
  if (brace < 0 || (space >= 0 && space < brace)) {
    const [name, value] = line.split(/\s+/);
    if (name === undefined || value === undefined) return undefined;
    return { name, labels: {}, value: Number(value) };
  }
  const name = line.slice(0, brace);
  const labels: Record<string, string> = {};
  let i = brace + 1;
  while (i < line.length && line[i] !== '}') {
    const eq = line.indexOf('=', i);
    if (eq < 0 || line[eq + 1] !== '"') return undefined;
    const key = line.slice(i, eq).trim();
    let value = '';
    let j = eq + 2;
    for (; j < line.length && line[j] !== '"'; j++) {
      const c = line[j]!;
      if (c === '\\') {
        const next = line[++j];
        value += next === 'n' ? '\n' : (next ?? '');
      } else {
        value += c;
      }
    }
    labels[key] = value;
    i = j + 1;
    if (line[i] === ',') i++;
  }
  const rest = line
    .slice(i + 1)
    .trim()
    .split(/\s+/)[0];
  if (rest === undefined || rest === '') return undefined;
  return { name, labels, value: Number(rest) };
}

/** Sum of a metric's samples whose labels include `match`. */
export function sumOf(samples: readonly Sample[], name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

export interface RequestCount {
  readonly verb: string;
  readonly resource: string;
  readonly code: string;
  readonly count: number;
}

/** How a sample names a request: the operator's labels, or the API server's (resource + subresource). */
function requestKey(s: Sample): { verb: string; resource: string; code: string } {
  if (s.name === 'apiserver_request_total') {
    const sub = s.labels['subresource'] ?? '';
    return {
      verb: (s.labels['verb'] ?? '').toLowerCase(),
      resource: sub === '' ? (s.labels['resource'] ?? '') : `${s.labels['resource'] ?? ''}/${sub}`,
      code: s.labels['code'] ?? '',
    };
  }
  return { verb: s.labels['verb'] ?? '', resource: s.labels['resource'] ?? '', code: s.labels['code'] ?? '' };
}

/**
 * Request counts after minus before, by (verb, resource, code), largest first, zeros dropped, for
 * the metric `name` (`ssj_api_requests_total` or `apiserver_request_total`).
 */
export function requestDelta(
  name: string,
  before: readonly Sample[],
  after: readonly Sample[],
): RequestCount[] {
  const counts = new Map<string, number>();
  const add = (samples: readonly Sample[], sign: number): void => {
    for (const s of samples) {
      if (s.name !== name) continue;
      const k = requestKey(s);
      const key = `${k.verb}\u0000${k.resource}\u0000${k.code}`;
      counts.set(key, (counts.get(key) ?? 0) + sign * s.value);
    }
  };
  add(after, 1);
  add(before, -1);
  const rows: RequestCount[] = [];
  for (const [k, count] of counts) {
    if (count === 0) continue;
    const [verb = '', resource = '', code = ''] = k.split('\u0000');
    rows.push({ verb, resource, code, count });
  }
  return rows.sort((a, b) => b.count - a.count || a.resource.localeCompare(b.resource));
}

export interface CounterDelta {
  /** `name{label=value,...}` */
  readonly series: string;
  readonly count: number;
}

/** after − before for every series of the named counters, zeros dropped, in the order of `names`. */
export function counterDeltas(
  names: readonly string[],
  before: readonly Sample[],
  after: readonly Sample[],
): CounterDelta[] {
  const seriesOf = (s: Sample): string => {
    const labels = Object.entries(s.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    return labels === '' ? s.name : `${s.name}{${labels}}`;
  };
  const rows: CounterDelta[] = [];
  for (const name of names) {
    const counts = new Map<string, number>();
    for (const s of after)
      if (s.name === name) counts.set(seriesOf(s), (counts.get(seriesOf(s)) ?? 0) + s.value);
    for (const s of before)
      if (s.name === name) counts.set(seriesOf(s), (counts.get(seriesOf(s)) ?? 0) - s.value);
    for (const [series, count] of counts) if (count !== 0) rows.push({ series, count });
  }
  return rows;
}

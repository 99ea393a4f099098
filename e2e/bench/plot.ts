/**
 * The skew distributions of one `make bench` run as a picture:
 *
 *   node e2e/bench/plot.ts .local/bench/skew-<time>.json [docs/benchmarks-skew.svg]
 *
 * One panel per N, one line per scenario (bare client, both ledgers, CronJob at default and at
 * raised limits): the share of the N Pods created by each skew (an empirical distribution
 * function, so the p50 is where a line crosses 0.5 and the last Pod where it reaches 1). The skew
 * axis is logarithmic and shared by the panels: the scenarios differ by two orders of magnitude.
 *
 * Rendered with Vega's SVG renderer in Node (no browser, no canvas). Reads only the JSON: every
 * Pod's skew is there (`runs[].offsetsMs`); a JSON without them (written before they were kept)
 * is refused with a message, not plotted from its percentiles.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, View, type Spec } from 'vega';
import { scenarioTitles, type ScenarioName } from './report.ts';

interface PlotRun {
  readonly scenario: ScenarioName;
  readonly n: number;
  readonly complete: boolean;
  readonly offsetsMs: readonly number[];
}

interface PlotInput {
  readonly startedAt: string;
  readonly command: string;
  readonly commit: string | undefined;
  readonly runs: readonly PlotRun[];
}

const SCENARIOS = Object.keys(scenarioTitles) as ScenarioName[];

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Narrows the benchmark's JSON to what the plot reads; throws on anything else. */
export function plotInput(json: unknown): PlotInput {
  if (!isRecord(json) || !Array.isArray(json['runs'])) throw new Error('not a make bench JSON file: no runs');
  const runs = json['runs'].map((r: unknown, i): PlotRun => {
    if (!isRecord(r)) throw new Error(`runs[${i}] is not an object`);
    const scenario = SCENARIOS.find((s) => s === r['scenario']);
    const offsets = r['offsetsMs'];
    if (scenario === undefined)
      throw new Error(`runs[${i}]: unknown scenario ${JSON.stringify(r['scenario'])}`);
    if (typeof r['n'] !== 'number') throw new Error(`runs[${i}]: no n`);
    if (!Array.isArray(offsets) || !offsets.every((o) => typeof o === 'number')) {
      throw new Error(
        `runs[${i}] (${scenario}, N=${r['n']}) has no per-Pod skews (offsetsMs): the file was written by ` +
          'an older make bench',
      );
    }
    return { scenario, n: r['n'], complete: r['complete'] === true, offsetsMs: offsets };
  });
  const text = (k: string): string => (typeof json[k] === 'string' ? json[k] : '');
  return {
    startedAt: text('startedAt'),
    command: text('command'),
    commit: typeof json['commit'] === 'string' ? json['commit'] : undefined,
    runs,
  };
}

/** The smallest skew the log axis shows (a Pod seen before its tick is drawn there). */
const FLOOR_SECONDS = 0.01;

export interface CurvePoint {
  readonly n: string;
  readonly scenario: string;
  readonly complete: boolean;
  readonly skew: number;
  readonly share: number;
}

/** Each run's empirical distribution: the k-th fastest Pod at share k/N of the N expected. */
export function curves(runs: readonly PlotRun[]): CurvePoint[] {
  return runs.flatMap((r) => {
    const sorted = [...r.offsetsMs].sort((a, b) => a - b);
    const n = `N = ${r.n}`;
    const scenario = scenarioTitles[r.scenario];
    const points = sorted.map((ms, k) => ({
      n,
      scenario,
      complete: r.complete,
      skew: Math.max(FLOOR_SECONDS, ms / 1000),
      share: (k + 1) / r.n,
    }));
    const first = points[0];
    return first === undefined ? [] : [{ ...first, share: 0 }, ...points];
  });
}

const WIDTH = 640;
const PANEL_HEIGHT = 220;
/** Between panels: room for the x axis of one and the title of the next. */
const GAP = 70;

export function spec(input: PlotInput): Spec {
  const points = curves(input.runs);
  const sizes = [...new Set(input.runs.map((r) => r.n))].sort((a, b) => a - b).map((n) => `N = ${n}`);
  const incomplete = input.runs.some((r) => !r.complete);
  const subtitle = [
    [input.command, input.startedAt, input.commit === undefined ? '' : `commit ${input.commit}`]
      .filter((s) => s !== '')
      .join(' · '),
    ...(incomplete ? ['dashed: an incomplete run (its missing Pods are off the chart)'] : []),
  ];
  return {
    $schema: 'https://vega.github.io/schema/vega/v6.json',
    background: 'white',
    padding: 10,
    width: WIDTH,
    height: sizes.length * (PANEL_HEIGHT + GAP) - GAP,
    title: {
      text: 'Schedule skew: Pod ADDED at an independent watcher − the tick',
      subtitle,
      anchor: 'start',
    },
    data: [{ name: 'points', values: points }],
    scales: [
      {
        name: 'row',
        type: 'band',
        domain: sizes,
        range: [0, sizes.length * (PANEL_HEIGHT + GAP)],
        padding: 0,
      },
      {
        name: 'x',
        type: 'log',
        domain: { data: 'points', field: 'skew' },
        range: 'width',
        nice: true,
      },
      { name: 'y', type: 'linear', domain: [0, 1], range: [PANEL_HEIGHT, 0] },
      { name: 'color', type: 'ordinal', domain: SCENARIOS.map((x) => scenarioTitles[x]), range: 'category' },
    ],
    legends: [
      {
        stroke: 'color',
        title: 'scenario',
        orient: 'bottom',
        direction: 'vertical',
        symbolType: 'stroke',
        labelLimit: 400,
      },
    ],
    marks: [
      {
        type: 'group',
        from: { facet: { name: 'panel', data: 'points', groupby: 'n' } },
        encode: {
          enter: {
            y: { scale: 'row', field: 'n' },
            width: { signal: 'width' },
            height: { value: PANEL_HEIGHT },
          },
        },
        title: { text: { signal: 'parent.n' }, anchor: 'start', fontSize: 12 },
        axes: [
          { orient: 'bottom', scale: 'x', title: 'skew, s (log scale)', grid: true },
          { orient: 'left', scale: 'y', title: 'share of the N Pods created', format: '%', grid: true },
        ],
        marks: [
          {
            type: 'group',
            from: { facet: { name: 'series', data: 'panel', groupby: 'scenario' } },
            marks: [
              {
                type: 'line',
                from: { data: 'series' },
                encode: {
                  enter: {
                    x: { scale: 'x', field: 'skew' },
                    y: { scale: 'y', field: 'share' },
                    stroke: { scale: 'color', field: 'scenario' },
                    strokeWidth: { value: 2 },
                    strokeDash: { signal: 'datum.complete ? [] : [5, 3]' },
                    interpolate: { value: 'step-after' },
                  },
                },
              },
            ],
          },
        ],
      },
    ],
  };
}

export async function render(input: PlotInput): Promise<string> {
  const view = new View(parse(spec(input)), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

async function main(): Promise<void> {
  const [from, to = 'docs/benchmarks-skew.svg'] = process.argv.slice(2);
  if (from === undefined) throw new Error('usage: plot.ts <skew-….json> [out.svg]');
  const input = plotInput(JSON.parse(readFileSync(from, 'utf8')) as unknown);
  if (input.runs.length === 0) throw new Error(`${from} has no burst runs to plot`);
  writeFileSync(to, await render(input));
  process.stderr.write(`plot: ${input.runs.length} runs from ${from} drawn to ${to}\n`);
}

if (import.meta.main) {
  main().catch((error: unknown) => {
    process.stderr.write(`plot: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}

/**
 * Summarizes a V8 CPU profile (`--cpu-prof`, e.g. from SSJ_BENCH_CPU_PROF) over a window of it:
 * the functions with the most self time, the packages they belong to, and the project's own
 * functions by inclusive time (what the frames under them cost).
 *
 *   node e2e/bench/cpu-profile.ts <file.cpuprofile> [from s] [to s] [rows]
 *
 * `from` and `to` are seconds since the profile started (default: all of it); idle time is left
 * out. Without a window it also prints the busy time per second, to find the tick's burst.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const [file, fromArg, toArg, rowsArg] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: cpu-profile.ts <file.cpuprofile> [from s] [to s] [rows]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const rows = Number(rowsArg ?? 20);
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const where = (cf: CallFrame): string => {
  const url = cf.url.replace(/^file:\/\/.*?\/(node_modules|src)\//, '$1/');
  return `${cf.functionName || '(anonymous)'} ${url}${url === '' ? '' : `:${cf.lineNumber + 1}`}`;
};
const packageOf = (cf: CallFrame): string => {
  if (cf.url === '') return cf.functionName;
  if (cf.url.startsWith('node:')) return 'node:';
  const modules = cf.url.split('node_modules/').at(-1) ?? '';
  if (cf.url.includes('node_modules/'))
    return modules
      .split('/')
      .slice(0, modules.startsWith('@') ? 2 : 1)
      .join('/');
  const src = cf.url.split('/src/');
  return src.length > 1 ? `src/${(src.at(-1) ?? '').split('/')[0] ?? ''}` : cf.url;
};

const from = profile.startTime + Number(fromArg ?? 0) * 1e6;
const to = profile.startTime + Number(toArg ?? Infinity) * 1e6;
const self = new Map<string, number>();
const packages = new Map<string, number>();
const inclusive = new Map<string, number>();
const perSecond = new Map<number, number>();
const add = (m: Map<string, number>, k: string, us: number): void => {
  m.set(k, (m.get(k) ?? 0) + us);
};
let t = profile.startTime;
let total = 0;
profile.samples.forEach((id, i) => {
  const us = profile.timeDeltas[i] ?? 0;
  t += us;
  const node = byId.get(id);
  if (node === undefined || node.callFrame.functionName === '(idle)' || t < from || t > to) return;
  total += us;
  add(self, where(node.callFrame), us);
  add(packages, packageOf(node.callFrame), us);
  const second = Math.floor((t - profile.startTime) / 1e6);
  perSecond.set(second, (perSecond.get(second) ?? 0) + us);
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const cf = byId.get(at)?.callFrame;
    if (cf === undefined || !cf.url.includes('/src/')) continue;
    const key = where(cf);
    if (!seen.has(key)) add(inclusive, key, us);
    seen.add(key);
  }
});

const print = (title: string, m: Map<string, number>, n: number): void => {
  process.stdout.write(`${title}\n`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n))
    process.stdout.write(
      `${(us / 1e3).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)} %  ${k}\n`,
    );
};
process.stdout.write(`${file}: ${(total / 1e6).toFixed(2)} s of CPU sampled in the window\n`);
if (fromArg === undefined)
  process.stdout.write(
    `busy ms per second: ${[...perSecond].map(([s, us]) => `${s}:${(us / 1e3).toFixed(0)}`).join(' ')}\n`,
  );
print('self time', self, rows);
print('by package', packages, 12);
print("the project's functions, inclusive", inclusive, rows);

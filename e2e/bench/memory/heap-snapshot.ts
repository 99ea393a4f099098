/**
 * What a V8 heap snapshot (`--heapsnapshot-signal`) holds, summed by node type and constructor
 * name: enough to see what the cached objects cost (plain objects, strings, arrays, code)
 * without opening DevTools. Reads the snapshot's own `meta` to find the fields, so it does not
 * depend on one V8 version's layout.
 */
import { readFileSync } from 'node:fs';

export interface HeapGroup {
  readonly type: string;
  readonly name: string;
  readonly count: number;
  readonly selfBytes: number;
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** The groups, largest first; strings and code are grouped by type alone (their names are their contents). */
export function summarizeHeapSnapshot(path: string): { totalBytes: number; groups: HeapGroup[] } {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const at = (f: string): number => {
    const i = fields.indexOf(f);
    if (i < 0) throw new Error(`heap snapshot has no node field ${f}`);
    return i;
  };
  const typeAt = at('type');
  const nameAt = at('name');
  const sizeAt = at('self_size');
  const byKey = new Map<string, { type: string; name: string; count: number; selfBytes: number }>();
  let totalBytes = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt] ?? 0] ?? '?';
    const size = snap.nodes[i + sizeAt] ?? 0;
    totalBytes += size;
    const byName = type === 'object' || type === 'closure' || type === 'native';
    const name = byName ? (snap.strings[snap.nodes[i + nameAt] ?? 0] ?? '?') : '';
    const key = `${type}\u0000${name}`;
    let g = byKey.get(key);
    if (g === undefined) byKey.set(key, (g = { type, name, count: 0, selfBytes: 0 }));
    g.count++;
    g.selfBytes += size;
  }
  const groups = [...byKey.values()].sort((a, b) => b.selfBytes - a.selfBytes);
  return { totalBytes, groups };
}

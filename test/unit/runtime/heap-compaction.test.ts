// compactHeap (src/runtime/heap-compaction.ts): one collection that gives a heap grown by
// garbage back to the system, which a plain collection does not (ADR 0018).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compactHeap } from '../../../src/runtime/heap-compaction.ts';

const MiB = 2 ** 20;

describe('compactHeap', () => {
  it('hands the pages of a heap grown by garbage back to the system', async () => {
    // About 100 MiB of short-lived strings that survive long enough to reach the old space.
    let garbage: string[] = [];
    for (let i = 0; i < 400_000; i++) garbage.push(`${'x'.repeat(200)}${i}`);
    garbage = [];
    const c = await compactHeap();
    assert.equal(garbage.length, 0);
    const freedRss = (c.rssBeforeBytes - c.rssAfterBytes) / MiB;
    const freedHeap = (c.heapTotalBeforeBytes - c.heapTotalAfterBytes) / MiB;
    assert.ok(freedHeap > 50, `the heap shrank by ${freedHeap.toFixed(1)} MiB`);
    assert.ok(freedRss > 50, `RSS shrank by ${freedRss.toFixed(1)} MiB`);
  });

  it('shares one collection between calls made while it runs', async () => {
    const [a, b] = await Promise.all([compactHeap(), compactHeap()]);
    assert.equal(a, b);
    assert.notEqual(await compactHeap(), a, 'a later call collects again');
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KubernetesListObject } from '@kubernetes/client-node';
import { LIST_PAGE_SIZE, createInformer } from '../../../src/runtime/informer.ts';
import type { ListPage, ListWatchFactory } from '../../../src/runtime/informer.ts';

interface Obj {
  metadata: { name: string; namespace: string; resourceVersion: string };
  lean?: boolean;
}

const obj = (name: string): Obj => ({ metadata: { name, namespace: 'ns', resourceVersion: '1' } });

// Lists once on start, as client-node's ListWatch does, and keeps what the list returned.
function listingSource(): {
  factory: ListWatchFactory<Obj>;
  listed: () => KubernetesListObject<Obj> | undefined;
} {
  let listed: KubernetesListObject<Obj> | undefined;
  return {
    listed: () => listed,
    factory: (o) => ({
      start: async () => {
        listed = await o.list();
      },
      stop: () => undefined,
      on: () => undefined,
      onError: () => undefined,
      get: () => undefined,
      list: () => listed?.items ?? [],
    }),
  };
}

describe('an informer that lists by page', () => {
  it('asks for pages of LIST_PAGE_SIZE until the continue token runs out, keeping the first resourceVersion', async () => {
    const pages: ListPage<Obj>[] = [
      { items: [obj('a'), obj('b')], resourceVersion: '10', continue: 't1' },
      { items: [obj('c')], resourceVersion: '10', continue: '' },
    ];
    const asked: { limit: number; continue?: string }[] = [];
    const source = listingSource();
    const informer = createInformer<Obj>({
      resource: 'things',
      path: '/things',
      listPage: (page) => {
        asked.push(page);
        return Promise.resolve(pages[asked.length - 1] ?? { items: [], resourceVersion: '' });
      },
      listWatch: source.factory,
    });
    await informer.start();
    assert.deepEqual(asked, [{ limit: LIST_PAGE_SIZE }, { limit: LIST_PAGE_SIZE, continue: 't1' }]);
    assert.equal(source.listed()?.metadata?.resourceVersion, '10');
    assert.deepEqual(
      informer.list().map((o) => o.metadata.name),
      ['a', 'b', 'c'],
    );
    assert.equal(informer.hasSynced(), true);
  });

  it('transforms each page as it arrives, before the next is asked for', async () => {
    const log: string[] = [];
    const source = listingSource();
    const informer = createInformer<Obj>({
      resource: 'things',
      path: '/things',
      listPage: (page) => {
        log.push(`page ${page.continue ?? 'first'}`);
        return Promise.resolve(
          page.continue === undefined
            ? { items: [obj('a')], resourceVersion: '5', continue: 'next' }
            : { items: [obj('b')], resourceVersion: '5' },
        );
      },
      transform: (o) => {
        log.push(`transform ${o.metadata.name}`);
        return { ...o, lean: true };
      },
      listWatch: source.factory,
    });
    await informer.start();
    assert.deepEqual(log, ['page first', 'transform a', 'page next', 'transform b']);
    assert.ok(informer.list().every((o) => o.lean === true));
  });
});

/* eslint-disable @typescript-eslint/require-await -- async stubs of async interfaces read best as async functions */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApiException, V1ListMeta } from '@kubernetes/client-node';
import type { KubernetesListObject } from '@kubernetes/client-node';
import { DEFAULT_RESTART_BACKOFF, createInformer, restartDelay } from '../../../src/runtime/informer.ts';
import type {
  InformerEvent,
  InformerMetrics,
  ListWatchSource,
  ListWatchSourceOptions,
} from '../../../src/runtime/informer.ts';
import { ManualClock, settle } from './manual-clock.ts';

interface Obj {
  metadata: {
    name: string;
    namespace: string;
    resourceVersion: string;
    managedFields?: { manager: string }[];
  };
}

const obj = (name: string, rv = '1', extra: Record<string, unknown> = {}): Obj => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv, ...extra },
});

// Behaves like client-node's ListWatch as far as the informer can tell: it lists on start when
// it has no resourceVersion, keeps its cache across starts, and reports failure through onError
// and stays stopped.
class FakeSource implements ListWatchSource<Obj> {
  starts = 0;
  stops = 0;
  hasRv = false;
  /** What the next start() does after listing (if it lists). */
  watchOpens = true;
  readonly cache = new Map<string, Obj>();
  readonly handlers: Record<InformerEvent, ((o: Obj) => void)[]> = { add: [], update: [], delete: [] };
  readonly errorHandlers: ((e: unknown) => void)[] = [];
  readonly opts: ListWatchSourceOptions<Obj>;
  constructor(opts: ListWatchSourceOptions<Obj>) {
    this.opts = opts;
  }

  async start(): Promise<void> {
    this.starts++;
    if (!this.hasRv) {
      let list: KubernetesListObject<Obj>;
      try {
        list = await this.opts.list();
      } catch (err) {
        this.fail(err);
        return;
      }
      for (const o of list.items) this.apply('ADDED', o);
      this.hasRv = true;
    }
    if (!this.watchOpens) this.fail(new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } }));
  }
  stop(): void {
    this.stops++;
  }
  on(event: InformerEvent, fn: (o: Obj) => void): void {
    this.handlers[event].push(fn);
  }
  onError(fn: (e: unknown) => void): void {
    this.errorHandlers.push(fn);
  }
  get(name: string, namespace?: string): Obj | undefined {
    return this.cache.get(`${namespace ?? ''}/${name}`);
  }
  list(): readonly Obj[] {
    return [...this.cache.values()];
  }
  fail(err: unknown): void {
    for (const fn of this.errorHandlers) fn(err);
  }
  /** A watch event as it arrives from the API server. */
  watch(type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK', raw: unknown): void {
    this.opts.onWatchEvent(type);
    if (type === 'BOOKMARK') return;
    this.apply(type, this.opts.fromWatch(raw));
  }
  apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', o: Obj): void {
    const key = `${o.metadata.namespace}/${o.metadata.name}`;
    if (type === 'DELETED') {
      this.cache.delete(key);
      for (const fn of this.handlers.delete) fn(o);
      return;
    }
    const existed = this.cache.has(key);
    this.cache.set(key, o);
    for (const fn of this.handlers[existed ? 'update' : 'add']) fn(o);
  }
}

function setup(listImpl: () => Promise<KubernetesListObject<Obj>>, random = () => 1) {
  const clock = new ManualClock();
  const counts = { restarts: 0, events: [] as string[] };
  const metrics: InformerMetrics = {
    watchEvent: (resource, type) => counts.events.push(`${resource}:${type}`),
    informerRestart: (resource) => {
      assert.equal(resource, 'things');
      counts.restarts++;
    },
  };
  const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
  let source: FakeSource | undefined;
  const informer = createInformer<Obj>({
    resource: 'things',
    path: '/apis/x/v1/things',
    list: listImpl,
    listWatch: (opts) => (source = new FakeSource(opts)),
    metrics,
    logger: { warn: (o, msg) => warnings.push({ obj: o, msg }) },
    clock,
    random,
  });
  assert.ok(source);
  return { clock, counts, warnings, informer, source };
}

const listOf = (...items: Obj[]): KubernetesListObject<Obj> => ({
  metadata: Object.assign(new V1ListMeta(), { resourceVersion: '10' }),
  items,
});

describe('restartDelay', () => {
  it('doubles from 1 s to a 30 s cap, each delay between half and all of its ceiling', () => {
    const b = DEFAULT_RESTART_BACKOFF;
    const ceilings = [1000, 2000, 4000, 8000, 16000, 30000, 30000];
    ceilings.forEach((ceiling, attempt) => {
      assert.equal(
        restartDelay(attempt, b, () => 0),
        ceiling / 2,
      );
      assert.equal(
        restartDelay(attempt, b, () => 1),
        ceiling,
      );
      const d = restartDelay(attempt, b, Math.random);
      assert.ok(d >= ceiling / 2 && d <= ceiling);
    });
    assert.equal(
      restartDelay(10_000, b, () => 1),
      30_000,
      'no overflow',
    );
  });
});

describe('informer', () => {
  it('start resolves once the first list is in the cache, and the cache answers list and get', async () => {
    const { informer } = setup(async () => listOf(obj('a'), obj('b')));
    const added: string[] = [];
    informer.on('add', (o) => added.push(o.metadata.name));
    assert.equal(informer.hasSynced(), false);
    await informer.start();
    assert.equal(informer.hasSynced(), true);
    assert.deepEqual(added, ['a', 'b']);
    assert.equal(informer.list().length, 2);
    assert.equal(informer.get('ns', 'a')?.metadata.name, 'a');
    assert.equal(informer.get('other', 'a'), undefined);
  });

  it('after a failed first list, restarts with back-off and resolves start once a list succeeds', async () => {
    let calls = 0;
    const { informer, clock, counts, warnings } = setup(async () => {
      calls++;
      if (calls <= 2)
        throw new ApiException(
          404,
          'x',
          '{"kind":"Status","reason":"NotFound","message":"the server could not find the requested resource"}',
          {},
        );
      return listOf(obj('a'));
    });
    let synced = false;
    void informer.start().then(() => (synced = true));
    await settle();
    assert.equal(synced, false);
    assert.equal(informer.lastError()?.kind, 'NotFound', 'a health check can say why');
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.obj['delayMs'], 1000);
    clock.advance(999);
    await settle();
    assert.equal(calls, 1, 'no restart before the delay');
    clock.advance(1);
    await settle();
    assert.equal(calls, 2);
    assert.equal(counts.restarts, 1);
    clock.advance(2000); // second delay: 2 s
    await settle();
    assert.equal(calls, 3);
    assert.equal(counts.restarts, 2);
    assert.equal(synced, true);
    assert.equal(informer.lastError(), undefined);
  });

  it('restarts a watch that broke after sync, keeps its cache, and counts the restart', async () => {
    const { informer, source, clock, counts } = setup(async () => listOf(obj('a')));
    await informer.start();
    source.fail(new TypeError('terminated', { cause: { code: 'UND_ERR_SOCKET' } }));
    source.fail(new Error('a second report of the same failure'));
    assert.equal(informer.list().length, 1, 'cache kept while broken');
    clock.advance(1000);
    await settle();
    assert.equal(source.starts, 2);
    assert.equal(counts.restarts, 1, 'one failure, one restart');
  });

  it('grows the delay while failures repeat, caps it at 30 s, and starts over after a healthy minute', async () => {
    const { informer, source, clock, warnings } = setup(async () => listOf(obj('a')));
    await informer.start();
    source.watchOpens = false;
    source.fail(new Error('ECONNRESET'));
    for (let i = 0; i < 7; i++) {
      clock.advance(30_000);
      await settle();
    }
    const delays = warnings.map((w) => w.obj['delayMs']);
    assert.deepEqual(delays.slice(0, 7), [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    source.watchOpens = true;
    clock.advance(30_000);
    await settle();
    clock.advance(60_000); // healthy for a minute
    const before = warnings.length;
    source.fail(new Error('ECONNRESET'));
    assert.equal(warnings[before]?.obj['delayMs'], 1000);
  });

  it('counts every watch event by resource and type', async () => {
    const { informer, source, counts } = setup(async () => listOf());
    await informer.start();
    source.watch('ADDED', obj('a', '2'));
    source.watch('MODIFIED', obj('a', '3'));
    source.watch('BOOKMARK', { metadata: { resourceVersion: '4' } });
    source.watch('DELETED', obj('a', '5'));
    assert.deepEqual(counts.events, ['things:ADDED', 'things:MODIFIED', 'things:BOOKMARK', 'things:DELETED']);
  });

  it('delivers add, update and delete to subscribers; a throwing handler neither stops the others nor the informer', async () => {
    const { informer, source, warnings } = setup(async () => listOf());
    await informer.start();
    const seen: string[] = [];
    informer.on('add', () => {
      throw new Error('handler bug');
    });
    const off = informer.on('add', (o) => seen.push(`add:${o.metadata.name}`));
    informer.on('update', (o) => seen.push(`update:${o.metadata.name}`));
    informer.on('delete', (o) => seen.push(`delete:${o.metadata.name}`));
    source.watch('ADDED', obj('a', '2'));
    source.watch('MODIFIED', obj('a', '3'));
    source.watch('DELETED', obj('a', '4'));
    off();
    source.watch('ADDED', obj('b', '5'));
    assert.deepEqual(seen, ['add:a', 'update:a', 'delete:a']);
    assert.equal(warnings.filter((w) => w.msg === 'add handler failed').length, 2);
  });

  it('drops managedFields from listed and watched objects', async () => {
    const { informer, source } = setup(async () =>
      listOf(obj('a', '1', { managedFields: [{ manager: 'x' }] })),
    );
    await informer.start();
    source.watch('ADDED', obj('b', '2', { managedFields: [{ manager: 'y' }] }));
    for (const o of informer.list()) assert.equal('managedFields' in o.metadata, false);
  });

  it('stop cancels a pending restart, resolves a waiting start, and ignores later failures', async () => {
    const { informer, source, clock, counts } = setup(async () => {
      throw new Error('fetch failed');
    });
    const started = informer.start();
    await settle();
    assert.equal(clock.pending(), 1, 'a restart is pending');
    informer.stop();
    assert.equal(clock.pending(), 0);
    await started;
    assert.equal(informer.hasSynced(), false);
    source.fail(new Error('late'));
    clock.advance(120_000);
    await settle();
    assert.equal(source.starts, 1);
    assert.equal(counts.restarts, 0);
    assert.equal(source.stops, 1);
    assert.equal(source.opts.isStopped(), true, 'the source is told it must not reconnect');
    await informer.start(); // after stop: resolves at once, starts nothing
    assert.equal(source.starts, 1);
  });

  it("cuts the source's own reconnect delay short when stopped", async () => {
    const { informer, source } = setup(async () => listOf());
    await informer.start();
    let slept = false;
    void source.opts.sleep(30_000).then(() => (slept = true));
    await settle();
    assert.equal(slept, false);
    informer.stop();
    await settle();
    assert.equal(slept, true);
  });

  it('treats a start that rejects as a failure to restart from', async () => {
    const { informer, source, clock, counts } = setup(async () => listOf(obj('a')));
    const realStart = source.start.bind(source);
    let first = true;
    source.start = async () => {
      if (first) {
        first = false;
        throw new Error('exec credential plugin failed');
      }
      return realStart();
    };
    const started = informer.start();
    await settle();
    clock.advance(1000);
    await started;
    assert.equal(counts.restarts, 1);
    assert.equal(informer.hasSynced(), true);
  });
});

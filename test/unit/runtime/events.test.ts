import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApiException } from '@kubernetes/client-node';
import { REPORTING_CONTROLLER, createEventRecorder } from '../../../src/runtime/events.ts';
import type { EventBody, EventSeries, EventSink, InvolvedObject } from '../../../src/runtime/events.ts';
import { settle } from './manual-clock.ts';

type Call =
  | { op: 'create'; namespace: string; body: EventBody }
  | { op: 'patch'; namespace: string; name: string; series: EventSeries };

// A sink whose writes complete only when the test releases them, so that coalescing is visible.
function fakeSink(options: { autoRelease?: boolean } = {}) {
  const calls: Call[] = [];
  const pending: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  const failures: Error[] = [];
  const wait = <T>(value: T): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const failure = failures.shift();
      if (failure !== undefined) {
        reject(failure);
        return;
      }
      if (options.autoRelease !== false) {
        resolve(value);
        return;
      }
      pending.push({
        resolve: () => {
          resolve(value);
        },
        reject,
      });
    });
  const sink: EventSink = {
    create(namespace, body) {
      calls.push({ op: 'create', namespace, body });
      return wait(body.metadata.name);
    },
    patchSeries(namespace, name, series) {
      calls.push({ op: 'patch', namespace, name, series });
      return wait(undefined);
    },
  };
  return {
    sink,
    calls,
    failNext: (e: Error) => failures.push(e),
    releaseAll: () => {
      for (const p of pending.splice(0)) p.resolve();
    },
  };
}

const job: InvolvedObject = {
  apiVersion: 'ssj.dev/v1alpha1',
  kind: 'ScheduledSingletonJob',
  metadata: { name: 'nightly', namespace: 'team-a', uid: 'uid-1' },
};

function recorder(sink: EventSink, warnings: unknown[] = [], maxEntries?: number) {
  let t = Date.parse('2026-11-22T10:00:00Z');
  return createEventRecorder({
    sink,
    identity: 'pod-1_abc',
    logger: { warn: (obj, msg) => warnings.push({ obj, msg }) },
    now: () => new Date((t += 1000)),
    ...(maxEntries === undefined ? {} : { maxEntries }),
  });
}

describe('event recorder', () => {
  it('creates an events.k8s.io/v1 Event about the object, reported by ssj-operator and this instance', async () => {
    const f = fakeSink();
    const r = recorder(f.sink);
    r.event(job, 'Warning', 'InvalidSchedule', 'schedule "61 * * * *": minute out of range');
    await r.flush();
    assert.equal(f.calls.length, 1);
    const call = f.calls[0];
    assert.ok(call?.op === 'create');
    assert.equal(call.namespace, 'team-a');
    const b = call.body;
    assert.equal(b.apiVersion, 'events.k8s.io/v1');
    assert.equal(b.reportingController, REPORTING_CONTROLLER);
    assert.equal(b.reportingController, 'ssj.dev/ssj-operator');
    assert.equal(b.reportingInstance, 'pod-1_abc');
    assert.equal(b.type, 'Warning');
    assert.equal(b.reason, 'InvalidSchedule');
    assert.equal(b.action, 'InvalidSchedule');
    assert.equal(b.note, 'schedule "61 * * * *": minute out of range');
    assert.deepEqual(b.regarding, {
      apiVersion: 'ssj.dev/v1alpha1',
      kind: 'ScheduledSingletonJob',
      name: 'nightly',
      namespace: 'team-a',
      uid: 'uid-1',
    });
    assert.equal(b.series, undefined);
    assert.match(b.metadata.name, /^nightly\.[0-9a-f]+$/);
    assert.match(b.eventTime.toISOString(), /\.\d{6}Z$/, 'MicroTime: six fractional digits');
  });

  it('turns a repeat of the same event into a series patch on the same Event, not a new object', async () => {
    const f = fakeSink();
    const r = recorder(f.sink);
    r.event(job, 'Warning', 'FailedCreate', 'quota exceeded');
    await r.flush();
    r.event(job, 'Warning', 'FailedCreate', 'quota exceeded');
    await r.flush();
    r.event(job, 'Warning', 'FailedCreate', 'quota exceeded');
    await r.flush();
    assert.deepEqual(
      f.calls.map((c) => c.op),
      ['create', 'patch', 'patch'],
    );
    const created = f.calls[0];
    assert.ok(created?.op === 'create');
    const patches = f.calls.filter((c) => c.op === 'patch');
    assert.ok(patches.every((p) => p.name === created.body.metadata.name));
    assert.deepEqual(
      patches.map((p) => p.series.count),
      [2, 3],
    );
    const [p2, p3] = patches;
    assert.ok(p2 !== undefined && p3 !== undefined);
    assert.ok(p3.series.lastObservedTime > p2.series.lastObservedTime, 'lastObservedTime moves on');
  });

  it('keeps events that differ in object, type, reason or message apart', async () => {
    const f = fakeSink();
    const r = recorder(f.sink);
    const other: InvolvedObject = { ...job, metadata: { ...job.metadata, name: 'other', uid: 'uid-2' } };
    r.event(job, 'Warning', 'R', 'm');
    r.event(other, 'Warning', 'R', 'm');
    r.event(job, 'Normal', 'R', 'm');
    r.event(job, 'Warning', 'R2', 'm');
    r.event(job, 'Warning', 'R', 'm2');
    await r.flush();
    assert.deepEqual(
      f.calls.map((c) => c.op),
      ['create', 'create', 'create', 'create', 'create'],
    );
  });

  it('coalesces repeats that arrive while a write is in flight into one patch', async () => {
    const f = fakeSink({ autoRelease: false });
    const r = recorder(f.sink);
    r.event(job, 'Normal', 'SuccessfulCreate', 'created pod nightly-1');
    await settle();
    for (let i = 0; i < 50; i++) r.event(job, 'Normal', 'SuccessfulCreate', 'created pod nightly-1');
    await settle();
    assert.equal(f.calls.length, 1, 'only the create so far');
    f.releaseAll();
    await settle();
    assert.equal(f.calls.length, 2);
    const patch = f.calls[1];
    assert.ok(patch?.op === 'patch');
    assert.equal(patch.series.count, 51);
    f.releaseAll();
    await r.flush();
    assert.equal(f.calls.length, 2);
  });

  it('creates the Event again, with the series so far, when the patch finds it deleted', async () => {
    const f = fakeSink();
    const r = recorder(f.sink);
    r.event(job, 'Warning', 'R', 'm');
    await r.flush();
    f.failNext(new ApiException(404, 'x', '{"kind":"Status","reason":"NotFound","code":404}', {}));
    r.event(job, 'Warning', 'R', 'm');
    await r.flush();
    assert.deepEqual(
      f.calls.map((c) => c.op),
      ['create', 'patch', 'create'],
    );
    const recreated = f.calls[2];
    assert.ok(recreated?.op === 'create');
    assert.equal(recreated.body.series?.count, 2);
    const first = f.calls[0];
    assert.ok(first?.op === 'create');
    assert.notEqual(recreated.body.metadata.name, first.body.metadata.name);
  });

  it('never throws into the caller and logs a failed write, then tries again on the next repeat', async () => {
    const f = fakeSink();
    const warnings: unknown[] = [];
    const r = recorder(f.sink, warnings);
    f.failNext(
      new TypeError('fetch failed', { cause: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }) }),
    );
    assert.doesNotThrow(() => {
      r.event(job, 'Warning', 'R', 'm');
    });
    await r.flush();
    assert.equal(warnings.length, 1);
    assert.match(JSON.stringify(warnings[0]), /Transient/);
    r.event(job, 'Warning', 'R', 'm');
    await r.flush();
    const retry = f.calls[1];
    assert.ok(retry?.op === 'create', 'the Event was never created, so the repeat creates it');
    assert.equal(retry.body.series?.count, 2);
  });

  it('never throws when the sink throws synchronously or the logger throws', async () => {
    const r = createEventRecorder({
      sink: {
        create: () => {
          throw new Error('sync');
        },
        patchSeries: () => {
          throw new Error('sync');
        },
      },
      identity: 'x',
      logger: {
        warn: () => {
          throw new Error('logger down');
        },
      },
    });
    assert.doesNotThrow(() => {
      r.event(job, 'Normal', 'R', 'm');
    });
    await r.flush();
  });

  it('bounds its cache: an evicted event starts a new Event on its next repeat', async () => {
    const f = fakeSink();
    const r = recorder(f.sink, [], 2);
    r.event(job, 'Normal', 'A', 'm');
    r.event(job, 'Normal', 'B', 'm');
    r.event(job, 'Normal', 'C', 'm'); // evicts A
    await r.flush();
    r.event(job, 'Normal', 'C', 'm'); // still cached: patch
    r.event(job, 'Normal', 'A', 'm'); // evicted: create
    await r.flush();
    assert.deepEqual(
      f.calls.map((c) => `${c.op}:${c.op === 'create' ? c.body.reason : c.series.count}`),
      ['create:A', 'create:B', 'create:C', 'patch:2', 'create:A'],
    );
  });

  it('truncates a note to the 1 KiB the API server accepts, without splitting a character', async () => {
    const f = fakeSink();
    const r = recorder(f.sink);
    r.event(job, 'Warning', 'R', 'é'.repeat(2000));
    await r.flush();
    const c = f.calls[0];
    assert.ok(c?.op === 'create');
    assert.ok(Buffer.byteLength(c.body.note, 'utf8') <= 1024);
    assert.ok(c.body.note.endsWith('…'));
    assert.ok(!c.body.note.includes('\uFFFD'));
  });

  it('has at most 16 writes in flight; the rest wait their turn and all are written', async () => {
    const f = fakeSink({ autoRelease: false });
    const r = recorder(f.sink);
    for (let i = 0; i < 40; i++) r.event(job, 'Normal', `R${i}`, 'm');
    await settle();
    assert.equal(f.calls.length, 16, 'writes started before any finished');
    for (let round = 0; round < 3; round++) {
      f.releaseAll();
      await settle();
    }
    f.releaseAll();
    await r.flush();
    assert.equal(f.calls.length, 40);
  });
});

// The Event recorder against the real API server: repeats aggregate into one Event object.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CoreV1Api, EventsV1Api, V1ConfigMap } from '@kubernetes/client-node';
import type { EventsV1Event, KubeConfig } from '@kubernetes/client-node';
import { REPORTING_CONTROLLER, createEventRecorder, eventsV1Sink } from '../../../src/runtime/events.ts';
import type { InvolvedObject } from '../../../src/runtime/events.ts';
import {
  deleteNamespace,
  kubectl,
  loadKubeConfig,
  newNamespace,
  requireCluster,
} from '../../support/kube.ts';

describe('event recorder (real API server)', () => {
  let kc: KubeConfig;
  let ns = '';
  let involved: InvolvedObject;
  const warnings: unknown[] = [];

  before(async () => {
    kc = loadKubeConfig();
    await requireCluster(kc);
    ns = await newNamespace('rt-events', kc);
    // Any namespaced object will do as the involved object; a ConfigMap needs no controller.
    const cm = await kc.makeApiClient(CoreV1Api).createNamespacedConfigMap({
      namespace: ns,
      body: Object.assign(new V1ConfigMap(), { metadata: { name: 'subject' }, data: { a: 'b' } }),
    });
    involved = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'subject', namespace: ns, uid: cm.metadata?.uid ?? '' },
    };
  });

  after(async () => {
    if (ns !== '') await deleteNamespace(ns, kc);
  });

  const recorder = () =>
    createEventRecorder({
      sink: eventsV1Sink(kc),
      identity: 'integration-test_0001',
      logger: { warn: (obj, msg) => warnings.push({ obj, msg }) },
    });

  const eventsWithReason = async (reason: string): Promise<EventsV1Event[]> => {
    const list = await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: ns });
    return list.items.filter((e) => e.reason === reason);
  };

  it('aggregates a repeated event into one Event object whose series counts every occurrence', async () => {
    const r = recorder();
    r.event(involved, 'Warning', 'FailedCreate', 'pods "x" is forbidden: exceeded quota');
    await r.flush();
    r.event(involved, 'Warning', 'FailedCreate', 'pods "x" is forbidden: exceeded quota');
    await r.flush();
    // A burst: coalesced while a write is in flight, but every occurrence counted.
    for (let i = 0; i < 5; i++)
      r.event(involved, 'Warning', 'FailedCreate', 'pods "x" is forbidden: exceeded quota');
    await r.flush();

    assert.deepEqual(warnings, []);
    const events = await eventsWithReason('FailedCreate');
    assert.equal(events.length, 1, 'one Event object');
    const e = events[0]!;
    assert.ok((e.series?.count ?? 0) >= 2);
    assert.equal(e.series?.count, 7);
    assert.equal(e.type, 'Warning');
    assert.equal(e.note, 'pods "x" is forbidden: exceeded quota');
    assert.equal(e.reportingController, REPORTING_CONTROLLER);
    assert.equal(e.reportingInstance, 'integration-test_0001');
    assert.equal(e.regarding?.uid, involved.metadata.uid);
    assert.ok(e.series.lastObservedTime >= e.eventTime, 'lastObservedTime is not before eventTime');

    // kubectl describe (core/v1 Events) shows it once, with its count.
    const described = await kubectl(['-n', ns, 'describe', 'configmap', 'subject']);
    const lines = described.split('\n').filter((l) => l.includes('FailedCreate'));
    assert.equal(lines.length, 1, described);
    assert.match(lines[0]!, /x7 over/);
  });

  it('creates a new Event, carrying the count, when the aggregated one was deleted', async () => {
    const r = recorder();
    r.event(involved, 'Normal', 'Recreated', 'same thing again');
    await r.flush();
    const [first] = await eventsWithReason('Recreated');
    assert.ok(first?.metadata?.name);
    await kc.makeApiClient(EventsV1Api).deleteNamespacedEvent({ namespace: ns, name: first.metadata.name });
    r.event(involved, 'Normal', 'Recreated', 'same thing again');
    await r.flush();
    const events = await eventsWithReason('Recreated');
    assert.equal(events.length, 1);
    assert.notEqual(events[0]?.metadata?.name, first.metadata.name);
    assert.equal(events[0]?.series?.count, 2);
    assert.deepEqual(warnings, []);
  });

  it('keeps different messages as different Events', async () => {
    const r = recorder();
    r.event(involved, 'Normal', 'Distinct', 'one');
    r.event(involved, 'Normal', 'Distinct', 'two');
    await r.flush();
    const events = await eventsWithReason('Distinct');
    assert.deepEqual(events.map((e) => e.note).sort(), ['one', 'two']);
  });

  it('logs and drops an Event the API server refuses, without throwing', async () => {
    const r = recorder();
    const before = warnings.length;
    const gone: InvolvedObject = {
      ...involved,
      metadata: { ...involved.metadata, namespace: 'no-such-ns-zz' },
    };
    assert.doesNotThrow(() => {
      r.event(gone, 'Warning', 'Nowhere', 'a namespace that does not exist');
    });
    await r.flush();
    assert.equal(warnings.length, before + 1);
    assert.match(JSON.stringify(warnings.at(-1)), /NotFound/);
  });
});

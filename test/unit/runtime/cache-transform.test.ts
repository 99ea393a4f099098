import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { V1Pod } from '@kubernetes/client-node';
// Not exported from the package root: what the generated client does to a listed Pod.
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';
import { leanJob, leanPod, podTemplateOf } from '../../../src/runtime/cache-transform.ts';
import { buildPod, isOwnedBy, isTracked, podView, runOfPod } from '../../../src/controller/pod.ts';
import { jobView } from '../../../src/controller/job.ts';
import type { ScheduledSingletonJob } from '../../../src/api/types.ts';

const JOB_UID = '6f0c1b1e-0000-4000-8000-000000000001';

/** A Pod as the API server sends it in a watch event: everything a kubelet and the scheduler add. */
function wirePod(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'nightly-1764600000',
      namespace: 'team-a',
      uid: 'a1b2c3d4-0000-4000-8000-00000000000a',
      resourceVersion: '4711',
      generation: 1,
      creationTimestamp: '2026-12-01T14:40:00Z',
      labels: {
        'ssj.dev/job': 'nightly',
        'ssj.dev/tick': '1764600000',
        'ssj.dev/attempt': '1',
        app: 'nightly',
      },
      annotations: {
        'ssj.dev/scheduled-time': '2025-12-01T14:40:00Z',
        'ssj.dev/term': '3',
        'ssj.dev/holder': 'ssj-operator-0',
        'kubectl.kubernetes.io/last-applied-configuration': '{"a":"very long text"}',
      },
      finalizers: ['ssj.dev/run-record', 'example.com/other'],
      ownerReferences: [
        {
          apiVersion: 'ssj.dev/v1alpha1',
          kind: 'ScheduledSingletonJob',
          name: 'nightly',
          uid: JOB_UID,
          controller: true,
          blockOwnerDeletion: true,
        },
        { apiVersion: 'v1', kind: 'ConfigMap', name: 'other', uid: 'other-uid' },
      ],
      managedFields: [
        {
          manager: 'ssj-operator',
          operation: 'Update',
          fieldsType: 'FieldsV1',
          fieldsV1: { 'f:metadata': {} },
        },
      ],
    },
    spec: {
      nodeName: 'node-1',
      restartPolicy: 'Never',
      containers: [{ name: 'work', image: 'busybox:1.36', command: ['sh', '-c', 'exit 3'], resources: {} }],
      volumes: [{ name: 'kube-api-access', projected: { sources: [] } }],
    },
    status: {
      phase: 'Failed',
      hostIP: '10.0.0.1',
      podIP: '10.1.0.7',
      startTime: '2026-12-01T14:40:01Z',
      qosClass: 'BestEffort',
      conditions: [
        { type: 'Ready', status: 'False', lastTransitionTime: '2026-12-01T14:40:09Z', reason: 'PodFailed' },
        {
          type: 'DisruptionTarget',
          status: 'True',
          lastTransitionTime: '2026-12-01T14:40:08Z',
          reason: 'EvictionByEvictionAPI',
          message: 'Eviction API: evicting',
        },
      ],
      containerStatuses: [
        {
          name: 'work',
          image: 'busybox:1.36',
          imageID: 'docker.io/library/busybox@sha256:0123',
          containerID: 'containerd://abc',
          ready: false,
          restartCount: 0,
          started: false,
          state: {
            terminated: {
              exitCode: 3,
              reason: 'Error',
              startedAt: '2026-12-01T14:40:02Z',
              finishedAt: '2026-12-01T14:40:07Z',
              containerID: 'containerd://abc',
            },
          },
          lastState: {},
        },
        {
          name: 'sidecar',
          image: 'busybox:1.36',
          imageID: 'docker.io/library/busybox@sha256:0123',
          ready: true,
          restartCount: 0,
          state: { running: { startedAt: '2026-12-01T14:40:02Z' } },
        },
      ],
    },
    ...overrides,
  };
}

/** The same Pod as a list hands it to the cache: client-node's V1Pod, timestamps as Dates. */
const listedPod = (wire: unknown): V1Pod => ObjectSerializer.deserialize(wire, 'V1Pod') as V1Pod;

/** Everything the controller reads of a cached Pod, through the functions that read it. */
function reading(pod: V1Pod): unknown {
  return {
    view: podView(pod),
    run: runOfPod(pod),
    tracked: isTracked(pod),
    ownedByJob: isOwnedBy(pod, JOB_UID),
    ownedByOther: isOwnedBy(pod, 'other-uid'),
    jobLabel: pod.metadata?.labels?.['ssj.dev/job'],
    namespace: pod.metadata?.namespace,
    resourceVersion: pod.metadata?.resourceVersion,
    terminal: pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed',
  };
}

describe('leanPod', () => {
  it('keeps every field the controller reads, from a watch event and from a list alike', () => {
    const wire = wirePod();
    const expected = reading(listedPod(wire));
    assert.deepStrictEqual(reading(leanPod(structuredClone(wire))), expected);
    assert.deepStrictEqual(reading(leanPod(listedPod(wire))), expected);
  });

  it('gives both inputs one shape: timestamps are Dates', () => {
    const fromWatch = leanPod(wirePod());
    const fromList = leanPod(listedPod(wirePod()));
    assert.deepStrictEqual(fromWatch, fromList);
    assert.ok(fromWatch.metadata?.creationTimestamp instanceof Date);
    assert.ok(fromWatch.status?.containerStatuses?.[0]?.state?.terminated?.finishedAt instanceof Date);
  });

  it('drops what the controller never reads: managed fields, containers, IPs, foreign labels', () => {
    const pod = leanPod(wirePod());
    assert.equal(pod.metadata?.managedFields, undefined);
    assert.deepStrictEqual(pod.spec?.containers, []);
    assert.equal(pod.status?.podIP, undefined);
    assert.equal(pod.metadata?.labels?.['app'], undefined);
    assert.equal(pod.metadata?.annotations?.['kubectl.kubernetes.io/last-applied-configuration'], undefined);
    assert.deepStrictEqual(pod.metadata?.finalizers, ['ssj.dev/run-record']);
    assert.deepStrictEqual(Object.keys(pod.status?.containerStatuses?.[1] ?? {}).sort(), [
      'image',
      'imageID',
      'name',
      'ready',
      'restartCount',
    ]);
  });

  it('agrees with the full Pod for any mix of phase, deletion, finalizers, owners, conditions and exits', () => {
    const terminated = fc.record(
      {
        exitCode: fc.integer({ min: 0, max: 255 }),
        reason: fc.constantFrom('Completed', 'Error', 'OOMKilled'),
        finishedAt: fc
          .integer({ min: 1_700_000_000, max: 1_800_000_000 })
          .map((s) => new Date(s * 1000).toISOString()),
      },
      { requiredKeys: ['exitCode'] },
    );
    const containerStatus = fc.record({
      name: fc.constantFrom('a', 'b'),
      image: fc.constant('busybox'),
      imageID: fc.constant('id'),
      ready: fc.boolean(),
      restartCount: fc.nat(3),
      state: fc.oneof(
        fc.constant({}),
        fc.record({ terminated }),
        fc.constant({ running: { startedAt: '2026-12-01T00:00:00Z' } }),
      ),
    });
    const pod = fc.record(
      {
        metadata: fc.record(
          {
            name: fc.constantFrom('j-1', 'j-2'),
            namespace: fc.constant('ns'),
            uid: fc.uuid(),
            resourceVersion: fc.nat().map(String),
            creationTimestamp: fc.constant('2026-12-01T00:00:00Z'),
            deletionTimestamp: fc.constant('2026-12-01T00:01:00Z'),
            deletionGracePeriodSeconds: fc.nat(30),
            labels: fc.record(
              {
                'ssj.dev/job': fc.constant('j'),
                'ssj.dev/tick': fc.oneof(fc.constant('manual'), fc.nat().map(String), fc.constant('x')),
                'ssj.dev/attempt': fc.oneof(fc.nat(4).map(String), fc.constant('')),
              },
              { requiredKeys: [] },
            ),
            annotations: fc.record({ 'ssj.dev/run-now-token': fc.string() }, { requiredKeys: [] }),
            finalizers: fc.subarray(['ssj.dev/run-record', 'other.io/x']),
            ownerReferences: fc.array(
              fc.record(
                {
                  apiVersion: fc.constant('ssj.dev/v1alpha1'),
                  kind: fc.constant('ScheduledSingletonJob'),
                  name: fc.constant('j'),
                  uid: fc.constantFrom(JOB_UID, 'other-uid'),
                  controller: fc.boolean(),
                },
                { requiredKeys: ['apiVersion', 'kind', 'name', 'uid'] },
              ),
              { maxLength: 2 },
            ),
          },
          { requiredKeys: ['name', 'namespace'] },
        ),
        spec: fc.record(
          { nodeName: fc.constantFrom('', 'node-1'), containers: fc.constant([]) },
          { requiredKeys: ['containers'] },
        ),
        status: fc.record(
          {
            phase: fc.constantFrom('Pending', 'Running', 'Succeeded', 'Failed', 'Unknown', 'Bogus'),
            reason: fc.constantFrom('Evicted', 'DeadlineExceeded'),
            message: fc.string(),
            startTime: fc.constant('2026-12-01T00:00:05Z'),
            conditions: fc.array(
              fc.record(
                {
                  type: fc.constantFrom('Ready', 'DisruptionTarget'),
                  status: fc.constantFrom('True', 'False'),
                  reason: fc.constantFrom('EvictionByEvictionAPI', 'PreemptionByScheduler'),
                  message: fc.string(),
                },
                { requiredKeys: ['type', 'status'] },
              ),
              { maxLength: 3 },
            ),
            containerStatuses: fc.array(containerStatus, { maxLength: 3 }),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: ['metadata'] },
    );
    fc.assert(
      fc.property(pod, (wire) => {
        const expected = reading(listedPod(wire));
        assert.deepStrictEqual(reading(leanPod(structuredClone(wire))), expected);
        assert.deepStrictEqual(reading(leanPod(listedPod(wire))), expected);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws, whatever the watch sends', () => {
    for (const junk of [
      null,
      42,
      'text',
      [],
      {},
      { metadata: 'x' },
      { metadata: { labels: [1] }, status: { conditions: 'x' } },
    ]) {
      assert.doesNotThrow(() => leanPod(junk));
    }
  });
});

function wireJob(): ScheduledSingletonJob {
  return {
    apiVersion: 'ssj.dev/v1alpha1',
    kind: 'ScheduledSingletonJob',
    metadata: {
      name: 'nightly',
      namespace: 'team-a',
      uid: JOB_UID,
      resourceVersion: '12',
      generation: 2,
      creationTimestamp: '2026-12-01T14:00:00Z',
      annotations: { 'ssj.dev/run-now': 'token-1' },
      managedFields: [{ manager: 'kubectl', operation: 'Update' }],
    },
    spec: {
      schedule: '0 3 * * *',
      timeZone: 'Europe/Berlin',
      template: {
        metadata: { labels: { app: 'nightly' }, annotations: { team: 'a' } },
        spec: {
          restartPolicy: 'Never',
          containers: [{ name: 'work', image: 'busybox:1.36', command: ['sh', '-c', 'true'] }],
        },
      },
    },
    status: { observedGeneration: 2, ledger: { scheduleAnchor: '2026-12-01T14:00:00Z' } },
  } as unknown as ScheduledSingletonJob;
}

describe('leanJob', () => {
  it('gives the planner the same view and builds the same Pod as the full job', () => {
    const full = wireJob();
    const lean = leanJob(wireJob());
    assert.deepStrictEqual(jobView(lean), jobView(full));
    assert.deepStrictEqual(podTemplateOf(lean), full.spec.template);
    const run = { kind: 'scheduled', tick: new Date('2026-12-02T02:00:00Z'), attempt: 1 } as const;
    const fence = { term: 3, holder: 'ssj-operator-0' };
    assert.deepStrictEqual(
      buildPod(jobView(lean), podTemplateOf(lean), run, 'nightly-1', fence),
      buildPod(jobView(full), podTemplateOf(full), run, 'nightly-1', fence),
    );
  });

  it('drops managed fields and keeps the template out of copies and JSON', () => {
    const lean = leanJob(wireJob());
    assert.equal(lean.metadata?.managedFields, undefined);
    assert.equal(Object.keys(lean.spec).includes('template'), false);
    assert.equal(JSON.stringify(lean).includes('busybox'), false);
    assert.equal(JSON.stringify(structuredClone(lean.spec)).includes('busybox'), false);
    assert.equal(JSON.stringify({ ...lean, status: {} }).includes('busybox'), false);
  });

  it('hands out a fresh template each time, so a caller that changes it changes no cache', () => {
    const lean = leanJob(wireJob());
    const first = podTemplateOf(lean);
    first.spec?.containers.push({ name: 'extra' });
    assert.equal(podTemplateOf(lean).spec?.containers.length, 1);
  });

  it('reads the template of a job that never went through the cache (a write response)', () => {
    assert.deepStrictEqual(podTemplateOf(wireJob()), wireJob().spec.template);
  });
});

/**
 * The generated CRD against a real kube-apiserver: it installs, it refuses what the schema
 * refuses with a message that names the field, it accepts the samples (defaulting them exactly
 * as withDefaults does), it keeps spec and status apart, and kubectl shows it as designed.
 *
 * Needs the local cluster (`make cluster-up`, or KUBECONFIG); fails when it is not there.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import {
  ApiextensionsV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { parse } from 'yaml';
import { withDefaults } from '../../../src/api/defaults.ts';
import { crd } from '../../../src/api/schema.ts';
import {
  CRD_NAME,
  GROUP,
  KIND,
  PLURAL,
  VERSION,
  type ScheduledSingletonJob,
  type ScheduledSingletonJobStatus,
} from '../../../src/api/types.ts';
import {
  apiStatus,
  deleteNamespace,
  kubectl,
  loadKubeConfig,
  newNamespace,
  REPOSITORY_ROOT,
  requireCluster,
  waitFor,
} from '../../support/kube.ts';

type Json = Record<string, unknown>;

const kc = loadKubeConfig();
const extensions = kc.makeApiClient(ApiextensionsV1Api);
const objects = kc.makeApiClient(CustomObjectsApi);
let namespace = '';

function isJson(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 7386 merge patch: objects merge, null deletes, anything else replaces. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isJson(patch)) return patch;
  const base = isJson(target) ? target : {};
  const out: Json = {};
  for (const key of new Set([...Object.keys(base), ...Object.keys(patch)])) {
    if (!(key in patch)) out[key] = base[key];
    else if (patch[key] !== null) out[key] = mergePatch(base[key], patch[key]);
  }
  return out;
}

function baseSpec(): Json {
  return {
    schedule: '0 2 * * *',
    template: { spec: { containers: [{ name: 'main', image: 'busybox:1.36', command: ['true'] }] } },
  };
}

/** A job named `name`; an undefined spec leaves spec out. */
function job(name: string, spec: unknown): Json {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: KIND,
    metadata: { name },
    ...(spec === undefined ? {} : { spec }),
  };
}

async function create(body: Json, dryRun = false): Promise<ScheduledSingletonJob> {
  return (await objects.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
    body,
    fieldValidation: 'Strict',
    ...(dryRun ? { dryRun: 'All' } : {}),
  })) as ScheduledSingletonJob;
}

async function read(name: string): Promise<ScheduledSingletonJob> {
  return (await objects.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
    name,
  })) as ScheduledSingletonJob;
}

before(async () => {
  await requireCluster(kc);
  await extensions.patchCustomResourceDefinition(
    { name: CRD_NAME, body: crd, fieldManager: 'ssj-api-integration-test', force: true },
    setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
  );
  await waitFor(
    async () => {
      const current = await extensions.readCustomResourceDefinition({ name: CRD_NAME });
      return current.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    },
    { timeoutMs: 30_000, description: `CRD ${CRD_NAME} to be Established` },
  );
  namespace = await newNamespace('ssj-api', kc);
  // Established says the resource is served; wait until the served schema is this one too (a
  // CRD updated in place may take a moment), judged by a dry run of a sample.
  const sample = parse(readFileSync(`${REPOSITORY_ROOT}config/samples/payroll-export.yaml`, 'utf8')) as Json;
  await waitFor(() => create(sample, true), {
    timeoutMs: 30_000,
    description: 'the CRD schema to be served',
  });
});

after(async () => {
  if (namespace !== '') await deleteNamespace(namespace, kc);
});

interface InvalidCase {
  title: string;
  /** A merge patch onto the base spec; `spec: null` drops the spec. */
  spec?: unknown;
  name?: string;
  code?: number;
  /** Substrings the API server's message must contain; the first is the field's path. */
  says: string[];
}

const invalid: InvalidCase[] = [
  { title: 'no spec', spec: null, says: ['spec: Required value'] },
  { title: 'no schedule', spec: { schedule: null }, says: ['spec.schedule: Required value'] },
  { title: 'an empty schedule', spec: { schedule: '' }, says: ['spec.schedule'] },
  { title: 'a schedule of the wrong type', spec: { schedule: 5 }, says: ['spec.schedule', 'string'] },
  {
    title: 'a 4-field schedule',
    spec: { schedule: '0 2 * *' },
    says: ['spec.schedule', 'must be 5 cron fields'],
  },
  {
    title: 'a 7-field schedule',
    spec: { schedule: '0 0 2 * * * 2030' },
    says: ['spec.schedule', '5 cron fields'],
  },
  {
    title: 'an @every schedule',
    spec: { schedule: '@every 5m' },
    says: ['spec.schedule', 'must not use @every'],
  },
  { title: 'an unknown macro', spec: { schedule: '@reboot' }, says: ['spec.schedule', '@midnight'] },
  { title: 'a TZ= prefix', spec: { schedule: 'TZ=UTC 0 2 * * *' }, says: ['spec.schedule', 'spec.timeZone'] },
  {
    title: 'a CRON_TZ= prefix',
    spec: { schedule: 'CRON_TZ=Europe/Berlin 0 2 * * *' },
    says: ['spec.schedule', 'CRON_TZ='],
  },
  { title: 'an offset as time zone', spec: { timeZone: '+02:00' }, says: ['spec.timeZone', 'IANA'] },
  { title: 'suspend as a string', spec: { suspend: 'yes' }, says: ['spec.suspend', 'boolean'] },
  {
    title: 'concurrencyPolicy Allow',
    spec: { concurrencyPolicy: 'Allow' },
    says: ['spec.concurrencyPolicy', 'Unsupported value: "Allow"'],
  },
  { title: 'maxAttempts 0', spec: { retry: { maxAttempts: 0 } }, says: ['spec.retry.maxAttempts'] },
  { title: 'maxAttempts 11', spec: { retry: { maxAttempts: 11 } }, says: ['spec.retry.maxAttempts'] },
  {
    title: 'maxAttempts as a string',
    spec: { retry: { maxAttempts: '3' } },
    says: ['spec.retry.maxAttempts'],
  },
  {
    title: 'a negative backoff',
    spec: { retry: { backoffSeconds: -1 } },
    says: ['spec.retry.backoffSeconds'],
  },
  {
    title: 'a negative startingDeadlineSeconds',
    spec: { startingDeadlineSeconds: -1 },
    says: ['spec.startingDeadlineSeconds'],
  },
  { title: 'maxPendingSeconds 0', spec: { maxPendingSeconds: 0 }, says: ['spec.maxPendingSeconds'] },
  {
    title: 'a negative successfulRunsHistoryLimit',
    spec: { successfulRunsHistoryLimit: -1 },
    says: ['spec.successfulRunsHistoryLimit'],
  },
  {
    title: 'a fractional failedRunsHistoryLimit',
    spec: { failedRunsHistoryLimit: 1.5 },
    says: ['spec.failedRunsHistoryLimit', 'integer'],
  },
  { title: 'no template', spec: { template: null }, says: ['spec.template: Required value'] },
  {
    title: 'a template without a Pod spec',
    spec: { template: { spec: null } },
    says: ['spec.template.spec'],
  },
  {
    title: 'no containers',
    spec: { template: { spec: { containers: [] } } },
    says: ['spec.template.spec.containers'],
  },
  {
    title: 'restartPolicy Always',
    spec: { template: { spec: { restartPolicy: 'Always' } } },
    says: ['spec.template.spec.restartPolicy', 'Unsupported value: "Always"'],
  },
  {
    title: 'a CPU limit that is not a quantity',
    spec: {
      template: {
        spec: {
          containers: [{ name: 'main', image: 'busybox:1.36', resources: { limits: { cpu: '1 core' } } }],
        },
      },
    },
    says: ['spec.template.spec.containers[0].resources.limits.cpu'],
  },
  { title: 'a 50-character name', name: 'n'.repeat(50), says: ['metadata.name', 'at most 49'] },
  {
    title: 'an unknown field in spec',
    spec: { concurrency: 'Forbid' },
    code: 400,
    says: ['spec.concurrency'],
  },
  {
    title: 'an unknown field in retry',
    spec: { retry: { attempts: 3 } },
    code: 400,
    says: ['spec.retry.attempts'],
  },
  {
    title: 'an unknown field in a container of the template',
    spec: { template: { spec: { containers: [{ name: 'main', imagee: 'busybox:1.36' }] } } },
    code: 400,
    says: ['spec.template.spec.containers[0].imagee'],
  },
  {
    title: 'a name in the template metadata (the operator names Pods)',
    spec: { template: { metadata: { name: 'fixed' } } },
    code: 400,
    says: ['spec.template.metadata.name'],
  },
];

describe('the ScheduledSingletonJob CRD on a real API server', () => {
  describe('refuses an invalid job, naming the field', () => {
    invalid.forEach((c, i) => {
      it(`refuses ${c.title}`, async () => {
        const spec = c.spec === null ? undefined : mergePatch(baseSpec(), c.spec ?? {});
        const body = job(c.name ?? `invalid-${i}`, spec);
        const error: unknown = await create(body).then(
          () => undefined,
          (e: unknown) => e,
        );
        const status = apiStatus(error);
        assert.ok(status, `accepted: ${JSON.stringify(body.spec)}`);
        assert.equal(status.code, c.code ?? 422, status.message);
        for (const text of c.says)
          assert.ok(status.message.includes(text), `"${text}" not in: ${status.message}`);
      });
    });
  });

  describe('accepts the edges of what is valid', () => {
    const valid: [string, Json, string?][] = [
      ['maxAttempts 10 and a backoff of 0', { retry: { maxAttempts: 10, backoffSeconds: 0 } }],
      [
        'startingDeadlineSeconds 0 and maxPendingSeconds 1',
        { startingDeadlineSeconds: 0, maxPendingSeconds: 1 },
      ],
      ['history limits of 0', { successfulRunsHistoryLimit: 0, failedRunsHistoryLimit: 0 }],
      ['the @midnight macro', { schedule: '@midnight' }],
      ['a 6-field schedule with seconds', { schedule: '*/10 * * * * *' }],
      ['restartPolicy OnFailure', { template: { spec: { restartPolicy: 'OnFailure' } } }],
      ['a time zone with three parts', { timeZone: 'America/Argentina/Buenos_Aires' }],
      ['a 49-character name', {}, 'n'.repeat(49)],
    ];
    valid.forEach(([title, patch, name], i) => {
      it(`accepts ${title}`, async () => {
        await create(job(name ?? `valid-${i}`, mergePatch(baseSpec(), patch)), true);
      });
    });
  });

  it('accepts every sample in config/samples, defaulted exactly as withDefaults does', async () => {
    const files = readdirSync(`${REPOSITORY_ROOT}config/samples`).filter(
      (f) => f.endsWith('.yaml') && f !== 'kustomization.yaml',
    );
    assert.ok(files.length >= 2, `only ${files.length} samples`);
    for (const file of files) {
      const sample = parse(
        readFileSync(`${REPOSITORY_ROOT}config/samples/${file}`, 'utf8'),
      ) as ScheduledSingletonJob;
      const created = await create(sample as unknown as Json);
      assert.deepEqual(created.spec, withDefaults(sample.spec), file);
    }
  });

  it('keeps spec and status apart: each write leaves the other, and generation follows spec only', async () => {
    const name = 'spec-status';
    const created = await create(job(name, baseSpec()));
    assert.equal(created.metadata?.generation, 1);
    assert.equal(created.status, undefined);

    const status: ScheduledSingletonJobStatus = {
      observedGeneration: 1,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'Scheduled',
          message: 'valid and scheduled',
          lastTransitionTime: '2026-01-01T00:00:00Z',
          observedGeneration: 1,
        },
      ],
      lastScheduleTime: '2026-01-01T02:00:00Z',
      nextScheduleTime: '2026-01-02T02:00:00Z',
      lastRun: {
        podName: `${name}-1767232800`,
        tick: '2026-01-01T02:00:00Z',
        attempt: 1,
        outcome: 'Succeeded',
      },
      history: [
        { podName: `${name}-1767232800`, tick: '2026-01-01T02:00:00Z', attempt: 1, outcome: 'Succeeded' },
        { tick: '2025-12-30T02:00:00Z', lastTick: '2025-12-31T02:00:00Z', count: 2, outcome: 'Skipped' },
      ],
      ledger: {
        scheduleAnchor: '2026-01-01T02:00:00Z',
        term: 3,
        claims: [
          {
            podName: `${name}-1767319200`,
            tick: '2026-01-02T02:00:00Z',
            attempt: 1,
            claimedAt: '2026-01-02T02:00:00Z',
            term: 3,
          },
        ],
      },
    };
    // Through the status subresource, with a changed spec that must be ignored.
    const withStatus = (await objects.replaceNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      name,
      body: { ...created, spec: { ...created.spec, suspend: true }, status },
      fieldValidation: 'Strict',
    })) as ScheduledSingletonJob;
    assert.deepEqual(withStatus.status, status);
    assert.equal(withStatus.spec.suspend, false);
    assert.equal(withStatus.metadata?.generation, 1);

    // Through the main resource, with a changed status that must be ignored.
    await objects.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name,
        body: { spec: { suspend: true }, status: { observedGeneration: 99 } },
        fieldValidation: 'Strict',
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const after = await read(name);
    assert.equal(after.spec.suspend, true);
    assert.equal(after.metadata?.generation, 2);
    assert.deepEqual(after.status, status);
  });

  it('shows the designed columns in kubectl get ssj', async () => {
    const name = 'columns';
    await create(job(name, mergePatch(baseSpec(), { timeZone: 'Europe/Berlin' })));
    const out = await kubectl(['get', 'ssj', '-n', namespace, name]);
    const [header, row] = out.trimEnd().split('\n');
    assert.match(
      header ?? '',
      /^NAME\s+SCHEDULE\s+TIMEZONE\s+SUSPEND\s+ACTIVE\s+LAST SCHEDULE\s+NEXT\s+LAST RESULT\s+FAILURES\s+AGE$/,
    );
    assert.match(row ?? '', /^columns\s+0 2 \* \* \*\s+Europe\/Berlin\s+false\s/);
    const long = await kubectl(['get', 'singletonjobs.ssj.dev', '-n', namespace, name, '-o', 'name']);
    assert.equal(long.trim(), `scheduledsingletonjob.ssj.dev/${name}`);
  });

  it('explains its fields in kubectl explain singletonjob.spec.retry', async () => {
    // The API server publishes a new CRD's OpenAPI shortly after it is Established.
    const out = await waitFor(() => kubectl(['explain', 'singletonjob.spec.retry']), {
      timeoutMs: 30_000,
      description: 'kubectl explain to know the CRD',
    });
    assert.match(out, /maxAttempts\s+<integer>/);
    assert.match(out, /the first attempt included/);
    assert.match(out, /backoffSeconds\s+<integer>/);
  });
});

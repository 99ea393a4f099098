import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { withDefaults } from '../../../src/api/defaults.ts';
import { retrySchema, specSchema } from '../../../src/api/schema.ts';
import type { ScheduledSingletonJobSpec } from '../../../src/api/types.ts';

/** A spec as the API server hands it over: plain JSON, not client-node class instances. */
function minimalSpec(): ScheduledSingletonJobSpec {
  return parse(`
    schedule: 0 2 * * *
    template:
      spec:
        containers:
          - { name: main, image: busybox:1.36, ports: [{ containerPort: 8080 }] }
  `) as ScheduledSingletonJobSpec;
}

describe('withDefaults', () => {
  it('fills every default a minimal spec leaves out, as the API server would', () => {
    const spec = withDefaults(minimalSpec());
    assert.equal(spec.timeZone, 'UTC');
    assert.equal(spec.suspend, false);
    assert.equal(spec.concurrencyPolicy, 'Forbid');
    assert.deepEqual(spec.retry, { maxAttempts: 1, backoffSeconds: 10 });
    assert.equal(spec.successfulRunsHistoryLimit, 3);
    assert.equal(spec.failedRunsHistoryLimit, 1);
    assert.equal(spec.startingDeadlineSeconds, undefined);
    assert.equal(spec.maxPendingSeconds, undefined);
  });

  it('takes each default from the schema, not from a copy of it', () => {
    const spec: Record<string, unknown> = { ...withDefaults(minimalSpec()) };
    for (const [key, property] of Object.entries(specSchema.properties ?? {})) {
      if (key === 'retry' || property.default === undefined) continue;
      assert.deepEqual(spec[key], property.default, key);
    }
    for (const [key, property] of Object.entries(retrySchema.properties ?? {})) {
      assert.deepEqual((spec['retry'] as Record<string, unknown>)[key], property.default, `retry.${key}`);
    }
  });

  it('defaults inside the Pod template too: restartPolicy Never and a port protocol of TCP', () => {
    const spec = withDefaults(minimalSpec());
    assert.equal(spec.template.spec?.restartPolicy, 'Never');
    assert.equal(spec.template.spec.containers[0]?.ports?.[0]?.protocol, 'TCP');
  });

  it('keeps values that are set, and completes a partly written retry block', () => {
    const spec = withDefaults({
      ...minimalSpec(),
      timeZone: 'Europe/Berlin',
      suspend: true,
      concurrencyPolicy: 'Replace',
      retry: { maxAttempts: 3 },
      successfulRunsHistoryLimit: 0,
    });
    assert.equal(spec.timeZone, 'Europe/Berlin');
    assert.equal(spec.suspend, true);
    assert.equal(spec.concurrencyPolicy, 'Replace');
    assert.deepEqual(spec.retry, { maxAttempts: 3, backoffSeconds: 10 });
    assert.equal(spec.successfulRunsHistoryLimit, 0);
  });

  it('treats null like a missing value, as the API server does for non-nullable fields', () => {
    const raw = { ...minimalSpec(), timeZone: null } as unknown as ScheduledSingletonJobSpec;
    assert.equal(withDefaults(raw).timeZone, 'UTC');
  });

  it('leaves its input untouched and shares no default object between results', () => {
    const input = minimalSpec();
    const before = structuredClone(input);
    const a = withDefaults(input);
    const b = withDefaults(input);
    assert.deepEqual(input, before);
    a.retry.maxAttempts = 7;
    assert.equal(b.retry.maxAttempts, 1);
    assert.deepEqual(retrySchema.default, {});
  });
});

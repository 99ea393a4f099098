import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { renderCrdYaml } from '../../../src/api/generate.ts';
import {
  crd,
  jobSchema,
  printerColumns,
  SCHEDULE_SHAPE,
  specSchema,
  statusSchema,
  TIME_ZONE_PREFIX,
  TIME_ZONE_SHAPE,
} from '../../../src/api/schema.ts';
import { walkSchema, type JSONSchemaProps } from '../../../src/api/structural-schema.ts';
import { GROUP, KIND, MAX_JOB_NAME_LENGTH, PLURAL, VERSION } from '../../../src/api/types.ts';

/** Every property of `schema`, with its path, in arrays and maps too. */
function properties(schema: JSONSchemaProps): [string, JSONSchemaProps][] {
  const out: [string, JSONSchemaProps][] = [];
  walkSchema(schema, (node, path) => {
    for (const [name, child] of Object.entries(node.properties ?? {})) out.push([`${path}.${name}`, child]);
  });
  return out;
}

const template = specSchema.properties?.['template'];
const podSpec = template?.properties?.['spec'];

describe('the ScheduledSingletonJob CRD', () => {
  it('names the resource as DESIGN.md says', () => {
    assert.equal(crd.metadata.name, `${PLURAL}.${GROUP}`);
    assert.deepEqual(crd.spec.names, {
      kind: KIND,
      listKind: 'ScheduledSingletonJobList',
      plural: 'singletonjobs',
      singular: 'singletonjob',
      shortNames: ['ssj'],
    });
    assert.equal(crd.spec.scope, 'Namespaced');
    assert.deepEqual(
      crd.spec.versions.map((v) => [v.name, v.served, v.storage]),
      [[VERSION, true, true]],
    );
    assert.deepEqual(crd.spec.versions[0]?.subresources, { status: {} });
    assert.equal('categories' in crd.spec.names, false);
  });

  it('describes every field (root metadata aside, where the API server forbids it), template included', () => {
    const undescribed = properties(jobSchema)
      .filter(([path, node]) => path !== '.metadata' && !node.description)
      .map(([path]) => path);
    assert.deepEqual(undescribed, []);
  });

  it('refuses job names longer than 49 characters with a rule at the root that says why', () => {
    const rules = jobSchema['x-kubernetes-validations'] ?? [];
    const rule = rules.find((r) => r.rule === `self.metadata.name.size() <= ${MAX_JOB_NAME_LENGTH}`);
    assert.ok(rule, 'the name rule is missing');
    assert.equal(MAX_JOB_NAME_LENGTH, 49);
    assert.match(rule.message, /metadata\.name/);
    assert.match(rule.message, /63/);
  });

  it('is structural: every node has a type or is int-or-string, and nothing preserves unknown fields', () => {
    walkSchema(jobSchema, (node, path) => {
      assert.ok(node.type !== undefined || node['x-kubernetes-int-or-string'] === true, `${path}: no type`);
      assert.equal(
        node['x-kubernetes-preserve-unknown-fields'],
        undefined,
        `${path} preserves unknown fields`,
      );
      assert.ok(!('$ref' in node), `${path} has a $ref`);
    });
  });

  it('gives every list-map key a required mark or a default, as the API server demands', () => {
    walkSchema(jobSchema, (node, path) => {
      for (const key of node['x-kubernetes-list-map-keys'] ?? []) {
        const item = node.items;
        assert.ok(item?.properties?.[key], `${path}: map key ${key} is not a property`);
        assert.ok(
          item.required?.includes(key) === true || item.properties[key].default !== undefined,
          `${path}: map key ${key} is neither required nor defaulted`,
        );
      }
    });
  });

  it('keeps every default valid against its own enum and bounds', () => {
    walkSchema(jobSchema, (node, path) => {
      if (node.default === undefined) return;
      if (node.enum) assert.ok(node.enum.includes(node.default), `${path}: default outside the enum`);
      if (typeof node.default === 'number') {
        assert.ok(
          node.minimum === undefined || node.default >= node.minimum,
          `${path}: default below minimum`,
        );
        assert.ok(
          node.maximum === undefined || node.default <= node.maximum,
          `${path}: default above maximum`,
        );
      }
    });
  });

  it('requires spec, and in it schedule and template; the retry block defaults to {} so its fields default', () => {
    assert.deepEqual(jobSchema.required, ['spec']);
    assert.deepEqual(specSchema.required, ['schedule', 'template']);
    assert.deepEqual(specSchema.properties?.['retry']?.default, {});
  });

  it('allows only Forbid and Replace, Forbid by default', () => {
    const policy = specSchema.properties?.['concurrencyPolicy'];
    assert.deepEqual(policy?.enum, ['Forbid', 'Replace']);
    assert.equal(policy.default, 'Forbid');
  });

  it('limits the Pod template to restartPolicy Never (default) or OnFailure and at least one container', () => {
    assert.deepEqual(template?.required, ['spec']);
    assert.deepEqual(podSpec?.properties?.['restartPolicy']?.enum, ['Never', 'OnFailure']);
    assert.equal(podSpec.properties['restartPolicy'].default, 'Never');
    assert.equal(podSpec.properties['containers']?.minItems, 1);
    assert.ok(podSpec.required?.includes('containers'));
    assert.deepEqual(Object.keys(template.properties?.['metadata']?.properties ?? {}), [
      'annotations',
      'labels',
    ]);
  });

  it('keeps every status field optional at the top level, and history at most 20 long', () => {
    assert.equal(statusSchema.required, undefined);
    assert.equal(statusSchema.properties?.['history']?.maxItems, 20);
    assert.deepEqual(statusSchema.properties['conditions']?.['x-kubernetes-list-map-keys'], ['type']);
  });

  it('prints the columns kubectl get ssj shows, NEXT as a string so a future time reads well, and the failure streak', () => {
    assert.deepEqual(
      printerColumns.map((c) => c.name.toUpperCase()),
      [
        'SCHEDULE',
        'TIMEZONE',
        'SUSPEND',
        'ACTIVE',
        'LAST SCHEDULE',
        'NEXT',
        'LAST RESULT',
        'FAILURES',
        'AGE',
      ],
    );
    const byName = new Map(printerColumns.map((c) => [c.name, c]));
    assert.equal(byName.get('Failures')?.jsonPath, '.status.consecutiveFailures');
    assert.equal(byName.get('Failures')?.type, 'integer');
    assert.equal(statusSchema.properties?.['consecutiveFailures']?.minimum, 0);
    assert.equal(statusSchema.properties['lastFailureTime']?.format, 'date-time');
    assert.equal(byName.get('Next')?.type, 'string');
    assert.equal(byName.get('Last Schedule')?.type, 'date');
    assert.equal(byName.get('Active')?.jsonPath, '.status.active.podName');
  });

  it('writes YAML that parses back to the same object, with no anchors', () => {
    const text = renderCrdYaml();
    assert.deepEqual(parse(text), JSON.parse(JSON.stringify(crd)));
    assert.doesNotMatch(text, /(^|\s)[&*]a\d+\b/);
  });
});

describe('the schedule and time zone shape rules (the same patterns the CEL rules use)', () => {
  const shape = new RegExp(SCHEDULE_SHAPE);
  const zonePrefix = new RegExp(TIME_ZONE_PREFIX);
  const zone = new RegExp(TIME_ZONE_SHAPE);

  const schedules: [string, boolean][] = [
    ['0 2 * * *', true],
    ['*/30 * * * * *', true],
    ['0 0 1 1 * ', false],
    ['0 0 1 1', false],
    ['0 0 1 1 * * *', false],
    ['@daily', true],
    ['@midnight', true],
    ['@hourly', true],
    ['@every 5m', false],
    ['@reboot', false],
    ['@daily 0', false],
    ['', false],
  ];
  for (const [schedule, ok] of schedules) {
    it(`${ok ? 'accepts' : 'refuses'} the schedule ${JSON.stringify(schedule)}`, () => {
      assert.equal(shape.test(schedule), ok);
    });
  }

  it('spots a TZ= or CRON_TZ= prefix', () => {
    assert.ok(zonePrefix.test('TZ=UTC 0 2 * * *'));
    assert.ok(zonePrefix.test('CRON_TZ=Europe/Berlin 0 2 * * *'));
    assert.ok(!zonePrefix.test('0 2 * * *'));
  });

  for (const [name, ok] of [
    ['UTC', true],
    ['Europe/Berlin', true],
    ['America/Argentina/Buenos_Aires', true],
    ['Etc/GMT+5', true],
    ['America/Port-au-Prince', true],
    ['+02:00', false],
    ['Europe/', false],
    ['/Berlin', false],
    ['Europe Berlin', false],
  ] as const) {
    it(`${ok ? 'accepts' : 'refuses'} the time zone ${JSON.stringify(name)}`, () => {
      assert.equal(zone.test(name), ok);
    });
  }
});

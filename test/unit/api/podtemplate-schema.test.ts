import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import vendored from '../../../src/api/podtemplatespec.schema.json' with { type: 'json' };
import { KUBERNETES_VERSION, podTemplateSpecSchema } from '../../../src/api/podtemplate-schema.ts';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const core = (name: string) => `io.k8s.api.core.v1.${name}`;
const META = 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta';
const QUANTITY = 'io.k8s.apimachinery.pkg.api.resource.Quantity';
const INT_OR_STRING = 'io.k8s.apimachinery.pkg.util.intstr.IntOrString';

/** A miniature of the upstream document, with each construct the converter must handle. */
function document(extra: Record<string, unknown> = {}) {
  return {
    openapi: '3.0.0',
    components: {
      schemas: {
        [core('PodTemplateSpec')]: {
          description: 'PodTemplateSpec type doc',
          type: 'object',
          properties: {
            spec: { allOf: [ref(core('PodSpec'))], default: {}, description: 'field doc wins' },
            metadata: { allOf: [ref(META)], default: {}, description: 'template metadata' },
          },
        },
        [core('PodSpec')]: {
          description: 'PodSpec type doc',
          type: 'object',
          required: ['containers'],
          'x-kubernetes-group-version-kind': [{ group: '', kind: 'Pod', version: 'v1' }],
          properties: {
            containers: {
              description: 'containers',
              type: 'array',
              items: { allOf: [ref(core('Container'))], default: {} },
              'x-kubernetes-list-type': 'map',
              'x-kubernetes-list-map-keys': ['name'],
              'x-kubernetes-patch-merge-key': 'name',
              'x-kubernetes-patch-strategy': 'merge',
            },
            overhead: { description: 'overhead', type: 'object', additionalProperties: ref(QUANTITY) },
            nodeSelector: {
              description: 'nodeSelector',
              type: 'object',
              additionalProperties: { type: 'string', default: '' },
              'x-kubernetes-map-type': 'atomic',
            },
            ...extra,
          },
        },
        [core('Container')]: {
          description: 'Container type doc',
          type: 'object',
          required: ['name', 'image'],
          properties: {
            name: { description: 'name', type: 'string', default: '' },
            image: { description: 'image', type: 'string' },
            port: { allOf: [ref(INT_OR_STRING)], description: 'a port' },
            ports: {
              description: 'ports',
              type: 'array',
              items: { allOf: [ref(core('ContainerPort'))], default: {} },
              'x-kubernetes-list-type': 'map',
              'x-kubernetes-list-map-keys': ['containerPort', 'protocol'],
            },
          },
        },
        [core('ContainerPort')]: {
          description: 'ContainerPort type doc',
          type: 'object',
          required: ['containerPort'],
          properties: {
            protocol: { description: 'protocol', type: 'string', default: 'TCP' },
            containerPort: { description: 'port', type: 'integer', format: 'int32', default: 0 },
          },
        },
        [META]: {
          description: 'ObjectMeta type doc',
          type: 'object',
          properties: {
            name: { description: 'name', type: 'string' },
            labels: {
              description: 'labels',
              type: 'object',
              additionalProperties: { type: 'string', default: '' },
            },
            annotations: {
              description: 'annotations',
              type: 'object',
              additionalProperties: { type: 'string' },
            },
            managedFields: { description: 'fields', type: 'array', items: { type: 'object' } },
          },
        },
        [QUANTITY]: { description: 'long BNF', oneOf: [{ type: 'integer' }, { type: 'string' }] },
        [INT_OR_STRING]: {
          description: 'IntOrString',
          format: 'int-or-string',
          oneOf: [{ type: 'integer' }, { type: 'string' }],
        },
      },
    },
  };
}

describe('the PodTemplateSpec converter', () => {
  const schema = podTemplateSpecSchema(document());
  const podSpec = schema.properties?.['spec'];
  const container = podSpec?.properties?.['containers']?.items;

  it('inlines $ref and allOf, the field description winning over the type description', () => {
    assert.equal(podSpec?.description, 'field doc wins');
    assert.equal(podSpec.type, 'object');
    assert.equal(container?.description, 'Container type doc');
    assert.equal(container.properties?.['image']?.type, 'string');
  });

  it('keeps only labels and annotations of an embedded ObjectMeta', () => {
    const metadata = schema.properties?.['metadata'];
    assert.deepEqual(Object.keys(metadata?.properties ?? {}), ['annotations', 'labels']);
    assert.equal(metadata?.description, 'template metadata');
  });

  it('writes IntOrString and Quantity in the int-or-string form, Quantity with its pattern', () => {
    assert.deepEqual(container?.properties?.['port'], {
      description: 'a port',
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      'x-kubernetes-int-or-string': true,
    });
    const quantity = podSpec?.properties?.['overhead']?.additionalProperties;
    assert.ok(typeof quantity === 'object');
    assert.equal(quantity['x-kubernetes-int-or-string'], true);
    assert.ok(quantity.pattern?.startsWith('^(\\+|-)?'));
    assert.equal(quantity.description, undefined);
  });

  it('keeps list and map types, and drops patch strategies, GVK extensions and defaults', () => {
    const containers = podSpec?.properties?.['containers'];
    assert.equal(containers?.['x-kubernetes-list-type'], 'map');
    assert.deepEqual(containers['x-kubernetes-list-map-keys'], ['name']);
    assert.equal(podSpec?.properties?.['nodeSelector']?.['x-kubernetes-map-type'], 'atomic');
    const text = JSON.stringify(schema);
    assert.doesNotMatch(text, /x-kubernetes-patch|x-kubernetes-group-version-kind|\$ref|allOf|oneOf/);
    assert.equal(container?.properties?.['name']?.default, undefined);
    assert.equal(schema.properties?.['spec']?.default, undefined);
  });

  it('keeps the default of a list-map key that is not required (protocol: TCP), and only that one', () => {
    const port = container?.properties?.['ports']?.items;
    assert.equal(port?.properties?.['protocol']?.default, 'TCP');
    assert.equal(port.properties['containerPort']?.default, undefined);
  });

  it('sorts property names and required lists but keeps the order of list-map keys', () => {
    assert.deepEqual(Object.keys(schema.properties ?? {}), ['metadata', 'spec']);
    assert.deepEqual(container?.required, ['image', 'name']);
    assert.deepEqual(Object.keys(container.properties?.['ports']?.items?.properties ?? {}), [
      'containerPort',
      'protocol',
    ]);
    assert.deepEqual(container.properties?.['ports']?.['x-kubernetes-list-map-keys'], [
      'containerPort',
      'protocol',
    ]);
  });

  it('gives the same output for the same input', () => {
    assert.equal(JSON.stringify(podTemplateSpecSchema(document())), JSON.stringify(schema));
  });

  it('refuses a keyword it does not know, rather than dropping it silently', () => {
    assert.throws(
      () =>
        podTemplateSpecSchema(document({ hostname: { type: 'string', description: 'h', 'x-new-thing': 1 } })),
      /unknown keyword x-new-thing/,
    );
  });

  it('refuses a recursive schema', () => {
    const doc = document({ again: { allOf: [ref(core('PodSpec'))], description: 'loop' } });
    assert.throws(() => podTemplateSpecSchema(doc), /recursive schema/);
  });

  it('refuses a list-map key that is neither required nor defaulted upstream', () => {
    const doc = document();
    const port = doc.components.schemas[core('ContainerPort')] as {
      properties: { protocol: { default?: string } };
    };
    delete port.properties.protocol.default;
    assert.throws(() => podTemplateSpecSchema(doc), /neither required nor defaulted/);
  });
});

describe('the vendored PodTemplateSpec schema', () => {
  it('comes from the pinned Kubernetes release', () => {
    assert.equal(KUBERNETES_VERSION, 'v1.36.3');
    assert.match(
      vendored.source,
      /^k8s\.io\/kubernetes@v1\.36\.3 .*#\/components\/schemas\/io\.k8s\.api\.core\.v1\.PodTemplateSpec$/,
    );
  });

  it('describes a real Pod: containers required, and their resources as quantities', () => {
    const podSpec = vendored.schema.properties.spec;
    assert.ok(podSpec.required.includes('containers'));
    const limits = podSpec.properties.containers.items.properties.resources.properties.limits;
    assert.equal(limits.additionalProperties['x-kubernetes-int-or-string'], true);
  });
});

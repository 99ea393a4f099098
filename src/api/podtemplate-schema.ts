/**
 * Converts the core/v1 PodTemplateSpec schema of a pinned Kubernetes release's OpenAPI v3
 * document into a CRD structural schema, and (run as a script) rewrites the vendored copy,
 * `src/api/podtemplatespec.schema.json`, that `schema.ts` embeds as `spec.template`.
 *
 * Guarantees: the result is a tree (every `$ref`/`allOf` inlined, with the field's own
 * description winning over its type's); every node has a `type`, except int-or-string nodes
 * (IntOrString and Quantity), which use the `anyOf` + `x-kubernetes-int-or-string` form the API
 * server requires; embedded ObjectMeta keeps only `labels` and `annotations` (as controller-gen
 * does for embedded metadata); defaults are dropped (the API server defaults the Pod when the
 * operator creates it) except on list-map keys that are not required, which a structural schema
 * needs; property names and `required` lists are sorted, so the output is deterministic.
 * A keyword this converter does not know makes it throw, so a new release cannot slip something
 * past it silently.
 *
 * Not guaranteed: that the API server would accept every Pod this schema accepts. The schema is
 * structural, not semantic (Pod validation runs only when the operator creates the Pod).
 *
 * Refresh the vendored file (needs Go and its module proxy; `--check` only compares):
 *   e2e/toolchain/node src/api/podtemplate-schema.ts [--check]
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatLikeRepository } from './repository-format.ts';
import type { JSONSchemaProps, JSONValue } from './structural-schema.ts';

/** The Kubernetes release whose API the template follows; the local cluster runs the same one. */
export const KUBERNETES_VERSION = process.env['SSJ_K8S_VERSION'] ?? 'v1.36.3';
export const OPENAPI_FILE = 'api/openapi-spec/v3/api__v1_openapi.json';
export const VENDORED_FILE = fileURLToPath(new URL('./podtemplatespec.schema.json', import.meta.url));

const ROOT = 'io.k8s.api.core.v1.PodTemplateSpec';
const OBJECT_META = 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta';
const QUANTITY = 'io.k8s.apimachinery.pkg.api.resource.Quantity';
const INT_OR_STRING = 'io.k8s.apimachinery.pkg.util.intstr.IntOrString';
const EMBEDDED_META_FIELDS = ['annotations', 'labels'];
// The pattern controller-gen emits for resource.Quantity.
const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

// Every keyword of the source document, and what becomes of it. Anything else throws.
const KEPT = new Set([
  'type',
  'description',
  'format',
  'enum',
  'properties',
  'required',
  'items',
  'additionalProperties',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
]);
const RESOLVED = new Set(['$ref', 'allOf', 'oneOf']);
const DROPPED = new Set([
  'default',
  'x-kubernetes-patch-merge-key',
  'x-kubernetes-patch-strategy',
  'x-kubernetes-unions',
  'x-kubernetes-group-version-kind',
]);
// Formats the API server does not know as such (int-or-string is said with the extension).
const DROPPED_FORMATS = new Set(['int-or-string']);

type Source = Record<string, unknown>;

function isRecord(value: unknown): value is Source {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringArray(value: unknown, where: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new Error(`${where}: expected an array of strings`);
  }
  return value;
}

function optionalString(node: Source, key: string, where: string): string | undefined {
  const value = node[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new Error(`${where}: ${key} must be a string`);
  return value;
}

const TYPES = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);
function schemaType(value: unknown, where: string): JSONSchemaProps['type'] {
  if (typeof value !== 'string' || !TYPES.has(value))
    throw new Error(`${where}: unsupported type ${String(value)}`);
  return value as JSONSchemaProps['type'];
}

function refName(ref: unknown, where: string): string {
  if (typeof ref !== 'string' || !ref.startsWith('#/components/schemas/')) {
    throw new Error(`${where}: unsupported $ref ${String(ref)}`);
  }
  return ref.slice('#/components/schemas/'.length);
}

function intOrString(description: string | undefined, pattern?: string): JSONSchemaProps {
  return {
    ...(description === undefined ? {} : { description }),
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    ...(pattern === undefined ? {} : { pattern }),
    'x-kubernetes-int-or-string': true,
  };
}

/** The converter over one document's `components.schemas`; `named` converts a schema by name. */
function converter(doc: unknown): { named: (name: string, stack: readonly string[]) => JSONSchemaProps } {
  const components = isRecord(doc) ? doc['components'] : undefined;
  const found = isRecord(components) ? components['schemas'] : undefined;
  if (!isRecord(found)) throw new Error('not an OpenAPI v3 document: components.schemas is missing');
  const schemas: Source = found;

  function sourceSchema(name: string): Source {
    const node = schemas[name];
    if (!isRecord(node)) throw new Error(`schema ${name} is not in the document`);
    return node;
  }

  /** The named schema a property points at, or the property itself when it is inline. */
  function resolve(node: Source, where: string): Source {
    if (node['$ref'] !== undefined) return sourceSchema(refName(node['$ref'], where));
    const allOf = node['allOf'];
    if (Array.isArray(allOf) && allOf.length === 1 && isRecord(allOf[0])) return resolve(allOf[0], where);
    return node;
  }

  function named(name: string, stack: readonly string[]): JSONSchemaProps {
    if (stack.includes(name)) throw new Error(`recursive schema: ${[...stack, name].join(' -> ')}`);
    const node = sourceSchema(name);
    switch (name) {
      // The type-level prose of these two is long and says nothing about the field.
      case QUANTITY:
        return intOrString(undefined, QUANTITY_PATTERN);
      case INT_OR_STRING:
        return intOrString(undefined);
      case OBJECT_META:
        return embeddedObjectMeta(node, [...stack, name]);
      default:
        return convertNode(node, name, [...stack, name]);
    }
  }

  function embeddedObjectMeta(node: Source, stack: readonly string[]): JSONSchemaProps {
    const properties = node['properties'];
    if (!isRecord(properties)) throw new Error(`${OBJECT_META}: no properties`);
    const kept: Record<string, JSONSchemaProps> = {};
    for (const field of EMBEDDED_META_FIELDS) {
      const child = properties[field];
      if (!isRecord(child)) throw new Error(`${OBJECT_META}.${field}: missing`);
      kept[field] = convertNode(child, `${OBJECT_META}.${field}`, stack);
    }
    const description = optionalString(node, 'description', OBJECT_META);
    return {
      type: 'object',
      ...(description === undefined ? {} : { description }),
      properties: kept,
    };
  }

  function convertNode(node: Source, where: string, stack: readonly string[]): JSONSchemaProps {
    for (const key of Object.keys(node)) {
      if (!KEPT.has(key) && !RESOLVED.has(key) && !DROPPED.has(key)) {
        throw new Error(
          `${where}: unknown keyword ${key}; decide in podtemplate-schema.ts what to do with it`,
        );
      }
    }
    const description = optionalString(node, 'description', where);

    if (node['$ref'] !== undefined) return named(refName(node['$ref'], where), stack);
    if (node['allOf'] !== undefined) {
      const allOf = node['allOf'];
      if (!Array.isArray(allOf) || allOf.length !== 1 || !isRecord(allOf[0])) {
        throw new Error(`${where}: only a single-element allOf (a described $ref) is supported`);
      }
      const base = convertNode(allOf[0], where, stack);
      return description === undefined ? base : withDescription(base, description);
    }
    if (node['oneOf'] !== undefined) {
      const types = Array.isArray(node['oneOf'])
        ? node['oneOf'].map((alt) => (isRecord(alt) ? alt['type'] : undefined))
        : [];
      if (types.join() !== 'integer,string') throw new Error(`${where}: unsupported oneOf`);
      return intOrString(description);
    }

    const out: JSONSchemaProps = { type: schemaType(node['type'], where) };
    if (description !== undefined) out.description = description;
    const format = optionalString(node, 'format', where);
    if (format !== undefined && !DROPPED_FORMATS.has(format)) out.format = format;
    if (node['enum'] !== undefined) out.enum = node['enum'] as JSONValue[];

    const properties = node['properties'];
    if (properties !== undefined) {
      if (!isRecord(properties)) throw new Error(`${where}: properties must be an object`);
      out.properties = {};
      for (const key of Object.keys(properties).sort()) {
        const child = properties[key];
        if (!isRecord(child)) throw new Error(`${where}.${key}: not a schema`);
        out.properties[key] = convertNode(child, `${where}.${key}`, stack);
      }
    }
    if (node['required'] !== undefined) out.required = [...stringArray(node['required'], where)].sort();

    const additional = node['additionalProperties'];
    if (additional !== undefined) {
      if (properties !== undefined) {
        throw new Error(`${where}: properties and additionalProperties together are not structural`);
      }
      if (typeof additional === 'boolean') out.additionalProperties = additional;
      else if (isRecord(additional)) out.additionalProperties = convertNode(additional, `${where}.*`, stack);
      else throw new Error(`${where}: additionalProperties must be a schema or a boolean`);
    }

    const items = node['items'];
    if (items !== undefined) {
      if (!isRecord(items)) throw new Error(`${where}[]: not a schema`);
      out.items = convertNode(items, `${where}[]`, stack);
    }

    const listType = optionalString(node, 'x-kubernetes-list-type', where);
    if (listType !== undefined)
      out['x-kubernetes-list-type'] = listType as JSONSchemaProps['x-kubernetes-list-type'];
    const mapType = optionalString(node, 'x-kubernetes-map-type', where);
    if (mapType !== undefined)
      out['x-kubernetes-map-type'] = mapType as JSONSchemaProps['x-kubernetes-map-type'];
    if (node['x-kubernetes-list-map-keys'] !== undefined) {
      // Order is meaningful here (it is the key's order), so it is kept.
      const keys = stringArray(node['x-kubernetes-list-map-keys'], where);
      out['x-kubernetes-list-map-keys'] = keys;
      if (isRecord(items) && out.items) keepListMapKeyDefaults(resolve(items, where), out.items, keys, where);
    }
    return out;
  }

  /**
   * A structural schema refuses a list-map key that is neither required nor defaulted, so the
   * upstream default of such a key (Container ports' `protocol: TCP`) is the one default kept.
   */
  function keepListMapKeyDefaults(
    source: Source,
    item: JSONSchemaProps,
    keys: string[],
    where: string,
  ): void {
    const sourceProperties = source['properties'];
    for (const key of keys) {
      if (item.required?.includes(key)) continue;
      const sourceKey = isRecord(sourceProperties) ? sourceProperties[key] : undefined;
      const value = isRecord(sourceKey) ? sourceKey['default'] : undefined;
      const target = item.properties?.[key];
      if (value === undefined || target === undefined) {
        throw new Error(`${where}: list-map key ${key} is neither required nor defaulted upstream`);
      }
      target.default = value as JSONValue;
    }
  }
  return { named };
}

function withDescription(schema: JSONSchemaProps, description: string): JSONSchemaProps {
  // Keep `description` in its usual place (after `type`) so the output reads naturally.
  const rest = { ...schema };
  delete rest.description;
  return schema.type === undefined ? { description, ...rest } : { type: schema.type, description, ...rest };
}

/** The structural schema of core/v1 PodTemplateSpec in `openapiDocument` (pure). */
export function podTemplateSpecSchema(openapiDocument: unknown): JSONSchemaProps {
  return converter(openapiDocument).named(ROOT, []);
}

/** What the vendored file holds: the schema and where it came from. */
export interface VendoredPodTemplateSchema {
  source: string;
  schema: JSONSchemaProps;
}

export function vendoredPodTemplateSchema(
  openapiDocument: unknown,
  version: string,
): VendoredPodTemplateSchema {
  return {
    source: `k8s.io/kubernetes@${version} ${OPENAPI_FILE}#/components/schemas/${ROOT}`,
    schema: podTemplateSpecSchema(openapiDocument),
  };
}

/** The directory of the pinned k8s.io/kubernetes module in Go's module cache (downloads it if needed). */
function kubernetesModuleDir(version: string): string {
  const out = execFileSync('go', ['mod', 'download', '-json', `k8s.io/kubernetes@${version}`], {
    encoding: 'utf8',
    env: { ...process.env, GOFLAGS: '-mod=mod' },
  });
  const parsed: unknown = JSON.parse(out);
  const dir = isRecord(parsed) ? parsed['Dir'] : undefined;
  if (typeof dir !== 'string')
    throw new Error(`go mod download printed no Dir for k8s.io/kubernetes@${version}`);
  return dir;
}

async function main(check: boolean): Promise<void> {
  const dir = kubernetesModuleDir(KUBERNETES_VERSION);
  const doc: unknown = JSON.parse(readFileSync(`${dir}/${OPENAPI_FILE}`, 'utf8'));
  const text = JSON.stringify(vendoredPodTemplateSchema(doc, KUBERNETES_VERSION), null, 2);
  const content = await formatLikeRepository(VENDORED_FILE, text);
  if (readFileSync(VENDORED_FILE, 'utf8') === content) {
    process.stdout.write(`${VENDORED_FILE} is up to date\n`);
  } else if (check) {
    process.stderr.write(`${VENDORED_FILE} is stale: run e2e/toolchain/node src/api/podtemplate-schema.ts\n`);
    process.exitCode = 1;
  } else {
    writeFileSync(VENDORED_FILE, content);
    process.stdout.write(`wrote ${VENDORED_FILE}\n`);
  }
}

if (import.meta.main) await main(process.argv.includes('--check'));

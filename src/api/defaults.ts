/**
 * Applies the CRD schema's defaults to a spec, the way the API server does, so code never sees
 * `undefined` where the server would have put a default (a spec built in a test, or read from
 * somewhere other than the API server).
 *
 * The defaults are read from the schema object in schema.ts, never restated here. Semantics
 * follow the API server's structural defaulting: a missing (or null) property with a default
 * gets a copy of it, then defaulting continues inside the value, so `retry: {}` picks up its
 * inner defaults; defaults apply inside arrays and maps too (the Pod template's
 * `restartPolicy: Never`, a container port's `protocol: TCP`). The input is not modified.
 * Values are not validated: an invalid spec stays invalid.
 */
import { specSchema } from './schema.ts';
import type { JSONSchemaProps } from './structural-schema.ts';
import type { DefaultedScheduledSingletonJobSpec, ScheduledSingletonJobSpec } from './types.ts';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Fills defaults into `value` in place, as described by `schema`. */
export function applySchemaDefaults(schema: JSONSchemaProps, value: unknown): void {
  if (Array.isArray(value)) {
    if (schema.items) for (const item of value) applySchemaDefaults(schema.items, item);
    return;
  }
  if (!isObject(value)) return;
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    if ((value[key] === undefined || value[key] === null) && child.default !== undefined) {
      value[key] = structuredClone(child.default);
    }
    if (value[key] !== undefined) applySchemaDefaults(child, value[key]);
  }
  const additional = schema.additionalProperties;
  if (typeof additional === 'object') {
    for (const [key, child] of Object.entries(value)) {
      if (!(key in (schema.properties ?? {}))) applySchemaDefaults(additional, child);
    }
  }
}

/** A copy of `spec` with every schema default applied. */
export function withDefaults(spec: ScheduledSingletonJobSpec): DefaultedScheduledSingletonJobSpec {
  const copy = structuredClone(spec);
  applySchemaDefaults(specSchema, copy);
  // Every property the Defaulted type makes required has a schema default (typegen.ts derives
  // the type from the same schema), and applySchemaDefaults just filled each one in.
  return copy as DefaultedScheduledSingletonJobSpec;
}

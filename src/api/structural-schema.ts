/**
 * The JSON shape of an apiextensions.k8s.io/v1 structural schema (`JSONSchemaProps`), spelled
 * with the field names the API server reads (`x-kubernetes-validations`, `default`, ...).
 *
 * client-node's `V1JSONSchemaProps` is not used for our schema objects: its TypeScript property
 * names differ from the JSON ones (`xKubernetesValidations`, `_default`) and its serializer drops
 * keys it does not know, so a plain object of that type would not survive a round trip. Only the
 * keywords this project writes are listed; a schema that needs another one adds it here.
 */

export type JSONValue = string | number | boolean | null | JSONValue[] | { [key: string]: JSONValue };

export interface ValidationRule {
  rule: string;
  message: string;
  /** Where the API server reports the failure, relative to the node that holds the rule. */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  format?: string;
  default?: JSONValue;
  enum?: JSONValue[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  nullable?: boolean;
  required?: string[];
  properties?: Record<string, JSONSchemaProps>;
  additionalProperties?: JSONSchemaProps | boolean;
  items?: JSONSchemaProps;
  anyOf?: JSONSchemaProps[];
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-validations'?: ValidationRule[];
}

/** Calls `visit` on every node of `schema`, depth first, with the JSON path of the node's value. */
export function walkSchema(
  schema: JSONSchemaProps,
  visit: (node: JSONSchemaProps, path: string) => void,
  path = '',
): void {
  visit(schema, path);
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    walkSchema(child, visit, `${path}.${name}`);
  }
  if (schema.items) walkSchema(schema.items, visit, `${path}[*]`);
  if (typeof schema.additionalProperties === 'object') {
    walkSchema(schema.additionalProperties, visit, `${path}.*`);
  }
  for (const alternative of schema.anyOf ?? []) walkSchema(alternative, visit, path);
}

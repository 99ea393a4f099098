import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  CRD_FILE,
  KUSTOMIZE_CRD_FILE,
  REPOSITORY_ROOT,
  renderGeneratedFiles,
  type GeneratedFile,
} from '../../../src/api/generate.ts';
import { specSchema } from '../../../src/api/schema.ts';
import { renderTypes } from '../../../src/api/typegen.ts';

const files: GeneratedFile[] = await renderGeneratedFiles();

describe('files generated from src/api/schema.ts', () => {
  for (const file of files) {
    it(`${file.path} is what generate.ts writes from the current schema (else run make manifests)`, () => {
      const committed = readFileSync(`${REPOSITORY_ROOT}${file.path}`, 'utf8');
      assert.ok(
        committed === file.content,
        `${file.path} is stale: run \`make manifests\` and commit the result`,
      );
    });
  }

  it('generates the TypeScript types too, so types and schema cannot drift apart', () => {
    assert.ok(files.some((f) => f.path === 'src/api/types.generated.ts'));
  });

  it('notices drift: a field added to the schema changes the rendered types', async () => {
    const properties = specSchema.properties!;
    properties['addedForTheTest'] = { type: 'string', description: 'A field that exists only in this test.' };
    try {
      const types = await renderTypes();
      assert.match(types, /addedForTheTest\?: string;/);
      assert.notEqual(types, files.find((f) => f.path === 'src/api/types.generated.ts')?.content);
    } finally {
      delete properties['addedForTheTest'];
    }
  });

  it('the kustomize copy of the CRD is identical to the one in crds/', () => {
    const byPath = new Map(files.map((f) => [f.path, f.content]));
    assert.equal(byPath.get(KUSTOMIZE_CRD_FILE), byPath.get(CRD_FILE));
  });
});

/**
 * Kubernetes manifests as plain objects: what `kubectl kustomize <dir>` renders, or any
 * multi-document YAML (helm template, kubectl output), parsed.
 *
 * `parseManifests` throws on a YAML error or on a document that is not an object with
 * apiVersion, kind and metadata.name, naming `source`; empty documents are skipped.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { REPOSITORY_ROOT, kubectlPath } from './kube.ts';

const execFileAsync = promisify(execFile);
/** The CRD alone is about 0.5 MB; rendered output is a few times the default 1 MiB buffer at most. */
const MAX_BUFFER = 64 * 1024 * 1024;

export type Manifest = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> } & Record<string, unknown>;
};

/** Every object `kubectl kustomize <dir>` renders (`dir` relative to the repository). */
export async function kustomize(dir: string): Promise<Manifest[]> {
  const { stdout } = await execFileAsync(kubectlPath(), ['kustomize', join(REPOSITORY_ROOT, dir)], {
    encoding: 'utf8',
    maxBuffer: MAX_BUFFER,
  });
  return parseManifests(stdout, `kubectl kustomize ${dir}`);
}

export function parseManifests(text: string, source: string): Manifest[] {
  const manifests: Manifest[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map(String).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (!isManifest(value)) throw new Error(`${source}: not a Kubernetes object: ${JSON.stringify(value)}`);
    manifests.push(value);
  }
  return manifests;
}

function isManifest(value: unknown): value is Manifest {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const metadata = record['metadata'];
  return (
    typeof record['apiVersion'] === 'string' &&
    typeof record['kind'] === 'string' &&
    typeof metadata === 'object' &&
    metadata !== null &&
    typeof (metadata as Record<string, unknown>)['name'] === 'string'
  );
}

/**
 * The Helm chart (config/helm/ssj-operator) and its kustomize twin, as objects a test can compare.
 *
 * - helmBinary(): the pinned helm, built once per machine by e2e/toolchain/go-tool.sh. It throws
 *   when helm cannot be built: a chart test without helm fails, it never skips.
 * - helm(args): runs it with its config, cache and data directories in a temporary directory of
 *   this process, so no test reads or writes the user's Helm repositories or registry logins.
 * - render(options) / kustomize(dir): `helm template` / `kubectl kustomize` output, parsed.
 * - withoutHelmMetadata(object): the object minus what Helm alone adds (its four labels and its
 *   helm.sh/ annotations), the only difference the chart may have from config/.
 * - objectKey(object): apiVersion/kind/namespace/name, one object's identity.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPOSITORY_ROOT, kubectlPath } from '../../support/kube.ts';
import { kustomize, parseManifests, type Manifest } from '../../support/manifests.ts';

export { kustomize, parseManifests, type Manifest };

const execFileAsync = promisify(execFile);

export const CHART = join(REPOSITORY_ROOT, 'config/helm/ssj-operator');
export const RELEASE = 'ssj-operator';
/** config/default's namespace. */
export const NAMESPACE = 'ssj-system';

/** The CRD alone is about 0.5 MB; rendered output is a few times the default 1 MiB buffer at most. */
const MAX_BUFFER = 64 * 1024 * 1024;
/** A first build of helm from the Go module proxy takes minutes on 2 cores. */
export const BUILD_TIMEOUT_MS = 30 * 60_000;

export const HELM_LABELS: readonly string[] = [
  'helm.sh/chart',
  'app.kubernetes.io/managed-by',
  'app.kubernetes.io/instance',
  'app.kubernetes.io/version',
];

let helmPath: string | undefined;
const helmHome = mkdtempSync(join(tmpdir(), 'ssj-helm-home-'));
process.once('exit', () => {
  rmSync(helmHome, { recursive: true, force: true });
});

export async function helmBinary(): Promise<string> {
  if (helmPath !== undefined) return helmPath;
  try {
    const { stdout } = await execFileAsync(join(REPOSITORY_ROOT, 'e2e/toolchain/go-tool.sh'), ['helm'], {
      encoding: 'utf8',
      timeout: BUILD_TIMEOUT_MS,
    });
    helmPath = stdout.trim();
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`cannot build helm with e2e/toolchain/go-tool.sh helm: ${String(error)}\n${stderr}`, {
      cause: error,
    });
  }
  return helmPath;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Runs helm; rejects with its stderr when it exits non-zero. */
export async function helm(args: readonly string[], input?: string): Promise<CommandResult> {
  const binary = await helmBinary();
  const env = {
    ...process.env,
    HELM_CONFIG_HOME: join(helmHome, 'config'),
    HELM_CACHE_HOME: join(helmHome, 'cache'),
    HELM_DATA_HOME: join(helmHome, 'data'),
  };
  return run(binary, args, env, input);
}

export async function kubectlRun(args: readonly string[], input?: string): Promise<CommandResult> {
  return run(kubectlPath(), args, process.env, input);
}

function run(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  input: string | undefined,
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { encoding: 'utf8', env, maxBuffer: MAX_BUFFER },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ stdout, stderr });
          return;
        }
        reject(
          Object.assign(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stderr}`), {
            stdout,
            stderr,
            cause: error,
          }),
        );
      },
    );
    child.stdin?.end(input ?? '');
  });
}

export interface RenderOptions {
  namespace?: string;
  /** `--set` pairs, as Helm takes them (`key=value`). */
  set?: readonly string[];
  /** `--set-string` pairs. */
  setString?: readonly string[];
}

/** `helm template` with the CRDs; the release is named as config/default names things. */
export async function renderText(options: RenderOptions = {}): Promise<string> {
  const args = ['template', RELEASE, CHART, '--namespace', options.namespace ?? NAMESPACE, '--include-crds'];
  for (const pair of options.set ?? []) args.push('--set', pair);
  for (const pair of options.setString ?? []) args.push('--set-string', pair);
  return (await helm(args)).stdout;
}

export async function render(options: RenderOptions = {}): Promise<Manifest[]> {
  return parseManifests(await renderText(options), 'helm template');
}

export function objectKey(object: Manifest): string {
  return `${object.apiVersion}/${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`;
}

/** A copy of `object` without Helm's own labels and annotations; empty maps go too. */
export function withoutHelmMetadata(object: Manifest): Manifest {
  const copy = structuredClone(object);
  const metadata = copy.metadata;
  const labels = metadata.labels;
  if (labels !== undefined) {
    for (const label of HELM_LABELS) Reflect.deleteProperty(labels, label);
    if (Object.keys(labels).length === 0) delete metadata.labels;
  }
  const annotations = metadata['annotations'];
  if (typeof annotations === 'object' && annotations !== null) {
    const record = annotations as Record<string, unknown>;
    for (const key of Object.keys(record))
      if (key.startsWith('helm.sh/')) Reflect.deleteProperty(record, key);
    if (Object.keys(record).length === 0) delete metadata['annotations'];
  }
  return copy;
}

/** The objects by key; throws if two share one (a render that would fight itself). */
export function byKey(objects: readonly Manifest[]): Map<string, Manifest> {
  const map = new Map<string, Manifest>();
  for (const object of objects) {
    const key = objectKey(object);
    if (map.has(key)) throw new Error(`${key} is rendered twice`);
    map.set(key, object);
  }
  return new Map([...map.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

export function find(objects: readonly Manifest[], kind: string, name: string): Manifest {
  const found = objects.filter((object) => object.kind === kind && object.metadata.name === name);
  if (found.length !== 1) {
    throw new Error(
      `expected one ${kind} ${name}, found ${found.length} among ${objects.map(objectKey).join(', ')}`,
    );
  }
  return found[0]!;
}

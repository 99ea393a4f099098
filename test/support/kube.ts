/**
 * The real Kubernetes API server for integration tests: where it is, a namespace of the test's
 * own, and condition-based waiting.
 *
 * - loadKubeConfig(): KUBECONFIG, else <repo>/.local/kubeconfig (what `make cluster-up` writes).
 * - requireCluster(kc): throws a clear error when the API server does not answer. Call it first:
 *   a test that cannot reach its cluster fails, it never skips.
 * - newNamespace(prefix) / deleteNamespace(name): a fresh, randomly named namespace per test.
 * - waitFor(condition, { timeoutMs }): polls until the condition returns a value, or throws at
 *   the deadline with the condition's description and its last error. No bare sleeps.
 * - kubectl(args): runs <repo>/.local/bin/kubectl (or $KUBECTL) against the same kubeconfig.
 * - apiStatus(error): the HTTP status and the Status body of a failed client-node call.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ApiException, CoreV1Api, KubeConfig, V1Namespace, VersionApi } from '@kubernetes/client-node';

const execFileAsync = promisify(execFile);

export const REPOSITORY_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The kubeconfig file the tests use. */
export function kubeconfigPath(): string {
  const fromEnv = process.env['KUBECONFIG'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : `${REPOSITORY_ROOT}.local/kubeconfig`;
}

export function loadKubeConfig(): KubeConfig {
  const path = kubeconfigPath();
  if (!existsSync(path)) {
    throw new Error(
      `no kubeconfig at ${path}: start the local cluster with \`make cluster-up\` or set KUBECONFIG`,
    );
  }
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/** Resolves once the API server answers; otherwise rejects with what to do about it. */
export async function requireCluster(kc: KubeConfig, timeoutMs = 10_000): Promise<void> {
  const server = kc.getCurrentCluster()?.server ?? '<no server in kubeconfig>';
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    await Promise.race([kc.makeApiClient(VersionApi).getCode(), deadline]);
  } catch (error) {
    throw new Error(
      `the Kubernetes API server at ${server} (kubeconfig ${kubeconfigPath()}) does not answer: ` +
        `${errorText(error)}. Start it with \`make cluster-up\`.`,
      { cause: error },
    );
  } finally {
    clearTimeout(timer);
  }
}

/** Creates a namespace named `<prefix>-<random>` and returns its name. */
export async function newNamespace(prefix: string, kc: KubeConfig = loadKubeConfig()): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  // The generated client serialises by the declared model; the instance only satisfies its
  // class-typed parameter.
  const body = Object.assign(new V1Namespace(), { metadata: { name, labels: { 'ssj.dev/test': prefix } } });
  await kc.makeApiClient(CoreV1Api).createNamespace({ body });
  return name;
}

/**
 * Strips every finalizer from the namespace's Pods (tests that leave tracked Pods behind with no
 * operator running), then deletes the namespace.
 */
export async function deleteNamespaceAndReleasePods(
  name: string,
  kc: KubeConfig = loadKubeConfig(),
): Promise<void> {
  if (name === '') return;
  const core = kc.makeApiClient(CoreV1Api);
  for (const pod of (await core.listNamespacedPod({ namespace: name })).items) {
    if ((pod.metadata?.finalizers ?? []).length === 0) continue;
    await core
      .patchNamespacedPod({
        namespace: name,
        name: pod.metadata?.name ?? '',
        body: [{ op: 'remove', path: '/metadata/finalizers' }],
      })
      .catch(() => undefined);
  }
  await deleteNamespace(name, kc);
}

/** Deletes a namespace (and so everything in it); a namespace already gone is fine. */
export async function deleteNamespace(name: string, kc: KubeConfig = loadKubeConfig()): Promise<void> {
  try {
    await kc.makeApiClient(CoreV1Api).deleteNamespace({ name });
  } catch (error) {
    if (apiStatus(error)?.code !== 404) throw error;
  }
}

export interface WaitOptions {
  timeoutMs: number;
  /** Time between two checks; 100 ms unless told. */
  intervalMs?: number;
  /** What is awaited, for the error at the deadline. */
  description?: string;
}

/**
 * Calls `condition` until it returns something other than undefined, null or false, and
 * returns that. A condition that throws counts as not yet met; its last error is reported if the
 * deadline passes.
 */
export async function waitFor<T>(
  condition: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  options: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const what = options.description ?? 'condition';
      const last = lastError === undefined ? '' : `; last error: ${errorText(lastError)}`;
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}${last}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}

/** A Kubernetes `Status` object, as the API server returns it for a refused request. */
export interface ApiStatus {
  code: number;
  reason?: string;
  message: string;
  details?: { causes?: { field?: string; message?: string; reason?: string }[] };
}

/** The status of a failed client-node call, or undefined when `error` is not an API error. */
export function apiStatus(error: unknown): ApiStatus | undefined {
  if (!(error instanceof ApiException)) return undefined;
  const body: unknown = error.body;
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      parsed = undefined;
    }
  }
  const record = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  const message = typeof record['message'] === 'string' ? record['message'] : String(body);
  return {
    ...(record as Partial<ApiStatus>),
    code: error.code,
    message,
  };
}

export function kubectlPath(): string {
  const fromEnv = process.env['KUBECTL'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : `${REPOSITORY_ROOT}.local/bin/kubectl`;
}

/** Runs kubectl with the tests' kubeconfig; rejects (with its stderr) when it exits non-zero. */
export async function kubectl(args: readonly string[]): Promise<string> {
  const { stdout } = await execFileAsync(kubectlPath(), ['--kubeconfig', kubeconfigPath(), ...args], {
    encoding: 'utf8',
  });
  return stdout;
}

function errorText(error: unknown): string {
  if (error instanceof ApiException) return `HTTP ${error.code}: ${String(error.body)}`;
  return error instanceof Error ? error.message : String(error);
}

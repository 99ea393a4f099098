/**
 * A kube-apiserver (with its own etcd) for one test file alone, on free loopback ports, from the
 * binaries the local cluster uses (e2e/cluster/binaries.sh: KUBEBUILDER_ASSETS, else the pinned
 * release's cache) and with e2e/cluster/up.sh's flags, so the same admission plugins run. Keep
 * the flags in step with up.sh.
 *
 * Why the fence suites do not use the shared cluster: on kube-apiserver 1.36 a moment (one
 * policy refresh, about a second) with no binding of a Lease-param policy stops that API
 * server's Lease informer for the rest of its life (kubernetes#130887). Every fence test ends by
 * removing its binding, so against the shared API server the first run would break the fence
 * there for every later run and for everyone else, until someone restarts it. A test that breaks
 * a server runs its own (as the PostgreSQL tests that stop a server do, DESIGN.md "Real parts").
 *
 * There is no kube-controller-manager: a new namespace gets no default ServiceAccount
 * (podNamespace creates it) and a deleted namespace stays Terminating. All of it goes with stop().
 * Not guaranteed: cleanup after a SIGKILL of the test process (the servers run in their own
 * process groups; an `exit` handler stops them on a normal or uncaught exit).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { REPOSITORY_ROOT, kubectlPath, newNamespace, waitFor } from '../../support/kube.ts';

const execFileAsync = promisify(execFile);
const START_TIMEOUT_MS = 120_000;

export interface PrivateApiServer {
  readonly kc: KubeConfig;
  readonly kubeconfigPath: string;
  /** What kube-apiserver has logged so far, across restarts. */
  log(): Promise<string>;
  /**
   * Stops kube-apiserver and starts it again on the same port and etcd, after `downMs` with no
   * API server (0 unless told); resolves once it answers /readyz again.
   */
  restart(options?: { readonly downMs?: number; readonly onDown?: () => void }): Promise<void>;
  /** Stops both processes and removes their state. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startPrivateApiServer(): Promise<PrivateApiServer> {
  const bin = (
    await execFileAsync(join(REPOSITORY_ROOT, 'e2e/cluster/binaries.sh'), { encoding: 'utf8' })
  ).stdout.trim();
  const dir = await mkdtemp(join(tmpdir(), 'ssj-fence-apiserver-'));
  const pki = join(dir, 'pki');
  const [etcdPort, peerPort, apiPort] = await freePorts(3);
  await certificates(pki);

  const kubeconfigPath = join(dir, 'kubeconfig');
  const b64 = async (file: string): Promise<string> => (await readFile(join(pki, file))).toString('base64');
  await writeFile(
    kubeconfigPath,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: private',
      `  cluster: { server: "https://127.0.0.1:${apiPort}", certificate-authority-data: ${await b64('ca.crt')} }`,
      'users:',
      '- name: admin',
      `  user: { client-certificate-data: ${await b64('admin.crt')}, client-key-data: ${await b64('admin.key')} }`,
      'contexts:',
      '- name: private',
      '  context: { cluster: private, user: admin }',
      'current-context: private',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);

  const etcdArgs = [
    '--name=default',
    `--data-dir=${join(dir, 'etcd')}`,
    `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
    `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
    `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
    '--unsafe-no-fsync',
    '--log-level=warn',
  ];
  const apiArgs = [
    `--etcd-servers=http://127.0.0.1:${etcdPort}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${apiPort}`,
    `--cert-dir=${pki}`,
    `--tls-cert-file=${join(pki, 'apiserver.crt')}`,
    `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
    `--client-ca-file=${join(pki, 'ca.crt')}`,
    '--authorization-mode=RBAC',
    '--service-cluster-ip-range=10.0.0.0/24',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${join(pki, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
    '--allow-privileged=true',
    '--v=1',
  ];
  const apiLog = join(dir, 'kube-apiserver.log');

  let etcd: ChildProcess | undefined;
  let apiserver: ChildProcess | undefined;
  const killAll = (): void => {
    for (const child of [apiserver, etcd]) {
      if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  };
  process.once('exit', killAll);

  const startApiServer = async (): Promise<void> => {
    apiserver = launch(join(bin, 'kube-apiserver'), apiArgs, apiLog);
    await waitUntilReady(apiserver, apiLog, () =>
      execFileAsync(kubectlPath(), ['--kubeconfig', kubeconfigPath, 'get', '--raw', '/readyz']),
    );
  };

  try {
    etcd = launch(join(bin, 'etcd'), etcdArgs, join(dir, 'etcd.log'));
    await waitUntilReady(etcd, join(dir, 'etcd.log'), async () => {
      const response = await fetch(`http://127.0.0.1:${etcdPort}/health`);
      if (!response.ok) throw new Error(`etcd health: HTTP ${response.status}`);
    });
    await startApiServer();
  } catch (error) {
    killAll();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  let stopped = false;
  return {
    kc,
    kubeconfigPath,
    log: () => readFile(apiLog, 'utf8'),
    restart: async (options = {}) => {
      await terminate(apiserver);
      options.onDown?.();
      if ((options.downMs ?? 0) > 0) await new Promise((resolve) => setTimeout(resolve, options.downMs));
      await startApiServer();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await terminate(apiserver);
      await terminate(etcd);
      process.removeListener('exit', killAll);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A namespace of the test's own with its default ServiceAccount (no controller-manager makes it). */
export async function podNamespace(kc: KubeConfig, prefix: string): Promise<string> {
  const namespace = await newNamespace(prefix, kc);
  await kc
    .makeApiClient(CoreV1Api)
    .createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'default' } } });
  return namespace;
}

/** Starts a server in its own process group, appending its output to `logFile`. */
function launch(command: string, args: readonly string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd] });
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

async function waitUntilReady(
  child: ChildProcess,
  logFile: string,
  probe: () => Promise<unknown>,
): Promise<void> {
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`exited (${child.exitCode ?? child.signalCode ?? ''})`);
        }
        await probe();
        return true;
      },
      { timeoutMs: START_TIMEOUT_MS, intervalMs: 300, description: `${logFile} ready` },
    );
  } catch (error) {
    const log = await readFile(logFile, 'utf8').catch(() => '');
    throw new Error(
      `${String(error)}\n--- last lines of ${logFile}:\n${log.split('\n').slice(-20).join('\n')}`,
      {
        cause: error,
      },
    );
  }
}

/** SIGTERM to the process group, SIGKILL after 10 s; resolves once the process has exited. */
async function terminate(child: ChildProcess | undefined): Promise<void> {
  if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  process.kill(-child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
  }, 10_000);
  await exited;
  clearTimeout(timer);
}

async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => {
            resolve(server);
          });
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** One CA signing the serving certificate and an admin (system:masters) client certificate. */
async function certificates(pki: string): Promise<void> {
  await mkdir(pki, { recursive: true });
  const p = (file: string): string => join(pki, file);
  const openssl = (...args: string[]): Promise<unknown> => execFileAsync('openssl', args);
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=ssj-fence-test-ca',
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.crt'),
  );
  await writeFile(p('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=kube-apiserver',
    '-keyout',
    p('apiserver.key'),
    '-out',
    p('apiserver.csr'),
  );
  await openssl(
    'x509',
    '-req',
    '-in',
    p('apiserver.csr'),
    '-CA',
    p('ca.crt'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    p('san.ext'),
    '-out',
    p('apiserver.crt'),
  );
  await openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/O=system:masters/CN=ssj-admin',
    '-keyout',
    p('admin.key'),
    '-out',
    p('admin.csr'),
  );
  await openssl(
    'x509',
    '-req',
    '-in',
    p('admin.csr'),
    '-CA',
    p('ca.crt'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-out',
    p('admin.crt'),
  );
  await openssl('genrsa', '-out', p('sa.key'), '2048');
  await openssl('rsa', '-in', p('sa.key'), '-pubout', '-out', p('sa.pub'));
}

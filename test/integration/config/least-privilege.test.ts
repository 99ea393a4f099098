// The manifests in config/ are what users apply. This suite applies config/rbac to the real
// cluster and runs the operator as that ServiceAccount (a bound token, not admin), proving the
// ClusterRole grants what the operator uses: it must schedule a job, create its Pod and write
// its status without a single Forbidden. (The e2e suites run every operator as that
// ServiceAccount too, e2e/support/operator.ts, so a verb missing for any path they cover fails
// there.) A second test derives the rules from the source and requires config/rbac to grant
// exactly those: no verb the code does not use.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { GROUP, PLURAL } from '../../../src/api/names.ts';
import {
  REPOSITORY_ROOT,
  deleteNamespace,
  kubectl,
  loadKubeConfig,
  newNamespace,
  requireCluster,
  waitFor,
} from '../../support/kube.ts';

describe('the operator under config/rbac', () => {
  const admin = loadKubeConfig();
  let ns: string;
  let dir: string;
  let operator: ChildProcess | undefined;
  let logs = '';

  before(async () => {
    await requireCluster(admin);
    await kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(REPOSITORY_ROOT, 'crds')]);
    await kubectl([
      'apply',
      '--server-side',
      '--force-conflicts',
      '-k',
      join(REPOSITORY_ROOT, 'config/rbac'),
    ]);
    ns = await newNamespace('ssj-rbac', admin);
    dir = await mkdtemp(join(tmpdir(), 'ssj-rbac-'));
  });

  after(async () => {
    if (operator !== undefined && operator.exitCode === null) {
      operator.kill('SIGTERM');
      await new Promise((resolve) => operator?.once('exit', resolve));
    }
    await deleteNamespace(ns, admin);
    await rm(dir, { recursive: true, force: true });
  });

  it('schedules a job, creates its Pod and writes its status with only the granted rights', async () => {
    const core = admin.makeApiClient(CoreV1Api);
    const token = (
      await core.createNamespacedServiceAccountToken({
        namespace: 'ssj-system',
        name: 'ssj-operator',
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      })
    ).status?.token;
    assert.ok(token !== undefined && token !== '');
    const cluster = admin.getCurrentCluster();
    assert.ok(cluster);
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'local', server: cluster.server, caData: cluster.caData }],
      users: [{ name: 'ssj-operator', token }],
      contexts: [{ name: 'local', cluster: 'local', user: 'ssj-operator' }],
      currentContext: 'local',
    });
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, kc.exportConfig());

    await admin.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: 'ssj.dev',
      version: 'v1alpha1',
      namespace: ns,
      plural: 'singletonjobs',
      body: {
        apiVersion: 'ssj.dev/v1alpha1',
        kind: 'ScheduledSingletonJob',
        metadata: { name: 'every-2s' },
        spec: {
          schedule: '*/2 * * * * *',
          template: { spec: { containers: [{ name: 'c', image: 'busybox:1.36', command: ['true'] }] } },
        },
      },
    });

    operator = spawn(
      join(REPOSITORY_ROOT, 'e2e/toolchain/node'),
      [
        'src/main.ts',
        `--namespace=${ns}`,
        '--metrics-bind-address=127.0.0.1:0',
        '--health-probe-bind-address=127.0.0.1:0',
        '--leader-election-namespace=ssj-system',
      ],
      {
        cwd: REPOSITORY_ROOT,
        env: { ...process.env, KUBECONFIG: kubeconfig, DATABASE_URL: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    operator.stdout?.on('data', (chunk: Buffer) => (logs += chunk.toString()));
    operator.stderr?.on('data', (chunk: Buffer) => (logs += chunk.toString()));

    await waitFor(
      async () => {
        const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'ssj.dev/job=every-2s' });
        return pods.items.length > 0;
      },
      { timeoutMs: 30_000 },
    );
    await waitFor(
      async () => {
        const job = (await admin.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
          group: 'ssj.dev',
          version: 'v1alpha1',
          namespace: ns,
          plural: 'singletonjobs',
          name: 'every-2s',
        })) as { status?: { lastScheduleTime?: string } };
        return job.status?.lastScheduleTime !== undefined;
      },
      { timeoutMs: 15_000 },
    );
    assert.equal(operator.exitCode, null, `the operator exited: ${logs}`);
    assert.doesNotMatch(logs, /forbidden/i, 'the operator was refused something it needs');
  });
});

// ---------------------------------------------------------------------------------------------
// The rules the code needs, read from src/: every client-node call `<verb><Namespaced|Cluster>
// <Kind>[Status]` (or `<verb><Kind>ForAllNamespaces`), every informer (list and watch of its
// `resource`), and blockOwnerDeletion (update on the owner's finalizers). A call of a kind this
// table does not know fails the test, so a new kind of request is never silently ungranted.

/** group and resource of each kind the operator's API calls name. */
const KINDS: Readonly<Record<string, { group: string; resource: string }>> = {
  Pod: { group: '', resource: 'pods' },
  Lease: { group: 'coordination.k8s.io', resource: 'leases' },
  // CustomObjectsApi: the only custom resource the operator reads is its own.
  CustomObject: { group: GROUP, resource: PLURAL },
};
const INFORMER_RESOURCES: Readonly<Record<string, { group: string; resource: string }>> = {
  pods: KINDS['Pod']!,
  leases: KINDS['Lease']!,
  PLURAL: KINDS['CustomObject']!,
};
const VERBS: Readonly<Record<string, string>> = {
  read: 'get',
  get: 'get',
  list: 'list',
  create: 'create',
  replace: 'update',
  patch: 'patch',
  delete: 'delete',
};

function sourceFiles(dir: string): { path: string; text: string }[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.generated.ts'))
    .map((f) => ({ path: f, text: readFileSync(join(dir, f), 'utf8') }));
}

/** `group/resource verb`, one per permission the code needs. */
function neededBySource(): string[] {
  const needed = new Set<string>();
  const add = (group: string, resource: string, verb: string): void => {
    needed.add(`${group}/${resource} ${verb}`);
  };
  const call =
    /\.(read|get|list|create|replace|patch|delete)(?:Namespaced|Cluster)([A-Z][A-Za-z]*?)(Status)?\(|\.(list)([A-Z][A-Za-z]*?)ForAllNamespaces\(/g;
  for (const { path, text } of sourceFiles(join(REPOSITORY_ROOT, 'src'))) {
    for (const m of text.matchAll(call)) {
      const verb = VERBS[m[1] ?? m[4] ?? ''];
      const kindName = m[2] ?? m[5] ?? '';
      let kind = KINDS[kindName];
      if (kindName === 'Event') {
        // events.k8s.io/v1 or core/v1: told apart by the API class the file uses.
        const v1 = text.includes('EventsV1Api');
        assert.ok(v1 !== text.includes('CoreV1Api'), `${path}: cannot tell which Events API ${m[0]} calls`);
        kind = { group: v1 ? 'events.k8s.io' : '', resource: 'events' };
      }
      assert.ok(verb !== undefined && kind !== undefined, `${path}: ${m[0]} is not in this test's table`);
      add(kind.group, m[3] === undefined ? kind.resource : `${kind.resource}/status`, verb);
    }
    for (const m of text.matchAll(/createInformer<[^>]*>\(\{[\s\S]*?\bresource:\s*'?([A-Za-z]+)'?,/g)) {
      const kind = INFORMER_RESOURCES[m[1] ?? ''];
      assert.ok(kind !== undefined, `${path}: an informer of ${m[1] ?? '?'} is not in this test's table`);
      add(kind.group, kind.resource, 'list');
      add(kind.group, kind.resource, 'watch');
    }
    // The owner reference of a run's Pod; needs update on the job's finalizers where the
    // OwnerReferencesPermissionEnforcement admission plugin is on.
    if (/blockOwnerDeletion:\s*true/.test(text)) add(GROUP, `${PLURAL}/finalizers`, 'update');
  }
  return [...needed].sort();
}

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

function granted(kind: string, name: string): string[] {
  const docs = parseAllDocuments(readFileSync(join(REPOSITORY_ROOT, 'config/rbac/role.yaml'), 'utf8'));
  const role = docs
    .map((d) => d.toJS() as { kind?: string; metadata?: { name?: string }; rules?: Rule[] })
    .find((o) => o.kind === kind && o.metadata?.name === name);
  assert.ok(role?.rules !== undefined, `no ${kind} ${name} in config/rbac/role.yaml`);
  const out = new Set<string>();
  for (const rule of role.rules)
    for (const group of rule.apiGroups)
      for (const resource of rule.resources)
        for (const verb of rule.verbs) out.add(`${group}/${resource} ${verb}`);
  return [...out].sort();
}

describe('config/rbac against the source', () => {
  it('grants exactly the verbs src/ uses: Leases in the Role, everything else in the ClusterRole', () => {
    const needed = neededBySource();
    const lease = (p: string): boolean => p.startsWith('coordination.k8s.io/leases ');
    assert.deepEqual(
      granted('ClusterRole', 'ssj-operator'),
      needed.filter((p) => !lease(p)),
      'ClusterRole ssj-operator (actual) against what src/ calls (expected)',
    );
    assert.deepEqual(
      granted('Role', 'ssj-operator-leader-election'),
      needed.filter(lease),
      'Role ssj-operator-leader-election (actual) against what src/ calls (expected)',
    );
  });
});

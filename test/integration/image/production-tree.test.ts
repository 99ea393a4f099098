/**
 * The image's /app without a container engine (issue 8, "Dockerfile"; docs/image.md; ADR 0017):
 * the tree the Dockerfile's build stage produces from .dockerignore's build context and its own
 * RUN lines (`npm ci`, then the bundler; e2e/image/bundle.ts), in a temporary directory outside
 * the repository, made read-only, then started as uid/gid 65532 (the image's USER), first with
 * setpriv on this machine's kernel and then in a runc container with a read-only root and no
 * capabilities.
 *
 * Needs root (setpriv to another user, runc), runc (`apt-get install runc`), the local cluster with
 * the CRD (`make install`) and PostgreSQL (`make postgres`). Without any of them it fails.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  APP_IN_IMAGE,
  buildRootfs,
  ENTRYPOINT,
  IMAGE_GID,
  IMAGE_UID,
  NODE_IN_IMAGE,
  REPOSITORY_ROOT,
  writeRuncBundle,
} from '../../../e2e/image/bundle.ts';
import {
  deleteNamespace,
  kubeconfigPath,
  loadKubeConfig,
  newNamespace,
  requireCluster,
  waitFor,
} from '../../support/kube.ts';
import { createTestDatabase, type TestDatabase } from '../../support/postgres.ts';
import { bundleOperator } from '../../../src/build/bundle.ts';
import { describeExit, LoggedProcess, runToExit, type Finished } from './logged-process.ts';

interface PackageJson {
  dependencies: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(join(REPOSITORY_ROOT, 'package.json'), 'utf8')) as PackageJson;
const lock = JSON.parse(readFileSync(join(REPOSITORY_ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, unknown>;
};

/** The image's USER, with nothing else: no groups, no capabilities, no way to gain privileges. */
const AS_IMAGE_USER = [
  `--reuid=${IMAGE_UID}`,
  `--regid=${IMAGE_GID}`,
  '--clear-groups',
  '--no-new-privs',
  '--inh-caps=-all',
  '--bounding-set=-all',
  '--',
];
/** No NODE_PATH, no NODE_OPTIONS, and a HOME with no ~/.node_modules: only the tree resolves. */
const UNPRIVILEGED_ENV = { PATH: '/usr/bin:/bin', HOME: '/nonexistent', NODE_ENV: 'production' };
const KUBECONFIG_IN_CONTAINER = '/etc/ssj/kubeconfig';

let dir = '';
let rootfs = '';
let app = '';
let node = '';
let kubeconfig = '';
let installMs = 0;
const namespaces: string[] = [];
const containers: string[] = [];

function requireTool(tool: string, hint: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${tool} is not on PATH: ${hint}`);
  }
}

/** The tree's entry point started as the image's user from /app, with `args`. */
function unprivileged(args: readonly string[]): [string, string[]] {
  return ['setpriv', [...AS_IMAGE_USER, node, ...ENTRYPOINT.slice(1), ...args]];
}

/** `runc run` of a fresh bundle on the shared rootfs. */
function inContainer(args: readonly string[], command?: readonly string[]): [string, string[]] {
  const id = `ssj-image-${randomBytes(4).toString('hex')}`;
  containers.push(id);
  const bundle = join(dir, 'bundles', id);
  writeRuncBundle(bundle, {
    rootfs,
    args,
    command,
    mounts: [{ source: kubeconfig, destination: KUBECONFIG_IN_CONTAINER }],
  });
  return ['runc', ['--root', join(dir, 'runc-state'), 'run', '--bundle', bundle, id]];
}

function operatorFlags(namespace: string, kubeconfigFile: string): string[] {
  return [
    `--kubeconfig=${kubeconfigFile}`,
    `--namespace=${namespace}`,
    `--leader-election-namespace=${namespace}`,
    '--metrics-bind-address=127.0.0.1:0',
    '--health-probe-bind-address=127.0.0.1:0',
    '--leader-election-lease-duration=3s',
    '--leader-election-renew-deadline=2s',
    '--leader-election-retry-period=500ms',
  ];
}

function assertUsage(result: Finished): void {
  assert.equal(result.code, 0, `--help: ${describeExit(result)}\n${result.stdout}${result.stderr}`);
  assert.match(result.stdout, /^Usage: ssj-operator \[options\] \[command\]/);
  assert.match(result.stdout, /--leader-election-namespace <namespace>/);
  assert.match(result.stdout, /^ {2}migrate /m);
}

/**
 * Starts the operator, waits for `controller started` and for it to lead (a Lease written), asks
 * its probe and metrics servers, then SIGTERMs it and expects exit code 0.
 */
async function shortRun([command, args]: [string, string[]], env: NodeJS.ProcessEnv): Promise<string> {
  const started = performance.now();
  const op = new LoggedProcess(command, args, { cwd: app, env });
  try {
    const ready = await op.waitForLog('controller started', 60_000);
    assert.equal(ready['mode'], 'status');
    await op.waitForLog('leading', 15_000);
    const addr = (server: string): string => {
      const line = op.logs.find((l) => l.msg === 'listening' && l['server'] === server);
      assert.ok(typeof line?.['addr'] === 'string', `no "listening" line for ${server}\n${op.tail()}`);
      return line['addr'];
    };
    await waitFor(
      async () => (await fetch(`http://${addr('health')}/readyz`, { signal: AbortSignal.timeout(2000) })).ok,
      { timeoutMs: 15_000, description: '/readyz to answer 200' },
    );
    const metrics = await (await fetch(`http://${addr('metrics')}/metrics`)).text();
    assert.match(metrics, /^ssj_leader 1$/m);
    const leadingMs = performance.now() - started;
    const exit = await op.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, `SIGTERM: ${describeExit(exit)}\n${op.tail()}`);
    assert.ok(
      op.logs.some((l) => l.msg === 'stopped'),
      `no "stopped" line\n${op.tail()}`,
    );
    return `leading and ready after ${Math.round(leadingMs)} ms, exited 0 after ${Math.round(performance.now() - started)} ms`;
  } finally {
    await op.kill();
  }
}

function filesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .sort();
}

before(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error('this test runs the operator as uid 65532 (setpriv) and in runc: run it as root');
  }
  requireTool('setpriv', 'apt-get install util-linux');
  requireTool('ldd', 'apt-get install libc-bin');
  requireTool('runc', 'apt-get install runc');
  await requireCluster(loadKubeConfig());

  // Outside the repository, so that no node_modules of the repository's is above the tree.
  dir = mkdtempSync(join(tmpdir(), 'ssj-image-'));
  chmodSync(dir, 0o755);
  rootfs = join(dir, 'rootfs');
  app = join(rootfs, APP_IN_IMAGE);
  node = join(rootfs, NODE_IN_IMAGE);
  const started = performance.now();
  buildRootfs(rootfs);
  installMs = performance.now() - started;

  // The image's user reads its own copy; the repository's is root's alone (mode 600).
  mkdirSync(join(dir, 'kube'), { mode: 0o755 });
  kubeconfig = join(dir, 'kube', 'kubeconfig');
  copyFileSync(kubeconfigPath(), kubeconfig);
  chownSync(kubeconfig, IMAGE_UID, IMAGE_GID);
  chmodSync(kubeconfig, 0o400);
});

after(async () => {
  for (const id of containers) {
    try {
      execFileSync('runc', ['--root', join(dir, 'runc-state'), 'delete', '--force', id], { stdio: 'ignore' });
    } catch {
      // never created, or already gone after a clean exit
    }
  }
  if (namespaces.length > 0) {
    const kc = loadKubeConfig();
    for (const ns of namespaces) await deleteNamespace(ns, kc);
  }
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('the production tree, installed as the Dockerfile installs it', () => {
  it('holds the bundle, the migrations and the licences, and nothing else: no node_modules, no source', (t) => {
    t.diagnostic(`npm ci, the bundle and the rootfs took ${Math.round(installMs)} ms`);
    const sql = readdirSync(join(REPOSITORY_ROOT, 'src/ledger/migrations'))
      .filter((f) => f.endsWith('.sql'))
      .sort();
    assert.ok(sql.length > 0);
    assert.deepEqual(filesUnder(app), [
      'THIRD-PARTY-NOTICES.txt',
      ENTRYPOINT[1],
      ...sql.map((f) => `migrations/${f}`),
    ]);
  });

  it('is the bundle the repository builds, and it loads nothing but Node built-ins', async () => {
    const bundle = readFileSync(join(app, ENTRYPOINT[1]), 'utf8');
    // The tree's bundle was built in a fresh context and install; one that depended on the
    // repository's tree (a tsconfig.json, a file outside the context) would differ from this one.
    const repositoryBuild = mkdtempSync(join(tmpdir(), 'ssj-bundle-'));
    try {
      const built = await bundleOperator(repositoryBuild);
      assert.ok(
        readFileSync(built.outfile, 'utf8') === bundle,
        'the image bundle differs from the repository build',
      );
      const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
      // Left to Node by packages that load them only if present, inside a try: pg's native
      // binding (pg.native, never used), ws's bufferutil and utf-8-validate, debug's supports-color.
      const optional = new Set(['pg-native', 'bufferutil', 'utf-8-validate', 'supports-color']);
      const outside = built.externals.filter((s) => !builtins.has(s) && !optional.has(s));
      assert.deepEqual(outside, [], 'the bundle loads a module the image does not ship');
      assert.ok(
        built.externals.includes('node:fs'),
        `esbuild reported no imports: ${built.externals.join(', ')}`,
      );
    } finally {
      rmSync(repositoryBuild, { recursive: true, force: true });
    }
    const notices = readFileSync(join(app, 'THIRD-PARTY-NOTICES.txt'), 'utf8');
    // Every production dependency is in the bundle (one that is not belongs in devDependencies),
    // and so in the notices.
    const listed = [...notices.matchAll(/^(@?[^@\s]+)@\d\S* \(/gm)].map((m) => m[1]);
    assert.deepEqual(
      Object.keys(pkg.dependencies).filter((name) => !listed.includes(name)),
      [],
      'production dependencies missing from THIRD-PARTY-NOTICES.txt',
    );
  });

  it('sits outside the repository, under no node_modules, and uid 65532 resolves no package from it', async () => {
    assert.ok(!app.startsWith(REPOSITORY_ROOT), `${app} is inside the repository`);
    for (let p = dirname(app); ; p = dirname(p)) {
      assert.ok(!existsSync(join(p, 'node_modules')), `${p}/node_modules would be reachable from the tree`);
      if (p === dirname(p)) break;
    }
    // A package named like a builtin (punycode) resolves to the builtin, from anywhere.
    const names = Object.keys(lock.packages)
      .filter((key) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(key))
      .map((key) => key.slice('node_modules/'.length))
      .filter((name) => !builtinModules.includes(name));
    assert.ok(names.includes('pg') && names.includes('typescript'), 'the lockfile lists no package');
    // ESM resolution (the operator's) and CommonJS (with its global folders under HOME), from /app.
    const probe = `
      import { createRequire } from 'node:module';
      const require = createRequire(process.cwd() + '/');
      const out = {};
      for (const name of JSON.parse(process.argv[1])) {
        const attempt = (f) => { try { return f(name); } catch (e) { return 'error ' + e.code; } };
        out[name] = { esm: attempt((n) => import.meta.resolve(n)), cjs: attempt((n) => require.resolve(n)) };
      }
      console.log(JSON.stringify(out));`;
    const result = await runToExit(
      'setpriv',
      [...AS_IMAGE_USER, node, '--input-type=module', '-e', probe, JSON.stringify(names)],
      { cwd: app, env: UNPRIVILEGED_ENV },
    );
    assert.equal(result.code, 0, result.stderr);
    const resolved = JSON.parse(result.stdout) as Record<string, { esm: string; cjs: string }>;
    const reachable = names.filter(
      (name) =>
        resolved[name]!.esm !== 'error ERR_MODULE_NOT_FOUND' ||
        resolved[name]!.cjs !== 'error MODULE_NOT_FOUND',
    );
    assert.deepEqual(reachable, [], 'packages reachable from the tree');
  });

  it('is read-only to uid 65532, which runs with no group and no capability', async () => {
    const probe = `
      const fs = require('node:fs');
      const status = fs.readFileSync('/proc/self/status', 'utf8');
      const field = (k) => status.split('\\n').find((l) => l.startsWith(k + ':')).slice(k.length + 1).trim();
      const write = (p) => { try { fs.writeFileSync(p, 'x'); fs.rmSync(p); return 'written'; } catch (e) { return e.code; } };
      console.log(JSON.stringify({
        uid: process.getuid(), gid: process.getgid(), groups: field('Groups'),
        capEff: field('CapEff'), capPrm: field('CapPrm'), capBnd: field('CapBnd'), noNewPrivs: field('NoNewPrivs'),
        writes: process.argv.slice(1).map(write),
      }));`;
    const targets = ['probe', 'bin/probe', ENTRYPOINT[1], 'migrations/probe', 'THIRD-PARTY-NOTICES.txt'];
    const result = await runToExit('setpriv', [...AS_IMAGE_USER, node, '-e', probe, ...targets], {
      cwd: app,
      env: UNPRIVILEGED_ENV,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), {
      uid: IMAGE_UID,
      gid: IMAGE_GID,
      groups: '',
      capEff: '0000000000000000',
      capPrm: '0000000000000000',
      capBnd: '0000000000000000',
      noNewPrivs: '1',
      writes: targets.map(() => 'EACCES'),
    });
  });
});

describe('the operator started from the read-only tree as uid 65532 (setpriv)', () => {
  it('--help exits 0 with the usage text', async (t) => {
    const started = performance.now();
    const [command, args] = unprivileged(['--help']);
    assertUsage(await runToExit(command, args, { cwd: app, env: UNPRIVILEGED_ENV }));
    const ms = Math.round(performance.now() - started);
    t.diagnostic(`--help took ${ms} ms`);
  });

  it('a short run against the local cluster reaches "controller started", leads, and exits 0 on SIGTERM', async (t) => {
    const namespace = await newNamespace('image-setpriv');
    namespaces.push(namespace);
    const figures = await shortRun(unprivileged(operatorFlags(namespace, kubeconfig)), UNPRIVILEGED_ENV);
    t.diagnostic(figures);
  });

  it('`migrate` applies every migration of the repository to a fresh PostgreSQL database', async () => {
    let db: TestDatabase | undefined;
    try {
      db = await createTestDatabase('image_migrate');
      const [command, args] = unprivileged(['migrate']);
      const result = await runToExit(command, args, {
        cwd: app,
        env: { ...UNPRIVILEGED_ENV, DATABASE_URL: db.url },
      });
      assert.equal(result.code, 0, `migrate: ${describeExit(result)}\n${result.stdout}${result.stderr}`);
      const line = result.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string; applied?: unknown })
        .find((l) => l.msg === 'ledger migrations applied');
      // The repository's migrations, not the tree's: one left out of the image must fail here.
      const sql = readdirSync(join(REPOSITORY_ROOT, 'src/ledger/migrations'))
        .filter((f) => f.endsWith('.sql'))
        .sort();
      assert.ok(sql.length > 0);
      assert.deepEqual(
        line?.applied,
        sql.map((f) => f.replace(/\.sql$/, '')),
        `migrate applied ${JSON.stringify(line?.applied)}, the repository has ${sql.join(', ')}`,
      );
    } finally {
      await db?.drop();
    }
  });
});

describe('the operator in a runc container: read-only root, uid 65532, no capabilities, host network', () => {
  it('the container root is mounted read-only, its process is uid 65532 with no capability, and time zones resolve without zoneinfo files', async () => {
    const probe = `
      const fs = require('node:fs');
      const status = fs.readFileSync('/proc/self/status', 'utf8');
      const field = (k) => status.split('\\n').find((l) => l.startsWith(k + ':')).slice(k.length + 1).trim();
      const root = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\\n').map((l) => l.split(' ')).find((f) => f[4] === '/');
      const write = (p) => { try { fs.writeFileSync(p, 'x'); fs.rmSync(p); return 'written'; } catch (e) { return e.code; } };
      console.log(JSON.stringify({
        uid: process.getuid(), gid: process.getgid(), groups: field('Groups'),
        capEff: field('CapEff'), capBnd: field('CapBnd'), noNewPrivs: field('NoNewPrivs'),
        rootOptions: root[5].split(','), writes: ['/probe', '/app/bin/probe', '${KUBECONFIG_IN_CONTAINER}'].map(write),
        kubeconfigReadable: fs.readFileSync('${KUBECONFIG_IN_CONTAINER}', 'utf8').includes('server:'),
        berlinFromIcu: new Intl.DateTimeFormat('en', { timeZone: 'Europe/Berlin' }).resolvedOptions().timeZone,
      }));`;
    const [command, args] = inContainer([], [NODE_IN_IMAGE, '-e', probe]);
    const result = await runToExit(command, args, { env: process.env });
    assert.equal(result.code, 0, `${describeExit(result)}\n${result.stdout}${result.stderr}`);
    const seen = JSON.parse(result.stdout) as { rootOptions: string[] };
    assert.ok(seen.rootOptions.includes('ro'), `root mount options: ${seen.rootOptions.join(',')}`);
    assert.deepEqual(seen, {
      uid: IMAGE_UID,
      gid: IMAGE_GID,
      groups: '',
      capEff: '0000000000000000',
      capBnd: '0000000000000000',
      noNewPrivs: '1',
      rootOptions: seen.rootOptions,
      writes: ['EROFS', 'EROFS', 'EROFS'],
      kubeconfigReadable: true,
      // Schedules' time zones come from Node's ICU: the rootfs has no /usr/share/zoneinfo.
      berlinFromIcu: 'Europe/Berlin',
    });
  });

  it('--help exits 0 with the usage text', async (t) => {
    const started = performance.now();
    const [command, args] = inContainer(['--help']);
    assertUsage(await runToExit(command, args, { env: process.env }));
    const ms = Math.round(performance.now() - started);
    t.diagnostic(`runc --help took ${ms} ms`);
  });

  it('a short run against the local cluster reaches "controller started", leads, and exits 0 on SIGTERM', async (t) => {
    const namespace = await newNamespace('image-runc');
    namespaces.push(namespace);
    const figures = await shortRun(
      inContainer(operatorFlags(namespace, KUBECONFIG_IN_CONTAINER)),
      process.env,
    );
    t.diagnostic(figures);
  });
});

/**
 * The operator's image without a container engine: the tree the Dockerfile puts in /app,
 * installed from the Dockerfile's own instructions, and an OCI bundle that runc runs it in.
 *
 * Guarantees:
 * - `productionTree(app)`: `app/` holds what the image's /app holds. The files .dockerignore lets
 *   into the build context are copied to a temporary folder; the build stage's own `RUN` lines
 *   (read from the Dockerfile: `npm ci`, with npm's default cache, ~/.npm, so a rerun downloads
 *   nothing, then the bundler) run there; `app/` receives the folder the final stage copies out
 *   of it (the bundle, the migrations, the licences). Nothing comes from the repository's
 *   node_modules or dist/.
 * - `buildRootfs(dir)`: `dir/app` (the tree above), `dir/nodejs/bin/node` (the Node 24 binary
 *   running this code, at the path distroless uses) and the shared libraries `ldd` lists for it.
 *   Every file is then read-only for everyone and readable by everyone (`chmod -R a+rX,a-w`).
 * - `writeRuncBundle(dir, ...)`: `runc spec`, edited to a read-only root, uid/gid 65532 with no
 *   supplementary groups, no capabilities at all, no new privileges, and the host's network
 *   namespace, so 127.0.0.1 is the host's loopback, where the local API server listens. Further
 *   read-only bind mounts (a kubeconfig) as asked.
 *
 * Not guaranteed:
 * - That `docker build` produces these bytes: the image's Node binary and libraries come from
 *   distroless, not from this machine.
 * - BuildKit's .dockerignore semantics in full: only what this repository's file uses (`*`, `**`,
 *   `?`, `!`, last match wins, a rule on a folder covers what is inside). A rule using anything
 *   else (`[...]`, `\`) is refused rather than misread.
 * - A seccomp profile: runc's default spec has none (Kubernetes' RuntimeDefault would add one).
 *
 * CLI, for a look by hand (as root):
 *   e2e/toolchain/node e2e/image/bundle.ts <dir> [operator flags...]
 *   runc run --bundle <dir> ssj-try
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLE_PATH } from '../../src/build/bundle.ts';

export const REPOSITORY_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The image's `USER`: distroless's `nonroot`. */
export const IMAGE_UID = 65532;
export const IMAGE_GID = 65532;
/** Where the image (distroless) keeps Node, and where the rootfs does. */
export const NODE_IN_IMAGE = '/nodejs/bin/node';
/** The image's WORKDIR. */
export const APP_IN_IMAGE = '/app';
/** The image's ENTRYPOINT: Node and the bundle, relative to WORKDIR. */
export const ENTRYPOINT = [NODE_IN_IMAGE, BUNDLE_PATH] as const;

/** A Dockerfile's instructions, comments and blank lines left out, each on one line. */
function instructions(dockerfile: string): string[] {
  return dockerfile
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

export interface BuildStage {
  /** The argv of each `RUN` of the build stage, in order. */
  readonly runs: string[][];
  /** Its WORKDIR. */
  readonly workdir: string;
  /** What the final stage copies from it (`COPY --from=<stage> <from> ./`), absolute in the stage. */
  readonly output: string;
}

/**
 * The Dockerfile's build stage (the first `FROM ... AS <name>`) and what the final stage takes
 * from it. Throws on what this file could not carry out faithfully: a RUN that needs a shell, no
 * WORKDIR, or anything but one `COPY --from=<name> <dir> ./` in the final stage.
 */
export function dockerfileBuildStage(dockerfile: string): BuildStage {
  const lines = instructions(dockerfile);
  const froms = lines.flatMap((l, i) => (/^FROM\s/i.test(l) ? [i] : []));
  const [first, last] = [froms[0], froms.at(-1)];
  const name = first === undefined ? undefined : /\sAS\s+(\S+)$/i.exec(lines[first]!)?.[1];
  if (first === undefined || last === undefined || first === last || name === undefined) {
    throw new Error('expected a named build stage (FROM ... AS <name>) and a final stage');
  }
  const stage = lines.slice(first + 1, froms[1]);
  const workdir = stage.find((l) => /^WORKDIR\s/i.test(l))?.replace(/^WORKDIR\s+/i, '');
  if (workdir === undefined) throw new Error(`the build stage ${name} sets no WORKDIR`);
  const runs = stage
    .filter((l) => /^RUN\s/i.test(l))
    .map((line) => {
      const command = line.replace(/^RUN\s+/i, '').trim();
      // Run without a shell here: a line that needs one would not mean the same thing.
      if (/["'`$&|;<>()\\]/.test(command))
        throw new Error(`a RUN of the build stage needs a shell: ${command}`);
      return command.split(/\s+/);
    });
  const copies = lines.slice(last + 1).filter((l) => /^COPY\s/i.test(l));
  const copy =
    copies.length === 1
      ? new RegExp(`^COPY\\s+--from=${name}\\s+(/\\S+)\\s+\\./$`, 'i').exec(copies[0]!)
      : null;
  if (copy?.[1] === undefined) {
    throw new Error(
      `expected the final stage to copy one folder of ${name} into WORKDIR, found: ${copies.join('; ')}`,
    );
  }
  return { runs, workdir, output: copy[1] };
}

export interface IgnoreRule {
  readonly pattern: RegExp;
  readonly include: boolean;
  readonly source: string;
}

export function dockerignoreRules(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const include = line.startsWith('!');
    const glob = (include ? line.slice(1) : line).replace(/^\/+/, '').replace(/\/+$/, '');
    if (/[[\]\\]/.test(glob)) throw new Error(`.dockerignore rule not supported here: ${line}`);
    const body = glob
      .split(/(\*\*\/|\*\*|\*|\?)/)
      .map((part) => {
        switch (part) {
          case '**/':
            return '(?:.*/)?';
          case '**':
            return '.*';
          case '*':
            return '[^/]*';
          case '?':
            return '[^/]';
          default:
            return part.replace(/[.+^${}()|]/g, '\\$&');
        }
      })
      .join('');
    rules.push({ pattern: new RegExp(`^${body}$`), include, source: line });
  }
  return rules;
}

/** Whether `path` (relative to the context, with `/`) is in the build context. */
export function inContext(path: string, rules: readonly IgnoreRule[]): boolean {
  const parts = path.split('/');
  const selfAndParents = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let included = true;
  for (const rule of rules) {
    if (selfAndParents.some((p) => rule.pattern.test(p))) included = rule.include;
  }
  return included;
}

function filesUnder(root: string, dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return filesUnder(root, path);
    return entry.isFile() ? [path] : [];
  });
}

/** The build context: the files .dockerignore lets in (package.json, the lockfile, src/). */
export function buildContextFiles(repo = REPOSITORY_ROOT): string[] {
  const rules = dockerignoreRules(readFileSync(join(repo, '.dockerignore'), 'utf8'));
  const files = [
    ...['package.json', 'package-lock.json'].filter((f) => existsSync(join(repo, f))),
    ...filesUnder(repo, 'src'),
  ];
  return files.filter((path) => inContext(path, rules)).sort();
}

function copyInto(repo: string, target: string, path: string): void {
  mkdirSync(dirname(join(target, path)), { recursive: true });
  copyFileSync(join(repo, path), join(target, path));
}

/**
 * Installs into `app` what the image's /app holds: the build context in a temporary folder
 * outside `app`, each RUN of the build stage run there (npm with its default cache, ~/.npm, so a
 * rerun downloads nothing), then what the final stage copies out of it. The folder is removed.
 */
export function productionTree(app: string, repo = REPOSITORY_ROOT): void {
  const stage = dockerfileBuildStage(readFileSync(join(repo, 'Dockerfile'), 'utf8'));
  const build = mkdtempSync(join(tmpdir(), 'ssj-image-build-'));
  try {
    for (const file of buildContextFiles(repo)) copyInto(repo, build, file);
    for (const [command, ...args] of stage.runs) {
      try {
        // `node` and npm's `#!/usr/bin/env node` then start this Node 24, whatever PATH has first.
        execFileSync(command ?? 'true', args, {
          cwd: build,
          env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}` },
          stdio: ['ignore', 'pipe', 'pipe'],
          encoding: 'utf8',
        });
      } catch (error) {
        const e = error as { stdout?: string; stderr?: string; message: string };
        throw new Error(
          `${[command, ...args].join(' ')} failed in ${build}: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`,
          { cause: error },
        );
      }
    }
    const output = join(build, relative(stage.workdir, stage.output));
    cpSync(output, app, { recursive: true });
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
}

/** The shared libraries the dynamic linker loads for `binary`, as absolute host paths. */
export function sharedLibraries(binary: string): string[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const libs = [...out.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
  if (libs.length === 0) throw new Error(`ldd listed no libraries for ${binary}:\n${out}`);
  return libs;
}

/** `dir/app`, `dir/nodejs/bin/node` and its libraries, all read-only (see the top of this file). */
export function buildRootfs(dir: string, node = process.execPath, repo = REPOSITORY_ROOT): void {
  productionTree(join(dir, APP_IN_IMAGE), repo);
  const target = join(dir, NODE_IN_IMAGE);
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(node, target);
  for (const lib of sharedLibraries(node)) {
    mkdirSync(join(dir, dirname(lib)), { recursive: true });
    copyFileSync(lib, join(dir, lib));
  }
  chmodSync(target, 0o755);
  execFileSync('chmod', ['-R', 'a+rX,a-w', dir]);
}

export interface BindMount {
  readonly source: string;
  readonly destination: string;
}

export interface RuncBundleOptions {
  /** The rootfs (absolute, or relative to the bundle). */
  readonly rootfs: string;
  /** The operator's flags: the process is `ENTRYPOINT <args>` in /app, as the image runs it. */
  readonly args: readonly string[];
  /** Read-only bind mounts. */
  readonly mounts?: readonly BindMount[];
  /** Replaces ENTRYPOINT (a probe of the container itself). */
  readonly command?: readonly string[];
}

interface OciMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

/** The fields of `runc spec`'s config.json this file edits; the rest is kept as runc wrote it. */
interface OciSpec {
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient', string[]>;
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  linux: { namespaces: { type: string }[] };
}

/** Writes `dir/config.json` (see the top of this file); returns the spec written. */
export function writeRuncBundle(dir: string, options: RuncBundleOptions): OciSpec {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'config.json');
  rmSync(file, { force: true });
  execFileSync('runc', ['spec', '--bundle', dir]);
  const spec = JSON.parse(readFileSync(file, 'utf8')) as OciSpec;
  const none: string[] = [];
  spec.process = {
    ...spec.process,
    terminal: false,
    user: { uid: IMAGE_UID, gid: IMAGE_GID, additionalGids: [] },
    args: [...(options.command ?? ENTRYPOINT), ...options.args],
    // The image's environment: distroless sets PATH and HOME, the Dockerfile NODE_ENV.
    env: [`PATH=${dirname(NODE_IN_IMAGE)}:/usr/bin:/bin`, 'HOME=/home/nonroot', 'NODE_ENV=production'],
    cwd: APP_IN_IMAGE,
    capabilities: { bounding: none, effective: none, inheritable: none, permitted: none, ambient: none },
    noNewPrivileges: true,
  };
  spec.root = { path: resolve(dir, options.rootfs), readonly: true };
  spec.hostname = 'ssj-operator';
  spec.mounts.push(
    ...(options.mounts ?? []).map((m) => ({
      destination: m.destination,
      type: 'bind',
      source: resolve(m.source),
      options: ['bind', 'ro', 'nosuid', 'nodev', 'noexec'],
    })),
  );
  // The host's network namespace: the local API server listens on the host's 127.0.0.1.
  spec.linux.namespaces = spec.linux.namespaces.filter((ns) => ns.type !== 'network');
  writeFileSync(file, `${JSON.stringify(spec, null, 2)}\n`);
  return spec;
}

if (import.meta.main) {
  const [dir, ...args] = process.argv.slice(2);
  if (dir === undefined) {
    process.stderr.write('usage: bundle.ts <dir> [operator flags...]\n');
    process.exit(2);
  }
  buildRootfs(join(dir, 'rootfs'));
  writeRuncBundle(dir, { rootfs: 'rootfs', args });
  process.stdout.write(`${relative(process.cwd(), join(dir, 'config.json'))}\n`);
}

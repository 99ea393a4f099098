/**
 * The operator's image for the local node, without a container engine: the root filesystem
 * e2e/image/bundle.ts builds from the Dockerfile's own instructions (the production tree, Node 24
 * and its libraries), packed by umoci as an OCI archive whose configuration is the Dockerfile's
 * final stage (ENV, WORKDIR, USER, EXPOSE, ENTRYPOINT, CMD). e2e/node/operator-image.sh imports it.
 *
 * Guarantees:
 * - `finalStageConfig(dockerfile)` reads those instructions of the last `FROM` stage, and throws
 *   on one it cannot read (a shell-form ENTRYPOINT, say) rather than pack something else.
 * - The archive holds one layer, owned by root and read-only, and one tag, `latest`.
 *
 * Not guaranteed: the bytes `docker build` would produce (docs/image.md says why: distroless's
 * Node and libraries are not this machine's).
 *
 * CLI (as root): e2e/toolchain/node e2e/node/operator-image.ts <umoci> <out.tar>
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRootfs, REPOSITORY_ROOT } from '../image/bundle.ts';

export interface ImageConfig {
  readonly env: readonly string[];
  readonly workingDir?: string | undefined;
  readonly user?: string | undefined;
  readonly exposedPorts: readonly string[];
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
}

function execForm(instruction: string, value: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) {
    throw new Error(`${instruction} must be in exec form (a JSON array of strings): ${value}`);
  }
  return parsed;
}

export function finalStageConfig(dockerfile: string): ImageConfig {
  const lines = dockerfile
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const last = lines.map((l) => /^FROM\s/i.test(l)).lastIndexOf(true);
  if (last < 0) throw new Error('the Dockerfile has no FROM');
  const env: string[] = [];
  const exposedPorts: string[] = [];
  let workingDir: string | undefined;
  let user: string | undefined;
  let entrypoint: string[] = [];
  let cmd: string[] = [];
  for (const line of lines.slice(last + 1)) {
    const [, instruction = '', rest = ''] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
    switch (instruction.toUpperCase()) {
      case 'ENV':
        if (!/^[A-Za-z_][A-Za-z0-9_]*=\S*$/.test(rest)) throw new Error(`ENV must be one KEY=value: ${line}`);
        env.push(rest);
        break;
      case 'WORKDIR':
        workingDir = rest;
        break;
      case 'USER':
        user = rest;
        break;
      case 'EXPOSE':
        exposedPorts.push(...rest.split(/\s+/).map((p) => (p.includes('/') ? p : `${p}/tcp`)));
        break;
      case 'ENTRYPOINT':
        entrypoint = execForm('ENTRYPOINT', rest);
        break;
      case 'CMD':
        cmd = execForm('CMD', rest);
        break;
      case 'COPY':
      case 'ARG':
      case 'LABEL':
        break;
      default:
        throw new Error(`the final stage has an instruction this build does not carry out: ${line}`);
    }
  }
  return { env, workingDir, user, exposedPorts, entrypoint, cmd };
}

/** umoci's flags for `umoci config` that set `config`. */
export function umociConfigFlags(config: ImageConfig): string[] {
  const flags = [
    '--os',
    'linux',
    '--architecture',
    'amd64',
    '--author',
    'ssj-operator e2e/node/operator-image.ts',
  ];
  for (const e of config.env) flags.push('--config.env', e);
  if (config.workingDir !== undefined) flags.push('--config.workingdir', config.workingDir);
  if (config.user !== undefined) flags.push('--config.user', config.user);
  for (const p of config.exposedPorts) flags.push('--config.exposedports', p);
  for (const a of config.entrypoint) flags.push('--config.entrypoint', a);
  for (const a of config.cmd) flags.push('--config.cmd', a);
  return flags;
}

export function packOperatorImage(umoci: string, out: string, repo = REPOSITORY_ROOT): void {
  const work = mkdtempSync(join(tmpdir(), 'ssj-operator-image-'));
  try {
    const rootfs = join(work, 'rootfs');
    buildRootfs(rootfs, process.execPath, repo);
    const layout = join(work, 'layout');
    const image = `${layout}:latest`;
    const run = (...args: string[]) => execFileSync(umoci, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    run('init', '--layout', layout);
    run('new', '--image', image);
    run('insert', '--image', image, rootfs, '/');
    run(
      'config',
      '--image',
      image,
      ...umociConfigFlags(finalStageConfig(readFileSync(join(repo, 'Dockerfile'), 'utf8'))),
    );
    run('gc', '--layout', layout);
    execFileSync('tar', ['-C', layout, '-cf', out, '.']);
  } finally {
    execFileSync('chmod', ['-R', 'u+w', work]);
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const [umoci, out] = process.argv.slice(2);
  if (umoci === undefined || out === undefined) {
    process.stderr.write('usage: operator-image.ts <umoci> <out.tar>\n');
    process.exit(2);
  }
  packOperatorImage(umoci, out);
}

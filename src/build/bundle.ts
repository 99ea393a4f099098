/**
 * The operator as the image runs it: one ES module bundled by esbuild from src/main.ts, and the
 * ledger's migrations beside it (ADR 0017).
 *
 * Guarantees:
 * - `dist/bin/ssj-operator.mjs`: src/main.ts and every module it reaches, dependencies included,
 *   tree-shaken. client-node's index loads all 1,001 of its generated modules (ADR 0013); the
 *   bundle keeps the API classes and models the operator reaches, so V8 holds a quarter of the
 *   source, and no TypeScript is stripped at start.
 * - `dist/migrations/*.sql`: the files of src/ledger/migrations/. migrate.ts finds them at
 *   `../migrations/` from its own module, which in the bundle is dist/bin/.
 * - Function and class names are kept (`keepNames`), so stack traces and `error.name` read as in
 *   the source; whitespace is removed, identifiers are not renamed.
 * - `dist/THIRD-PARTY-NOTICES.txt`: name, version, licence and licence text of every package
 *   whose code is in the bundle (their licences ask that the notice travel with the code).
 * - Fails when esbuild reports an error or a warning (a dynamic require it cannot follow, say).
 *
 * CLI: e2e/toolchain/node src/build/bundle.ts [outdir]   (default: dist/ under the repository)
 */
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPOSITORY_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BUNDLE_PATH = 'bin/ssj-operator.mjs';

export interface Bundle {
  /** The bundle's path. */
  readonly outfile: string;
  /** The modules it leaves to Node at run time (`import`, `require()`), as esbuild found them. */
  readonly externals: readonly string[];
}

export async function bundleOperator(outdir = join(REPOSITORY_ROOT, 'dist')): Promise<Bundle> {
  rmSync(outdir, { recursive: true, force: true });
  const outfile = join(outdir, BUNDLE_PATH);
  const result = await build({
    // Module paths in the bundle and the metafile are relative to this, whatever the caller's cwd.
    absWorkingDir: REPOSITORY_ROOT,
    entryPoints: [join(REPOSITORY_ROOT, 'src/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    minifyWhitespace: true,
    minifySyntax: true,
    keepNames: true,
    legalComments: 'none',
    metafile: true,
    // pg's optional native binding; pg requires it only when asked to (`pg.native`).
    external: ['pg-native'],
    // Bundled CommonJS packages call require() for Node's built-ins, which an ES module lacks.
    banner: {
      js: "import { createRequire as __ssjRequire } from 'node:module'; const require = __ssjRequire(import.meta.url);",
    },
    // Pinned as tsconfig.json reads them: the image's build context has no tsconfig.json, and a
    // setting esbuild reads from it (class fields, import elision) must not differ between the two
    // builds. With today's tsconfig.json the bundle is the same without this line (checked).
    tsconfigRaw: { compilerOptions: { target: 'es2024', verbatimModuleSyntax: true } },
    logLevel: 'silent',
  });
  const problems = [...result.errors, ...result.warnings];
  if (problems.length > 0) {
    throw new Error(`esbuild: ${problems.map((p) => `${p.location?.file ?? ''}: ${p.text}`).join('\n')}`);
  }
  writeFileSync(join(outdir, 'THIRD-PARTY-NOTICES.txt'), notices(Object.keys(result.metafile.inputs)));
  const migrations = join(REPOSITORY_ROOT, 'src/ledger/migrations');
  mkdirSync(join(outdir, 'migrations'));
  for (const file of readdirSync(migrations).filter((f) => f.endsWith('.sql'))) {
    copyFileSync(join(migrations, file), join(outdir, 'migrations', file));
  }
  const output = Object.values(result.metafile.outputs).find((o) => o.entryPoint !== undefined);
  const externals = (output?.imports ?? []).filter((i) => i.external).map((i) => i.path);
  return { outfile, externals: [...new Set(externals)].sort() };
}

/** The folders of the packages among esbuild's inputs (paths relative to `absWorkingDir`). */
function packageFolders(inputs: readonly string[]): string[] {
  const folders = new Set<string>();
  for (const input of inputs) {
    const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (match?.[1] !== undefined) folders.add(match[1]);
  }
  return [...folders].sort();
}

function notices(inputs: readonly string[]): string {
  const parts = packageFolders(inputs).map((folder) => {
    const dir = join(REPOSITORY_ROOT, folder);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      name: string;
      version: string;
      license?: string;
    };
    const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
    const text =
      file === undefined
        ? '(the package ships no licence file)'
        : readFileSync(join(dir, file), 'utf8').trim();
    return `${pkg.name}@${pkg.version} (${pkg.license ?? 'no licence field'})\n\n${text}\n`;
  });
  return `The operator's bundle (${BUNDLE_PATH}) contains code of these packages.\n\n${parts.join('\n---\n\n')}`;
}

if (import.meta.main) {
  const outdir = process.argv[2];
  const bundle = await bundleOperator(outdir === undefined ? undefined : resolve(outdir));
  process.stdout.write(`${bundle.outfile}\n`);
}

/**
 * promtool as the observability tests run it: the pinned build that e2e/toolchain/go-tool.sh
 * caches (built from the Go module proxy on first use, once per machine).
 *
 * Guarantees:
 * - `promtool(args)` resolves with the exit code and output of one run, whatever the code; the
 *   caller asserts on it, so a failing check shows promtool's own message.
 * - A promtool that cannot be built or found rejects with go-tool.sh's output: the test that
 *   needed it fails, it never skips.
 *
 * Does not give: a timeout of its own for the first build (minutes on 2 cores); the test
 * runner's timeout bounds it.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPOSITORY_ROOT } from '../../support/kube.ts';

const execFileAsync = promisify(execFile);

let path: Promise<string> | undefined;

export function promtoolPath(): Promise<string> {
  path ??= execFileAsync(join(REPOSITORY_ROOT, 'e2e/toolchain/go-tool.sh'), ['promtool'], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  }).then(
    ({ stdout }) => {
      const binary = stdout.trim().split('\n').at(-1) ?? '';
      if (binary === '') throw new Error('e2e/toolchain/go-tool.sh promtool printed no path');
      return binary;
    },
    (error: unknown) => {
      const detail =
        typeof error === 'object' && error !== null && 'stderr' in error
          ? String(error.stderr)
          : String(error);
      throw new Error(`promtool could not be built by e2e/toolchain/go-tool.sh promtool:\n${detail}`, {
        cause: error,
      });
    },
  );
  return path;
}

export interface PromtoolRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function promtool(args: readonly string[], cwd: string): Promise<PromtoolRun> {
  const binary = await promtoolPath();
  try {
    const { stdout, stderr } = await execFileAsync(binary, args, { cwd, encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (error) {
    if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'number') {
      // execFile with an encoding rejects with the output as strings beside the exit code.
      const out = error as { code: number; stdout?: string; stderr?: string };
      return { code: out.code, stdout: out.stdout ?? '', stderr: out.stderr ?? '' };
    }
    throw error;
  }
}

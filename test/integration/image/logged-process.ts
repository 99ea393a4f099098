/**
 * A child process whose stdout is the operator's JSON log, for tests that start the operator
 * some other way than e2e/support/operator.ts does (another user, another Node, a container).
 *
 * Guarantees:
 * - `waitForLog(msg)` resolves with the first line whose `msg` is `msg`; it rejects, with the
 *   last lines and stderr, when the process exits first or the deadline passes.
 * - `stop()` sends SIGTERM and resolves with the exit; it SIGKILLs at the deadline and rejects.
 * - Every process still running when the test process exits is SIGKILLed.
 * - `runToExit()` runs a command to its end and returns its exit code and output.
 *
 * Not guaranteed: that a SIGKILL reaches what the child started (runc's container is ended by
 * `runc delete --force`, which the caller runs).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describeExit, parseLogLine, type ExitResult, type LogLine } from '../../../e2e/support/operator.ts';

export { describeExit };
export type Exit = ExitResult;

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export class LoggedProcess {
  readonly logs: LogLine[] = [];
  private stderrText = '';
  private exitResult: Exit | undefined;
  private readonly child: ChildProcess;
  private readonly exitPromise: Promise<Exit>;
  private readonly waiters = new Set<() => void>();

  constructor(command: string, args: readonly string[], options: SpawnOptions) {
    this.child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(this.child);
    this.exitPromise = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        running.delete(this.child);
        this.exitResult = { code, signal };
        this.notify();
        resolve(this.exitResult);
      });
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.logs.push(parseLogLine(line));
      this.notify();
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (chunk: string) => {
      this.stderrText += chunk;
    });
  }

  get exited(): Exit | undefined {
    return this.exitResult;
  }

  async waitForLog(msg: string, timeoutMs: number): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logs.find((l) => l.msg === msg);
      if (found !== undefined) return found;
      if (this.exitResult !== undefined) {
        throw new Error(
          `the process exited (${describeExit(this.exitResult)}) before "${msg}"\n${this.tail()}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no "${msg}" within ${timeoutMs} ms\n${this.tail()}`);
      await this.changed(left);
    }
  }

  /** SIGTERM, then the exit; SIGKILL and a rejection if it does not come within `timeoutMs`. */
  async stop(timeoutMs = 25_000): Promise<Exit> {
    if (this.exitResult !== undefined) return this.exitResult;
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => {
        resolve('late');
      }, timeoutMs);
    });
    const result = await Promise.race([this.exitPromise, late]);
    clearTimeout(timer);
    if (result === 'late') {
      this.child.kill('SIGKILL');
      await this.exitPromise;
      throw new Error(`no exit within ${timeoutMs} ms of SIGTERM\n${this.tail()}`);
    }
    return result;
  }

  async kill(): Promise<Exit> {
    if (this.exitResult !== undefined) return this.exitResult;
    this.child.kill('SIGKILL');
    return this.exitPromise;
  }

  tail(lines = 20): string {
    const out = this.logs
      .slice(-lines)
      .map((l) => JSON.stringify(l).slice(0, 400))
      .join('\n');
    const err = this.stderrText.trim() === '' ? '' : `\nstderr:\n${this.stderrText.slice(-2000)}`;
    return `last ${lines} log lines:\n${out}${err}`;
  }

  private notify(): void {
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  private changed(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.waiters;
      const timer = setTimeout(done, Math.min(timeoutMs, 1000));
      function done(): void {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }
}

export interface Finished extends Exit {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end (SIGKILL at the deadline, then a rejection). */
export function runToExit(
  command: string,
  args: readonly string[],
  options: SpawnOptions,
  timeoutMs = 60_000,
): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} ran longer than ${timeoutMs} ms\n${stdout}${stderr}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      running.delete(child);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

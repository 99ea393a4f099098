// onShutdown in a real child process: real signals, real process.exit.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const src = resolve(import.meta.dirname, '../../../src/observability');

const program = `
import { onShutdown } from ${JSON.stringify(join(src, 'shutdown.ts'))};
import { newLogger } from ${JSON.stringify(join(src, 'log.ts'))};
const mode = process.argv[2];
onShutdown(
  ['SIGTERM', 'SIGINT'],
  () => (mode === 'hang' ? new Promise(() => {}) : new Promise((done) => setTimeout(done, mode === 'slow' ? 60_000 : 10))),
  { logger: newLogger('info'), timeoutMs: mode === 'hang' ? 100 : 20_000 },
);
process.stdout.write('ready\\n');
setInterval(() => {}, 1_000);
`;

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

async function start(script: string, mode: string): Promise<Run> {
  const child = spawn(process.execPath, [script, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const exited = new Promise<number | null>((done) => {
    child.once('exit', (code) => {
      done(code);
    });
  });
  await new Promise<void>((ready, fail) => {
    const deadline = setTimeout(() => {
      fail(new Error(`child did not start: ${out}`));
    }, 10_000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('ready\n')) {
        clearTimeout(deadline);
        ready();
      }
    });
  });
  return { child, output: () => out, exited };
}

describe('onShutdown in a real process', () => {
  let dir: string;
  let script: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssj-shutdown-'));
    script = join(dir, 'program.ts');
    await writeFile(script, program);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('exits 0 after SIGTERM once the handler is done, logging as JSON', async () => {
    const run = await start(script, 'quick');
    run.child.kill('SIGTERM');
    assert.equal(await run.exited, 0);
    const messages = run
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
    assert.deepEqual(messages, ['shutting down', 'shut down']);
  });

  it('exits 1 on a second signal while the handler still runs', async () => {
    const run = await start(script, 'slow');
    run.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 100));
    run.child.kill('SIGINT');
    assert.equal(await run.exited, 1);
  });

  it('exits 1 when the handler outlives its time box', async () => {
    const run = await start(script, 'hang');
    run.child.kill('SIGTERM');
    assert.equal(await run.exited, 1);
    assert.match(run.output(), /"msg":"shutdown timed out"/);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';

import { onShutdown } from '../../../src/observability/shutdown.ts';

function harness() {
  const source = new EventEmitter();
  const exits: number[] = [];
  let exited: (code: number) => void = () => undefined;
  const exitedOnce = new Promise<number>((resolve) => {
    exited = resolve;
  });
  const exit = (code: number): void => {
    exits.push(code);
    exited(code);
  };
  return { source, exits, exit, exitedOnce };
}

describe('onShutdown', () => {
  it('runs the handler once on the first signal, then exits 0', async () => {
    const h = harness();
    const calls: string[] = [];
    onShutdown(
      ['SIGTERM', 'SIGINT'],
      (signal) => {
        calls.push(signal);
        return Promise.resolve();
      },
      { source: h.source, exit: h.exit },
    );
    h.source.emit('SIGTERM', 'SIGTERM');
    assert.equal(await h.exitedOnce, 0);
    assert.deepEqual(calls, ['SIGTERM']);
  });

  it('exits 1 at once on a second signal while the handler still runs', async () => {
    const h = harness();
    let finish: () => void = () => undefined;
    let calls = 0;
    onShutdown(
      ['SIGTERM', 'SIGINT'],
      () => {
        calls++;
        return new Promise<void>((resolve) => {
          finish = resolve;
        });
      },
      { source: h.source, exit: h.exit },
    );
    h.source.emit('SIGINT', 'SIGINT');
    h.source.emit('SIGINT', 'SIGINT');
    assert.equal(await h.exitedOnce, 1);
    assert.equal(calls, 1);
    finish();
  });

  it('exits 1 when the handler outlives its time box', async () => {
    const h = harness();
    onShutdown(['SIGTERM'], () => new Promise<void>(() => undefined), {
      source: h.source,
      exit: h.exit,
      timeoutMs: 20,
    });
    h.source.emit('SIGTERM', 'SIGTERM');
    assert.equal(await h.exitedOnce, 1);
  });

  it('exits 1 when the handler fails', async () => {
    const h = harness();
    onShutdown(['SIGTERM'], () => Promise.reject(new Error('pool close failed')), {
      source: h.source,
      exit: h.exit,
    });
    h.source.emit('SIGTERM', 'SIGTERM');
    assert.equal(await h.exitedOnce, 1);
  });

  it('stops listening when unregistered', () => {
    const h = harness();
    const off = onShutdown(['SIGTERM', 'SIGINT'], () => Promise.resolve(), {
      source: h.source,
      exit: h.exit,
    });
    assert.equal(h.source.listenerCount('SIGTERM'), 1);
    off();
    assert.equal(h.source.listenerCount('SIGTERM') + h.source.listenerCount('SIGINT'), 0);
  });
});

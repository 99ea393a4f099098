import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import type { BindAddress } from '../../../src/config/address.ts';
import { newMetrics } from '../../../src/observability/metrics.ts';
import { type Logger, nopLogger } from '../../../src/observability/log.ts';
import { type CheckResult, newHealthServer, newMetricsServer } from '../../../src/observability/server.ts';

const loopback: BindAddress = { host: '127.0.0.1', port: 0 };

async function get(
  addr: BindAddress,
  path: string,
  method = 'GET',
): Promise<{ status: number; body: string; type: string }> {
  const res = await fetch(`http://${addr.host}:${addr.port}${path}`, { method });
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') ?? '' };
}

describe('health server on a real socket', () => {
  const health = newHealthServer({ bind: loopback, logger: nopLogger, checkTimeoutMs: 200 });
  let informersSynced: CheckResult = { ok: false, reason: 'informers not synced: pods' };
  health.addReadyCheck('informers', () => informersSynced);
  health.addReadyCheck('ledger', () => Promise.resolve({ ok: true }));
  health.addHealthCheck('elector', () => ({ ok: true }));
  let addr: BindAddress;

  before(async () => {
    addr = await health.listen();
  });
  after(async () => {
    await health.close();
  });

  it('binds port 0 to a real free port and reports it', () => {
    assert.equal(addr.host, '127.0.0.1');
    assert.ok(addr.port > 0);
  });

  it('answers /healthz 200 ok while every liveness check passes', async () => {
    assert.deepEqual(await get(addr, '/healthz'), {
      status: 200,
      body: 'ok',
      type: 'text/plain; charset=utf-8',
    });
    assert.equal((await get(addr, '/livez')).status, 200);
  });

  it('answers /readyz 503 naming the failing check and its reason, then 200 once it passes', async () => {
    const failing = await get(addr, '/readyz');
    assert.equal(failing.status, 503);
    assert.equal(failing.body, '[-]informers failed: informers not synced: pods\nreadyz check failed\n');
    informersSynced = { ok: true };
    assert.deepEqual((await get(addr, '/readyz')).status, 200);
    informersSynced = { ok: false, reason: 'informers not synced: pods' };
  });

  it('lists every check with ?verbose, as the API server does', async () => {
    const verbose = await get(addr, '/readyz?verbose');
    assert.equal(verbose.status, 503);
    assert.equal(
      verbose.body,
      '[+]ping ok\n[-]informers failed: informers not synced: pods\n[+]ledger ok\nreadyz check failed\n',
    );
    const live = await get(addr, '/healthz?verbose');
    assert.equal(live.body, '[+]ping ok\n[+]elector ok\nhealthz check passed\n');
  });

  it('runs one check by name, and skips excluded ones', async () => {
    assert.equal((await get(addr, '/readyz/ledger')).status, 200);
    assert.equal((await get(addr, '/readyz/informers')).status, 503);
    assert.equal((await get(addr, '/readyz/nope')).status, 404);
    assert.equal((await get(addr, '/readyz?exclude=informers')).status, 200);
  });

  it('fails a check that throws or hangs, with the reason, without failing the server', async () => {
    const h = newHealthServer({ bind: loopback, logger: nopLogger, checkTimeoutMs: 50 });
    h.addReadyCheck('throws', () => {
      throw new Error('lease not observed');
    });
    h.addReadyCheck('hangs', () => new Promise<CheckResult>(() => undefined));
    const a = await h.listen();
    try {
      const res = await get(a, '/readyz');
      assert.equal(res.status, 503);
      assert.match(res.body, /^\[-\]throws failed: lease not observed$/m);
      assert.match(res.body, /^\[-\]hangs failed: timed out after 50 ms$/m);
      assert.equal((await get(a, '/healthz')).status, 200);
    } finally {
      await h.close();
    }
  });

  it('refuses a check registered twice under one name', () => {
    assert.throws(() => {
      health.addReadyCheck('ledger', () => ({ ok: true }));
    }, /already registered/);
  });

  it('answers 404 elsewhere and 405 to other methods', async () => {
    assert.equal((await get(addr, '/metrics')).status, 404);
    assert.equal((await get(addr, '/healthz', 'POST')).status, 405);
    const head = await get(addr, '/healthz', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });
});

describe('metrics server on a real socket', () => {
  it('serves ssj_ metrics in the Prometheus text format at /metrics', async () => {
    const metrics = newMetrics();
    metrics.runs.inc({ outcome: 'Succeeded' });
    metrics.leader.set(1);
    const server = newMetricsServer({ bind: loopback, registry: metrics.registry, logger: nopLogger });
    const addr = await server.listen();
    try {
      const res = await get(addr, '/metrics');
      assert.equal(res.status, 200);
      assert.match(res.type, /^text\/plain; version=0\.0\.4/);
      assert.match(res.body, /^ssj_runs_total\{outcome="Succeeded"\} 1$/m);
      assert.match(res.body, /^ssj_leader 1$/m);
      assert.match(res.body, /^process_resident_memory_bytes \d+/m);
      assert.equal((await get(addr, '/')).status, 404);
    } finally {
      await server.close();
    }
  });

  it('logs the address it bound as addr', async () => {
    const lines: { fields: Record<string, unknown>; msg: string }[] = [];
    const recording: Logger = {
      debug: () => undefined,
      info: (fields, msg) => lines.push({ fields: { ...fields }, msg }),
      warn: () => undefined,
      error: () => undefined,
      child: (bindings) => ({
        ...recording,
        info: (fields, msg) => lines.push({ fields: { ...bindings, ...fields }, msg }),
      }),
    };
    const server = newMetricsServer({
      bind: loopback,
      registry: newMetrics({ processMetrics: false }).registry,
      logger: recording,
    });
    const addr = await server.listen();
    await server.close();
    assert.deepEqual(lines, [
      { fields: { server: 'metrics', addr: `127.0.0.1:${addr.port}` }, msg: 'listening' },
    ]);
  });

  it('refuses to listen on an address already taken, saying which', async () => {
    const first = newMetricsServer({
      bind: loopback,
      registry: newMetrics({ processMetrics: false }).registry,
      logger: nopLogger,
    });
    const taken = await first.listen();
    const second = newMetricsServer({
      bind: taken,
      registry: newMetrics({ processMetrics: false }).registry,
      logger: nopLogger,
    });
    try {
      await assert.rejects(
        second.listen(),
        new RegExp(`metrics server cannot listen on 127\\.0\\.0\\.1:${taken.port}: .*EADDRINUSE`),
      );
    } finally {
      await first.close();
      await second.close();
    }
  });

  it('closes promptly even with a keep-alive connection open', async () => {
    const server = newMetricsServer({
      bind: loopback,
      registry: newMetrics({ processMetrics: false }).registry,
      logger: nopLogger,
    });
    const addr = await server.listen();
    await get(addr, '/metrics'); // fetch keeps the connection alive
    const started = performance.now();
    await server.close();
    assert.ok(performance.now() - started < 1_500, 'closed without waiting for the keep-alive timeout');
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { jobLogger, newLogger, nopLogger } from '../../../src/observability/log.ts';

function capture(level: Parameters<typeof newLogger>[0] = 'debug') {
  const lines: string[] = [];
  const logger = newLogger(level, { write: (line) => lines.push(line) });
  const records = (): Record<string, unknown>[] =>
    lines.map((l) => {
      assert.ok(l.endsWith('\n') && !l.slice(0, -1).includes('\n'), 'one JSON object a line');
      return JSON.parse(l) as Record<string, unknown>;
    });
  return { logger, records };
}

describe('newLogger', () => {
  it('writes one JSON object a line with level, time, msg and the fields', () => {
    const { logger, records } = capture();
    logger.info({ workers: 10 }, 'starting');
    const [line] = records();
    assert.ok(line);
    assert.equal(line['level'], 'info');
    assert.equal(line['msg'], 'starting');
    assert.equal(line['workers'], 10);
    assert.match(String(line['time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('carries job, tick and term from child loggers', () => {
    const { logger, records } = capture();
    jobLogger(logger, { namespace: 'team-a', name: 'nightly' })
      .child({ tick: 1795000000, term: 4 })
      .warn({}, 'pod create refused');
    assert.deepEqual((({ job, tick, term, level }) => ({ job, tick, term, level }))(records()[0] ?? {}), {
      job: 'team-a/nightly',
      tick: 1795000000,
      term: 4,
      level: 'warn',
    });
  });

  it('drops lines below its level', () => {
    const { logger, records } = capture('warn');
    logger.debug({}, 'd');
    logger.info({}, 'i');
    logger.error({}, 'e');
    assert.deepEqual(
      records().map((r) => r['msg']),
      ['e'],
    );
  });

  it('never writes a database password, in a field, a message or an error', () => {
    const { logger, records } = capture();
    const url = 'postgres://ssj:s3cr3t@db:5432/ssj';
    logger.info(
      { databaseUrl: url, password: 's3cr3t', nested: { password: 's3cr3t' } },
      `connecting to ${url}`,
    );
    logger.error({ err: new Error(`connect ${url} refused`) }, 'ledger unavailable');
    const text = JSON.stringify(records());
    assert.doesNotMatch(text, /s3cr3t/);
    assert.match(text, /postgres:\/\/ssj:\*\*\*@db:5432\/ssj/);
    assert.equal(records()[0]?.['password'], '[redacted]');
  });

  it('serializes an err field with its message and stack', () => {
    const { logger, records } = capture();
    logger.error({ err: new Error('boom') }, 'reconcile failed');
    const err = records()[0]?.['err'] as Record<string, unknown>;
    assert.equal(err['message'], 'boom');
    assert.match(String(err['stack']), /Error: boom/);
  });

  it('has a silent logger for tests that ignores everything', () => {
    nopLogger.child({ job: 'a/b' }).error({ x: 1 }, 'nothing');
  });
});

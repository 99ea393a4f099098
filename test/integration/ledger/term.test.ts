import { after, before, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  FencedError,
  LedgerUnavailableError,
  type JobRef,
  type LedgerWrite,
} from '../../../src/ledger/ledger.ts';
import { openPostgresLedger, type OpenPostgresLedger } from '../../../src/ledger/postgres-ledger.ts';
import type { LeaseRef } from '../../../src/ledger/postgres/model.ts';
import { nopLogger } from '../../../src/observability/log.ts';
import {
  createTestDatabase,
  startPrivateServer,
  type PrivateServer,
  type TestDatabase,
} from '../../support/postgres.ts';
import { newLease, openLedger, settle, waitUntil, type LedgerFixture } from './fixture.ts';

const job = (): JobRef => ({ namespace: 'default', name: 'nightly-report', uid: randomUUID() });

function claim(tick: string): LedgerWrite {
  const at = new Date(tick);
  return {
    kind: 'claim',
    run: { kind: 'scheduled', tick: at, attempt: 1 },
    podName: `nightly-report-${at.getTime() / 1000}`,
    at,
  };
}

/** Writes with the fence main.ts would pass: the ledger's own term, or 0 before it has one. */
function writeAs(
  opened: OpenPostgresLedger,
  holder: string,
  ref: JobRef,
  write: LedgerWrite,
): Promise<'ok' | 'finished'> {
  return opened.ledger.write(ref, { term: opened.term() ?? 0, holder }, write);
}

describe('the PostgreSQL ledger takes its term from the fence row', () => {
  let fixture: LedgerFixture;
  const opened: OpenPostgresLedger[] = [];

  const open = async (lease: LeaseRef, holder: string, url = fixture.db.url): Promise<OpenPostgresLedger> => {
    const ledger = await openPostgresLedger({ connectionString: url, lease, holder, log: nopLogger });
    opened.push(ledger);
    return ledger;
  };

  before(async () => {
    fixture = await openLedger('ssj_ledger_term');
  });

  after(async () => {
    await Promise.all(opened.map((l) => l.close()));
    await fixture.close();
  });

  it('a ledger opened after another gets the next term and fences the first, though its clock is years behind', async () => {
    const lease = newLease();
    const now = mock.method(Date, 'now', () => Date.parse('2030-01-01T00:00:00Z'));
    let first: OpenPostgresLedger;
    let second: OpenPostgresLedger;
    try {
      first = await open(lease, 'first');
      // The successor's clock is behind its predecessor's start.
      now.mock.mockImplementation(() => Date.parse('2020-01-01T00:00:00Z'));
      second = await open(lease, 'second');
    } finally {
      now.mock.restore();
    }
    const n = first.term();
    assert.equal(n, 1, 'a Lease without a fence row starts at term 1');
    assert.equal(second.term(), 2);
    assert.equal(second.ready(), true);

    const ref = job();
    const refused = await settle(writeAs(first, 'first', ref, claim('2026-11-23T01:00:00Z')));
    assert.ok(!refused.ok && refused.error instanceof FencedError, String(!refused.ok && refused.error));
    assert.equal(first.ready(), false, 'a fenced ledger is not ready');
    await assert.rejects(first.ledger.load(ref, undefined), FencedError, 'and stays fenced');

    assert.equal(await writeAs(second, 'second', ref, claim('2026-11-23T01:00:00Z')), 'ok');
    const view = await second.ledger.load(ref, undefined);
    assert.deepEqual(
      view.runs.map((r) => [r.podName, r.term]),
      [['nightly-report-1795395600', 2]],
      'the claim carries the term the ledger took, not the one the caller passed',
    );
  });

  it('the fence a caller passes does not change the term a write carries', async () => {
    const lease = newLease();
    const ledger = await open(lease, 'only');
    const ref = job();
    await ledger.ledger.write(ref, { term: Date.now(), holder: 'only' }, claim('2026-11-23T02:00:00Z'));
    const view = await ledger.ledger.load(ref, undefined);
    assert.deepEqual(
      view.runs.map((r) => r.term),
      [ledger.term()],
    );
  });

  it('three ledgers opened at once get three distinct consecutive terms, and only the last one writes', async () => {
    const lease = newLease();
    const holders = ['a', 'b', 'c'];
    const ledgers = await Promise.all(holders.map((h) => open(lease, h)));
    const terms = ledgers.map((l) => l.term());
    assert.deepEqual(
      [...terms].sort((x, y) => (x ?? 0) - (y ?? 0)),
      [1, 2, 3],
    );

    const ref = job();
    const results = await Promise.all(
      ledgers.map((l, i) => settle(writeAs(l, holders[i] ?? '', ref, claim('2026-11-23T03:00:00Z')))),
    );
    const unfenced = results.flatMap((r, i) => (r.ok ? [i] : []));
    assert.equal(unfenced.length, 1, 'exactly one is unfenced');
    assert.equal(terms[unfenced[0] ?? -1], 3, 'and it holds the last term');
    for (const r of results) if (!r.ok) assert.ok(r.error instanceof FencedError, String(r.error));
  });
});

// Stops and starts PostgreSQL, so it runs its own instance.
describe('a PostgreSQL ledger opened while the database is down', () => {
  let server: PrivateServer;
  let db: TestDatabase;
  let opened: OpenPostgresLedger | undefined;

  before(async () => {
    server = await startPrivateServer();
    db = await createTestDatabase('ssj_ledger_term_down', server.url);
  });

  after(async () => {
    await opened?.close();
    await server.destroy();
  });

  it('has no term and claims nothing until the database returns, then takes its term', async () => {
    const lease = newLease();
    const seen: number[] = [];
    await server.stop();
    opened = await openPostgresLedger({
      connectionString: db.url,
      lease,
      holder: 'late',
      log: nopLogger,
      onTerm: (term) => seen.push(term),
    });
    const ledger = opened;
    assert.equal(ledger.term(), undefined);
    assert.equal(ledger.ready(), false);
    const ref = job();
    await assert.rejects(ledger.ledger.load(ref, undefined), LedgerUnavailableError);
    await assert.rejects(writeAs(ledger, 'late', ref, claim('2026-11-23T01:00:00Z')), LedgerUnavailableError);

    await server.start();
    await waitUntil('the ledger takes its term', () => Promise.resolve(ledger.term() !== undefined), 60_000);
    assert.equal(ledger.term(), 1);
    assert.deepEqual(seen, [1], 'onTerm is told once');
    assert.equal(ledger.ready(), true);
    assert.equal(await writeAs(ledger, 'late', ref, claim('2026-11-23T01:00:00Z')), 'ok');
  });
});

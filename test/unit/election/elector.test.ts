// The elector's algorithm against a fake clock and an in-memory Lease: who acquires, when, and
// when a term ends. No I/O; time moves only when a test moves it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  Elector,
  FIRST_TERM_NUMBER,
  checkElectionTimings,
  type ElectorEvent,
  type ElectorOptions,
  type OnLead,
} from '../../../src/election/elector.ts';
import { holderOf, transitionsOf, type Lease, type LeaseSpec } from '../../../src/election/lease.ts';
import { TermEnded, type Term, type TermEndReason } from '../../../src/election/term.ts';
import { FakeClock, FakeLeaseServer } from './fakes.ts';

const REF = { namespace: 'ssj-system', name: 'ssj-operator-leader' };
const LEASE_MS = 15_000;
const RENEW_MS = 10_000;
const RETRY_MS = 2_000;
const TIMINGS = { leaseDurationMs: LEASE_MS, renewDeadlineMs: RENEW_MS, retryPeriodMs: RETRY_MS };
const WALL_EPOCH = Date.UTC(2026, 11, 1);

interface World {
  clock: FakeClock;
  server: FakeLeaseServer;
}

function world(): World {
  const clock = new FakeClock();
  return { clock, server: new FakeLeaseServer(clock) };
}

interface Candidate {
  elector: Elector;
  terms: Term[];
  events: { event: ElectorEvent; at: number }[];
  stop: AbortController;
  done: Promise<void>;
  finished: () => boolean;
}

type CandidateOptions = Partial<Omit<ElectorOptions, 'client' | 'clock'>> & { onLead?: OnLead };

function candidate(w: World, identity: string, options: CandidateOptions = {}): Candidate {
  const terms: Term[] = [];
  const events: { event: ElectorEvent; at: number }[] = [];
  const { onLead, ...rest } = options;
  const elector = new Elector({
    lease: REF,
    identity,
    ...TIMINGS,
    client: w.server.client(identity),
    clock: w.clock,
    wallClock: () => new Date(WALL_EPOCH + w.clock.now()),
    random: () => 0,
    onEvent: (event) => events.push({ event, at: w.clock.now() }),
    ...rest,
  });
  const stop = new AbortController();
  let finished = false;
  const done = elector
    .run(async (term) => {
      terms.push(term);
      await onLead?.(term);
    }, stop.signal)
    .then(() => {
      finished = true;
    });
  return { elector, terms, events, stop, done, finished: () => finished };
}

async function shutdown(w: World, ...candidates: Candidate[]): Promise<void> {
  for (const c of candidates) c.stop.abort();
  await w.clock.advance(0);
  await Promise.all(candidates.map((c) => c.done));
}

/** Another process's record: holder, term, a renewTime of the fake wall clock unless told. */
function held(w: World, holder: string, leaseTransitions: number, extra: Partial<LeaseSpec> = {}): LeaseSpec {
  const now = new Date(WALL_EPOCH + w.clock.now()).toISOString();
  return {
    holderIdentity: holder,
    leaseDurationSeconds: LEASE_MS / 1000,
    leaseTransitions,
    acquireTime: now,
    renewTime: now,
    ...extra,
  };
}

/** The other process renews: same record, new renewTime, new resourceVersion. */
function renew(w: World): Lease {
  const lease = w.server.lease;
  assert.ok(lease);
  return w.server.put({ ...lease.spec, renewTime: new Date(WALL_EPOCH + w.clock.now()).toISOString() });
}

function lease(w: World): Lease {
  assert.ok(w.server.lease, 'the Lease exists');
  return w.server.lease;
}

function endReason(term: Term): TermEndReason | undefined {
  const reason: unknown = term.signal.reason;
  return term.signal.aborted && reason instanceof TermEnded ? reason.reason : undefined;
}

function started(c: Candidate): { event: Extract<ElectorEvent, { kind: 'started' }>; at: number }[] {
  const out: { event: Extract<ElectorEvent, { kind: 'started' }>; at: number }[] = [];
  for (const e of c.events) if (e.event.kind === 'started') out.push({ event: e.event, at: e.at });
  return out;
}

function abortTime(w: World, term: Term): () => number | undefined {
  let at: number | undefined;
  term.signal.addEventListener('abort', () => (at = w.clock.now()), { once: true });
  return () => at;
}

describe('Elector: acquiring', () => {
  it('acquires an absent Lease: creates it with itself as holder, and its first term is numbered 1', async () => {
    const w = world();
    const a = candidate(w, 'a');
    await w.clock.advance(0);

    assert.equal(a.terms.length, 1);
    const [term] = a.terms;
    assert.ok(term);
    assert.equal(holderOf(lease(w)), 'a');
    assert.equal(transitionsOf(lease(w)), FIRST_TERM_NUMBER);
    assert.equal(lease(w).spec.leaseDurationSeconds, 15);
    assert.equal(term.number, FIRST_TERM_NUMBER);
    assert.equal(term.leaseUid, lease(w).metadata.uid);
    assert.equal(term.holder, 'a');
    assert.ok(term.valid());
    assert.ok(a.elector.isLeader());
    assert.deepEqual(
      w.server.callsBy('a').map((c) => `${c.op}:${c.result ?? ''}`),
      ['get:absent', 'create:written'],
    );
    await shutdown(w, a);
  });

  it('does not take a Lease that its holder renews within the lease duration', async () => {
    const w = world();
    w.server.put(held(w, 'x', 4));
    const b = candidate(w, 'b');
    for (let i = 0; i < 30; i++) {
      await w.clock.advance(RETRY_MS);
      renew(w);
    }
    assert.equal(b.terms.length, 0, 'no term in a minute of renewals');
    assert.equal(holderOf(lease(w)), 'x');
    assert.equal(w.server.callsBy('b', 'replace').length, 0, 'never even tried to write');
    assert.equal(b.elector.observedHolder(), 'x');
    await shutdown(w, b);
  });

  it('takes a Lease unchanged for the lease duration and increments leaseTransitions', async () => {
    const w = world();
    w.server.put(held(w, 'x', 4));
    const b = candidate(w, 'b');
    await w.clock.advance(LEASE_MS - 1);
    assert.equal(b.terms.length, 0, 'not before the lease duration has passed');
    await w.clock.advance(1);

    assert.equal(b.terms.length, 1);
    assert.equal(holderOf(lease(w)), 'b');
    assert.equal(transitionsOf(lease(w)), 5);
    assert.equal(b.terms[0]?.number, 5);
    await shutdown(w, b);
  });

  for (const row of [
    { when: 'in the distant past', renewTime: '2000-01-01T00:00:00.000000Z' },
    { when: 'in the future', renewTime: '2100-01-01T00:00:00.000000Z' },
  ]) {
    it(`measures expiry from when it saw the record change, not from a renewTime ${row.when}`, async () => {
      const w = world();
      w.server.put(held(w, 'x', 1, { renewTime: row.renewTime, acquireTime: row.renewTime }));
      const b = candidate(w, 'b');
      await w.clock.advance(LEASE_MS - 1);
      assert.equal(b.terms.length, 0, 'a record first seen now is fresh, whatever its renewTime says');
      await w.clock.advance(1);
      assert.equal(b.terms.length, 1, 'taken exactly one lease duration after it was first seen');
      await shutdown(w, b);
    });
  }

  it('a 409 on acquisition re-reads the Lease and does not take what another candidate just took', async () => {
    const w = world();
    w.server.put(held(w, 'x', 2));
    const b = candidate(w, 'b');
    await w.clock.advance(0);
    w.server.beforeWrite = (by, op) => {
      if (by !== 'b' || op !== 'replace') return;
      w.server.beforeWrite = undefined;
      w.server.put(held(w, 'c', 3)); // c takes the expired Lease a moment before b
    };
    await w.clock.advance(LEASE_MS);

    const calls = w.server.callsBy('b');
    const conflict = calls.findIndex((c) => c.op === 'replace' && c.result === 'conflict');
    assert.ok(conflict >= 0, 'b tried and was refused');
    assert.equal(calls[conflict + 1]?.op, 'get', 'the refusal is followed by a read');
    assert.equal(b.terms.length, 0);
    assert.equal(holderOf(lease(w)), 'c');
    assert.equal(transitionsOf(lease(w)), 3, 'not incremented twice');

    // c's record was seen only now: b waits its full duration again.
    await w.clock.advance(LEASE_MS - 1);
    assert.equal(b.terms.length, 0);
    await w.clock.advance(1);
    assert.equal(b.terms[0]?.number, 4);
    await shutdown(w, b);
  });

  it('a 409 on create (another candidate created the Lease first) re-reads it and follows', async () => {
    const w = world();
    w.server.beforeWrite = (by, op) => {
      if (by !== 'b' || op !== 'create') return;
      w.server.beforeWrite = undefined;
      w.server.put(held(w, 'c', 1));
    };
    const b = candidate(w, 'b');
    await w.clock.advance(0);

    assert.deepEqual(
      w.server.callsBy('b').map((c) => `${c.op}:${c.result ?? ''}`),
      ['get:absent', 'create:conflict', 'get:found'],
    );
    assert.equal(b.terms.length, 0);
    assert.equal(holderOf(lease(w)), 'c');
    await shutdown(w, b);
  });

  it('a follower times its attempt to the observed expiry, not to its jittered retry', async () => {
    const w = world();
    w.server.put(held(w, 'x', 1));
    // random 0.5: safety-net attempts come 2 s × (1 + 0.6) = 3.2 s apart, never at the expiry.
    const b = candidate(w, 'b', { random: () => 0.5 });
    for (let i = 0; i < 3; i++) {
      await w.clock.advance(RETRY_MS);
      renew(w);
    }
    const lastRenewalSeen = w.clock.now(); // b's watch delivers it at once
    await w.clock.advance(LEASE_MS + 5 * RETRY_MS);

    const write = w.server.callsBy('b', 'replace')[0];
    assert.ok(write, 'b took the Lease');
    assert.equal(write.at - lastRenewalSeen, LEASE_MS, 'at the expiry, to the millisecond');
    const gets = w.server.callsBy('b', 'get').map((c) => c.at - lastRenewalSeen);
    assert.ok(
      gets.some((t) => t > 0 && t < LEASE_MS),
      'the safety net kept reading meanwhile, without acquiring',
    );
    await shutdown(w, b);
  });

  it('a follower whose watch is broken still takes a released Lease at its next periodic attempt', async () => {
    const w = world();
    const a = candidate(w, 'a');
    await w.clock.advance(0);
    w.server.deafWatchers.add('b');
    const b = candidate(w, 'b');
    await w.clock.advance(500);
    const releasedAt = w.clock.now();
    const released = a.elector.release();
    await w.clock.advance(0);
    assert.equal(await released, true);
    assert.equal(b.terms.length, 0, 'b did not hear of it');

    await w.clock.advance(RETRY_MS);
    const [start] = started(b);
    assert.ok(start, 'b took it through its periodic retry');
    assert.ok(start.at - releasedAt <= RETRY_MS, `after ${start.at - releasedAt} ms`);
    await shutdown(w, a, b);
  });
});

describe('Elector: leading', () => {
  it('the leader renews every retry period, keeping leaseTransitions and acquireTime', async () => {
    const w = world();
    const a = candidate(w, 'a');
    await w.clock.advance(0);
    const acquiredAt = w.server.callsBy('a', 'create')[0]?.at ?? NaN;
    const acquireTime = lease(w).spec.acquireTime;
    await w.clock.advance(5 * RETRY_MS);

    const renewals = w.server.callsBy('a', 'replace');
    assert.deepEqual(
      renewals.map((c) => c.at - acquiredAt),
      [2_000, 4_000, 6_000, 8_000, 10_000],
    );
    assert.ok(renewals.every((c) => c.result === 'written'));
    assert.equal(transitionsOf(lease(w)), FIRST_TERM_NUMBER);
    assert.equal(lease(w).spec.acquireTime, acquireTime);
    assert.notEqual(lease(w).spec.renewTime, acquireTime);
    assert.ok(a.terms[0]?.valid());
    await shutdown(w, a);
  });

  it('a leader that cannot renew within the renew deadline ends its term and rejoins as a follower', async () => {
    const w = world();
    const a = candidate(w, 'a');
    await w.clock.advance(0);
    const [term] = a.terms;
    assert.ok(term);
    const acquiredAt = w.clock.now();
    const endedAt = abortTime(w, term);
    w.server.fault = (by) => (by === 'a' ? 'error' : undefined);

    await w.clock.advance(RENEW_MS - 1);
    assert.ok(!term.signal.aborted && term.valid(), 'still within the deadline');
    await w.clock.advance(1);
    assert.equal(endReason(term), 'RenewDeadline');
    assert.equal(endedAt(), acquiredAt + RENEW_MS);
    assert.ok(!term.valid());
    assert.ok(!a.elector.isLeader());
    assert.ok(!a.finished(), 'the elector keeps running');

    // The API server answers again: the process leads again, under a new term.
    w.server.fault = () => undefined;
    await w.clock.advance(RETRY_MS);
    assert.equal(a.terms.length, 2);
    const second = a.terms[1];
    assert.ok(second);
    assert.equal(second.number, term.number + 1);
    assert.ok(second.valid());
    assert.ok(!term.valid(), 'the old term stays over');
    await shutdown(w, a);
  });

  it('a renewal that hangs does not keep the term past the renew deadline', async () => {
    const w = world();
    const a = candidate(w, 'a');
    await w.clock.advance(0);
    const [term] = a.terms;
    assert.ok(term);
    const acquiredAt = w.clock.now();
    const endedAt = abortTime(w, term);
    w.server.fault = (by, op) => (by === 'a' && op === 'replace' ? 'hang' : undefined);
    await w.clock.advance(RENEW_MS);
    assert.equal(endReason(term), 'RenewDeadline');
    assert.equal(endedAt(), acquiredAt + RENEW_MS);
    w.server.fault = () => undefined;
    await shutdown(w, a);
  });

  it('term.valid() turns false at the renew deadline even before any timer runs (a paused process)', async () => {
    const w = world();
    const a = candidate(w, 'a');
    await w.clock.advance(0);
    const [term] = a.terms;
    assert.ok(term);
    w.clock.jump(RENEW_MS - 1);
    assert.ok(term.valid());
    w.clock.jump(1);
    assert.ok(!term.valid(), 'false on the first check after waking');
    assert.ok(!term.signal.aborted, 'no timer has run yet');
    assert.ok(!a.elector.isLeader());

    await w.clock.advance(0); // the process runs again; its overdue renewal succeeds, too late
    assert.equal(endReason(term), 'RenewDeadline');
    assert.ok(!term.valid());
    await shutdown(w, a);
  });

  it('a 409 on renewal re-reads; a Lease that still shows the term is renewed on its new version', async () => {
    const w = world();
    const a = candidate(w, 'a');
    await w.clock.advance(0);
    w.server.beforeWrite = (by, op) => {
      if (by !== 'a' || op !== 'replace') return;
      w.server.beforeWrite = undefined;
      w.server.touch(); // someone adds a label
    };
    await w.clock.advance(RETRY_MS);

    assert.deepEqual(
      w.server.callsBy('a').map((c) => `${c.op}:${c.result ?? ''}`),
      ['get:absent', 'create:written', 'replace:conflict', 'get:found', 'replace:written'],
    );
    assert.equal(a.terms.length, 1);
    assert.ok(a.terms[0]?.valid() && !a.terms[0].signal.aborted);
    await shutdown(w, a);
  });

  it('a 409 on renewal that shows another holder ends the term as Superseded and does not take it back', async () => {
    const w = world();
    const a = candidate(w, 'a');
    await w.clock.advance(0);
    const [term] = a.terms;
    assert.ok(term);
    w.server.beforeWrite = (by, op) => {
      if (by !== 'a' || op !== 'replace') return;
      w.server.beforeWrite = undefined;
      w.server.put(held(w, 'z', 2));
    };
    await w.clock.advance(RETRY_MS);

    assert.equal(endReason(term), 'Superseded');
    assert.deepEqual(
      w.server.callsBy('a').map((c) => `${c.op}:${c.result ?? ''}`),
      ['get:absent', 'create:written', 'replace:conflict', 'get:found'],
    );
    await w.clock.advance(LEASE_MS - RETRY_MS);
    assert.equal(holderOf(lease(w)), 'z');
    assert.equal(a.terms.length, 1, 'z is left alone while its Lease is fresh');
    await shutdown(w, a);
  });

  it('a stale watch event showing another holder does not end the term: the renewal it prompts succeeds', async () => {
    const w = world();
    const a = candidate(w, 'a');
    await w.clock.advance(500);
    const [term] = a.terms;
    assert.ok(term);
    const stale: Lease = {
      metadata: { ...lease(w).metadata, resourceVersion: '1' },
      spec: held(w, 'x', 0),
    };
    w.server.deliverTo('a', stale);
    await w.clock.advance(0);

    const renewals = w.server.callsBy('a', 'replace');
    assert.equal(renewals.length, 1, 'renewed at once to find out');
    assert.equal(renewals[0]?.result, 'written');
    assert.ok(!term.signal.aborted && term.valid());
    await shutdown(w, a);
  });

  it('a Lease deleted under the leader ends the term as LeaseDeleted; the next term has the new UID', async () => {
    const w = world();
    const a = candidate(w, 'a');
    await w.clock.advance(0);
    const [first] = a.terms;
    assert.ok(first);
    w.server.remove();
    await w.clock.advance(0);
    assert.equal(endReason(first), 'LeaseDeleted');

    await w.clock.advance(RETRY_MS);
    const second = a.terms[1];
    assert.ok(second, 'leads again on a Lease it created');
    assert.equal(second.leaseUid, lease(w).metadata.uid);
    assert.notEqual(second.leaseUid, first.leaseUid);
    assert.equal(second.number, FIRST_TERM_NUMBER);
    await shutdown(w, a);
  });

  it('a Lease deleted and created again by another candidate ends the term as LeaseDeleted', async () => {
    const w = world();
    const a = candidate(w, 'a');
    await w.clock.advance(0);
    const [term] = a.terms;
    assert.ok(term);
    w.server.deafWatchers.add('a');
    w.server.remove();
    w.server.put(held(w, 'c', 1));
    await w.clock.advance(RETRY_MS);
    assert.equal(endReason(term), 'LeaseDeleted');
    assert.equal(holderOf(lease(w)), 'c');
    await shutdown(w, a);
  });

  it('term.end() ends the term, releases the Lease, and another candidate takes over at once', async () => {
    const w = world();
    const a = candidate(w, 'a');
    await w.clock.advance(0);
    const b = candidate(w, 'b');
    await w.clock.advance(500);
    const [term] = a.terms;
    assert.ok(term);
    const endedAt = w.clock.now();
    term.end('fenced by the ledger');
    await w.clock.advance(0);

    assert.equal(endReason(term), 'EndedByCaller');
    assert.ok(!term.valid());
    const [start] = started(b);
    assert.ok(start, 'b took over');
    assert.equal(start.at, endedAt, 'at once');
    assert.equal(start.event.term.number, 2);
    assert.ok(!a.finished(), 'a follows, it does not exit');
    await w.clock.advance(2 * RETRY_MS);
    assert.equal(holderOf(lease(w)), 'b', 'a stays a follower');
    await shutdown(w, a, b);
  });

  it('a term whose onLead throws ends with EndedByCaller, and the elector follows again', async () => {
    const w = world();
    const a = candidate(w, 'a', {
      onLead: () => {
        throw new Error('boom');
      },
    });
    await w.clock.advance(0);
    assert.equal(a.terms.length, 1);
    assert.ok(a.terms[0]);
    assert.equal(endReason(a.terms[0]), 'EndedByCaller');
    assert.equal(holderOf(lease(w)), '', 'released');
    assert.ok(!a.finished());
    await shutdown(w, a);
  });

  it('confirm() ends the term when a fresh read shows another holder, and keeps it otherwise', async () => {
    const w = world();
    const a = candidate(w, 'a');
    await w.clock.advance(0);
    const [term] = a.terms;
    assert.ok(term);
    assert.equal(await a.elector.confirm(term), true);
    w.server.deafWatchers.add('a');
    w.server.put(held(w, 'z', 2));
    assert.equal(await a.elector.confirm(term), false);
    assert.equal(endReason(term), 'Superseded');
    await shutdown(w, a);
  });
});

describe('Elector: handing over', () => {
  it('release clears holderIdentity, keeps leaseTransitions, and a watching follower acquires within a second', async () => {
    const w = world();
    const a = candidate(w, 'a');
    await w.clock.advance(0);
    const b = candidate(w, 'b');
    await w.clock.advance(1_234);
    const [term] = a.terms;
    assert.ok(term);
    const releasedAt = w.clock.now();
    const released = a.elector.release();
    await w.clock.advance(0);

    assert.equal(await released, true);
    await a.done;
    assert.equal(endReason(term), 'Released');
    const release = w.server.history.find((l) => holderOf(l) === '');
    assert.ok(release, 'a wrote a released record');
    assert.equal(transitionsOf(release), FIRST_TERM_NUMBER, 'leaseTransitions kept');
    const [start] = started(b);
    assert.ok(start, 'b took over');
    assert.ok(start.at - releasedAt < 1_000, `after ${start.at - releasedAt} ms`);
    assert.equal(start.event.term.number, FIRST_TERM_NUMBER + 1);
    assert.equal(holderOf(lease(w)), 'b');
    await shutdown(w, b);
  });

  it('aborting run with releaseOnCancel false leaves the Lease held, as a crash would', async () => {
    const w = world();
    const a = candidate(w, 'a', { releaseOnCancel: false });
    await w.clock.advance(0);
    const [term] = a.terms;
    assert.ok(term);
    await shutdown(w, a);
    assert.equal(endReason(term), 'Stopped');
    assert.equal(holderOf(lease(w)), 'a');
  });

  it("reports the failover time from the previous holder's last observed renewal", async () => {
    const w = world();
    const a = candidate(w, 'a', { releaseOnCancel: false });
    await w.clock.advance(0);
    const b = candidate(w, 'b');
    await w.clock.advance(3 * RETRY_MS + 700);
    const lastRenewal = w.server.callsBy('a', 'replace').at(-1)?.at ?? NaN;
    await shutdown(w, a); // a crashes: it stops renewing and releases nothing
    await w.clock.advance(LEASE_MS + RETRY_MS);

    const [start] = started(b);
    assert.ok(start);
    assert.equal(start.event.previousHolder, 'a');
    assert.equal(start.event.failoverMs, LEASE_MS);
    assert.equal(start.at - lastRenewal, LEASE_MS);
    const holders = b.events.flatMap((e) => (e.event.kind === 'holderChanged' ? [e.event.holder] : []));
    assert.deepEqual(holders, ['a', 'b']);
    await shutdown(w, b);
  });

  it('exactly one of several candidates leads, term after term', async () => {
    const w = world();
    const all = ['a', 'b', 'c'].map((id) => candidate(w, id));
    const numbers: number[] = [];
    for (let round = 0; round < 4; round++) {
      await w.clock.advance(RETRY_MS);
      const leaders = all.filter((c) => c.elector.isLeader());
      assert.equal(leaders.length, 1, `round ${round}: one leader`);
      const [leader] = leaders;
      assert.ok(leader);
      const term = leader.elector.currentTerm();
      assert.ok(term);
      numbers.push(term.number);
      term.end('hand over');
      await w.clock.advance(0);
    }
    assert.deepEqual(numbers, [1, 2, 3, 4]);
    await shutdown(w, ...all);
  });
});

describe('Elector: configuration', () => {
  const accepted = [
    { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
    { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 },
    { leaseDurationMs: 60_000, renewDeadlineMs: 30_000, retryPeriodMs: 5_000 },
  ];
  for (const timings of accepted) {
    it(`accepts ${JSON.stringify(timings)}`, () => {
      checkElectionTimings(timings);
    });
  }

  const refused: { name: string; timings: typeof TIMINGS; message: RegExp }[] = [
    {
      name: 'a lease duration equal to the renew deadline',
      timings: { leaseDurationMs: 10_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
      message: /leaseDurationMs \(10000\) must be greater than renewDeadlineMs \(10000\)/,
    },
    {
      name: 'a lease duration below the renew deadline',
      timings: { leaseDurationMs: 5_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
      message: /must be greater than renewDeadlineMs/,
    },
    {
      name: 'a renew deadline of exactly 1.2 × the retry period',
      timings: { leaseDurationMs: 15_000, renewDeadlineMs: 2_400, retryPeriodMs: 2_000 },
      message: /renewDeadlineMs \(2400\) must be greater than 1.2 × retryPeriodMs \(2000\)/,
    },
    {
      name: 'a zero retry period',
      timings: { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 0 },
      message: /retryPeriodMs must be a positive number/,
    },
    {
      name: 'a negative renew deadline',
      timings: { leaseDurationMs: 15_000, renewDeadlineMs: -1, retryPeriodMs: 2_000 },
      message: /renewDeadlineMs must be a positive number/,
    },
    {
      name: 'a lease duration that is not a number',
      timings: { leaseDurationMs: NaN, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
      message: /leaseDurationMs must be a positive number/,
    },
    {
      name: 'a lease duration of fractional seconds',
      timings: { leaseDurationMs: 15_500, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
      message: /whole seconds/,
    },
  ];
  for (const row of refused) {
    it(`refuses ${row.name} with a RangeError, before anything runs`, () => {
      const w = world();
      assert.throws(() => {
        checkElectionTimings(row.timings);
      }, RangeError);
      assert.throws(
        () => new Elector({ lease: REF, identity: 'a', client: w.server.client('a'), ...row.timings }),
        (err: unknown) => err instanceof RangeError && row.message.test(err.message),
      );
      assert.equal(w.server.calls.length, 0);
    });
  }

  it('refuses an empty identity', () => {
    const w = world();
    assert.throws(
      () => new Elector({ lease: REF, identity: ' ', client: w.server.client('a'), ...TIMINGS }),
      RangeError,
    );
  });
});

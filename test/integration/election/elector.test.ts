// The elector against the real API server: candidates on one coordination.k8s.io/v1 Lease, with
// short timings (3 s lease, 2 s renew deadline, 0.5 s retry). Failover times are printed, and
// asserted only loosely: timing is the benchmark's business, behaviour is this suite's.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { Elector, type ElectorEvent } from '../../../src/election/elector.ts';
import { kubeLeaseClient } from '../../../src/election/kube-lease-client.ts';
import type { InformerMetrics } from '../../../src/runtime/informer.ts';
import { TermEnded, type Term } from '../../../src/election/term.ts';
import {
  deleteNamespace,
  loadKubeConfig,
  newNamespace,
  requireCluster,
  waitFor,
} from '../../support/kube.ts';

const LEASE = 'ssj-operator-leader';
const TIMINGS = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };
const TIMEOUT = 60_000;

let kc: KubeConfig;
let api: CoordinationV1Api;

before(async () => {
  kc = loadKubeConfig();
  await requireCluster(kc);
  api = kc.makeApiClient(CoordinationV1Api);
});

interface Live {
  identity: string;
  elector: Elector;
  terms: { term: Term; at: number }[];
  events: { event: ElectorEvent; at: number }[];
  stop: AbortController;
  done: Promise<void>;
}

const everyone: Live[] = [];

after(async () => {
  for (const c of everyone) c.stop.abort();
  await Promise.all(everyone.map((c) => c.done));
});

interface StartOptions {
  releaseOnCancel?: boolean;
  timings?: typeof TIMINGS;
  watch?: InformerMetrics;
}

function start(namespace: string, identity: string, options: StartOptions = {}): Live {
  const terms: Live['terms'] = [];
  const events: Live['events'] = [];
  const elector = new Elector({
    lease: { namespace, name: LEASE },
    identity,
    ...(options.timings ?? TIMINGS),
    client: kubeLeaseClient({ kc, watch: options.watch === undefined ? {} : { metrics: options.watch } }),
    releaseOnCancel: options.releaseOnCancel ?? true,
    onEvent: (event) => events.push({ event, at: performance.now() }),
  });
  const stop = new AbortController();
  const done = elector.run((term) => {
    terms.push({ term, at: performance.now() });
  }, stop.signal);
  const live = { identity, elector, terms, events, stop, done };
  everyone.push(live);
  return live;
}

async function readLease(namespace: string): Promise<V1Lease> {
  return api.readNamespacedLease({ namespace, name: LEASE });
}

async function leader(candidates: Live[], description: string): Promise<Live> {
  return waitFor(
    () => {
      const leaders = candidates.filter((c) => c.elector.isLeader());
      return leaders.length === 1 ? leaders[0] : undefined;
    },
    { timeoutMs: 15_000, intervalMs: 20, description },
  );
}

/** Checks `condition` every 100 ms for `ms`; fails at the first check that does not hold. */
async function holdsFor(ms: number, condition: () => Promise<string | undefined>): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const problem = await condition();
    assert.equal(problem, undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function failoverOf(c: Live): number | undefined {
  for (const { event } of c.events) if (event.kind === 'started') return event.failoverMs;
  return undefined;
}

function reasonOf(term: Term): string | undefined {
  const reason: unknown = term.signal.reason;
  return reason instanceof TermEnded ? reason.reason : undefined;
}

function print(what: string, fields: Record<string, unknown>): void {
  process.stdout.write(`# ${what}: ${JSON.stringify(fields)}\n`);
}

async function withNamespace(prefix: string, fn: (namespace: string) => Promise<void>): Promise<void> {
  const namespace = await newNamespace(prefix, kc);
  try {
    await fn(namespace);
  } finally {
    for (const c of everyone) c.stop.abort();
    await Promise.all(everyone.map((c) => c.done));
    everyone.length = 0;
    await deleteNamespace(namespace, kc);
  }
}

describe('elector on a real Lease', { timeout: TIMEOUT * 4 }, () => {
  it('two candidates on one Lease: exactly one leads, and the Lease names it', { timeout: TIMEOUT }, () =>
    withNamespace('election-one', async (namespace) => {
      const a = start(namespace, 'a');
      const b = start(namespace, 'b');
      const first = await leader([a, b], 'a leader');
      const other = first === a ? b : a;
      await holdsFor(2 * TIMINGS.leaseDurationMs, async () => {
        const leaders = [a, b].filter((c) => c.elector.isLeader()).map((c) => c.identity);
        if (leaders.length !== 1 || leaders[0] !== first.identity) return `leaders: ${leaders.join(',')}`;
        if (other.terms.length !== 0) return `${other.identity} had a term`;
        const holder = (await readLease(namespace)).spec?.holderIdentity;
        return holder === first.identity ? undefined : `the Lease names ${holder ?? 'nobody'}`;
      });
      assert.equal(first.terms.length, 1, 'one term all along');
      assert.equal((await readLease(namespace)).spec?.leaseTransitions, first.terms[0]?.term.number);
    }),
  );

  it(
    'a leader stopped without releasing is replaced within lease duration + retry period',
    { timeout: TIMEOUT },
    () =>
      withNamespace('election-crash', async (namespace) => {
        const a = start(namespace, 'a', { releaseOnCancel: false });
        await leader([a], 'a leads');
        const b = start(namespace, 'b');
        await waitFor(() => b.elector.observedHolder() === 'a', {
          timeoutMs: 10_000,
          description: 'b sees a',
        });
        const aTerm = a.terms[0]?.term;
        assert.ok(aTerm);

        const stoppedAt = performance.now();
        a.stop.abort(); // no release: to everyone else this is a crash
        await a.done;
        assert.equal((await readLease(namespace)).spec?.holderIdentity, 'a', 'not released');
        const taken = await waitFor(() => b.terms[0], {
          timeoutMs: 15_000,
          intervalMs: 10,
          description: 'b leads',
        });

        const sinceStop = Math.round(taken.at - stoppedAt);
        print('failover after a stop without release', {
          sinceStopMs: sinceStop,
          sinceLastRenewalSeenMs: failoverOf(b),
          boundMs: TIMINGS.leaseDurationMs + TIMINGS.retryPeriodMs,
        });
        assert.ok(sinceStop < TIMINGS.leaseDurationMs + TIMINGS.retryPeriodMs + 2_000, `${sinceStop} ms`);
        assert.equal(taken.term.number, aTerm.number + 1);
        assert.equal((await readLease(namespace)).spec?.leaseTransitions, aTerm.number + 1);
      }),
  );

  it(
    'a leader killed with SIGKILL is replaced within lease duration + retry period',
    { timeout: TIMEOUT },
    () =>
      withNamespace('election-kill', async (namespace) => {
        const child = spawnCandidate(namespace, 'killed');
        try {
          const started = await child.next((l) => l['kind'] === 'started');
          const b = start(namespace, 'b');
          await waitFor(() => b.elector.observedHolder() === 'killed', {
            timeoutMs: 10_000,
            description: 'b sees the child lead',
          });
          const killedAt = performance.now();
          child.process.kill('SIGKILL');
          const taken = await waitFor(() => b.terms[0], {
            timeoutMs: 15_000,
            intervalMs: 10,
            description: 'b leads',
          });
          const sinceKill = Math.round(taken.at - killedAt);
          print('failover after SIGKILL', {
            sinceKillMs: sinceKill,
            sinceLastRenewalSeenMs: failoverOf(b),
            boundMs: TIMINGS.leaseDurationMs + TIMINGS.retryPeriodMs,
          });
          assert.ok(sinceKill < TIMINGS.leaseDurationMs + TIMINGS.retryPeriodMs + 2_000, `${sinceKill} ms`);
          assert.equal(taken.term.number, Number(started['number']) + 1);
        } finally {
          child.process.kill('SIGKILL');
        }
      }),
  );

  it(
    'a graceful release hands over within about a second, keeping leaseTransitions',
    { timeout: TIMEOUT },
    () =>
      withNamespace('election-release', async (namespace) => {
        // A slow retry (b's own attempts come 1.5 to 3.3 s apart): a handover within a second
        // can only come from b's watch.
        const timings = { ...TIMINGS, retryPeriodMs: 1_500 };
        const a = start(namespace, 'a', { timings });
        await leader([a], 'a leads');
        const b = start(namespace, 'b', { timings });
        await waitFor(() => b.elector.observedHolder() === 'a', {
          timeoutMs: 10_000,
          description: 'b sees a',
        });
        const aTerm = a.terms[0]?.term;
        assert.ok(aTerm);

        const releasedAt = performance.now();
        assert.equal(await a.elector.release(), true);
        const taken = await waitFor(() => b.terms[0], {
          timeoutMs: 15_000,
          intervalMs: 10,
          description: 'b leads',
        });
        const sinceRelease = Math.round(taken.at - releasedAt);
        print('handover after a graceful release', {
          sinceReleaseMs: sinceRelease,
          failoverMs: failoverOf(b),
        });
        assert.ok(sinceRelease < 1_000, `${sinceRelease} ms: b acted on the release it watched`);
        assert.equal(reasonOf(aTerm), 'Released');
        assert.equal(taken.term.number, aTerm.number + 1, 'the release kept leaseTransitions');
      }),
  );

  it('leaseTransitions increments on each takeover, and each term carries it', { timeout: TIMEOUT }, () =>
    withNamespace('election-transitions', async (namespace) => {
      const candidates = [start(namespace, 'a'), start(namespace, 'b')];
      const seen: { holder: string; number: number; transitions: number | undefined }[] = [];
      for (let round = 0; round < 4; round++) {
        const current = await leader(candidates, `leader in round ${round}`);
        const term = current.elector.currentTerm();
        assert.ok(term);
        const lease = await readLease(namespace);
        seen.push({
          holder: current.identity,
          number: term.number,
          transitions: lease.spec?.leaseTransitions,
        });
        term.end('hand over');
        await waitFor(() => candidates.find((c) => c !== current && c.elector.isLeader()), {
          timeoutMs: 15_000,
          intervalMs: 10,
          description: `the other candidate leads after round ${round}`,
        });
      }
      print('terms', { seen });
      for (const [i, s] of seen.entries()) {
        assert.equal(s.transitions, s.number, 'the Lease shows the term number');
        if (i > 0) {
          assert.equal(s.number, (seen[i - 1]?.number ?? NaN) + 1);
          assert.notEqual(s.holder, seen[i - 1]?.holder);
        }
      }
    }),
  );

  it(
    "a follower's watch delivers the leader's renewals and no other Lease's events",
    { timeout: TIMEOUT },
    () =>
      withNamespace('election-watch', async (namespace) => {
        const other = 'another-lease';
        await api.createNamespacedLease({
          namespace,
          body: { metadata: { name: other }, spec: { holderIdentity: 'someone', leaseDurationSeconds: 60 } },
        });
        const counted: string[] = [];
        const watch: InformerMetrics = {
          watchEvent: (_resource, type) => counted.push(type),
          informerRestart: () => undefined,
        };
        const a = start(namespace, 'a');
        await leader([a], 'a leads');
        const b = start(namespace, 'b', { watch });
        await waitFor(() => counted.filter((t) => t === 'MODIFIED').length >= 3, {
          timeoutMs: 10_000,
          description: "three of a's renewals through b's watch",
        });

        await a.elector.release();
        await leader([b], 'b leads');
        // Only b writes our Lease now, every 0.5 s, while another Lease changes 5 times.
        const before = counted.length;
        const t0 = performance.now();
        for (let i = 0; i < 5; i++) {
          const lease = await api.readNamespacedLease({ namespace, name: other });
          lease.spec!.holderIdentity = `someone-${i}`;
          await api.replaceNamespacedLease({ namespace, name: other, body: lease });
        }
        const elapsed = performance.now() - t0;
        const events = counted.length - before;
        const renewalsMeanwhile = Math.ceil(elapsed / TIMINGS.retryPeriodMs) + 1;
        print('watch events while another Lease changed 5 times', { events, elapsedMs: Math.round(elapsed) });
        assert.ok(
          events <= renewalsMeanwhile,
          `${events} events: the field selector lets no other Lease through`,
        );
      }),
  );
  it(
    'a Lease deleted and created again has a new UID, and the new term carries it',
    { timeout: TIMEOUT },
    () =>
      withNamespace('election-recreate', async (namespace) => {
        const a = start(namespace, 'a');
        await leader([a], 'a leads');
        const first = a.terms[0]?.term;
        assert.ok(first);
        const oldUid = (await readLease(namespace)).metadata?.uid;
        assert.equal(first.leaseUid, oldUid);

        await api.deleteNamespacedLease({ namespace, name: LEASE });
        await waitFor(() => first.signal.aborted, { timeoutMs: 10_000, description: 'the first term ends' });
        assert.equal(reasonOf(first), 'LeaseDeleted');
        const second = await waitFor(() => a.terms[1]?.term, {
          timeoutMs: 10_000,
          description: 'a second term',
        });
        const lease = await readLease(namespace);
        print('terms across a recreated Lease', {
          first: { uid: first.leaseUid, number: first.number },
          second: { uid: second.leaseUid, number: second.number },
        });
        assert.notEqual(second.leaseUid, first.leaseUid);
        assert.equal(second.leaseUid, lease.metadata?.uid);
        assert.equal(second.number, lease.spec?.leaseTransitions);
        assert.ok(second.valid());
      }),
  );
});

interface Child {
  process: ChildProcess;
  next(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

function spawnCandidate(namespace: string, identity: string): Child {
  const script = fileURLToPath(new URL('./candidate.ts', import.meta.url));
  const child = spawn(
    process.execPath,
    [
      script,
      namespace,
      LEASE,
      identity,
      String(TIMINGS.leaseDurationMs),
      String(TIMINGS.renewDeadlineMs),
      String(TIMINGS.retryPeriodMs),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: process.env },
  );
  const lines: Record<string, unknown>[] = [];
  createInterface(child.stdout).on('line', (line) => {
    lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  return {
    process: child,
    next: (match) =>
      waitFor(() => lines.find(match), { timeoutMs: 20_000, description: `a line from ${identity}` }),
  };
}

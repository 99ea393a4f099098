// The LeaseClient port's contract (src/election/lease.ts), held by the client-node
// implementation against the real API server: live reads, preconditioned writes answering
// 'conflict', metadata kept across a replace, per-call abort, and a watch of one Lease.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { kubeLeaseClient } from '../../../src/election/kube-lease-client.ts';
import { microTime, type Lease, type LeaseClient } from '../../../src/election/lease.ts';
import {
  deleteNamespace,
  loadKubeConfig,
  newNamespace,
  requireCluster,
  waitFor,
} from '../../support/kube.ts';

let kc: KubeConfig;
let api: CoordinationV1Api;
let client: LeaseClient;
let namespace = '';

before(async () => {
  kc = loadKubeConfig();
  await requireCluster(kc);
  api = kc.makeApiClient(CoordinationV1Api);
  client = kubeLeaseClient({ kc });
  namespace = await newNamespace('lease-client', kc);
});

after(async () => {
  await deleteNamespace(namespace, kc);
});

function written(result: Awaited<ReturnType<LeaseClient['create']>>): Lease {
  assert.equal(result.kind, 'written');
  return result.lease;
}

describe('kubeLeaseClient', { timeout: 60_000 }, () => {
  it('reads a missing Lease as undefined, creates it once, and answers conflict to a second create', async () => {
    const ref = { namespace, name: 'create-once' };
    assert.equal(await client.get(ref), undefined);
    const renewTime = microTime(new Date(Date.UTC(2026, 11, 1, 12, 0, 0, 123)));
    const lease = written(
      await client.create(ref, {
        holderIdentity: 'a',
        leaseDurationSeconds: 15,
        leaseTransitions: 1,
        renewTime,
      }),
    );
    assert.ok(lease.metadata.uid !== '' && lease.metadata.resourceVersion !== '');
    assert.equal(lease.spec.holderIdentity, 'a');
    assert.equal(lease.spec.leaseTransitions, 1);
    assert.equal(lease.spec.renewTime, renewTime, 'times travel as RFC 3339 text with microseconds');
    assert.deepEqual(await client.get(ref), lease);
    assert.deepEqual(await client.create(ref, { holderIdentity: 'b' }), { kind: 'conflict' });
  });

  it('replaces only the version it was given, and keeps labels it did not write', async () => {
    const ref = { namespace, name: 'replace-precondition' };
    const created = written(await client.create(ref, { holderIdentity: 'a', leaseTransitions: 1 }));
    // Someone else labels the Lease: created's resourceVersion is now stale.
    const raw = await api.readNamespacedLease({ namespace, name: ref.name });
    raw.metadata!.labels = { team: 'x' };
    await api.replaceNamespacedLease({ namespace, name: ref.name, body: raw });
    assert.deepEqual(
      await client.replace(ref, {
        metadata: created.metadata,
        spec: { ...created.spec, holderIdentity: 'b' },
      }),
      { kind: 'conflict' },
    );
    const current = await client.get(ref);
    assert.ok(current);
    assert.equal(current.spec.holderIdentity, 'a', 'the stale write changed nothing');

    const replaced = written(
      await client.replace(ref, {
        metadata: current.metadata,
        spec: { ...current.spec, holderIdentity: 'b' },
      }),
    );
    assert.equal(replaced.spec.holderIdentity, 'b');
    assert.notEqual(replaced.metadata.resourceVersion, current.metadata.resourceVersion);
    assert.deepEqual(replaced.metadata['labels'], { team: 'x' });

    await api.deleteNamespacedLease({ namespace, name: ref.name });
    assert.deepEqual(
      await client.replace(ref, replaced),
      { kind: 'conflict' },
      'a deleted Lease is a conflict',
    );
  });

  it('gives up a call when its signal aborts', async () => {
    const ref = { namespace, name: 'aborted' };
    const signal = AbortSignal.abort();
    await assert.rejects(
      client.get(ref, signal),
      (err: unknown) => err instanceof Error && err.name === 'AbortError',
    );
  });

  it('watches one Lease: its changes and its deletion, nothing of the others', async () => {
    const ref = { namespace, name: 'watched' };
    const seen: (Lease | undefined)[] = [];
    const stop = new AbortController();
    client.watch(ref, (lease) => seen.push(lease), stop.signal);
    try {
      const created = written(await client.create(ref, { holderIdentity: 'a' }));
      await client.create({ namespace, name: 'not-watched' }, { holderIdentity: 'z' });
      await waitFor(
        () => seen.some((l) => l?.metadata.resourceVersion === created.metadata.resourceVersion),
        {
          timeoutMs: 10_000,
          description: 'the created Lease through the watch',
        },
      );
      written(await client.replace(ref, { metadata: created.metadata, spec: { holderIdentity: 'b' } }));
      await waitFor(() => seen.some((l) => l?.spec.holderIdentity === 'b'), {
        timeoutMs: 10_000,
        description: 'the replaced Lease through the watch',
      });
      await api.deleteNamespacedLease({ namespace, name: ref.name });
      await waitFor(() => seen.at(-1) === undefined, { timeoutMs: 10_000, description: 'the deletion' });
      assert.ok(
        seen.every((l) => l === undefined || l.spec.holderIdentity !== 'z'),
        'no event of another Lease',
      );
    } finally {
      stop.abort();
    }
  });
});

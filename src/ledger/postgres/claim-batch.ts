// Group commit for claims (./serial-batches.ts): the claims made while a claim transaction is in
// flight go together in the next transaction, behind one fence check (store.claimRuns).
//
// Guarantees:
// - Each claim resolves with its own result, or rejects with the error of its transaction; a
//   batch is all or nothing (a fenced or unavailable transaction claims none of its runs).
// - At most one claim transaction is in flight; claims made meanwhile wait for it and go in the
//   next one, up to `maxBatch` at a time.
// - Claims under different fences (a term that changed) never share a transaction.
import type DataLoader from 'dataloader';
import type { ClaimResult, Fence, RunClaim } from './model.ts';
import { serialBatchLoader } from './serial-batches.ts';

export interface ClaimStore {
  claimRuns(fence: Fence, runs: readonly RunClaim[]): Promise<ClaimResult[]>;
}

interface Claim {
  readonly fence: Fence;
  readonly run: RunClaim;
}

export class ClaimBatcher {
  readonly #store: ClaimStore;
  readonly #loader: DataLoader<Claim, ClaimResult>;

  constructor(store: ClaimStore, maxBatch = 500) {
    this.#store = store;
    this.#loader = serialBatchLoader((claims) => this.#commit(claims), maxBatch);
  }

  claim(fence: Fence, run: RunClaim): Promise<ClaimResult> {
    return this.#loader.load({ fence, run });
  }

  async #commit(claims: readonly Claim[]): Promise<(ClaimResult | Error)[]> {
    const groups = new Map<string, { fence: Fence; at: number[] }>();
    claims.forEach((c, i) => {
      const key = JSON.stringify([c.fence.lease, c.fence.term, c.fence.holder]);
      const group = groups.get(key) ?? { fence: c.fence, at: [] };
      group.at.push(i);
      groups.set(key, group);
    });
    const results: (ClaimResult | Error)[] = new Array<ClaimResult | Error>(claims.length);
    await Promise.all(
      [...groups.values()].map(async ({ fence, at }) => {
        try {
          const answers = await this.#store.claimRuns(
            fence,
            at.map((i) => (claims[i] as Claim).run),
          );
          at.forEach((i, j) => (results[i] = answers[j] ?? new Error('claimRuns: an answer is missing')));
        } catch (err) {
          const error = err instanceof Error ? err : new Error(String(err));
          for (const i of at) results[i] = error;
        }
      }),
    );
    return results;
  }
}

// Group commit for loads (./serial-batches.ts): the jobs asked for while a load is in flight are
// read together in the next one (store.loadJobs, two queries for the whole batch). At a tick,
// every worker reads its job's ledger just before its claim; their reads share those queries.
//
// Each load is sent after it was asked for, so it sees every write that completed before it; a
// batch that fails rejects every load in it with its error.
import type DataLoader from 'dataloader';
import type { LoadedJob } from './model.ts';
import { serialBatchLoader } from './serial-batches.ts';

export interface LoadStore {
  loadJobs(jobUids: readonly string[], options: { readonly limit: number }): Promise<Map<string, LoadedJob>>;
}

export class LoadBatcher {
  readonly #loader: DataLoader<string, LoadedJob>;

  /** `limit`: the recent runs and ranges read of each job (store.loadJobs). */
  constructor(store: LoadStore, limit: number, maxBatch = 500) {
    this.#loader = serialBatchLoader(async (jobUids) => {
      const loaded = await store.loadJobs(jobUids, { limit });
      return jobUids.map((uid) => loaded.get(uid) ?? new Error(`loadJobs: job ${uid} is missing`));
    }, maxBatch);
  }

  load(jobUid: string): Promise<LoadedJob> {
    return this.#loader.load(jobUid);
  }
}

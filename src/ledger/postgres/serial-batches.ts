// Group commit: the calls that reach the ledger while its batch is in flight (or in the same turn
// of the event loop) go together in the next batch. At a tick with many jobs due, the workers'
// loads and claims share round trips instead of queueing for pool connections one by one.
//
// DataLoader does the batching, with `cache: false`: a claim is a write that must reach the
// database every time, and a load must see every write that was made before it was asked for
// (it is sent after it is asked for, never answered from an earlier answer).
import DataLoader from 'dataloader';

/**
 * A loader that sends at most one batch at a time: the next leaves when the one in flight has
 * settled, or at once (after this turn of the event loop) when none is; up to `maxBatchSize`
 * keys each.
 */
export function serialBatchLoader<K, V>(
  send: (keys: readonly K[]) => Promise<readonly (V | Error)[]>,
  maxBatchSize: number,
): DataLoader<K, V> {
  let inFlight: Promise<unknown> | undefined;
  return new DataLoader<K, V>(
    async (keys) => {
      const work = send(keys);
      inFlight = work;
      try {
        return await work;
      } finally {
        if (inFlight === work) inFlight = undefined;
      }
    },
    {
      cache: false,
      maxBatchSize,
      batchScheduleFn: (dispatch) => {
        const after = inFlight;
        if (after === undefined) setImmediate(dispatch);
        // Settled either way: a batch that failed has answered its callers with its error.
        else void after.then(dispatch, dispatch);
      },
    },
  );
}

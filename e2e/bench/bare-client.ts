/**
 * Baseline A, the physical limit: a bare client that creates N Pods at a tick with a fixed
 * concurrency, with no ledger, no cache and no status writes. Run as its own process (like the
 * operator) so it does not share an event loop with the watcher that times it.
 *
 *   node e2e/bench/bare-client.ts <namespace> <tick unix seconds> <count> <concurrency> [claim]
 *
 * With `claim`, baseline A′, the status ledger's floor: before each create it writes the claim
 * the status ledger writes, a status PUT of the job `bench-00042` (the namespace's
 * ScheduledSingletonJobs, with no operator) under its resourceVersion, and creates the Pod only
 * once that returns. Before the tick it gives every job a status like the one the operator's
 * first reconcile writes (set-up, not measured), so each claim replaces a status of that size.
 *
 * Prints one JSON line `{"ready":true}` once its connection to the API server is warm (as an
 * operator's would be), then, after the tick, `{"done":true,"created":n,"errors":[...]}`. Pods are
 * named and labelled as the operator names and labels them (`bench-00042-<tick>`).
 */
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
// The one import from src/: the baseline reuses its connections as the operator does (client-node
// 2.0.1 alone opens one per request), so the physical limit is the best this client can do.
import { KeepAliveKubeConfig } from '../../src/config/kubeconfig.ts';
import { errorText, inPool, kubeconfigPath } from './cluster.ts';
import { sleep } from './watch.ts';
import { barePod, claimedStatus, GROUP, jobName, PLURAL, scheduledStatus, VERSION } from './workloads.ts';

type Job = Record<string, unknown> & { metadata: { name: string; resourceVersion?: string } };

async function main(): Promise<void> {
  const [namespace, tickArg, countArg, concurrencyArg, modeArg] = process.argv.slice(2);
  const tick = Number(tickArg);
  const count = Number(countArg);
  const concurrency = Number(concurrencyArg);
  const claim = modeArg === 'claim';
  if (
    namespace === undefined ||
    !Number.isInteger(tick) ||
    !(count > 0) ||
    !(concurrency > 0) ||
    (modeArg !== undefined && !claim)
  ) {
    throw new Error('usage: bare-client.ts <namespace> <tick unix seconds> <count> <concurrency> [claim]');
  }
  const kc = new KeepAliveKubeConfig();
  kc.loadFromFile(kubeconfigPath());
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const bodies = Array.from({ length: count }, (_, i) => barePod(jobName(i), tick));
  const jobs: Job[] = [];
  const writeStatus = async (body: Job): Promise<Job> =>
    (await custom.replaceNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      name: body.metadata.name,
      body,
    })) as Job;
  if (claim) {
    const listed = (await custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
    })) as { items: Job[] };
    const byName = new Map(listed.items.map((j) => [j.metadata.name, j]));
    await inPool(count, concurrency, async (i) => {
      const job = byName.get(jobName(i));
      if (job === undefined) throw new Error(`no ScheduledSingletonJob ${jobName(i)} in ${namespace}`);
      jobs[i] = await writeStatus({ ...job, status: scheduledStatus(tick) });
    });
  }
  // Warm the connections (TLS handshakes) as a running operator's would be.
  await Promise.all(
    Array.from({ length: concurrency }, () => core.listNamespacedPod({ namespace, limit: 1 })),
  );
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);

  await sleep(tick * 1000 - Date.now());
  const cpuAtTick = process.cpuUsage();
  let created = 0;
  const errors: string[] = [];
  await inPool(count, concurrency, async (i) => {
    try {
      if (claim) {
        const job = jobs[i]!;
        await writeStatus({ ...job, status: claimedStatus(job.status, job.metadata.name, tick, new Date()) });
      }
      await core.createNamespacedPod({ namespace, body: bodies[i]! });
      created++;
    } catch (error) {
      errors.push(errorText(error));
    }
  });
  // Its own CPU from the tick to its last create, since it exits before anyone could read /proc.
  const cpu = process.cpuUsage(cpuAtTick);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  process.stdout.write(
    `${JSON.stringify({ done: true, created, errors: errors.slice(0, 5), cpuSeconds })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`bare-client: ${errorText(error)}\n`);
  process.exit(1);
});

// One election candidate in a process of its own, for the integration tests that kill a leader
// with SIGKILL. Usage: candidate.ts <namespace> <lease name> <identity> <lease ms> <renew ms>
// <retry ms>. Prints one JSON object a line: {"kind":"started","number":..,"leaseUid":..} and
// {"kind":"stopped","reason":..}; nothing else on stdout.
import { Elector } from '../../../src/election/elector.ts';
import { kubeLeaseClient } from '../../../src/election/kube-lease-client.ts';
import { loadKubeConfig } from '../../support/kube.ts';

const [namespace, name, identity, lease, renew, retry] = process.argv.slice(2);
if (namespace === undefined || name === undefined || identity === undefined) {
  process.stderr.write(
    'usage: candidate.ts <namespace> <lease name> <identity> <lease ms> <renew ms> <retry ms>\n',
  );
  process.exit(2);
}
const print = (line: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`);
};
const elector = new Elector({
  lease: { namespace, name },
  identity,
  leaseDurationMs: Number(lease),
  renewDeadlineMs: Number(renew),
  retryPeriodMs: Number(retry),
  client: kubeLeaseClient({ kc: loadKubeConfig() }),
  onEvent: (event) => {
    if (event.kind === 'started') {
      print({ kind: 'started', number: event.term.number, leaseUid: event.term.leaseUid });
    } else if (event.kind === 'stopped') {
      print({ kind: 'stopped', reason: event.reason });
    }
  },
});
const stop = new AbortController();
process.on('SIGTERM', () => {
  stop.abort();
});
await elector.run(() => undefined, stop.signal);

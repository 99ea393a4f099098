/**
 * The last step of `make deploy` (e2e/deploy/deploy.sh): proves that the API-server fence
 * (config/policy) refuses a stale term's Pod and follows the leader Lease, and fails loudly when
 * the kube-apiserver's Lease cache is frozen (kubernetes#130887, docs/adr/0010-api-server-fence.md).
 *
 * How: it reads the term fence binding's paramRef (the Lease the fence reads), then asks the API
 * server for a server-side dry-run create of a Pod stamped with a term no leader ever has. Dry
 * runs go through validating admission and persist nothing. The fence's refusal names the Lease
 * as that API server's cache sees it ("Lease ns/name (term T, holder H)"), which is compared with
 * a live read of the Lease.
 * - No Lease yet (a fresh install, or a reinstall after `make undeploy`): it creates the Lease
 *   released (no holder, term 0, as a leader that stepped down leaves it; an operator takes it
 *   at once), waits until the fence shows it, then raises its term to 1 (still released) and
 *   waits until the fence shows that too. A frozen cache cannot follow both writes, whatever it
 *   froze with.
 * - A Lease already there (an upgrade, a running operator): the fence must show the live term and
 *   holder. It never writes a Lease that may have a holder.
 *
 * Exit code 0 when the fence refuses the stale Pod and follows the Lease; 1, with what to do,
 * otherwise (within SSJ_FENCE_CHECK_TIMEOUT_SECONDS, 20 s unless told). A probe admitted before
 * the policy has taken effect is asked again until then.
 *
 * Does not catch: a frozen cache whose copy of an existing Lease still matches it (a cache that
 * froze while the Lease kept its term and holder, and that no takeover has changed since). Only
 * a reinstall over a deleted Lease, which `make undeploy` always leaves, is fully checked.
 */
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  type V1Lease,
  type V1Pod,
} from '@kubernetes/client-node';

const BINDING = 'ssj-operator-term-fence.ssj.dev';
const POLICY = 'ssj-operator-term-fence.ssj.dev';
const PROBE = 'ssj-fence-check';
const STALE_TERM = '-1';
const NO_HOLDER = '<none>';

/** What the fence said about the probe Pod. */
type FenceAnswer =
  | { readonly kind: 'lease'; readonly term: string; readonly holder: string; readonly message: string }
  | { readonly kind: 'no-params'; readonly message: string }
  | { readonly kind: 'admitted' }
  | { readonly kind: 'other'; readonly message: string };

interface LeaseState {
  readonly term: string;
  readonly holder: string;
  readonly lease: V1Lease;
}

async function main(): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const core = kc.makeApiClient(CoreV1Api);
  const coordination = kc.makeApiClient(CoordinationV1Api);
  const admission = kc.makeApiClient(AdmissionregistrationV1Api);
  const timeoutMs = Number(process.env['SSJ_FENCE_CHECK_TIMEOUT_SECONDS'] ?? '20') * 1000;

  const binding = await admission.readValidatingAdmissionPolicyBinding({ name: BINDING });
  const namespace = binding.spec.paramRef?.namespace;
  const name = binding.spec.paramRef?.name;
  if (namespace === undefined || name === undefined) {
    fail(`the binding ${BINDING} names no Lease (spec.paramRef.namespace and .name)`);
  }
  const where = `${namespace}/${name}`;

  const readLease = async (): Promise<LeaseState | undefined> => {
    try {
      const lease = await coordination.readNamespacedLease({ namespace, name });
      const holder = lease.spec?.holderIdentity ?? '';
      return {
        term: String(lease.spec?.leaseTransitions ?? 0),
        holder: holder === '' ? NO_HOLDER : holder,
        lease,
      };
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw error;
    }
  };

  const probe = async (): Promise<FenceAnswer> => {
    try {
      await core.createNamespacedPod({ namespace, body: probePod(namespace), dryRun: 'All' });
      return { kind: 'admitted' };
    } catch (error) {
      if (!(error instanceof ApiException)) throw error;
      const message = statusMessage(error);
      if (!message.includes(POLICY)) return { kind: 'other', message: `HTTP ${error.code}: ${message}` };
      if (message.includes('no params found')) return { kind: 'no-params', message };
      const seen = new RegExp(`Lease ${escape(where)} \\(term ([^,]*), holder ([^)]*)\\)`).exec(message);
      if (seen?.[1] === undefined || seen[2] === undefined) return { kind: 'other', message };
      return { kind: 'lease', term: seen[1], holder: seen[2], message };
    }
  };

  let created = false;
  if ((await readLease()) === undefined) {
    try {
      await coordination.createNamespacedLease({
        namespace,
        body: {
          metadata: { name, namespace },
          spec: { holderIdentity: '', leaseTransitions: 0, leaseDurationSeconds: 1 },
        },
      });
      created = true;
    } catch (error) {
      // An operator created it meanwhile: check against its Lease instead.
      if (!(error instanceof ApiException && error.code === 409)) throw error;
    }
  }

  // States of the Lease that the fence was seen to show, as "term/holder".
  const followed = new Set<string>();
  const needed = created ? 2 : 1;
  let raised = false;
  let last: { live: LeaseState | undefined; answer: FenceAnswer } | undefined;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const live = await readLease();
    const answer = await probe();
    last = { live, answer };
    // A policy and binding just applied take effect when the API server's admission informers see
    // them, a moment later: an admitted probe fails the check only if it still is at the deadline.
    if (answer.kind === 'admitted' && Date.now() >= deadline) {
      fail(
        `the API server admitted a Pod of term ${STALE_TERM}, a term no leader ever has: the fence ` +
          `(${POLICY}, bound by ${BINDING}) does not work. Is the policy installed and bound?`,
      );
    }
    if (answer.kind === 'other') fail(`the fence probe was refused for another reason: ${answer.message}`);
    const shows =
      live !== undefined &&
      answer.kind === 'lease' &&
      answer.term === live.term &&
      answer.holder === live.holder;
    if (shows) followed.add(`${live.term}/${live.holder}`);
    if (followed.size >= needed) {
      const state = live === undefined ? '' : ` (term ${live.term}, holder ${live.holder})`;
      process.stdout.write(
        `fence check: a stale term's Pod is refused, and the fence follows the Lease ${where}${state}\n`,
      );
      return;
    }
    if (shows && created && !raised && live.holder === NO_HOLDER) {
      raised = true;
      // Still released, so no operator waits; the resourceVersion keeps it from overwriting an
      // operator that took the Lease meanwhile (its takeover is then the second state).
      try {
        await coordination.replaceNamespacedLease({
          namespace,
          name,
          body: {
            metadata: { name, namespace, resourceVersion: live.lease.metadata?.resourceVersion },
            spec: { holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: Number(live.term) + 1 },
          },
        });
      } catch (error) {
        if (!(error instanceof ApiException && error.code === 409)) throw error;
      }
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }

  const liveText =
    last.live === undefined ? 'does not exist' : `is (term ${last.live.term}, holder ${last.live.holder})`;
  const fenceText =
    last.answer.kind === 'lease'
      ? `the fence checks Pods against (term ${last.answer.term}, holder ${last.answer.holder})`
      : last.answer.kind === 'no-params'
        ? 'the fence answers that it finds no such Lease'
        : last.answer.kind === 'admitted'
          ? `the API server still admits a Pod of term ${STALE_TERM} (is the policy installed and bound?)`
          : 'the fence gave no answer naming the Lease';
  fail(
    [
      `the API-server fence does not follow the leader Lease ${where}: after ${timeoutMs / 1000} s the Lease ` +
        `${liveText}, but ${fenceText}.`,
      `This is kubernetes#130887 (docs/adr/0010-api-server-fence.md): a kube-apiserver stops its Lease cache ` +
        `for good once no binding of a Lease-param policy exists for about a second, as after \`make undeploy\`.`,
      `Until it is fixed the fence may admit a stale leader's Pod and refuse the current leader's.`,
      `Fix: restart every kube-apiserver, then run \`make deploy\` again. To reinstall without a restart ` +
        `next time, uninstall with KEEP_LEASE_PARAM_KEEPER=1 make undeploy.`,
    ].join('\n'),
  );
}

/** A Pod of a term no leader ever has, that Pod Security `restricted` admits; never persisted. */
function probePod(namespace: string): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: PROBE,
      namespace,
      labels: { 'ssj.dev/job': PROBE },
      annotations: { 'ssj.dev/term': STALE_TERM, 'ssj.dev/holder': PROBE },
    },
    spec: {
      serviceAccountName: 'ssj-operator',
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'probe',
          image: 'registry.invalid/ssj-fence-check:never-runs',
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
}

function statusMessage(error: ApiException<unknown>): string {
  const body: unknown = error.body;
  if (typeof body === 'string') {
    try {
      const parsed: unknown = JSON.parse(body);
      if (typeof parsed === 'object' && parsed !== null && 'message' in parsed) {
        return String(parsed.message);
      }
    } catch {
      return body;
    }
    return body;
  }
  return String(body);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function fail(message: string): never {
  process.stderr.write(`fence check FAILED: ${message}\n`);
  process.exit(1);
}

main().catch((error: unknown) => {
  fail(error instanceof Error ? error.message : String(error));
});

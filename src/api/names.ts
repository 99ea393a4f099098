/**
 * The names of the ScheduledSingletonJob API and of the labels and annotations the operator
 * puts on what it creates (DESIGN.md, "Names" and "A run's identity"). Every other module takes
 * these from here; a string literal elsewhere is a bug.
 */

export const GROUP = 'ssj.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'ScheduledSingletonJob';
export const LIST_KIND = 'ScheduledSingletonJobList';
export const PLURAL = 'singletonjobs';
export const SINGULAR = 'singletonjob';
export const SHORT_NAMES: readonly string[] = ['ssj'];
export const CRD_NAME = `${PLURAL}.${GROUP}`;

/**
 * Longest job name the CRD accepts: a Pod is named `<job>-<tick as Unix seconds>-<attempt>`
 * (1 + 10 digits until the year 2286, + 1 + up to 2 digits), and a Pod name used as a label
 * value, like the job name in `ssj.dev/job`, must fit in 63 characters.
 */
export const MAX_JOB_NAME_LENGTH = 49;

/** Pod label: the name of the job that owns the Pod. */
export const LABEL_JOB = 'ssj.dev/job';
/** Pod label: the tick as Unix seconds, or `manual` (TICK_LABEL_MANUAL) for a manual run. */
export const LABEL_TICK = 'ssj.dev/tick';
export const TICK_LABEL_MANUAL = 'manual';
/** Pod label: the attempt number, from 1. */
export const LABEL_ATTEMPT = 'ssj.dev/attempt';

/** Pod annotation: the scheduled instant, RFC 3339. */
export const ANNOTATION_SCHEDULED_TIME = 'ssj.dev/scheduled-time';
/** Pod annotation: the leader term (term) that created the Pod. */
export const ANNOTATION_TERM = 'ssj.dev/term';
/** Pod annotation: the identity of the leader that created the Pod. */
export const ANNOTATION_HOLDER = 'ssj.dev/holder';
/** Pod annotation: the run-now token a manual run was started for. */
export const ANNOTATION_RUN_NOW_TOKEN = 'ssj.dev/run-now-token';
/** Job annotation: set it to a new token to ask for one manual run. */
export const ANNOTATION_RUN_NOW = 'ssj.dev/run-now';

/**
 * Pod finalizer: every run's Pod carries it from its create request on, and the operator
 * removes it only once the run's outcome is durable in the ledger (DESIGN.md, invariant 2), so
 * whoever deletes a Pod, the operator sees it go.
 */
export const FINALIZER_RUN_RECORD = 'ssj.dev/run-record';

/**
 * The fencing ValidatingAdmissionPolicy (config/policy): a create it refuses names it, which is
 * how a refusal by the fence is told apart from any other Forbidden answer.
 */
export const FENCE_POLICY_NAME = 'ssj-operator-term-fence.ssj.dev';

/** The leader Lease, in the operator's namespace (DESIGN.md, Names). */
export const LEADER_LEASE_NAME = 'ssj-operator-leader';

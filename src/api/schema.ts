/**
 * The ScheduledSingletonJob API, written once: the CustomResourceDefinition object below is the
 * single source of truth. The YAML in `crds/` and `config/crd/bases/`, the TypeScript types in
 * `types.generated.ts` and the defaults applied by `defaults.ts` are all derived from it
 * (`generate.ts`), and unit tests fail when a derived file falls behind.
 *
 * What the schema checks, the API server refuses at admission with a message naming the field;
 * what it cannot check (a schedule's field values, a time zone's existence, Pod semantics) the
 * operator reports as a condition on the resource (DESIGN.md, invariant 6). Every field carries
 * a description, so `kubectl explain singletonjob.spec.retry` answers the user's question.
 */
import vendoredPodTemplate from './podtemplatespec.schema.json' with { type: 'json' };
import {
  CRD_NAME,
  GROUP,
  KIND,
  LIST_KIND,
  MAX_JOB_NAME_LENGTH,
  PLURAL,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
} from './names.ts';
import type { JSONSchemaProps } from './structural-schema.ts';

export const SCHEDULE_MACROS = [
  '@yearly',
  '@annually',
  '@monthly',
  '@weekly',
  '@daily',
  '@midnight',
  '@hourly',
];
const MACRO_ALTERNATIVES = SCHEDULE_MACROS.map((m) => m.slice(1)).join('|');
// 5 fields, or 6 with a leading seconds field, separated by blanks; or one macro, alone.
export const SCHEDULE_SHAPE = `^(@(${MACRO_ALTERNATIVES})|\\S+(\\s+\\S+){4,5})$`;
export const TIME_ZONE_PREFIX = '^\\s*(CRON_)?TZ=';
// IANA names: `UTC`, `Europe/Berlin`, `America/Argentina/Buenos_Aires`, `Etc/GMT+5`.
export const TIME_ZONE_SHAPE = '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$';

/** `text` as a CEL string literal (CEL, unlike RE2, gives `\\` a meaning of its own). */
function cel(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

function dateTime(description: string): JSONSchemaProps {
  return { type: 'string', format: 'date-time', description };
}

export const concurrencyPolicySchema: JSONSchemaProps = {
  type: 'string',
  description:
    'What to do when a tick comes while the previous run is still active. Forbid (the default): ' +
    'the tick is not run and is recorded as Skipped. Replace: the active run is stopped (recorded ' +
    'as Replaced) and the new tick runs once its Pod is gone. There is no Allow: at most one run of ' +
    'a job is ever active.',
  enum: ['Forbid', 'Replace'],
  default: 'Forbid',
};

export const retrySchema: JSONSchemaProps = {
  type: 'object',
  description:
    'Further attempts of the SAME tick after its Pod failed (a new Pod, named with the attempt ' +
    'number, created only once the failed Pod can no longer run). Retries never run a later tick ' +
    'early and are counted in status.',
  default: {},
  properties: {
    maxAttempts: {
      type: 'integer',
      format: 'int32',
      description: 'How many Pods one tick may run in all, the first attempt included: 1 means no retry.',
      minimum: 1,
      maximum: 10,
      default: 1,
    },
    backoffSeconds: {
      type: 'integer',
      format: 'int32',
      description: 'Seconds to wait after an attempt failed before the next attempt of the same tick starts.',
      minimum: 0,
      default: 10,
    },
  },
};

/** The Pod template, from the pinned Kubernetes release, narrowed to what a run may be. */
function jobPodTemplateSchema(): JSONSchemaProps {
  // The vendored file is produced by podtemplate-schema.ts, which guarantees its shape.
  const template = structuredClone(vendoredPodTemplate.schema) as JSONSchemaProps;
  const podSpec = template.properties?.['spec'];
  const containers = podSpec?.properties?.['containers'];
  if (!podSpec?.properties || !containers || !podSpec.required?.includes('containers')) {
    throw new Error('podtemplatespec.schema.json is not a PodTemplateSpec schema');
  }
  template.description =
    'The Pod each run creates, as in a Deployment or a CronJob. The operator adds its labels ' +
    '(ssj.dev/job, ssj.dev/tick, ssj.dev/attempt), annotations and an owner reference to the job, ' +
    'and names the Pod after the job and the tick.';
  template.required = ['spec'];
  podSpec.properties['restartPolicy'] = {
    type: 'string',
    description:
      'Never (the default): a failed container fails the run. OnFailure: the kubelet restarts ' +
      'failed containers inside the same Pod, which is still one Pod for the tick. Always is not ' +
      'allowed: a run must end.',
    enum: ['Never', 'OnFailure'],
    default: 'Never',
  };
  containers.minItems = 1;
  return template;
}

export const specSchema: JSONSchemaProps = {
  type: 'object',
  description: 'When to run, how, and what to keep.',
  required: ['schedule', 'template'],
  properties: {
    schedule: {
      type: 'string',
      description:
        'A cron expression: 5 fields (minute hour day-of-month month day-of-week), or 6 with a ' +
        'leading seconds field (`*/30 * * * * *`), or one of @yearly, @annually, @monthly, ' +
        '@weekly, @daily, @midnight, @hourly. Evaluated in spec.timeZone. @every is not ' +
        'supported, and a TZ= or CRON_TZ= prefix is refused: set spec.timeZone instead.',
      minLength: 1,
      maxLength: 256,
      'x-kubernetes-validations': [
        {
          rule: `!self.matches(${cel(TIME_ZONE_PREFIX)})`,
          message: 'must not start with TZ= or CRON_TZ=: put the time zone in spec.timeZone',
        },
        {
          rule: "!self.startsWith('@every')",
          message:
            'must not use @every: each tick must be a fixed instant to name its Pod; ' +
            'write a cron expression instead, such as */5 * * * *',
        },
        {
          rule: `self.startsWith('@every') || self.matches(${cel(TIME_ZONE_PREFIX)}) || self.matches(${cel(SCHEDULE_SHAPE)})`,
          message:
            'must be 5 cron fields (minute hour day-of-month month day-of-week), 6 with a leading ' +
            `seconds field, or one of ${SCHEDULE_MACROS.join(', ')}`,
        },
      ],
    },
    timeZone: {
      type: 'string',
      description:
        'The IANA time zone the schedule is evaluated in, such as Europe/Berlin. In a ' +
        'daylight-saving gap a time that does not exist runs at the first instant after the ' +
        'gap; in a repeated hour a time runs once, at its first occurrence.',
      default: 'UTC',
      minLength: 1,
      maxLength: 64,
      'x-kubernetes-validations': [
        {
          rule: `self.matches(${cel(TIME_ZONE_SHAPE)})`,
          message: 'must be an IANA time zone name such as UTC or Europe/Berlin, not an offset',
        },
      ],
    },
    suspend: {
      type: 'boolean',
      description:
        'True stops new runs; ticks that pass while suspended are recorded as Skipped (a long ' +
        'suspension as one range). A run already active is not stopped. Resuming does not run ' +
        'the ticks that passed.',
      default: false,
    },
    concurrencyPolicy: concurrencyPolicySchema,
    startingDeadlineSeconds: {
      type: 'integer',
      format: 'int64',
      description:
        'How late, in seconds after its scheduled time, a tick may still start. A tick that ' +
        'could not start in time is recorded as Missed. Unset: no deadline (after an outage only ' +
        'the latest missed tick runs).',
      minimum: 0,
    },
    maxPendingSeconds: {
      type: 'integer',
      format: 'int64',
      description:
        "How long a run's Pod may stay unstarted (Pending) before the operator deletes it and " +
        'records the run as TimedOut. Unset: no limit.',
      minimum: 1,
    },
    retry: retrySchema,
    successfulRunsHistoryLimit: {
      type: 'integer',
      format: 'int32',
      description:
        'How many Pods of succeeded runs to keep; older ones are deleted. Their records stay in status.',
      minimum: 0,
      default: 3,
    },
    failedRunsHistoryLimit: {
      type: 'integer',
      format: 'int32',
      description:
        'How many Pods of runs that did not succeed to keep, for their logs; older ones are ' +
        'deleted. Their records stay in status.',
      minimum: 0,
      default: 1,
    },
    template: jobPodTemplateSchema(),
  },
};

export const outcomeSchema: JSONSchemaProps = {
  type: 'string',
  description:
    'How the run or tick ended. Succeeded, Failed (the Pod failed), Lost (the Pod disappeared ' +
    'before finishing), TimedOut (the Pod did not start within maxPendingSeconds), Replaced ' +
    '(stopped by concurrencyPolicy Replace); for a tick with no run: Skipped (suspended, or ' +
    'Forbid found a run active) or Missed (passed while no leader acted, or past its deadline).',
  enum: ['Succeeded', 'Failed', 'Lost', 'TimedOut', 'Replaced', 'Skipped', 'Missed'],
};

const podName = (what: string): JSONSchemaProps => ({ type: 'string', description: `The name of ${what}.` });
const tick = (what: string): JSONSchemaProps =>
  dateTime(`The scheduled instant of ${what}; absent for a manual run.`);
const manualToken = (what: string): JSONSchemaProps => ({
  type: 'string',
  description: `The ssj.dev/run-now token that asked for ${what}; absent for a scheduled run.`,
});
const attempt = (what: string): JSONSchemaProps => ({
  type: 'integer',
  format: 'int32',
  description: `Which attempt of its tick ${what} is, from 1.`,
  minimum: 1,
});

export const runRecordSchema: JSONSchemaProps = {
  type: 'object',
  description: 'One finished run, or a tick (or range of ticks) that ended without a run.',
  required: ['outcome'],
  properties: {
    podName: podName("the run's Pod; absent when the tick had no Pod (Skipped, Missed)"),
    tick: tick('the run, or the first tick of a range'),
    manualToken: manualToken('the run'),
    attempt: attempt('the run'),
    outcome: outcomeSchema,
    reason: { type: 'string', description: 'Why the run ended so, in one CamelCase word.' },
    message: { type: 'string', description: 'What happened, for a human.' },
    startTime: dateTime("When the run's Pod was created."),
    completionTime: dateTime('When the run ended, or when the tick was recorded.'),
    count: {
      type: 'integer',
      format: 'int32',
      description: 'For a range of Skipped or Missed ticks: how many ticks it holds (from tick to lastTick).',
      minimum: 1,
    },
    lastTick: dateTime('For a range of Skipped or Missed ticks: its last tick.'),
  },
};

/** A RunRecord (the same type), described for its place. */
export const lastRunSchema: JSONSchemaProps = {
  ...runRecordSchema,
  description: 'The latest finished run or tick (the first entry of history).',
};

export const activeRunSchema: JSONSchemaProps = {
  type: 'object',
  description: 'The run whose Pod may still be running; absent when none is.',
  required: ['podName', 'attempt'],
  properties: {
    podName: podName("the active run's Pod"),
    tick: tick('the active run'),
    manualToken: manualToken('the active run'),
    attempt: attempt('the active run'),
    startTime: dateTime("When the active run's Pod was created."),
  },
};

export const conditionSchema: JSONSchemaProps = {
  type: 'object',
  description: 'One aspect of the current state, in the shape of metav1.Condition.',
  required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
  properties: {
    type: {
      type: 'string',
      description: 'The aspect: Ready, Suspended, Running or Degraded.',
      maxLength: 316,
      pattern:
        '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
    },
    status: { type: 'string', description: 'True, False or Unknown.', enum: ['True', 'False', 'Unknown'] },
    observedGeneration: {
      type: 'integer',
      format: 'int64',
      description: 'The metadata.generation this condition was computed from.',
      minimum: 0,
    },
    lastTransitionTime: dateTime('When the status last changed.'),
    reason: {
      type: 'string',
      description: 'Why, in one CamelCase word (for example InvalidSchedule).',
      minLength: 1,
      maxLength: 1024,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
    },
    message: { type: 'string', description: 'Details, for a human.', maxLength: 32768 },
  },
};

export const ledgerClaimSchema: JSONSchemaProps = {
  type: 'object',
  description: 'A run claimed in the ledger and not yet finished.',
  required: ['podName', 'attempt', 'claimedAt', 'term'],
  properties: {
    podName: podName('the Pod the claim stands for'),
    tick: tick('the claimed run'),
    manualToken: manualToken('the claimed run'),
    attempt: attempt('the claimed run'),
    claimedAt: dateTime('When the claim was written.'),
    state: {
      type: 'string',
      description:
        'How far the claimed run got: Claimed (its Pod not created yet), Created (the Pod exists, ' +
        'not started), Running (the Pod started).',
      enum: ['Claimed', 'Created', 'Running'],
    },
    startTime: dateTime("When the claimed run's Pod was created."),
    term: {
      type: 'integer',
      format: 'int64',
      description: 'The leader term that wrote the claim.',
      minimum: 0,
    },
  },
};

export const ledgerStatusSchema: JSONSchemaProps = {
  type: 'object',
  description:
    "Internal: the status-only ledger's bookkeeping (used when the operator runs without " +
    'PostgreSQL). Not an interface: do not edit it or build on it.',
  properties: {
    scheduleAnchor: dateTime('The instant the walk for due ticks starts from.'),
    latestTick: dateTime(
      'The latest tick the ledger accounts for (run, Skipped or Missed); no tick up to it is due again, whatever the bounded history keeps.',
    ),
    observedSchedule: { type: 'string', description: 'The schedule the anchor was set for.' },
    observedTimeZone: { type: 'string', description: 'The time zone the anchor was set for.' },
    term: {
      type: 'integer',
      format: 'int64',
      description: 'The highest leader term that wrote this ledger.',
      minimum: 0,
    },
    suspendedSince: dateTime('When the current suspension began.'),
    invalidSince: dateTime(
      'When the spec became unschedulable (invalid schedule, time zone or template); the ticks until it is fixed become one Skipped range, and none of them runs late.',
    ),
    claims: {
      type: 'array',
      description: 'Claims not yet finished.',
      items: ledgerClaimSchema,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['podName'],
    },
    handledRunNowToken: {
      type: 'string',
      description: 'The last ssj.dev/run-now token acted on, so one token starts one run.',
    },
    streakCursor: {
      type: 'object',
      description:
        'The newest finished run consecutiveFailures has taken into account, so a run is counted once however often the status is rewritten.',
      required: ['completionTime', 'podNames'],
      properties: {
        completionTime: dateTime('When that run ended.'),
        podNames: {
          type: 'array',
          description:
            'The Pods of the runs counted that ended in that very instant, so one that ends in it too and is seen later still counts.',
          items: { type: 'string' },
        },
      },
    },
  },
};

export const statusSchema: JSONSchemaProps = {
  type: 'object',
  description: 'What the operator observed and did. Written by the operator only.',
  properties: {
    observedGeneration: {
      type: 'integer',
      format: 'int64',
      description: 'The metadata.generation the operator last acted on.',
      minimum: 0,
    },
    conditions: {
      type: 'array',
      description: 'Ready, Suspended, Running and Degraded.',
      items: conditionSchema,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    },
    active: activeRunSchema,
    lastScheduleTime: dateTime('The latest tick a run was started for.'),
    lastSuccessfulTime: dateTime('When the latest successful run completed.'),
    consecutiveFailures: {
      type: 'integer',
      format: 'int32',
      minimum: 0,
      description:
        'Ticks and manual runs in a row, up to the latest one decided, whose final attempt ended Failed, Lost or TimedOut; 0 after a success. Replaced runs and Skipped or Missed ticks leave it as it is.',
    },
    lastFailureTime: dateTime('When the latest run counted in consecutiveFailures ended.'),
    nextScheduleTime: dateTime('The next tick, in UTC; absent while suspended or invalid.'),
    lastRun: lastRunSchema,
    history: {
      type: 'array',
      description: 'Recent runs and ticks, newest first.',
      maxItems: 20,
      items: runRecordSchema,
    },
    ledger: ledgerStatusSchema,
  },
};

// A messageExpression quoting the name's length would be clearer, but its estimated CEL cost
// (a string of unbounded length) exceeds the API server's budget.
const NAME_LIMIT_REASON = 'Pods are named <job>-<unix seconds>-<attempt>, which must fit in 63';

export const jobSchema: JSONSchemaProps = {
  type: 'object',
  description:
    'ScheduledSingletonJob runs a Pod on a cron schedule, exactly one Pod per tick, and records ' +
    'how every tick ended.',
  required: ['spec'],
  properties: {
    apiVersion: {
      type: 'string',
      description: `The versioned schema of this object: ${GROUP}/${VERSION}.`,
    },
    kind: { type: 'string', description: `The kind of this object: ${KIND}.` },
    metadata: { type: 'object' },
    spec: specSchema,
    status: statusSchema,
  },
  'x-kubernetes-validations': [
    {
      rule: `self.metadata.name.size() <= ${MAX_JOB_NAME_LENGTH}`,
      message: `metadata.name must be at most ${MAX_JOB_NAME_LENGTH} characters: ${NAME_LIMIT_REASON}`,
    },
  ],
};

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description: string;
  priority?: number;
}

export const printerColumns: PrinterColumn[] = [
  { name: 'Schedule', type: 'string', jsonPath: '.spec.schedule', description: 'The cron schedule.' },
  { name: 'TimeZone', type: 'string', jsonPath: '.spec.timeZone', description: 'The schedule time zone.' },
  {
    name: 'Suspend',
    type: 'boolean',
    jsonPath: '.spec.suspend',
    description: 'Whether new runs are stopped.',
  },
  // A column cannot count a list, so this names the active Pod (empty when none).
  { name: 'Active', type: 'string', jsonPath: '.status.active.podName', description: 'The active run Pod.' },
  {
    name: 'Last Schedule',
    type: 'date',
    jsonPath: '.status.lastScheduleTime',
    description: 'How long ago the latest tick ran.',
  },
  // A `date` column prints <invalid> for a time in the future: print the instant instead.
  { name: 'Next', type: 'string', jsonPath: '.status.nextScheduleTime', description: 'The next tick.' },
  {
    name: 'Last Result',
    type: 'string',
    jsonPath: '.status.lastRun.outcome',
    description: 'How the latest run ended.',
  },
  {
    name: 'Failures',
    type: 'integer',
    jsonPath: '.status.consecutiveFailures',
    description: 'Runs in a row that did not succeed.',
  },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Age of the job.' },
];

/** The CustomResourceDefinition, as the JSON the API server takes. */
export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string };
  spec: {
    group: string;
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      shortNames: string[];
    };
    scope: 'Namespaced';
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: JSONSchemaProps };
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
    }[];
  };
}

export const crd: CustomResourceDefinition = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: CRD_NAME },
  spec: {
    group: GROUP,
    names: {
      kind: KIND,
      listKind: LIST_KIND,
      plural: PLURAL,
      singular: SINGULAR,
      shortNames: [...SHORT_NAMES],
    },
    scope: 'Namespaced',
    versions: [
      {
        name: VERSION,
        served: true,
        storage: true,
        schema: { openAPIV3Schema: jobSchema },
        subresources: { status: {} },
        additionalPrinterColumns: printerColumns,
      },
    ],
  },
};

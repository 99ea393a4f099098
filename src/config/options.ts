/**
 * The operator's configuration, from command-line flags and environment variables.
 *
 * Guarantees:
 * - Every flag `--some-flag` can also be set by `SSJ_SOME_FLAG`; a flag beats its variable, which
 *   beats the conventional variable where there is one (`DATABASE_URL`, `KUBECONFIG`,
 *   `POD_NAMESPACE`, `POD_NAME`), which beats the default. An empty variable counts as unset.
 * - Every value is checked here, once: a bad value yields one line naming the flag or the variable
 *   it came from and why (exit code 2 for the caller), never a stack trace, and never a database
 *   password (a `DATABASE_URL` that fails to parse is not echoed at all).
 * - `parseOptions` is pure: it reads only its arguments (argv, env, host), prints nothing, exits
 *   nothing. The caller prints `message` and exits with `exitCode`.
 * - The leader election timings satisfy client-go's rule, lease > renew > 1.2 × retry, and the
 *   lease duration is a whole number of seconds (a Lease stores `leaseDurationSeconds`).
 * - The request timeout is shorter than the renew deadline (unset, it is 5 s or half the renew
 *   deadline, whichever is shorter), so a leader's request that hangs ends while the leader can
 *   still tell whether its term holds.
 *
 * Does not give: reading files (the kubeconfig is only named here; see kubeconfig.ts), nor
 * connecting to PostgreSQL (a well-formed URL may still point at nothing).
 */
import { Command, CommanderError, Option } from 'commander';

import { redactCredentials } from '../observability/redact.ts';
import { type BindAddress, parseBindAddress } from './address.ts';
import { formatDuration, parseDuration } from './duration.ts';

export type Subcommand = 'run' | 'migrate' | 'cleanup';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export const logLevels: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface LeaderElectionOptions {
  /** false: act as leader at once without a Lease (one replica only, e.g. local development). */
  readonly enabled: boolean;
  /** Namespace of the Lease `ssj-operator-leader`. */
  readonly namespace: string;
  /** This process's holder identity: unique per process unless set explicitly. */
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

export interface Options {
  readonly command: Subcommand;
  readonly leaderElection: LeaderElectionOptions;
  /** Watched namespace; '' = all namespaces. */
  readonly namespace: string;
  readonly metricsBindAddress: BindAddress;
  readonly healthProbeBindAddress: BindAddress;
  /** Jobs reconciled concurrently. */
  readonly workers: number;
  /** Workers beyond `workers` for due work only (a tick's loads, claims and creates). */
  readonly tickWorkers: number;
  /** Every job is reconciled again after this long even without events; 0 = never. */
  readonly resyncPeriodMs: number;
  /** undefined = no PostgreSQL: the ledger lives in the status subresource alone. Secret: never log it. */
  readonly databaseUrl: string | undefined;
  /** PostgreSQL ledger rows older than this are deleted; 0 = keep forever. */
  readonly ledgerRetentionMs: number;
  readonly logLevel: LogLevel;
  /** Deadline of each Kubernetes API request but a watch. */
  readonly requestTimeoutMs: number;
  /** Kubeconfig path(s) from --kubeconfig, SSJ_KUBECONFIG or KUBECONFIG; undefined = in-cluster or ~/.kube/config. */
  readonly kubeconfig: string | undefined;
}

export interface Host {
  hostname(): string;
  /** n random lower-case hex characters. */
  randomHex(n: number): string;
}

export type ParseResult =
  | { ok: true; options: Options }
  /** exitCode 0: `message` is help text for stdout; 2: `message` is one error line for stderr. */
  | { ok: false; exitCode: 0 | 2; message: string };

export type Env = Readonly<Record<string, string | undefined>>;

interface FlagSpec {
  readonly flag: string;
  readonly value: string;
  readonly description: string;
  readonly defaultText: string;
  /** The conventional variable read after SSJ_<FLAG>. */
  readonly conventionalEnv?: string;
}

const flags = [
  {
    flag: 'leader-elect',
    value: '[bool]',
    description: 'elect a leader through a Lease, so only one replica acts; false for a single replica',
    defaultText: 'true',
  },
  {
    flag: 'leader-election-namespace',
    value: '<namespace>',
    description: 'namespace of the Lease ssj-operator-leader',
    defaultText: 'POD_NAMESPACE, else ssj-system',
  },
  {
    flag: 'identity',
    value: '<name>',
    description: 'leader election identity; unique per process so a restart never inherits a term',
    defaultText: '<POD_NAME or host name>_<8 random hex>',
  },
  {
    flag: 'leader-election-lease-duration',
    value: '<duration>',
    description: 'how long followers wait before taking over a Lease that was not renewed',
    defaultText: '15s',
  },
  {
    flag: 'leader-election-renew-deadline',
    value: '<duration>',
    description: 'how long the leader keeps trying to renew before it stands down',
    defaultText: '10s',
  },
  {
    flag: 'leader-election-retry-period',
    value: '<duration>',
    description: 'wait between leader election attempts',
    defaultText: '2s',
  },
  {
    flag: 'namespace',
    value: '<namespace>',
    description: 'watch ScheduledSingletonJobs in this namespace only',
    defaultText: 'all namespaces',
  },
  {
    flag: 'metrics-bind-address',
    value: '<[host]:port>',
    description: 'where /metrics listens; port 0 picks a free port and logs it',
    defaultText: ':8080',
  },
  {
    flag: 'health-probe-bind-address',
    value: '<[host]:port>',
    description: 'where /healthz and /readyz listen; port 0 picks a free port and logs it',
    defaultText: ':8081',
  },
  { flag: 'workers', value: '<n>', description: 'jobs reconciled concurrently', defaultText: '10' },
  {
    flag: 'tick-workers',
    value: '<n>',
    description:
      "more workers for a tick's claims and creates only; API writes stay within --workers at once; 0 = none",
    defaultText: '40',
  },
  {
    flag: 'resync-period',
    value: '<duration>',
    description: 'reconcile every job again after this long even without events; 0 = never',
    defaultText: '10h',
  },
  {
    flag: 'database-url',
    value: '<url>',
    description: 'PostgreSQL ledger, postgres://user:password@host:5432/db; unset = ledger in status only',
    defaultText: 'unset',
    conventionalEnv: 'DATABASE_URL',
  },
  {
    flag: 'ledger-retention',
    value: '<duration>',
    description: 'delete PostgreSQL ledger rows older than this; 0 = keep forever',
    defaultText: '2160h (90 days)',
  },
  {
    flag: 'log-level',
    value: '<level>',
    description: `one of ${logLevels.join(', ')}`,
    defaultText: 'info',
  },
  {
    flag: 'request-timeout',
    value: '<duration>',
    description: 'give up on a Kubernetes API request (not a watch) after this long',
    defaultText: '5s, at most half of --leader-election-renew-deadline',
  },
  {
    flag: 'kubeconfig',
    value: '<path>',
    description: 'kubeconfig file(s); unset = in-cluster config, else ~/.kube/config',
    defaultText: 'unset',
    conventionalEnv: 'KUBECONFIG',
  },
] as const satisfies readonly FlagSpec[];

type FlagName = (typeof flags)[number]['flag'];

/** `leader-elect` → `SSJ_LEADER_ELECT`. */
export function envName(flag: string): string {
  return `SSJ_${flag.toUpperCase().replaceAll('-', '_')}`;
}

/** A raw value and where it came from, for error messages. */
interface Raw {
  readonly text: string;
  readonly from: string;
}

class ConfigError extends Error {}

export function parseOptions(argv: readonly string[], env: Env, host: Host): ParseResult {
  let helpText = '';
  let command: Subcommand | undefined;
  const program = new Command('ssj-operator')
    .description('Runs exactly one Pod per cron tick for each ScheduledSingletonJob.')
    .configureOutput({
      writeOut: (text) => {
        helpText += text;
      },
      writeErr: () => undefined,
      getOutHelpWidth: () => 100,
      getErrHelpWidth: () => 100,
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    // The description already says the default and the variables; commander's own "(preset: ...)"
    // for --leader-elect would only add noise.
    .configureHelp({ showGlobalOptions: true, optionDescription: (option) => option.description })
    .exitOverride();
  const options = new Map<FlagName, Option>();
  for (const spec of flags) {
    const env =
      'conventionalEnv' in spec ? `${envName(spec.flag)}, ${spec.conventionalEnv}` : envName(spec.flag);
    const option = new Option(
      `--${spec.flag} ${spec.value}`,
      `${spec.description} (default: ${spec.defaultText}; env: ${env})`,
    );
    if (spec.flag === 'leader-elect') option.preset('true');
    options.set(spec.flag, option);
    program.addOption(option);
  }
  program
    .command('run', { isDefault: true })
    .description('run the operator (the default)')
    .action(() => {
      command = 'run';
    });
  program
    .command('migrate')
    .description('apply the PostgreSQL ledger migrations and exit')
    .action(() => {
      command = 'migrate';
    });
  program
    .command('cleanup')
    .description(
      'after uninstalling the operator: remove its finalizer from every Pod labelled ssj.dev/job in --namespace (default all) and exit',
    )
    .action(() => {
      command = 'cleanup';
    });

  try {
    program.parse([...argv], { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') {
      return { ok: false, exitCode: 0, message: helpText };
    }
    return {
      ok: false,
      exitCode: 2,
      message: `${redactCredentials(error.message)} (see ssj-operator --help)`,
    };
  }
  if (command === undefined) throw new Error('commander ran no subcommand');

  const values = program.opts<Record<string, unknown>>();
  const raw = (flag: FlagName): Raw | undefined => {
    const option = options.get(flag);
    const fromFlag = option === undefined ? undefined : values[option.attributeName()];
    if (typeof fromFlag === 'string') return { text: fromFlag, from: `--${flag}` };
    const spec: FlagSpec | undefined = flags.find((f) => f.flag === flag);
    for (const name of [envName(flag), spec?.conventionalEnv]) {
      const text = name === undefined ? undefined : env[name];
      if (name !== undefined && text !== undefined && text !== '') return { text, from: name };
    }
    return undefined;
  };

  try {
    return { ok: true, options: build(command, raw, env, host) };
  } catch (error) {
    if (error instanceof ConfigError) return { ok: false, exitCode: 2, message: `error: ${error.message}` };
    throw error;
  }
}

function build(command: Subcommand, raw: (flag: FlagName) => Raw | undefined, env: Env, host: Host): Options {
  const value = <T>(flag: FlagName, fallback: string, parse: (text: string) => Check<T>): T => {
    const given = raw(flag);
    const text = given?.text ?? fallback;
    const result = parse(text);
    if (result.ok) return result.value;
    const where = given === undefined ? `default of --${flag}` : given.from;
    throw new ConfigError(`invalid ${where} "${text}": ${result.reason}`);
  };

  const leaseDurationMs = value('leader-election-lease-duration', '15s', positiveDuration);
  const renewDeadlineMs = value('leader-election-renew-deadline', '10s', positiveDuration);
  const retryPeriodMs = value('leader-election-retry-period', '2s', positiveDuration);
  checkLeaderElectionTimings(leaseDurationMs, renewDeadlineMs, retryPeriodMs);
  // Unset, it shrinks to fit short leader election timings instead of refusing them.
  const requestTimeoutMs =
    raw('request-timeout') === undefined
      ? Math.min(5_000, renewDeadlineMs / 2)
      : value('request-timeout', '5s', positiveDuration);
  if (requestTimeoutMs >= renewDeadlineMs) {
    throw new ConfigError(
      `--request-timeout (${formatDuration(requestTimeoutMs)}) must be shorter than --leader-election-renew-deadline (${formatDuration(renewDeadlineMs)})`,
    );
  }

  const podNamespace = nonEmpty(env['POD_NAMESPACE']);
  const namespace = raw('namespace');
  const podName = nonEmpty(env['POD_NAME']);

  return {
    command,
    leaderElection: {
      enabled: value('leader-elect', 'true', parseBool),
      namespace: value('leader-election-namespace', podNamespace ?? 'ssj-system', namespaceName),
      identity: value('identity', `${podName ?? host.hostname()}_${host.randomHex(8)}`, identity),
      leaseDurationMs,
      renewDeadlineMs,
      retryPeriodMs,
    },
    namespace: namespace === undefined || namespace.text === '' ? '' : value('namespace', '', namespaceName),
    metricsBindAddress: value('metrics-bind-address', ':8080', bindAddress),
    healthProbeBindAddress: value('health-probe-bind-address', ':8081', bindAddress),
    workers: value('workers', '10', positiveInteger),
    tickWorkers: value('tick-workers', '40', nonNegativeInteger),
    // controller-runtime's SyncPeriod: a safety net, not a clock. Every job requeues itself for
    // its next tick, and at 10,000 jobs each pass costs about 1.5 CPU s (docs/adr/0021).
    resyncPeriodMs: value('resync-period', '10h', nonNegativeDuration),
    databaseUrl: databaseUrl(command, raw('database-url')),
    ledgerRetentionMs: value('ledger-retention', '2160h', nonNegativeDuration),
    logLevel: value('log-level', 'info', logLevel),
    requestTimeoutMs,
    kubeconfig: nonEmpty(raw('kubeconfig')?.text),
  };
}

type Check<T> = { ok: true; value: T } | { ok: false; reason: string };

function nonEmpty(text: string | undefined): string | undefined {
  return text === undefined || text === '' ? undefined : text;
}

// Go's strconv.ParseBool, which is what users of Kubernetes flags know.
function parseBool(text: string): Check<boolean> {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(text)) return { ok: true, value: true };
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(text)) return { ok: true, value: false };
  return { ok: false, reason: 'expected true or false' };
}

function durationWithin(text: string, min: 'zero' | 'positive'): Check<number> {
  const parsed = parseDuration(text);
  if (!parsed.ok) return { ok: false, reason: parsed.reason };
  if (parsed.ms < 0 || (min === 'positive' && parsed.ms === 0)) {
    return { ok: false, reason: min === 'positive' ? 'must be greater than 0' : 'must not be negative' };
  }
  return { ok: true, value: parsed.ms };
}

function positiveDuration(text: string): Check<number> {
  return durationWithin(text, 'positive');
}

function nonNegativeDuration(text: string): Check<number> {
  return durationWithin(text, 'zero');
}

/** A parser of whole numbers of at least `min`, in decimal digits only. */
function integerFrom(min: number): (text: string) => Check<number> {
  return (text) => {
    if (!/^\d+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text))) {
      return { ok: false, reason: `expected a whole number of at least ${min}` };
    }
    return { ok: true, value: Number(text) };
  };
}

const nonNegativeInteger = integerFrom(0);
const positiveInteger = integerFrom(1);

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function namespaceName(text: string): Check<string> {
  if (text.length > 63 || !dns1123Label.test(text)) {
    return { ok: false, reason: 'not a namespace name (lower-case letters, digits and "-", at most 63)' };
  }
  return { ok: true, value: text };
}

function identity(text: string): Check<string> {
  if (text.trim() === '' || /\s/.test(text))
    return { ok: false, reason: 'must be non-empty, without spaces' };
  return { ok: true, value: text };
}

function bindAddress(text: string): Check<BindAddress> {
  const parsed = parseBindAddress(text);
  return parsed.ok ? { ok: true, value: parsed.address } : parsed;
}

function logLevel(text: string): Check<LogLevel> {
  const level = logLevels.find((l) => l === text);
  return level === undefined
    ? { ok: false, reason: `expected one of ${logLevels.join(', ')}` }
    : { ok: true, value: level };
}

// client-go's leaderelection.NewLeaderElector checks the same, with JitterFactor 1.2: the leader
// must give up renewing before any follower may take over, with retries to spare.
function checkLeaderElectionTimings(lease: number, renew: number, retry: number): void {
  const show = formatDuration;
  if (lease % 1000 !== 0) {
    throw new ConfigError(
      `--leader-election-lease-duration (${show(lease)}) must be whole seconds: a Lease stores leaseDurationSeconds`,
    );
  }
  if (lease <= renew) {
    throw new ConfigError(
      `--leader-election-lease-duration (${show(lease)}) must be greater than --leader-election-renew-deadline (${show(renew)})`,
    );
  }
  if (renew <= 1.2 * retry) {
    throw new ConfigError(
      `--leader-election-renew-deadline (${show(renew)}) must be greater than 1.2 × --leader-election-retry-period (${show(retry)})`,
    );
  }
}

function databaseUrl(command: Subcommand, given: Raw | undefined): string | undefined {
  if (given === undefined) {
    if (command === 'migrate') {
      throw new ConfigError('migrate needs a database: set --database-url, SSJ_DATABASE_URL or DATABASE_URL');
    }
    return undefined;
  }
  const example = 'expected postgres://user:password@host:5432/database';
  let url: URL;
  try {
    url = new URL(given.text);
  } catch {
    // Not echoed: a string that is not a URL cannot be masked reliably and may hold a password.
    throw new ConfigError(`invalid ${given.from}: not a URL (${example})`);
  }
  const shown = redactCredentials(given.text);
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(
      `invalid ${given.from} "${shown}": scheme "${url.protocol.slice(0, -1)}" is not postgres or postgresql (${example})`,
    );
  }
  if (url.hostname === '' && !url.searchParams.has('host')) {
    throw new ConfigError(`invalid ${given.from} "${shown}": no host (${example})`);
  }
  return given.text;
}

/** The options as they may be logged: the database URL with its password masked. */
export function loggableOptions(options: Options): Record<string, unknown> {
  return {
    ...options,
    databaseUrl: options.databaseUrl === undefined ? undefined : redactCredentials(options.databaseUrl),
  };
}

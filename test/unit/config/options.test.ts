import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  type Env,
  type Options,
  envName,
  loggableOptions,
  parseOptions,
} from '../../../src/config/options.ts';

const host = { hostname: () => 'node-a', randomHex: (n: number) => '0123456789abcdef'.slice(0, n) };

function parse(argv: string[], env: Env = {}): Options {
  const result = parseOptions(argv, env, host);
  assert.ok(result.ok, result.ok ? '' : result.message);
  return result.options;
}

function fail(argv: string[], env: Env = {}): string {
  const result = parseOptions(argv, env, host);
  assert.ok(!result.ok, 'expected a failure');
  assert.equal(result.exitCode, 2);
  assert.doesNotMatch(result.message, /\n/, 'one line');
  assert.doesNotMatch(result.message, /\bat .*\(.*:\d+:\d+\)/, 'no stack trace');
  return result.message;
}

describe('parseOptions', () => {
  it('gives the documented defaults when nothing is set', () => {
    assert.deepEqual(parse([]), {
      command: 'run',
      leaderElection: {
        enabled: true,
        namespace: 'ssj-system',
        identity: 'node-a_01234567',
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
      },
      namespace: '',
      metricsBindAddress: { host: '', port: 8080 },
      healthProbeBindAddress: { host: '', port: 8081 },
      workers: 10,
      tickWorkers: 40,
      resyncPeriodMs: 36_000_000,
      databaseUrl: undefined,
      ledgerRetentionMs: 90 * 24 * 3_600_000,
      logLevel: 'info',
      requestTimeoutMs: 5_000,
      kubeconfig: undefined,
    });
  });

  it('names every variable SSJ_ and the flag in upper snake case', () => {
    assert.equal(envName('leader-elect'), 'SSJ_LEADER_ELECT');
    assert.equal(envName('health-probe-bind-address'), 'SSJ_HEALTH_PROBE_BIND_ADDRESS');
  });

  const overrides: {
    name: string;
    argv: string[];
    env: Env;
    pick: (o: Options) => unknown;
    want: unknown;
  }[] = [
    {
      name: 'SSJ_WORKERS sets workers',
      argv: [],
      env: { SSJ_WORKERS: '3' },
      pick: (o) => o.workers,
      want: 3,
    },
    {
      name: '--workers beats SSJ_WORKERS',
      argv: ['--workers', '7'],
      env: { SSJ_WORKERS: '3' },
      pick: (o) => o.workers,
      want: 7,
    },
    {
      name: '--workers=N form',
      argv: ['--workers=4'],
      env: {},
      pick: (o) => o.workers,
      want: 4,
    },
    {
      name: '--tick-workers 0 turns the extra workers off',
      argv: ['--tick-workers=0'],
      env: {},
      pick: (o) => o.tickWorkers,
      want: 0,
    },
    {
      name: 'an empty variable counts as unset',
      argv: [],
      env: { SSJ_WORKERS: '' },
      pick: (o) => o.workers,
      want: 10,
    },
    {
      name: 'POD_NAMESPACE is the Lease namespace',
      argv: [],
      env: { POD_NAMESPACE: 'ops' },
      pick: (o) => o.leaderElection.namespace,
      want: 'ops',
    },
    {
      name: 'SSJ_LEADER_ELECTION_NAMESPACE beats POD_NAMESPACE',
      argv: [],
      env: { POD_NAMESPACE: 'ops', SSJ_LEADER_ELECTION_NAMESPACE: 'le' },
      pick: (o) => o.leaderElection.namespace,
      want: 'le',
    },
    {
      name: '--leader-election-namespace beats both',
      argv: ['--leader-election-namespace', 'flag'],
      env: { POD_NAMESPACE: 'ops', SSJ_LEADER_ELECTION_NAMESPACE: 'le' },
      pick: (o) => o.leaderElection.namespace,
      want: 'flag',
    },
    {
      name: 'POD_NAME starts the identity',
      argv: [],
      env: { POD_NAME: 'ssj-operator-7f9c' },
      pick: (o) => o.leaderElection.identity,
      want: 'ssj-operator-7f9c_01234567',
    },
    {
      name: 'an explicit --identity is used as given',
      argv: ['--identity', 'me'],
      env: { POD_NAME: 'p' },
      pick: (o) => o.leaderElection.identity,
      want: 'me',
    },
    {
      name: 'DATABASE_URL sets the database',
      argv: [],
      env: { DATABASE_URL: 'postgres://u:p@db:5432/ssj' },
      pick: (o) => o.databaseUrl,
      want: 'postgres://u:p@db:5432/ssj',
    },
    {
      name: 'SSJ_DATABASE_URL beats DATABASE_URL',
      argv: [],
      env: { DATABASE_URL: 'postgres://a@db/x', SSJ_DATABASE_URL: 'postgresql://b@db/y' },
      pick: (o) => o.databaseUrl,
      want: 'postgresql://b@db/y',
    },
    {
      name: 'a unix-socket database URL with ?host= is accepted',
      argv: ['--database-url', 'postgresql:///ssj?host=/var/run/postgresql'],
      env: {},
      pick: (o) => o.databaseUrl,
      want: 'postgresql:///ssj?host=/var/run/postgresql',
    },
    {
      name: 'KUBECONFIG names the kubeconfig',
      argv: [],
      env: { KUBECONFIG: '/a:/b' },
      pick: (o) => o.kubeconfig,
      want: '/a:/b',
    },
    {
      name: '--kubeconfig beats KUBECONFIG',
      argv: ['--kubeconfig', '/c'],
      env: { KUBECONFIG: '/a' },
      pick: (o) => o.kubeconfig,
      want: '/c',
    },
    {
      name: '--namespace limits the watch',
      argv: ['--namespace', 'team-a'],
      env: {},
      pick: (o) => o.namespace,
      want: 'team-a',
    },
    {
      name: 'an empty --namespace means all namespaces',
      argv: ['--namespace='],
      env: { SSJ_NAMESPACE: 'team-a' },
      pick: (o) => o.namespace,
      want: '',
    },
    {
      name: 'bind address with host and port 0',
      argv: ['--metrics-bind-address', '127.0.0.1:0'],
      env: {},
      pick: (o) => o.metricsBindAddress,
      want: { host: '127.0.0.1', port: 0 },
    },
    {
      name: 'SSJ_HEALTH_PROBE_BIND_ADDRESS sets the probe address',
      argv: [],
      env: { SSJ_HEALTH_PROBE_BIND_ADDRESS: '[::1]:9440' },
      pick: (o) => o.healthProbeBindAddress,
      want: { host: '::1', port: 9440 },
    },
    {
      name: 'durations in Go syntax',
      argv: ['--resync-period', '1m30s', '--ledger-retention', '0'],
      env: {},
      pick: (o) => [o.resyncPeriodMs, o.ledgerRetentionMs],
      want: [90_000, 0],
    },
    {
      name: 'leader election timings from variables',
      argv: [],
      env: {
        SSJ_LEADER_ELECTION_LEASE_DURATION: '4s',
        SSJ_LEADER_ELECTION_RENEW_DEADLINE: '3s',
        SSJ_LEADER_ELECTION_RETRY_PERIOD: '500ms',
      },
      pick: (o) => [
        o.leaderElection.leaseDurationMs,
        o.leaderElection.renewDeadlineMs,
        o.leaderElection.retryPeriodMs,
        o.requestTimeoutMs,
      ],
      // The request timeout, unset, shrinks to half the renew deadline.
      want: [4_000, 3_000, 500, 1_500],
    },
    {
      name: 'leader election timing flags beat their variables',
      argv: [
        '--leader-election-lease-duration',
        '30s',
        '--leader-election-renew-deadline=20s',
        '--leader-election-retry-period',
        '4s',
      ],
      env: {
        SSJ_LEADER_ELECTION_LEASE_DURATION: '4s',
        SSJ_LEADER_ELECTION_RENEW_DEADLINE: '3s',
        SSJ_LEADER_ELECTION_RETRY_PERIOD: '500ms',
      },
      pick: (o) => [
        o.leaderElection.leaseDurationMs,
        o.leaderElection.renewDeadlineMs,
        o.leaderElection.retryPeriodMs,
      ],
      want: [30_000, 20_000, 4_000],
    },
    {
      name: 'a renew deadline just above 1.2 × the retry period is accepted',
      argv: ['--leader-election-renew-deadline', '2401ms'],
      env: {},
      pick: (o) => o.leaderElection.renewDeadlineMs,
      want: 2_401,
    },
    { name: '--log-level', argv: ['--log-level', 'debug'], env: {}, pick: (o) => o.logLevel, want: 'debug' },
    {
      name: 'SSJ_REQUEST_TIMEOUT sets the request timeout',
      argv: [],
      env: { SSJ_REQUEST_TIMEOUT: '2500ms' },
      pick: (o) => o.requestTimeoutMs,
      want: 2_500,
    },
    {
      name: '--request-timeout beats SSJ_REQUEST_TIMEOUT',
      argv: ['--request-timeout', '3s'],
      env: { SSJ_REQUEST_TIMEOUT: '1s' },
      pick: (o) => o.requestTimeoutMs,
      want: 3_000,
    },
  ];
  for (const row of overrides) {
    it(row.name, () => {
      assert.deepEqual(row.pick(parse(row.argv, row.env)), row.want);
    });
  }

  const bools: { argv: string[]; env: Env; want: boolean }[] = [
    { argv: ['--leader-elect'], env: {}, want: true },
    { argv: ['--leader-elect=false'], env: {}, want: false },
    { argv: ['--leader-elect=true'], env: { SSJ_LEADER_ELECT: 'false' }, want: true },
    { argv: ['--leader-elect', 'false'], env: {}, want: false },
    { argv: [], env: { SSJ_LEADER_ELECT: 'false' }, want: false },
    { argv: [], env: { SSJ_LEADER_ELECT: '0' }, want: false },
    { argv: [], env: { SSJ_LEADER_ELECT: '1' }, want: true },
    { argv: [], env: { SSJ_LEADER_ELECT: 'FALSE' }, want: false },
  ];
  for (const row of bools) {
    it(`--leader-elect: argv ${JSON.stringify(row.argv)} env ${JSON.stringify(row.env)} → ${row.want}`, () => {
      assert.equal(parse(row.argv, row.env).leaderElection.enabled, row.want);
    });
  }

  const failures: { name: string; argv: string[]; env: Env; message: RegExp }[] = [
    { name: 'an unknown flag', argv: ['--bogus'], env: {}, message: /unknown option '--bogus'/ },
    { name: 'a stray argument', argv: ['start'], env: {}, message: /too many arguments/ },
    {
      name: 'a bool that is not one',
      argv: [],
      env: { SSJ_LEADER_ELECT: 'yes' },
      message: /^error: invalid SSJ_LEADER_ELECT "yes": expected true or false$/,
    },
    {
      name: 'a duration without unit',
      argv: ['--leader-election-lease-duration', '15'],
      env: {},
      message: /invalid --leader-election-lease-duration "15": missing unit/,
    },
    {
      name: 'a duration with a bad unit, from a variable',
      argv: [],
      env: { SSJ_RESYNC_PERIOD: '10 minutes' },
      message: /invalid SSJ_RESYNC_PERIOD "10 minutes"/,
    },
    {
      name: 'a negative duration',
      argv: ['--ledger-retention=-1h'],
      env: {},
      message: /invalid --ledger-retention "-1h": must not be negative/,
    },
    {
      name: 'a renew deadline from a variable that is not a duration',
      argv: [],
      env: { SSJ_LEADER_ELECTION_RENEW_DEADLINE: 'soon' },
      message: /^error: invalid SSJ_LEADER_ELECTION_RENEW_DEADLINE "soon"/,
    },
    {
      name: 'a negative lease duration',
      argv: ['--leader-election-lease-duration=-15s'],
      env: {},
      message: /invalid --leader-election-lease-duration "-15s": must be greater than 0/,
    },
    {
      name: 'a zero retry period',
      argv: ['--leader-election-retry-period', '0s'],
      env: {},
      message: /must be greater than 0/,
    },
    {
      name: 'lease not above renew',
      argv: ['--leader-election-lease-duration', '10s'],
      env: {},
      message:
        /--leader-election-lease-duration \(10s\) must be greater than --leader-election-renew-deadline \(10s\)/,
    },
    {
      name: 'renew not above 1.2 × retry',
      argv: ['--leader-election-renew-deadline', '2400ms'],
      env: {},
      message:
        /--leader-election-renew-deadline \(2.4s\) must be greater than 1.2 × --leader-election-retry-period \(2s\)/,
    },
    {
      name: 'a lease of fractional seconds',
      argv: ['--leader-election-lease-duration', '15500ms'],
      env: {},
      message: /must be whole seconds/,
    },
    {
      name: 'workers of 0',
      argv: ['--workers', '0'],
      env: {},
      message: /invalid --workers "0": expected a whole number of at least 1/,
    },
    { name: 'workers not a number', argv: ['--workers', '2x'], env: {}, message: /invalid --workers "2x"/ },
    {
      name: 'a bare 0 bind address',
      argv: ['--metrics-bind-address', '0'],
      env: {},
      message: /cannot be disabled; ":0" picks a free port/,
    },
    {
      name: 'a port out of range',
      argv: ['--health-probe-bind-address', ':70000'],
      env: {},
      message: /out of range/,
    },
    {
      name: 'a namespace that is not a name',
      argv: ['--namespace', 'Team_A'],
      env: {},
      message: /invalid --namespace "Team_A": not a namespace name/,
    },
    {
      name: 'an unknown log level',
      argv: [],
      env: { SSJ_LOG_LEVEL: 'verbose' },
      message: /invalid SSJ_LOG_LEVEL "verbose": expected one of trace, debug, info/,
    },
    {
      name: 'a request timeout without unit',
      argv: ['--request-timeout', '5'],
      env: {},
      message: /invalid --request-timeout "5": missing unit/,
    },
    {
      name: 'a zero request timeout',
      argv: [],
      env: { SSJ_REQUEST_TIMEOUT: '0s' },
      message: /invalid SSJ_REQUEST_TIMEOUT "0s": must be greater than 0/,
    },
    {
      name: 'a request timeout not shorter than the renew deadline',
      argv: ['--request-timeout', '10s'],
      env: {},
      message: /--request-timeout \(10s\) must be shorter than --leader-election-renew-deadline \(10s\)/,
    },
    {
      name: 'migrate without a database',
      argv: ['migrate'],
      env: {},
      message: /migrate needs a database/,
    },
  ];
  for (const row of failures) {
    it(`refuses ${row.name} with one clear line`, () => {
      assert.match(fail(row.argv, row.env), row.message);
    });
  }

  it('refuses a DATABASE_URL of another scheme without showing its password', () => {
    const message = fail([], { DATABASE_URL: 'mysql://ssj:s3cr3t@db:3306/ssj' });
    assert.match(message, /^error: invalid DATABASE_URL "mysql:\/\/ssj:\*\*\*@db:3306\/ssj": scheme "mysql"/);
    assert.doesNotMatch(message, /s3cr3t/);
  });

  it('refuses a database URL that is not a URL without echoing it', () => {
    const message = fail(['--database-url', 'host=db password=s3cr3t']);
    assert.equal(
      message,
      'error: invalid --database-url: not a URL (expected postgres://user:password@host:5432/database)',
    );
  });

  it('refuses a database URL without a host', () => {
    assert.match(fail(['--database-url', 'postgres:///ssj']), /no host/);
    assert.doesNotMatch(fail(['--database-url', 'postgres://u:s3cr3t@/ssj']), /s3cr3t/);
  });

  it('never shows a password in a commander error either', () => {
    const message = fail(['--database-url=postgres://u:s3cr3t@db/x', 'extra']);
    assert.doesNotMatch(message, /s3cr3t/);
  });

  it('gives each process its own identity', () => {
    let n = 0;
    const counting = { hostname: () => 'node-a', randomHex: (len: number) => String(n++).padStart(len, '0') };
    const a = parseOptions([], {}, counting);
    const b = parseOptions([], {}, counting);
    assert.ok(a.ok && b.ok);
    assert.notEqual(a.options.leaderElection.identity, b.options.leaderElection.identity);
    assert.match(a.options.leaderElection.identity, /^node-a_[0-9a-f]{8}$/);
  });

  it('runs by default, and by name', () => {
    assert.equal(parse([]).command, 'run');
    assert.equal(parse(['run', '--workers', '2']).command, 'run');
  });

  it('selects migrate, with flags before or after the subcommand', () => {
    const url = 'postgres://u:p@db/ssj';
    assert.equal(parse(['migrate', '--database-url', url]).command, 'migrate');
    assert.equal(parse(['--database-url', url, 'migrate']).command, 'migrate');
    assert.equal(parse(['migrate'], { DATABASE_URL: url }).databaseUrl, url);
  });

  it('selects cleanup, which needs no database and honours --namespace', () => {
    const options = parse(['cleanup', '--namespace', 'team-a']);
    assert.equal(options.command, 'cleanup');
    assert.equal(options.databaseUrl, undefined);
    assert.equal(options.namespace, 'team-a');
    assert.equal(parse(['--request-timeout=2s', 'cleanup']).requestTimeoutMs, 2_000);
  });

  it('answers --help with every flag, its default and its variable, for stdout and exit 0', () => {
    const result = parseOptions(['--help'], {}, host);
    assert.ok(!result.ok);
    assert.equal(result.exitCode, 0);
    const help = result.message.replace(/\s+/g, ' ');
    const expected: [string, string][] = [
      ['--leader-elect', 'true'],
      ['--leader-election-namespace', 'POD_NAMESPACE, else ssj-system'],
      ['--identity', '<POD_NAME or host name>_<8 random hex>'],
      ['--leader-election-lease-duration', '15s'],
      ['--leader-election-renew-deadline', '10s'],
      ['--leader-election-retry-period', '2s'],
      ['--namespace', 'all namespaces'],
      ['--metrics-bind-address', ':8080'],
      ['--health-probe-bind-address', ':8081'],
      ['--workers', '10'],
      ['--resync-period', '10h'],
      ['--database-url', 'unset'],
      ['--ledger-retention', '2160h'],
      ['--log-level', 'info'],
      ['--request-timeout', '5s'],
      ['--kubeconfig', 'unset'],
    ];
    for (const [flag, def] of expected) {
      assert.ok(help.includes(`${flag} `), `${flag} listed`);
      assert.ok(help.includes(`(default: ${def}`), `${flag} default ${def}`);
      assert.ok(help.includes(envName(flag.slice(2))), `${flag} variable`);
    }
    assert.ok(help.includes('DATABASE_URL)') && help.includes('KUBECONFIG)'));
    assert.match(help, /migrate/);
    assert.match(help, /cleanup/);
  });

  it('masks the database password when options are logged', () => {
    const options = parse([], { DATABASE_URL: 'postgres://u:s3cr3t@db/ssj' });
    assert.equal(loggableOptions(options)['databaseUrl'], 'postgres://u:***@db/ssj');
  });
});

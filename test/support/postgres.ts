// PostgreSQL for integration tests.
//
// - adminUrl(): DATABASE_URL, else the machine's shared server postgres://postgres@127.0.0.1:5432/test.
// - createTestDatabase(prefix): a fresh database with a random name on that server, and drop().
//   Fails with a clear message when the server does not answer: a test never skips.
// - startPrivateServer(): a PostgreSQL instance of the test's own (initdb + pg_ctl on a free port,
//   in a temporary directory), for tests that stop, restart or cut off the server, which they must
//   never do to the shared one. Runs as the `postgres` OS user when the test runs as root (initdb
//   refuses root). Any instance still running when the process exits is stopped and removed.

import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, escapeIdentifier } from 'pg';

const run = promisify(execFile);

export const PG_BIN = process.env['PG_BIN'] ?? '/usr/lib/postgresql/15/bin';

export function adminUrl(): string {
  const fromEnv = process.env['DATABASE_URL'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : 'postgres://postgres@127.0.0.1:5432/test';
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable database URL>';
  }
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

async function connectAdmin(url: string): Promise<Client> {
  const client = new Client({
    connectionString: url,
    connectionTimeoutMillis: 5000,
    application_name: 'ssj-tests',
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new Error(
      `PostgreSQL did not answer at ${redact(url)} (${detail}). The integration tests need a server: ` +
        'start the one on 127.0.0.1:5432 (trust auth, user postgres, database test) or set DATABASE_URL.',
      { cause: error },
    );
  }
  return client;
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

/** Creates a database named `<prefix>_<random>` on `baseUrl`'s server (default: adminUrl()). */
export async function createTestDatabase(
  prefix: string,
  baseUrl: string = adminUrl(),
): Promise<TestDatabase> {
  const clean = prefix
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 40);
  const name = `${clean}_${randomBytes(6).toString('hex')}`;
  const admin = await connectAdmin(baseUrl);
  try {
    await admin.query(`CREATE DATABASE ${escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  return {
    name,
    url: withDatabase(baseUrl, name),
    async drop() {
      const client = await connectAdmin(baseUrl);
      try {
        await client.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export interface PrivateServer {
  readonly port: number;
  /** Superuser URL of the instance's `postgres` database. */
  readonly url: string;
  readonly dir: string;
  /** Starts it again after stop(); waits until it accepts connections. */
  start(): Promise<void>;
  /** Stops it (fast shutdown: sessions are terminated); waits until it is down. */
  stop(): Promise<void>;
  /** Stops it if running and removes its files. */
  destroy(): Promise<void>;
}

const live = new Set<{ dataDir: string; dir: string }>();
let exitHookInstalled = false;

function asPostgresUser(command: string, args: string[]): [string, string[]] {
  // initdb and postgres refuse to run as root.
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

async function pgTool(tool: string, args: string[]): Promise<void> {
  const [command, argv] = asPostgresUser(join(PG_BIN, tool), args);
  try {
    await run(command, argv, { timeout: 120_000 });
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    throw new Error(
      `${tool} ${args.join(' ')} failed: ${typeof stderr === 'string' ? stderr : String(error)}`,
      {
        cause: error,
      },
    );
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const server of live) {
      try {
        const [command, argv] = asPostgresUser(join(PG_BIN, 'pg_ctl'), [
          '-D',
          server.dataDir,
          '-m',
          'immediate',
          '-w',
          'stop',
        ]);
        execFileSync(command, argv, { stdio: 'ignore', timeout: 30_000 });
      } catch {
        // already stopped
      }
      rmSync(server.dir, { recursive: true, force: true });
    }
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

export async function startPrivateServer(): Promise<PrivateServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ssj-pg-'));
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const dataDir = join(dir, 'data');
  const entry = { dataDir, dir };
  live.add(entry);
  installExitHook();
  await pgTool('initdb', [
    '-D',
    dataDir,
    '--auth=trust',
    '--username=postgres',
    '--no-sync',
    '--encoding=UTF8',
  ]);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
  const server: PrivateServer = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dir,
    async start() {
      await pgTool('pg_ctl', [
        '-D',
        dataDir,
        '-o',
        options,
        '-l',
        join(dir, 'server.log'),
        '-w',
        '-t',
        '60',
        'start',
      ]);
    },
    async stop() {
      await pgTool('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop']);
    },
    async destroy() {
      // Also after a failed start, which may have left a server behind.
      await pgTool('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      live.delete(entry);
    },
  };
  try {
    await server.start();
  } catch (error) {
    await server.destroy();
    throw error;
  }
  return server;
}

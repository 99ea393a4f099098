/**
 * The operator's two small HTTP servers: Prometheus metrics, and the kubelet's health probes.
 *
 * Guarantees:
 * - `listen()` resolves once the socket is bound, to the address actually bound (port 0 becomes
 *   the kernel's choice), and logs it as `{ server, addr }`; it rejects if the address is taken.
 * - Health probes follow the API server's conventions: `/healthz` (liveness; `/livez` too) and `/readyz`
 *   (readiness) run every registered check of their kind, in parallel, each time-boxed; all pass →
 *   200 `ok`; any fails → 503 with one `[-]name failed: reason` line per failing check. With
 *   `?verbose`, every check is listed (`[+]name ok`) whatever the result. `/healthz/<name>` and
 *   `/readyz/<name>` run one check; `?exclude=<name>` (repeatable) skips one.
 * - A check that throws or exceeds the time box fails with that as its reason; it never takes
 *   the server down.
 * - `close()` stops accepting, lets requests in flight finish, drops idle keep-alive connections,
 *   and resolves when the server is closed (forcing any connection still open after 2 s).
 *
 * Does not give: authentication or TLS (bind to the Pod's network and let a NetworkPolicy or
 * the ServiceMonitor's scope restrict who scrapes); reasons are served as they are, so a check
 * must not put secrets in its reason.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Registry } from 'prom-client';

import { type BindAddress, formatBindAddress } from '../config/address.ts';
import type { Logger } from './log.ts';

export interface Reply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/** Answers one GET/HEAD request; `path` has no query, `query` is its parameters. */
export type Route = (path: string, query: URLSearchParams) => Promise<Reply | undefined>;

export interface ServerHandle {
  listen(): Promise<BindAddress>;
  close(): Promise<void>;
}

const text = (status: number, body: string): Reply => ({
  status,
  contentType: 'text/plain; charset=utf-8',
  body,
});

/** One HTTP server: `route` answers, or returns undefined for 404. */
export function newHttpServer(options: {
  readonly name: string;
  readonly bind: BindAddress;
  readonly logger: Logger;
  readonly route: Route;
}): ServerHandle {
  const { name, bind, logger, route } = options;
  const log = logger.child({ server: name });
  let server: Server | undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let reply: Reply;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      reply = text(405, 'method not allowed\n');
    } else {
      const url = new URL(req.url ?? '/', 'http://server');
      try {
        reply = (await route(url.pathname, url.searchParams)) ?? text(404, 'not found\n');
      } catch (error) {
        log.error({ err: error, path: url.pathname }, 'request failed');
        reply = text(500, 'internal error\n');
      }
    }
    res.writeHead(reply.status, {
      'Content-Type': reply.contentType,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(reply.body);
  };

  return {
    listen: () =>
      new Promise<BindAddress>((resolve, reject) => {
        if (server !== undefined) {
          reject(new Error(`${name} server is already listening`));
          return;
        }
        const s = createServer((req, res) => {
          void handle(req, res);
        });
        server = s;
        const refused = (error: Error): void => {
          server = undefined;
          reject(new Error(`${name} server cannot listen on ${formatBindAddress(bind)}: ${error.message}`));
        };
        s.once('error', refused);
        s.listen({ host: bind.host === '' ? undefined : bind.host, port: bind.port }, () => {
          s.off('error', refused);
          s.on('error', (error) => {
            log.error({ err: error }, 'server error');
          });
          const info = s.address() as AddressInfo;
          const bound = { host: info.address, port: info.port };
          log.info({ addr: formatBindAddress(bound) }, 'listening');
          resolve(bound);
        });
      }),
    close: () =>
      new Promise<void>((resolve, reject) => {
        const s = server;
        if (s === undefined) {
          resolve();
          return;
        }
        server = undefined;
        const force = setTimeout(() => {
          s.closeAllConnections();
        }, 2_000);
        force.unref();
        s.close((error) => {
          clearTimeout(force);
          if (error === undefined) resolve();
          else reject(error);
        });
        s.closeIdleConnections();
      }),
  };
}

/** Serves `/metrics` from the registry. */
export function newMetricsServer(options: {
  readonly bind: BindAddress;
  readonly registry: Registry;
  readonly logger: Logger;
}): ServerHandle {
  const { registry } = options;
  return newHttpServer({
    name: 'metrics',
    bind: options.bind,
    logger: options.logger,
    route: async (path) =>
      path === '/metrics'
        ? { status: 200, contentType: registry.contentType, body: await registry.metrics() }
        : undefined,
  });
}

export type CheckResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };
export type Check = () => CheckResult | Promise<CheckResult>;

export interface HealthServer extends ServerHandle {
  /** Liveness: a failing check makes the kubelet restart the container. */
  addHealthCheck(name: string, check: Check): void;
  /** Readiness: a failing check takes the Pod out of Service endpoints, nothing more. */
  addReadyCheck(name: string, check: Check): void;
}

const checkName = /^[a-z0-9][a-z0-9-]*$/;

/** Serves `/healthz` and `/readyz` from registered checks; each starts with a passing `ping`. */
export function newHealthServer(options: {
  readonly bind: BindAddress;
  readonly logger: Logger;
  /**
   * A check that has not answered by then fails; default 1 s, the kubelet's default probe timeout
   * (a slower answer fails the probe anyway; failing here names the check that was slow).
   */
  readonly checkTimeoutMs?: number;
}): HealthServer {
  const timeoutMs = options.checkTimeoutMs ?? 1_000;
  const ping: Check = () => ({ ok: true });
  const kinds = {
    healthz: new Map<string, Check>([['ping', ping]]),
    readyz: new Map<string, Check>([['ping', ping]]),
  };
  const add = (kind: keyof typeof kinds, name: string, check: Check): void => {
    if (!checkName.test(name))
      throw new Error(`check name "${name}" must be lower-case letters, digits and "-"`);
    if (kinds[kind].has(name)) throw new Error(`${kind} check "${name}" is already registered`);
    kinds[kind].set(name, check);
  };
  const run = async (check: Check): Promise<CheckResult> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<CheckResult>((resolve) => {
      timer = setTimeout(() => {
        resolve({ ok: false, reason: `timed out after ${timeoutMs} ms` });
      }, timeoutMs);
    });
    try {
      return await Promise.race([Promise.resolve().then(check), timeout]);
    } catch (error) {
      return { ok: false, reason: error instanceof Error ? error.message : String(error) };
    } finally {
      clearTimeout(timer);
    }
  };

  const route: Route = async (path, query) => {
    const [, kind, only, extra] = path.split('/');
    if ((kind !== 'healthz' && kind !== 'readyz' && kind !== 'livez') || extra !== undefined)
      return undefined;
    const checks = kinds[kind === 'readyz' ? 'readyz' : 'healthz'];
    const excluded = new Set(query.getAll('exclude'));
    const selected = [...checks].filter(([name]) =>
      only === undefined || only === '' ? !excluded.has(name) : name === only,
    );
    if (selected.length === 0) return text(404, `no ${kind} check "${only ?? ''}"\n`);
    const results = await Promise.all(
      selected.map(async ([name, check]) => ({ name, result: await run(check) })),
    );
    const failed = results.some(({ result }) => !result.ok);
    const verbose = query.has('verbose');
    if (!failed && !verbose) return text(200, 'ok');
    const lines = results
      .filter(({ result }) => verbose || !result.ok)
      .map(({ name, result }) => (result.ok ? `[+]${name} ok` : `[-]${name} failed: ${result.reason}`));
    lines.push(`${kind} check ${failed ? 'failed' : 'passed'}`);
    return text(failed ? 503 : 200, `${lines.join('\n')}\n`);
  };

  const server = newHttpServer({ name: 'health', bind: options.bind, logger: options.logger, route });
  return {
    ...server,
    addHealthCheck: (name, check) => {
      add('healthz', name, check);
    },
    addReadyCheck: (name, check) => {
      add('readyz', name, check);
    },
  };
}

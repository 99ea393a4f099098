/**
 * Counts and times the operator's Kubernetes API requests (`ssj_api_requests_total`,
 * `ssj_api_request_duration_seconds`).
 *
 * Guarantees: every request sent by an API client made with `makeInstrumentedApiClient` is counted
 * once, with the Kubernetes verb (get, list, watch, create, update, patch, delete,
 * deletecollection), the resource (with its subresource: `pods`, `singletonjobs/status`) and the
 * HTTP status code, or `error` when no response came (connection refused, timeout, abort). The
 * client is otherwise the one `KubeConfig.makeApiClient` builds: same server, same credentials
 * and TLS (applied per request by the KubeConfig), User-Agent `ssj-operator`.
 *
 * Why a wrapped HTTP library and not a middleware: client-node 2.0.1's `Middleware.post` receives
 * the response alone, with no link to its request, so concurrent requests could not be labelled;
 * the `httpApi` of a `Configuration` sees both, and also sees failures that produce no response
 * (which skip `post` entirely). `makeApiClient` accepts no configuration, so we build the same
 * configuration it does (config.js, `makeApiClient`) with our `httpApi`.
 *
 * Every request but a watch also has a deadline (`requestTimeoutMs`, 5 s unless told): it covers
 * the whole exchange, from connecting to the last byte of the body, so a server that accepts a
 * connection and never answers cannot hold a worker. A request past its deadline fails with a
 * `RequestTimeoutError` (name `TimeoutError`, which ../runtime/kube-errors.ts classifies as
 * Transient); a caller's own AbortSignal on the request still works alongside it.
 *
 * Why in the HTTP library: client-node 2.0.1's generated API methods take no signal or timeout,
 * but its `RequestContext` carries an AbortSignal that `IsomorphicFetchHttpLibrary` hands to
 * undici's fetch (gen/http/isomorphic-fetch.js), and the signal stays attached while the body is
 * read.
 *
 * Does not give: counts or deadlines for watches (client-node's `Watch`, used by informers, calls
 * fetch itself; informers' list calls go through the API client they are given and are counted),
 * a deadline on obtaining credentials (an exec plugin runs before the request is sent), or the
 * time to read a response body in the duration metric (it ends when the status and headers
 * arrive).
 */
import {
  type ApiConstructor,
  type ResponseBody,
  type ApiType,
  type HttpLibrary,
  IsomorphicFetchHttpLibrary,
  type KubeConfig,
  Observable,
  type ResponseContext,
  ServerConfiguration,
  createConfiguration,
  setHeaderMiddleware,
} from '@kubernetes/client-node';

import type { Metrics } from './metrics.ts';

export interface RequestClass {
  readonly verb: string;
  readonly resource: string;
}

// Subresources of a namespace, which the path /namespaces/{name}/{x} may name instead of a
// resource inside the namespace (as the API server's RequestInfoFactory decides).
const namespaceSubresources = new Set(['status', 'finalize']);

/** Classifies a request the way the API server's own metrics do, from its method and URL. */
export function classifyRequest(method: string, url: string): RequestClass {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { verb: method.toLowerCase(), resource: 'other' };
  }
  // A server URL may carry a path prefix (a proxy), so find the API root rather than assume it.
  const segments = parsed.pathname.split('/').filter((s) => s !== '');
  const root = segments.findIndex((s) => s === 'api' || s === 'apis');
  // /api/{version}/... and /apis/{group}/{version}/...
  let parts = root < 0 ? [] : segments.slice(root + (segments[root] === 'api' ? 2 : 3));
  if (parts[0] === 'namespaces' && parts.length > 2 && !namespaceSubresources.has(parts[2] ?? '')) {
    parts = parts.slice(2);
  }
  const [resource, name, subresource] = parts;
  if (resource === undefined) return { verb: method.toLowerCase(), resource: 'other' };
  const watch = parsed.searchParams.get('watch');
  const verb = verbOf(method.toUpperCase(), name !== undefined, watch === 'true' || watch === '1');
  return { verb, resource: subresource === undefined ? resource : `${resource}/${subresource}` };
}

function verbOf(method: string, named: boolean, watch: boolean): string {
  switch (method) {
    case 'GET':
      return watch ? 'watch' : named ? 'get' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return named ? 'delete' : 'deletecollection';
    default:
      return method.toLowerCase();
  }
}

export type ApiRequestMetrics = Pick<Metrics, 'apiRequests' | 'apiRequestDuration'>;

/** Wraps an HTTP library so that each request it sends is counted and timed. */
export function instrumentHttpLibrary(
  inner: HttpLibrary,
  metrics: ApiRequestMetrics,
  nowMs: () => number = () => performance.now(),
): HttpLibrary {
  return {
    send(request) {
      const { verb, resource } = classifyRequest(request.getHttpMethod(), request.getUrl());
      const start = nowMs();
      const record = (code: string): void => {
        metrics.apiRequests.inc({ verb, resource, code });
        metrics.apiRequestDuration.observe({ verb, resource }, (nowMs() - start) / 1000);
      };
      const response = inner
        .send(request)
        .toPromise()
        .then(
          (r: ResponseContext) => {
            record(String(r.httpStatusCode));
            return r;
          },
          (error: unknown) => {
            record('error');
            throw error;
          },
        );
      return new Observable(response);
    },
  };
}

/** The default deadline of one API request (`--request-timeout`). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;

/** A request that got no complete answer within its deadline. */
export class RequestTimeoutError extends Error {
  // The name kube-errors.ts (and undici, and AbortSignal.timeout) use for a deadline: Transient.
  override readonly name = 'TimeoutError';
}

/**
 * Wraps an HTTP library so that each request but a watch is aborted after `timeoutMs`, with a
 * RequestTimeoutError, whether it is still connecting, waiting for headers or reading the body.
 */
export function timeoutHttpLibrary(inner: HttpLibrary, timeoutMs: number): HttpLibrary {
  if (!(timeoutMs > 0)) throw new Error(`request timeout must be positive, got ${timeoutMs}`);
  return {
    send(request) {
      const { verb } = classifyRequest(request.getHttpMethod(), request.getUrl());
      if (verb === 'watch') return inner.send(request);
      // The path names the object (no query: a label selector says nothing useful here).
      const what = `${request.getHttpMethod()} ${pathOf(request.getUrl())}`;
      const deadline = AbortSignal.timeout(timeoutMs);
      const own = request.getSignal();
      request.setSignal(own === undefined ? deadline : AbortSignal.any([own, deadline]));
      const timedOut = (error: unknown): unknown =>
        deadline.aborted && !(own?.aborted ?? false)
          ? new RequestTimeoutError(`${what}: no answer within ${timeoutMs} ms`, { cause: error })
          : error;
      const response = inner
        .send(request)
        .toPromise()
        .then(
          (r: ResponseContext) => withBody(r, timedOut),
          (error: unknown) => {
            throw timedOut(error);
          },
        );
      return new Observable(response);
    },
  };
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url;
  }
}

// The body is read after `send` resolves, still under the deadline: its failure is mapped too.
function withBody(r: ResponseContext, mapError: (error: unknown) => unknown): ResponseContext {
  const body = r.body;
  const mapped: ResponseBody = {
    text: () =>
      body.text().catch((error: unknown) => {
        throw mapError(error);
      }),
    binary: () =>
      body.binary().catch((error: unknown) => {
        throw mapError(error);
      }),
    stream: () => body.stream(),
  };
  r.body = mapped;
  return r;
}

export interface ApiClientOptions {
  readonly userAgent?: string;
  /** Deadline of each request but a watch; DEFAULT_REQUEST_TIMEOUT_MS unless told. */
  readonly requestTimeoutMs?: number;
}

/**
 * `kc.makeApiClient(apiClientType)`, with every request counted in `metrics` and bounded by a
 * deadline.
 */
export function makeInstrumentedApiClient<T extends ApiType>(
  kc: KubeConfig,
  apiClientType: ApiConstructor<T>,
  metrics: ApiRequestMetrics,
  options: ApiClientOptions = {},
): T {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('kubeconfig has no current cluster');
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  return new apiClientType(
    createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: kc },
      // Timed inside the count, so a request that timed out is counted as code "error".
      httpApi: instrumentHttpLibrary(
        timeoutHttpLibrary(new IsomorphicFetchHttpLibrary(), timeoutMs),
        metrics,
      ),
      middleware: [setHeaderMiddleware('User-Agent', options.userAgent ?? 'ssj-operator')],
    }),
  );
}

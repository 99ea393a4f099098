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
 * Does not give: counts for watches (client-node's `Watch`, used by informers, calls fetch
 * itself; informers' list calls go through the API client they are given and are counted), or the
 * time to read a response body (the duration ends when the status and headers arrive).
 */
import {
  type ApiConstructor,
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

/** `kc.makeApiClient(apiClientType)`, with every request counted in `metrics`. */
export function makeInstrumentedApiClient<T extends ApiType>(
  kc: KubeConfig,
  apiClientType: ApiConstructor<T>,
  metrics: ApiRequestMetrics,
  userAgent = 'ssj-operator',
): T {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('kubeconfig has no current cluster');
  return new apiClientType(
    createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: kc },
      httpApi: instrumentHttpLibrary(new IsomorphicFetchHttpLibrary(), metrics),
      middleware: [setHeaderMiddleware('User-Agent', userAgent)],
    }),
  );
}

/**
 * Loads the Kubernetes client configuration the way kubectl and controller-runtime find it.
 *
 * Guarantees: an explicit kubeconfig (from --kubeconfig, SSJ_KUBECONFIG or KUBECONFIG) may be a
 * list separated by the platform's path delimiter; the files are merged, the first current context
 * set wins, as kubectl does. Without one, ~/.kube/config is used if it exists, else the
 * in-cluster service account (client-node's `loadFromDefault` order, minus KUBECONFIG, which
 * options.ts has already read).
 *
 * The KubeConfig returned keeps its connections (KeepAliveKubeConfig below).
 *
 * Does not give: a check that the cluster is reachable or that the CRD is installed; throws
 * client-node's own error when a named file is missing or malformed.
 */
import { delimiter } from 'node:path';

import { KubeConfig, type RequestContext } from '@kubernetes/client-node';
import { Agent } from 'undici';

/**
 * A KubeConfig whose API clients reuse their connections.
 *
 * client-node 2.0.1 builds a new undici Agent for every request
 * (`applySecurityAuthentication` → `createDispatcher`), so no connection is ever reused: every
 * request pays a TCP and a TLS handshake, on the operator's CPU and on the API server's. At a tick
 * with 1,000 jobs due this was the largest item of the operator's profile (docs/adr/0014).
 *
 * This builds one Agent per (context, cluster, user), the key client-node itself uses for its
 * WebSocket agents, from the same TLS options client-node would use, and hands it to every request.
 * It speaks HTTP/1.1 (undici 8 would negotiate HTTP/2 and carry every request and watch of the
 * process on one connection, where a watch the process reads slowly can stall its Lease renewals
 * behind the connection's flow-control window): each request in flight has a connection of its
 * own, and connections are kept alive and reused. A cluster behind a proxy keeps client-node's
 * own dispatcher.
 *
 * Consequence: TLS material read from files (a client certificate, the CA) is read when the
 * Agent is built; a rotated file applies to a new process. Bearer tokens (the in-cluster
 * ServiceAccount's) are headers, read per request as before.
 */
export class KeepAliveKubeConfig extends KubeConfig {
  readonly #agents = new Map<string, Promise<Agent>>();

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const fresh = context.getDispatcher();
    const cluster = this.getCurrentCluster();
    if (fresh === undefined || cluster === null || cluster.proxyUrl !== undefined) return;
    const key = JSON.stringify([this.getCurrentContext(), cluster.name, this.getCurrentUser()?.name]);
    let agent = this.#agents.get(key);
    if (agent === undefined) {
      agent = this.#newAgent();
      this.#agents.set(key, agent);
      agent.catch(() => this.#agents.delete(key));
    }
    context.setDispatcher(await agent);
    // `fresh` is dropped, not closed: it never opened a connection, so it holds nothing the
    // garbage collector does not free, while undici's close() builds a ClientDestroyedError,
    // stack trace and all, for every request (3 % of the operator's CPU in a 1,000-job burst).
  }

  async #newAgent(): Promise<Agent> {
    // The TLS options client-node applies to a request: CA, client certificate and key, and
    // whether to verify the server.
    const tls: Record<string, unknown> = {};
    await this.applyToHTTPSOptions(tls);
    const connect: Record<string, unknown> = { keepAlive: true, keepAliveInitialDelay: 30_000 };
    for (const name of ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'])
      if (tls[name] !== undefined) connect[name] = tls[name];
    return new Agent({ connect, allowH2: false });
  }
}

export function loadKubeConfig(kubeconfig: string | undefined): KubeConfig {
  const kc = new KeepAliveKubeConfig();
  const files = (kubeconfig ?? '').split(delimiter).filter((file) => file !== '');
  const [first, ...rest] = files;
  if (first === undefined) {
    kc.loadFromDefault();
    return kc;
  }
  kc.loadFromFile(first);
  for (const file of rest) {
    const more = new KubeConfig();
    more.loadFromFile(file);
    // client-node leaves currentContext undefined (despite its type) when a file sets none.
    kc.mergeConfig(more, Boolean(kc.getCurrentContext()));
  }
  return kc;
}

/**
 * Loads the Kubernetes client configuration the way kubectl and controller-runtime find it.
 *
 * Guarantees: an explicit kubeconfig (from --kubeconfig, SSJ_KUBECONFIG or KUBECONFIG) may be a
 * list separated by the platform's path delimiter; the files are merged, the first current context
 * set wins, as kubectl does. Without one, ~/.kube/config is used if it exists, else the
 * in-cluster service account (client-node's `loadFromDefault` order, minus KUBECONFIG, which
 * options.ts has already read).
 *
 * Does not give: a check that the cluster is reachable or that the CRD is installed; throws
 * client-node's own error when a named file is missing or malformed.
 */
import { delimiter } from 'node:path';

import { KubeConfig } from '@kubernetes/client-node';

export function loadKubeConfig(kubeconfig: string | undefined): KubeConfig {
  const kc = new KubeConfig();
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

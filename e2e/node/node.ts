/**
 * What the real-node suites know about the node e2e/node/up.sh adds to the local cluster.
 *
 * Guarantees:
 * - `requireRealNode` fails loudly, saying what to run, unless the node is Ready and its
 *   kubelet's image file is there; it never skips.
 * - `nodeTemplate(script)` is a Pod template whose one container runs `sh -c script` in the
 *   node's busybox image, with a 2 s grace period: `sh` is the container's PID 1 and ignores
 *   SIGTERM, so a deleted run is killed after 2 s instead of the default 30.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { REPOSITORY_ROOT } from '../../test/support/kube.ts';

const STATE = join(REPOSITORY_ROOT, '.local', 'node');

function stateFile(name: string): string {
  try {
    return readFileSync(join(STATE, name), 'utf8').trim();
  } catch {
    throw new Error(`no real node: ${join(STATE, name)} is missing; run \`make node-up\` (e2e/README.md)`);
  }
}

/** The node's name, as up.sh registered it. */
export function realNodeName(): string {
  return stateFile('node-name');
}

/** The busybox image imported into the node's containerd (ssj.local/busybox:<version>). */
export function busyboxImage(): string {
  return stateFile('busybox-image');
}

export async function requireRealNode(kc: KubeConfig): Promise<string> {
  const name = realNodeName();
  const node = await kc.makeApiClient(CoreV1Api).readNode({ name });
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status !== 'True') {
    throw new Error(
      `node ${name} is not Ready (${ready?.reason ?? 'no Ready condition'}: ${ready?.message ?? ''}); run \`make node-up\``,
    );
  }
  busyboxImage();
  return name;
}

export interface NodeTemplateOptions {
  readonly restartPolicy?: 'Never' | 'OnFailure';
  readonly activeDeadlineSeconds?: number;
  /** An emptyDir at /data, which outlives a container restart inside the Pod. */
  readonly scratch?: boolean;
}

export function nodeTemplate(script: string, options: NodeTemplateOptions = {}): Record<string, unknown> {
  return {
    spec: {
      restartPolicy: options.restartPolicy ?? 'Never',
      terminationGracePeriodSeconds: 2,
      ...(options.activeDeadlineSeconds === undefined
        ? {}
        : { activeDeadlineSeconds: options.activeDeadlineSeconds }),
      ...(options.scratch === true ? { volumes: [{ name: 'scratch', emptyDir: {} }] } : {}),
      containers: [
        {
          name: 'main',
          image: busyboxImage(),
          command: ['sh', '-c', script],
          ...(options.scratch === true ? { volumeMounts: [{ name: 'scratch', mountPath: '/data' }] } : {}),
        },
      ],
    },
  };
}

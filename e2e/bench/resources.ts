/**
 * Everything the benchmark started or changed, so it can be undone whatever happens: operator
 * processes, the bare client, namespaces, PostgreSQL databases, and kube-controller-manager's
 * raised rate limits.
 *
 * Guarantees: `release()` stops every process, restores kube-controller-manager's default flags
 * if they were raised, drops the databases and deletes the namespaces (waiting for them to be
 * gone unless told not to); it is idempotent and keeps going past individual failures, which it
 * reports through `log`. `killNow()` is the synchronous last resort for `process.on('exit')`:
 * it SIGKILLs the children and nothing else.
 */
import type { ChildProcess } from 'node:child_process';
import type { KubeConfig } from '@kubernetes/client-node';
import {
  deleteNamespace,
  errorText,
  requestNamespaceDeletion,
  restartControllerManager,
  type Database,
} from './cluster.ts';
import type { OperatorProcess } from './operator-process.ts';

export class Resources {
  readonly operators = new Set<OperatorProcess>();
  readonly children = new Set<ChildProcess>();
  readonly namespaces = new Set<string>();
  readonly databases = new Set<Database>();
  kcmRaised = false;

  async release(kc: KubeConfig, log: (line: string) => void, options: { wait: boolean }): Promise<void> {
    const attempt = async (what: string, work: () => Promise<unknown>): Promise<void> => {
      try {
        await work();
      } catch (error) {
        log(`cleanup: ${what} failed: ${errorText(error)}`);
      }
    };
    for (const op of this.operators) {
      await attempt('stopping an operator', () => op.stop());
      this.operators.delete(op);
    }
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      this.children.delete(child);
    }
    if (this.kcmRaised) {
      log('cleanup: restoring kube-controller-manager default flags');
      await attempt('restoring kube-controller-manager', () => restartControllerManager([]));
      this.kcmRaised = false;
    }
    for (const db of this.databases) {
      await attempt('dropping a database', () => db.drop());
      this.databases.delete(db);
    }
    for (const ns of this.namespaces) {
      log(`cleanup: deleting namespace ${ns}`);
      await attempt(`deleting namespace ${ns}`, () =>
        options.wait ? deleteNamespace(kc, ns) : requestNamespaceDeletion(kc, ns),
      );
      this.namespaces.delete(ns);
    }
  }

  killNow(): void {
    for (const op of this.operators) op.killNow();
    for (const child of this.children) if (child.exitCode === null) child.kill('SIGKILL');
  }
}

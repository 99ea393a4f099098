/**
 * Fault points for crash tests. `SSJ_FAULT_EXIT_AT=<point>` makes the process exit (code 86)
 * the first time it reaches that point; unset, it does nothing. The points are the windows
 * that the ledger's claim-first protocol exists for:
 *   after-claim   the claim is durable, the Pod not yet created;
 *   after-create  the Pod exists, nothing about it recorded yet.
 * Documented in README.md; never set it in production.
 */
export type FaultPoint = 'after-claim' | 'after-create';

export const FAULT_ENV = 'SSJ_FAULT_EXIT_AT';
export const FAULT_EXIT_CODE = 86;

export type FaultHook = (point: FaultPoint) => void;

export const noFaults: FaultHook = () => undefined;

export function faultHookFrom(value: string | undefined, exit: (code: number) => never): FaultHook {
  if (value === undefined || value === '') return noFaults;
  if (value !== 'after-claim' && value !== 'after-create') {
    throw new Error(`${FAULT_ENV} must be after-claim or after-create, got "${value}"`);
  }
  return (point) => {
    if (point !== value) return;
    process.stderr.write(`ssj-operator: fault point ${point} reached: exiting with ${FAULT_EXIT_CODE}\n`);
    exit(FAULT_EXIT_CODE);
  };
}

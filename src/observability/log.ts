/**
 * Structured logs: one JSON object a line on stdout, with a short lower-case message.
 *
 * Guarantees:
 * - Every line has `level` (as a word), `time` (RFC 3339), `msg`, and the fields of the call and of
 *   its child loggers. Conventional fields: `job` ("namespace/name"), `tick` (Unix seconds, as in
 *   the Pod name and the `ssj.dev/tick` label), `term` (leader term), `err` (an Error, serialized
 *   with message and stack).
 * - Credentials never reach the output: a `password` or `authorization` field is replaced by
 *   "[redacted]", and the password in any `scheme://user:password@host` text anywhere in the
 *   line (a message, a field, an error's stack) is replaced by `***`.
 * - Writes are synchronous, so the last lines before `process.exit` are not lost.
 *
 * Does not give: a guarantee that fields are serializable beyond what JSON.stringify does (pino's
 * safe mode handles cycles); sampling or rate limiting.
 */
import { pino } from 'pino';

import type { LogLevel } from '../config/options.ts';
import { redactCredentials } from './redact.ts';

export type LogFields = Readonly<Record<string, unknown>>;

/** What the rest of the code depends on; tests pass `nopLogger` or a fake. */
export interface Logger {
  debug(fields: LogFields, msg: string): void;
  info(fields: LogFields, msg: string): void;
  warn(fields: LogFields, msg: string): void;
  error(fields: LogFields, msg: string): void;
  child(bindings: LogBindings): Logger;
}

export interface LogBindings {
  /** "namespace/name" of a ScheduledSingletonJob. */
  readonly job?: string;
  /** The tick as Unix seconds. */
  readonly tick?: number;
  /** The leader term. */
  readonly term?: number;
  readonly [field: string]: unknown;
}

/** Where lines go; defaults to stdout. Tests pass a collecting stream. */
export interface LogDestination {
  write(line: string): void;
}

export function newLogger(level: LogLevel, destination?: LogDestination): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: [
        'password',
        '*.password',
        'authorization',
        '*.authorization',
        'headers.authorization',
        '*.headers.authorization',
      ],
      censor: '[redacted]',
    },
    hooks: { streamWrite: redactCredentials },
  };
  const sink = destination ?? pino.destination({ dest: 1, sync: true });
  return fromPino(pino(options, sink));
}

// An explicit adapter rather than handing out pino's Logger: callers see only our interface, so
// a test's fake logger and the real one are interchangeable.
function fromPino(log: pino.Logger): Logger {
  return {
    debug: (fields, msg) => {
      log.debug(fields, msg);
    },
    info: (fields, msg) => {
      log.info(fields, msg);
    },
    warn: (fields, msg) => {
      log.warn(fields, msg);
    },
    error: (fields, msg) => {
      log.error(fields, msg);
    },
    child: (bindings) => fromPino(log.child(bindings)),
  };
}

/** A logger that drops everything. */
export const nopLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => nopLogger,
};

/** The child logger for one job: every line carries `job: "namespace/name"`. */
export function jobLogger(log: Logger, job: { readonly namespace: string; readonly name: string }): Logger {
  return log.child({ job: `${job.namespace}/${job.name}` });
}

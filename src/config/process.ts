/**
 * The impure edge of configuration: reads this process's argv and environment, and on a bad
 * value or `--help` prints and exits (2 for an error, 0 for help), as a command-line tool should.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

import { type Host, type Options, parseOptions } from './options.ts';

export const systemHost: Host = {
  hostname: () => hostname(),
  randomHex: (n) =>
    randomBytes(Math.ceil(n / 2))
      .toString('hex')
      .slice(0, n),
};

export function optionsFromProcessOrExit(): Options {
  const result = parseOptions(process.argv.slice(2), process.env, systemHost);
  if (result.ok) return result.options;
  const out = result.exitCode === 0 ? process.stdout : process.stderr;
  out.write(result.message.endsWith('\n') ? result.message : `${result.message}\n`);
  process.exit(result.exitCode);
}

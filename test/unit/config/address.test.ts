import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { formatBindAddress, parseBindAddress } from '../../../src/config/address.ts';

describe('parseBindAddress', () => {
  const valid: [string, string, number][] = [
    [':8080', '', 8080],
    ['0.0.0.0:8081', '0.0.0.0', 8081],
    ['127.0.0.1:0', '127.0.0.1', 0],
    ['localhost:9090', 'localhost', 9090],
    ['[::1]:8080', '::1', 8080],
    ['[::]:0', '::', 0],
    [':65535', '', 65535],
  ];
  for (const [text, host, port] of valid) {
    it(`reads "${text}" as host "${host}" port ${port}, and prints it back`, () => {
      const result = parseBindAddress(text);
      assert.ok(result.ok, result.ok ? '' : result.reason);
      assert.deepEqual(result.address, { host, port });
      assert.equal(formatBindAddress(result.address), text);
    });
  }

  const invalid: [string, RegExp][] = [
    ['0', /cannot be disabled; ":0" picks a free port/],
    ['8080', /cannot be disabled/],
    ['localhost', /expected \[host\]:port/],
    ['', /expected \[host\]:port/],
    [':', /port "" is not a number/],
    [':http', /port "http" is not a number/],
    [':65536', /out of range/],
    [':-1', /not a number/],
    ['::1:8080', /IPv6 host needs brackets/],
    ['[::1:8080', /unbalanced brackets/],
    ['a b:80', /whitespace/],
  ];
  for (const [text, reason] of invalid) {
    it(`refuses "${text}"`, () => {
      const result = parseBindAddress(text);
      assert.ok(!result.ok);
      assert.match(result.reason, reason);
    });
  }
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { redactCredentials } from '../../../src/observability/redact.ts';

describe('redactCredentials', () => {
  const cases: [string, string][] = [
    ['postgres://ssj:s3cr3t@db:5432/ssj', 'postgres://ssj:***@db:5432/ssj'],
    ['postgresql://ssj:p@ss@db/ssj', 'postgresql://ssj:***@db/ssj'],
    ['connect to "postgres://u:x%40y@h/d" failed', 'connect to "postgres://u:***@h/d" failed'],
    ['a postgres://a:1@h b postgres://b:2@k', 'a postgres://a:***@h b postgres://b:***@k'],
    ['host=db password=s3cr3t dbname=ssj', 'host=db password=*** dbname=ssj'],
    ['postgres://db/ssj?user=u&password=s3cr3t&x=1', 'postgres://db/ssj?user=u&password=***&x=1'],
    ['postgres://ssj@db/ssj', 'postgres://ssj@db/ssj'],
    ['https://127.0.0.1:6443/api/v1/pods', 'https://127.0.0.1:6443/api/v1/pods'],
    ['no secrets here', 'no secrets here'],
  ];
  for (const [input, output] of cases) {
    it(`masks ${JSON.stringify(input)}`, () => {
      assert.equal(redactCredentials(input), output);
    });
  }
});

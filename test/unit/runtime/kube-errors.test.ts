import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApiException } from '@kubernetes/client-node';
import { classify } from '../../../src/runtime/kube-errors.ts';
import type { KubeError } from '../../../src/runtime/kube-errors.ts';

function status(code: number, reason: string, message: string, causes?: unknown[]): ApiException<string> {
  const body = JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
    ...(causes === undefined ? {} : { details: { causes } }),
  });
  return new ApiException(code, 'Unknown API Status Code!', body, { 'content-type': 'application/json' });
}

function sysError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

const table: { name: string; err: unknown; want: Partial<KubeError> }[] = [
  {
    name: '404 NotFound Status',
    err: status(404, 'NotFound', 'pods "x" not found'),
    want: { kind: 'NotFound', code: 404, reason: 'NotFound', message: 'pods "x" not found' },
  },
  {
    name: '409 AlreadyExists Status',
    err: status(409, 'AlreadyExists', 'pods "x" already exists'),
    want: { kind: 'AlreadyExists', code: 409, reason: 'AlreadyExists' },
  },
  {
    name: '409 Conflict Status (stale resourceVersion)',
    err: status(
      409,
      'Conflict',
      'the object has been modified; please apply your changes to the latest version',
    ),
    want: { kind: 'Conflict', code: 409, reason: 'Conflict' },
  },
  {
    name: '409 without a body',
    err: new ApiException(409, 'x', undefined, {}),
    want: { kind: 'Conflict', code: 409 },
  },
  {
    name: '410 Expired',
    err: status(410, 'Expired', 'too old resource version'),
    want: { kind: 'Gone', code: 410 },
  },
  {
    name: '403 Forbidden',
    err: status(403, 'Forbidden', 'pods is forbidden: User "x" cannot create resource'),
    want: { kind: 'Forbidden', code: 403 },
  },
  {
    name: '422 Invalid with causes',
    err: status(422, 'Invalid', 'Pod "X" is invalid', [
      { reason: 'FieldValueInvalid', message: 'Invalid value: "X"', field: 'metadata.name' },
    ]),
    want: {
      kind: 'Invalid',
      code: 422,
      reason: 'Invalid',
      causes: [{ reason: 'FieldValueInvalid', message: 'Invalid value: "X"', field: 'metadata.name' }],
    },
  },
  {
    name: '400 BadRequest',
    err: status(400, 'BadRequest', 'bad patch'),
    want: { kind: 'Invalid', code: 400 },
  },
  {
    name: '429 TooManyRequests',
    err: status(429, 'TooManyRequests', 'slow down'),
    want: { kind: 'Transient' },
  },
  {
    name: '500 InternalError',
    err: status(500, 'InternalError', 'etcd timeout'),
    want: { kind: 'Transient' },
  },
  {
    name: '503 ServiceUnavailable',
    err: status(503, 'ServiceUnavailable', 'x'),
    want: { kind: 'Transient' },
  },
  { name: '504 Timeout', err: status(504, 'Timeout', 'x'), want: { kind: 'Transient' } },
  {
    name: '502 from a proxy with an HTML body',
    err: new ApiException(502, 'Unknown API Status Code!', '<html>bad gateway</html>', {}),
    want: { kind: 'Transient', code: 502, message: 'HTTP 502: <html>bad gateway</html>' },
  },
  {
    name: '401 without a body (client-node passes undefined)',
    err: new ApiException(401, 'Unauthorized', undefined, {}),
    want: { kind: 'Unknown', code: 401, reason: 'Unauthorized', message: 'HTTP 401: Unauthorized' },
  },
  {
    name: '405 MethodNotAllowed',
    err: status(405, 'MethodNotAllowed', 'x'),
    want: { kind: 'Unknown', code: 405 },
  },
  {
    name: 'a body that is already parsed',
    err: { code: 404, body: { reason: 'NotFound', message: 'gone fishing' } },
    want: { kind: 'NotFound', message: 'gone fishing' },
  },
  {
    name: 'client-node Watch error (statusCode, status text as message)',
    err: Object.assign(new Error('Gone'), { statusCode: 410 }),
    want: { kind: 'Gone', code: 410, message: 'HTTP 410: Gone' },
  },
  {
    name: 'undici fetch failed caused by ECONNREFUSED',
    err: new TypeError('fetch failed', {
      cause: sysError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:6443'),
    }),
    want: {
      kind: 'Transient',
      reason: 'ECONNREFUSED',
      message: 'fetch failed: connect ECONNREFUSED 127.0.0.1:6443',
    },
  },
  {
    name: 'ECONNREFUSED to both addresses (AggregateError under fetch failed)',
    err: new TypeError('fetch failed', {
      cause: new AggregateError([sysError('ECONNREFUSED', 'connect ECONNREFUSED ::1:6443')], ''),
    }),
    want: { kind: 'Transient', reason: 'ECONNREFUSED' },
  },
  {
    name: 'ECONNRESET',
    err: sysError('ECONNRESET', 'read ECONNRESET'),
    want: { kind: 'Transient', reason: 'ECONNRESET' },
  },
  {
    name: 'ETIMEDOUT',
    err: sysError('ETIMEDOUT', 'connect ETIMEDOUT'),
    want: { kind: 'Transient', reason: 'ETIMEDOUT' },
  },
  {
    name: 'undici socket error',
    err: new TypeError('terminated', { cause: sysError('UND_ERR_SOCKET', 'other side closed') }),
    want: { kind: 'Transient', reason: 'UND_ERR_SOCKET' },
  },
  {
    name: 'undici headers timeout',
    err: sysError('UND_ERR_HEADERS_TIMEOUT', 'Headers Timeout Error'),
    want: { kind: 'Transient', reason: 'UND_ERR_HEADERS_TIMEOUT' },
  },
  { name: 'socket hang up (no code)', err: new Error('socket hang up'), want: { kind: 'Transient' } },
  { name: 'bare fetch failed', err: new TypeError('fetch failed'), want: { kind: 'Transient' } },
  {
    name: 'a request timeout (TimeoutError)',
    err: new DOMException('The operation was aborted due to timeout', 'TimeoutError'),
    want: { kind: 'Transient', reason: 'TimeoutError' },
  },
  {
    name: "the caller's own abort",
    err: new DOMException('This operation was aborted', 'AbortError'),
    want: { kind: 'Unknown' },
  },
  {
    name: 'a programming error',
    err: new TypeError('Cannot read properties of undefined'),
    want: { kind: 'Unknown' },
  },
  { name: 'a thrown string', err: 'weird', want: { kind: 'Unknown', message: 'weird' } },
  { name: 'undefined', err: undefined, want: { kind: 'Unknown', message: 'undefined' } },
  { name: 'null', err: null, want: { kind: 'Unknown' } },
  {
    name: 'a cyclic cause chain',
    err: (() => {
      const e = new Error('loop') as Error & { cause?: unknown };
      e.cause = e;
      return e;
    })(),
    want: { kind: 'Unknown' },
  },
];

describe('classify', () => {
  for (const row of table) {
    it(`classifies ${row.name} as ${row.want.kind}`, () => {
      const got = classify(row.err);
      for (const [field, value] of Object.entries(row.want)) {
        assert.deepEqual(got[field as keyof KubeError], value, `${field} of ${JSON.stringify(got)}`);
      }
      assert.equal(typeof got.message, 'string');
      assert.ok(got.message.length > 0);
    });
  }

  it('never repeats ApiException headers in the message', () => {
    const got = classify(new ApiException(404, 'Unknown API Status Code!', '', { 'x-secret-ish': 'value' }));
    assert.equal(got.kind, 'NotFound');
    assert.doesNotMatch(got.message, /secret|Headers/);
  });
});

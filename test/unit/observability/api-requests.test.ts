import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  type HttpLibrary,
  HttpMethod,
  Observable,
  RequestContext,
  ResponseContext,
  wrapHttpLibrary,
} from '@kubernetes/client-node';

import { classifyRequest, instrumentHttpLibrary } from '../../../src/observability/api-requests.ts';
import { newMetrics } from '../../../src/observability/metrics.ts';

describe('classifyRequest', () => {
  const base = 'https://127.0.0.1:6443';
  const cases: [string, string, string, string][] = [
    ['GET', '/api/v1/namespaces/a/pods/p-1', 'get', 'pods'],
    ['GET', '/api/v1/namespaces/a/pods?labelSelector=x', 'list', 'pods'],
    ['GET', '/api/v1/pods', 'list', 'pods'],
    ['GET', '/api/v1/namespaces/a/pods?watch=true', 'watch', 'pods'],
    ['GET', '/api/v1/namespaces/a/pods?watch=1&resourceVersion=5', 'watch', 'pods'],
    ['POST', '/api/v1/namespaces/a/pods', 'create', 'pods'],
    ['DELETE', '/api/v1/namespaces/a/pods/p-1', 'delete', 'pods'],
    ['DELETE', '/api/v1/namespaces/a/pods', 'deletecollection', 'pods'],
    ['POST', '/api/v1/namespaces/a/events', 'create', 'events'],
    ['GET', '/apis/ssj.dev/v1alpha1/singletonjobs', 'list', 'singletonjobs'],
    [
      'PUT',
      '/apis/ssj.dev/v1alpha1/namespaces/a/singletonjobs/nightly/status',
      'update',
      'singletonjobs/status',
    ],
    [
      'PATCH',
      '/apis/ssj.dev/v1alpha1/namespaces/a/singletonjobs/nightly/status',
      'patch',
      'singletonjobs/status',
    ],
    [
      'PUT',
      '/apis/coordination.k8s.io/v1/namespaces/ssj-system/leases/ssj-operator-leader',
      'update',
      'leases',
    ],
    ['GET', '/api/v1/namespaces/a', 'get', 'namespaces'],
    ['GET', '/api/v1/namespaces', 'list', 'namespaces'],
    ['PUT', '/api/v1/namespaces/a/status', 'update', 'namespaces/status'],
    ['PUT', '/api/v1/namespaces/a/finalize', 'update', 'namespaces/finalize'],
    ['GET', '/k8s/clusters/c-1/api/v1/namespaces/a/pods/p', 'get', 'pods'],
    ['GET', '/apis', 'get', 'other'],
    ['GET', '/version', 'get', 'other'],
  ];
  for (const [method, path, verb, resource] of cases) {
    it(`${method} ${path} is ${verb} ${resource}`, () => {
      assert.deepEqual(classifyRequest(method, base + path), { verb, resource });
    });
  }
});

function fakeLibrary(answer: (request: RequestContext) => Promise<ResponseContext>): HttpLibrary {
  return wrapHttpLibrary({ send: answer });
}

const emptyBody = {
  text: () => Promise.resolve(''),
  binary: () => Promise.resolve(Buffer.alloc(0)),
  stream: () => null,
};

describe('instrumentHttpLibrary', () => {
  it('counts each request by verb, resource and status code, and times it', async () => {
    const metrics = newMetrics({ processMetrics: false });
    let t = 1_000;
    const lib = instrumentHttpLibrary(
      fakeLibrary((req) => {
        t += 250;
        return Promise.resolve(
          new ResponseContext(req.getHttpMethod() === 'POST' ? 409 : 200, {}, emptyBody),
        );
      }),
      metrics,
      () => t,
    );
    const url = 'https://127.0.0.1:6443/api/v1/namespaces/a/pods';
    const response = await lib.send(new RequestContext(url, HttpMethod.POST)).toPromise();
    assert.equal(response.httpStatusCode, 409);
    await lib.send(new RequestContext(`${url}/p`, HttpMethod.GET)).toPromise();
    const text = await metrics.registry.metrics();
    assert.match(text, /^ssj_api_requests_total\{verb="create",resource="pods",code="409"\} 1$/m);
    assert.match(text, /^ssj_api_requests_total\{verb="get",resource="pods",code="200"\} 1$/m);
    assert.match(text, /^ssj_api_request_duration_seconds_sum\{verb="create",resource="pods"\} 0.25$/m);
  });

  it('counts a request that got no response as code "error" and passes the failure on', async () => {
    const metrics = newMetrics({ processMetrics: false });
    const refused = new Error('connect ECONNREFUSED');
    const lib = instrumentHttpLibrary(
      { send: () => new Observable<ResponseContext>(Promise.reject(refused)) },
      metrics,
    );
    await assert.rejects(
      lib.send(new RequestContext('https://h/api/v1/namespaces/a/pods', HttpMethod.POST)).toPromise(),
      refused,
    );
    assert.match(
      await metrics.registry.metrics(),
      /^ssj_api_requests_total\{verb="create",resource="pods",code="error"\} 1$/m,
    );
  });
});

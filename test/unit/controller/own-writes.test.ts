import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ScheduledSingletonJob } from '../../../src/api/types.ts';
import { OwnWrites } from '../../../src/controller/own-writes.ts';

const version = (resourceVersion: string, note = ''): ScheduledSingletonJob => ({
  apiVersion: 'ssj.dev/v1alpha1',
  kind: 'ScheduledSingletonJob',
  metadata: { name: 'j', namespace: 'ns', uid: 'u1', resourceVersion, annotations: { note } },
  spec: { schedule: '@yearly', template: { spec: { containers: [] } } },
});

describe('own writes (the mutation cache of status writes)', () => {
  it('answers with our write while the cache still shows the version it replaced', () => {
    const own = new OwnWrites();
    const written = version('2', 'ours');
    own.wroteJob(version('1'), written);
    assert.equal(own.job(version('1')), written);
    assert.equal(own.echoed(version('1')), false);
  });

  it('tells the echo of our latest write once, and keeps nothing of it afterwards', () => {
    const own = new OwnWrites();
    const written = version('2', 'ours');
    own.wroteJob(version('1'), written);
    const echo = version('2', 'from the cache');
    assert.equal(own.echoed(echo), true);
    // Remembered no longer: a second delivery of that version is news, and the cache speaks.
    assert.equal(own.echoed(echo), false);
    assert.equal(own.job(version('1')).metadata?.annotations?.['note'], '');
  });

  it('a version written by someone else wins, and is no echo', () => {
    const own = new OwnWrites();
    own.wroteJob(version('1'), version('2', 'ours'));
    const theirs = version('3', 'theirs');
    assert.equal(own.echoed(theirs), false);
    assert.equal(own.job(theirs), theirs);
  });
});

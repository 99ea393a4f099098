import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  instantOfWallClock,
  latestWallClockBy,
  loadZone,
  transitionsBetween,
  wallClockAt,
  type Zone,
} from '../../../src/schedule/zone.ts';

function zone(name: string): Zone {
  const z = loadZone(name);
  if (z === null) throw new Error(`unknown zone ${name}`);
  return z;
}

const instant = (iso: string): number => Date.parse(iso) / 1000;
/** A wall-clock time written as ISO without a zone, e.g. "2026-03-29T02:30:00". */
const wall = (local: string): number => Date.parse(`${local}Z`) / 1000;
const iso = (t: number): string => new Date(t * 1000).toISOString().replace('.000Z', 'Z');

describe('loadZone', () => {
  it('reads offsets to the second, local mean time included', () => {
    assert.equal(zone('Europe/Berlin').offsetAt(instant('2026-07-01T00:00:00Z')), 7200);
    assert.equal(zone('America/St_Johns').offsetAt(instant('2026-01-01T00:00:00Z')), -12_600);
    assert.equal(zone('Europe/Berlin').offsetAt(instant('1850-01-01T00:00:00Z')), 3208); // +00:53:28
    assert.equal(zone('UTC').offsetAt(0), 0);
  });

  it('refuses offset strings, which ICU now accepts as zones', () => {
    assert.equal(loadZone('+01:00'), null);
    assert.equal(loadZone('-0500'), null);
  });
});

// One row per kind of wall-clock time: normal, in a gap, at the end of a gap, repeated.
const wallRows: readonly { zone: string; wall: string; expected: string; why: string }[] = [
  {
    zone: 'Europe/Berlin',
    wall: '2026-03-29T01:59:59',
    expected: '2026-03-29T00:59:59Z',
    why: 'just before the gap',
  },
  {
    zone: 'Europe/Berlin',
    wall: '2026-03-29T02:00:00',
    expected: '2026-03-29T01:00:00Z',
    why: 'the gap starts',
  },
  { zone: 'Europe/Berlin', wall: '2026-03-29T02:30:00', expected: '2026-03-29T01:00:00Z', why: 'in the gap' },
  {
    zone: 'Europe/Berlin',
    wall: '2026-03-29T02:59:59',
    expected: '2026-03-29T01:00:00Z',
    why: 'the gap ends',
  },
  {
    zone: 'Europe/Berlin',
    wall: '2026-03-29T03:00:00',
    expected: '2026-03-29T01:00:00Z',
    why: 'the end of the gap',
  },
  {
    zone: 'Europe/Berlin',
    wall: '2026-03-29T03:00:01',
    expected: '2026-03-29T01:00:01Z',
    why: 'after the gap',
  },
  {
    zone: 'Europe/Berlin',
    wall: '2026-10-25T01:59:59',
    expected: '2026-10-24T23:59:59Z',
    why: 'before the repeat',
  },
  {
    zone: 'Europe/Berlin',
    wall: '2026-10-25T02:00:00',
    expected: '2026-10-25T00:00:00Z',
    why: 'repeated: first (CEST)',
  },
  {
    zone: 'Europe/Berlin',
    wall: '2026-10-25T02:59:59',
    expected: '2026-10-25T00:59:59Z',
    why: 'repeated: first (CEST)',
  },
  {
    zone: 'Europe/Berlin',
    wall: '2026-10-25T03:00:00',
    expected: '2026-10-25T02:00:00Z',
    why: 'after the repeat',
  },
  {
    zone: 'Australia/Lord_Howe',
    wall: '2026-10-04T02:15:00',
    expected: '2026-10-03T15:30:00Z',
    why: '30-minute gap',
  },
  {
    zone: 'Australia/Lord_Howe',
    wall: '2026-04-05T01:45:00',
    expected: '2026-04-04T14:45:00Z',
    why: '30-minute repeat',
  },
  {
    zone: 'Pacific/Apia',
    wall: '2011-12-30T12:00:00',
    expected: '2011-12-30T10:00:00Z',
    why: 'a skipped day',
  },
  { zone: 'Asia/Tokyo', wall: '2026-03-29T02:30:00', expected: '2026-03-28T17:30:00Z', why: 'no shifts' },
];

describe('instantOfWallClock places every wall-clock time by DESIGN.md "Time"', () => {
  for (const row of wallRows) {
    it(`${row.zone} ${row.wall} (${row.why}) is ${row.expected}`, () => {
      assert.equal(iso(instantOfWallClock(zone(row.zone), wall(row.wall))), row.expected);
    });
  }
});

describe('latestWallClockBy', () => {
  const berlin = zone('Europe/Berlin');
  it('is the wall clock outside a second pass', () => {
    const t = instant('2026-10-25T00:30:00Z');
    assert.equal(latestWallClockBy(berlin, t), wallClockAt(berlin, t));
  });
  it('stays at the end of the first pass during the second pass', () => {
    assert.equal(latestWallClockBy(berlin, instant('2026-10-25T01:30:00Z')), wall('2026-10-25T02:59:59'));
  });
  it('moves on once the second pass is over', () => {
    assert.equal(latestWallClockBy(berlin, instant('2026-10-25T02:00:00Z')), wall('2026-10-25T03:00:00'));
  });
});

describe('transitionsBetween', () => {
  it('finds both Berlin shifts of 2026 to the second', () => {
    assert.deepEqual(
      transitionsBetween(
        zone('Europe/Berlin'),
        instant('2026-01-01T00:00:00Z'),
        instant('2027-01-01T00:00:00Z'),
      ),
      [
        { at: instant('2026-03-29T01:00:00Z'), before: 3600, after: 7200 },
        { at: instant('2026-10-25T01:00:00Z'), before: 7200, after: 3600 },
      ],
    );
  });
  it('finds none in a zone without shifts', () => {
    assert.deepEqual(
      transitionsBetween(
        zone('Asia/Tokyo'),
        instant('2026-01-01T00:00:00Z'),
        instant('2027-01-01T00:00:00Z'),
      ),
      [],
    );
  });
});

-- Up Migration
--
-- The PostgreSQL idempotency ledger of ssj-operator (DESIGN.md, "Ledger and fence").
-- Everything lives in the schema `ssj` (created by the migration runner, which also keeps its
-- bookkeeping table `ssj.pgmigrations` there), so the ledger can share a database with others.
-- Timestamps are timestamptz; a tick is a whole second (DESIGN.md, "A run's identity").

-- One row per leader Lease incarnation. A Lease deleted and recreated has a new UID, hence a
-- new row: its terms start again from the new Lease's leaseTransitions.
CREATE TABLE ssj.fence (
  lease_namespace text NOT NULL,
  lease_name text NOT NULL,
  lease_uid text NOT NULL,
  term bigint NOT NULL CHECK (term >= 0),
  holder text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (lease_namespace, lease_name, lease_uid)
);

-- One row per run attempt. run_key is the run's identity as one string (see runKey() in
-- src/ledger/postgres/run-key.ts); the two partial unique indexes state the same identity in
-- columns, so a second claim of a tick is refused by the schema itself, whatever the key says.
-- holder/epoch are the claiming leader's (the same values the Pod carries as annotations);
-- updated_holder/updated_epoch say which term wrote the row last.
CREATE TABLE ssj.runs (
  run_key text PRIMARY KEY,
  job_uid text NOT NULL,
  namespace text NOT NULL,
  job_name text NOT NULL,
  run_kind text NOT NULL CHECK (run_kind IN ('scheduled', 'manual')),
  tick timestamptz,
  manual_token text,
  attempt integer NOT NULL CHECK (attempt >= 1),
  pod_name text NOT NULL,
  state text NOT NULL CHECK (state IN ('Claimed', 'Pending', 'Running', 'Finished')),
  outcome text CHECK (outcome IN ('Succeeded', 'Failed', 'Lost', 'TimedOut', 'Replaced')),
  reason text,
  message text,
  holder text NOT NULL,
  epoch bigint NOT NULL CHECK (epoch >= 0),
  claimed_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_holder text NOT NULL,
  updated_epoch bigint NOT NULL CHECK (updated_epoch >= 0),
  CONSTRAINT runs_identity_matches_kind CHECK (
    (run_kind = 'scheduled' AND tick IS NOT NULL AND manual_token IS NULL)
    OR (run_kind = 'manual' AND manual_token IS NOT NULL AND tick IS NULL)
  ),
  CONSTRAINT runs_outcome_iff_finished CHECK ((state = 'Finished') = (outcome IS NOT NULL)),
  CONSTRAINT runs_finished_at_when_finished CHECK (state <> 'Finished' OR finished_at IS NOT NULL)
);

CREATE UNIQUE INDEX runs_scheduled_identity ON ssj.runs (job_uid, tick, attempt)
  WHERE run_kind = 'scheduled';
CREATE UNIQUE INDEX runs_manual_identity ON ssj.runs (job_uid, manual_token, attempt)
  WHERE run_kind = 'manual';
CREATE INDEX runs_by_job_newest ON ssj.runs (job_uid, claimed_at DESC);
CREATE INDEX runs_unfinished ON ssj.runs (job_uid) WHERE state <> 'Finished';
CREATE INDEX runs_finished_at ON ssj.runs (finished_at) WHERE state = 'Finished';

-- Ticks that ended without a run: Skipped (a leader's decision) or Missed (no leader acted).
-- A range [first_tick, last_tick] holding `count` ticks, so a long suspension or outage is one
-- row; the primary key makes recording idempotent and lets a growing range be extended.
CREATE TABLE ssj.ticks_not_run (
  job_uid text NOT NULL,
  namespace text NOT NULL,
  job_name text NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('Skipped', 'Missed')),
  first_tick timestamptz NOT NULL,
  last_tick timestamptz NOT NULL,
  count bigint NOT NULL CHECK (count >= 1),
  reason text NOT NULL,
  message text NOT NULL DEFAULT '',
  holder text NOT NULL,
  epoch bigint NOT NULL CHECK (epoch >= 0),
  recorded_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_uid, first_tick, outcome),
  CONSTRAINT ticks_not_run_range_ordered CHECK (last_tick >= first_tick),
  CONSTRAINT ticks_not_run_single_tick_iff_count_one CHECK ((count = 1) = (first_tick = last_tick))
);

CREATE INDEX ticks_not_run_by_job_newest ON ssj.ticks_not_run (job_uid, last_tick DESC);
CREATE INDEX ticks_not_run_last_tick ON ssj.ticks_not_run (last_tick);

-- Down Migration

DROP TABLE ssj.ticks_not_run;
DROP TABLE ssj.runs;
DROP TABLE ssj.fence;

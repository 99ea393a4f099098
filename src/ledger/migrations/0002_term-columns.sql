-- Up Migration
--
-- One word for one concept (DESIGN.md, invariant 3): the leadership term that wrote a row is its
-- `term`, as in ssj.fence, the Pod annotation ssj.dev/term and the job's status.

ALTER TABLE ssj.runs RENAME COLUMN epoch TO term;
ALTER TABLE ssj.runs RENAME COLUMN updated_epoch TO updated_term;
ALTER TABLE ssj.ticks_not_run RENAME COLUMN epoch TO term;

-- Down Migration

ALTER TABLE ssj.ticks_not_run RENAME COLUMN term TO epoch;
ALTER TABLE ssj.runs RENAME COLUMN updated_term TO updated_epoch;
ALTER TABLE ssj.runs RENAME COLUMN term TO epoch;

-- +goose Up
-- The latest periodic CheckInvariants, whichever replica ran it: replicas take turns (under an
-- advisory lock) instead of each scanning every transfer, and all of them export this result.
CREATE TABLE ledger_invariant_checks (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    checked_at timestamptz NOT NULL,
    ok         boolean NOT NULL,
    violations text[] NOT NULL DEFAULT '{}'
);

-- +goose Down
DROP TABLE ledger_invariant_checks;

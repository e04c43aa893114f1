-- +goose Up
-- The refund worker looks for duplicate payments without an automatic refund every second;
-- duplicates are rare, so a partial index keeps that query from scanning every payment.
CREATE INDEX payments_duplicate_idx ON payments (trade_no) WHERE duplicate AND status = 'SUCCEEDED';

-- +goose Down
DROP INDEX payments_duplicate_idx;

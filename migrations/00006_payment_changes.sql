-- +goose Up
-- Every replica LISTENs on paycenter_payment_changed and wakes the WatchPayment streams of the
-- payment named in the payload, instead of each stream polling its row. A trigger (rather than
-- each UPDATE) sends it, so no code path that changes a payment can forget to. Only what a
-- watcher waits for counts: status, refunds and the duplicate flag. The payer action is set
-- before CreatePayment answers, so watchers read it first; worker bookkeeping such as
-- next_check_at is nobody's business. (Every NOTIFY costs the committing transaction a global
-- lock and wakes each replica's listening session, so it is sent only when worth it.)
-- +goose StatementBegin
CREATE FUNCTION payments_notify_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('paycenter_payment_changed', NEW.trade_no);
	RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER payments_notify_changed AFTER UPDATE ON payments
	FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
		OR OLD.refunded_amount IS DISTINCT FROM NEW.refunded_amount
		OR OLD.duplicate IS DISTINCT FROM NEW.duplicate)
	EXECUTE FUNCTION payments_notify_changed();

-- +goose Down
DROP TRIGGER payments_notify_changed ON payments;
DROP FUNCTION payments_notify_changed();

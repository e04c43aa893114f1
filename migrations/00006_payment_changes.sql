-- +goose Up
-- Every replica LISTENs on paycenter_payment_changed and wakes the WatchPayment streams of the
-- payment named in the payload, instead of each stream polling its row. A trigger (rather than
-- each UPDATE) sends it, so no code path that changes a payment can forget to. Only changes of
-- updated_at count: that is what a watcher is sent (worker bookkeeping such as next_check_at
-- does not touch it).
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
	FOR EACH ROW WHEN (OLD.updated_at IS DISTINCT FROM NEW.updated_at)
	EXECUTE FUNCTION payments_notify_changed();

-- +goose Down
DROP TRIGGER payments_notify_changed ON payments;
DROP FUNCTION payments_notify_changed();

-- +goose Up
-- A group-commit batch sends COMMIT together with its write, so the write's own checks (every
-- account updated, every pending transfer still pending, every transfer inserted) must fail
-- inside the statement, before COMMIT runs: this raises errcode when ok is not true.
-- +goose StatementBegin
CREATE FUNCTION ledger_assert(ok boolean, errcode text, message text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION USING ERRCODE = errcode, MESSAGE = message;
    END IF;
    RETURN true;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION ledger_assert(boolean, text, text);

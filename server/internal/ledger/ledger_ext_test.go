package ledger_test

import (
	"encoding/csv"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/types/known/timestamppb"

	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/server/internal/server/servertest"
)

const (
	codePayment    = paycenterv1.TransferCode_TRANSFER_CODE_PAYMENT
	codeFee        = paycenterv1.TransferCode_TRANSFER_CODE_FEE
	codeAdjustment = paycenterv1.TransferCode_TRANSFER_CODE_ADJUSTMENT
	ok             = paycenterv1.TransferError_TRANSFER_ERROR_UNSPECIFIED
)

func TestCreateAccountIsIdempotentAndValidated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant()
	a := e.account(m, paycenterv1.AccountCode_ACCOUNT_CODE_MERCHANT_AVAILABLE, limited)
	if a.GetNormalSide() != paycenterv1.NormalSide_NORMAL_SIDE_CREDIT || !a.GetDebitsMustNotExceedCredits() || a.GetMerchantId() != m {
		t.Fatalf("account: %v", a)
	}
	if again := e.account(m, paycenterv1.AccountCode_ACCOUNT_CODE_MERCHANT_AVAILABLE, limited); again.GetAccountId() != a.GetAccountId() {
		t.Fatalf("same key gave another account: %s, %s", again.GetAccountId(), a.GetAccountId())
	}
	if c := e.account(m, paycenterv1.AccountCode_ACCOUNT_CODE_CHANNEL_CLEARING_ALIPAY); c.GetNormalSide() != paycenterv1.NormalSide_NORMAL_SIDE_DEBIT {
		t.Fatalf("clearing is debit-normal: %v", c)
	}
	if usd := e.account(m, paycenterv1.AccountCode_ACCOUNT_CODE_MERCHANT_AVAILABLE, limited, currency("USD")); usd.GetAccountId() == a.GetAccountId() {
		t.Fatal("another currency must be another account")
	}

	for _, tc := range []struct {
		name    string
		req     *paycenterv1.CreateAccountRequest
		code    connect.Code
		mention string
	}{
		{"other limits", &paycenterv1.CreateAccountRequest{MerchantId: m, Code: paycenterv1.AccountCode_ACCOUNT_CODE_MERCHANT_AVAILABLE, Currency: "CNY"}, connect.CodeAlreadyExists, a.GetAccountId()},
		{"no code", &paycenterv1.CreateAccountRequest{MerchantId: m, Currency: "CNY"}, connect.CodeInvalidArgument, "code"},
		{"bad currency", &paycenterv1.CreateAccountRequest{MerchantId: m, Code: paycenterv1.AccountCode_ACCOUNT_CODE_PLATFORM_FEES, Currency: "cny"}, connect.CodeInvalidArgument, "currency"},
		{"both limits", &paycenterv1.CreateAccountRequest{MerchantId: m, Code: paycenterv1.AccountCode_ACCOUNT_CODE_PLATFORM_FEES, Currency: "CNY",
			DebitsMustNotExceedCredits: true, CreditsMustNotExceedDebits: true}, connect.CodeInvalidArgument, "credits_must_not_exceed_debits"},
		{"merchant code without merchant", &paycenterv1.CreateAccountRequest{Code: paycenterv1.AccountCode_ACCOUNT_CODE_MERCHANT_AVAILABLE, Currency: "CNY"}, connect.CodeInvalidArgument, "merchant_id"},
		{"unknown merchant", &paycenterv1.CreateAccountRequest{MerchantId: "mch_nope", Code: paycenterv1.AccountCode_ACCOUNT_CODE_PLATFORM_FEES, Currency: "CNY"}, connect.CodeNotFound, "mch_nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ledger.CreateAccount(ctx, connect.NewRequest(tc.req))
			wantCode(t, err, tc.code, tc.mention)
		})
	}
}

func TestTransferMovesMoneyOnBothSides(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant()
	clearing := e.account(m, paycenterv1.AccountCode_ACCOUNT_CODE_CHANNEL_CLEARING_ALIPAY).GetAccountId()
	avail := e.available(m)
	fees := e.fees()
	pay := transfer(id("pay"), clearing, avail, 10000, codePayment)
	pay.Reference, pay.Metadata = "T2024001", map[string]string{"operator": "ops@example.com", "client_ip": "10.0.0.1"}
	got := e.mustApply(pay)
	if got.GetStatus() != paycenterv1.TransferStatus_TRANSFER_STATUS_POSTED || got.GetCreateTime() == nil ||
		got.GetMetadata()["client_ip"] != "10.0.0.1" || got.GetReference() != "T2024001" {
		t.Fatalf("stored transfer: %v", got)
	}
	e.mustApply(transfer(id("fee"), avail, fees, 60, codeFee))
	if b := e.balance(clearing); b != 10000 {
		t.Fatalf("clearing (debit-normal) balance %d, want 10000", b)
	}
	if b := e.balance(avail); b != 9940 {
		t.Fatalf("available balance %d, want 9940", b)
	}
	if a := e.totals(avail); a != (totals{dp: 60, cp: 10000}) {
		t.Fatalf("available totals %+v", a)
	}
	res, err := e.ledger.GetTransfer(ctx, connect.NewRequest(&paycenterv1.GetTransferRequest{TransferId: pay.GetTransferId()}))
	if err != nil || res.Msg.GetTransfer().GetAmount() != 10000 {
		t.Fatalf("GetTransfer: %v %v", res, err)
	}
	_, err = e.ledger.GetTransfer(ctx, connect.NewRequest(&paycenterv1.GetTransferRequest{TransferId: "nope"}))
	wantCode(t, err, connect.CodeNotFound, "nope")
}

// Text full of SQL, array and JSON syntax is stored exactly as it was sent (a batch travels
// as arrays, so quoting matters).
func TestTextIsStoredExactly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant()
	clearing := e.account(m, paycenterv1.AccountCode_ACCOUNT_CODE_CHANNEL_CLEARING_WECHATPAY).GetAccountId()
	avail := e.available(m)
	nasty := []string{`it's`, `a\b\\c`, `"quoted"`, `{1,2}`, `NULL`, `', now()); DROP TABLE ledger_transfers; --`,
		`E'\x00'`, `$1 $$ $9`, "商户 🧾", `\"{'}"\`, ``}
	for i, text := range nasty {
		pay := transfer(id("text"), clearing, avail, int64(i+1), codePayment)
		pay.Reference = text
		pay.Metadata = map[string]string{"note": text, text + "-key": "v"}
		e.mustApply(pay)
		res, err := e.ledger.GetTransfer(ctx, connect.NewRequest(&paycenterv1.GetTransferRequest{TransferId: pay.GetTransferId()}))
		if err != nil {
			t.Fatalf("GetTransfer: %v", err)
		}
		got := res.Msg.GetTransfer()
		if got.GetReference() != text || got.GetMetadata()["note"] != text || got.GetMetadata()[text+"-key"] != "v" {
			t.Errorf("sent reference and metadata %q, stored %q %v", text, got.GetReference(), got.GetMetadata())
		}
	}
	if b := e.balance(avail); b != int64(len(nasty)*(len(nasty)+1)/2) {
		t.Fatalf("available balance %d", b)
	}
}

func TestBadInputIsRefusedAndWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant()
	avail := e.available(m)
	fees := e.fees()
	usd := e.account(m, paycenterv1.AccountCode_ACCOUNT_CODE_PLATFORM_FEES, currency("USD")).GetAccountId()
	e.fund(avail, 1000)
	// A pair of unlimited accounts whose totals sit near the int64 maximum.
	big := e.account(m, paycenterv1.AccountCode_ACCOUNT_CODE_CHANNEL_CLEARING_WECHATPAY).GetAccountId()
	sink := e.account(m, paycenterv1.AccountCode_ACCOUNT_CODE_MERCHANT_PENDING_SETTLEMENT).GetAccountId()
	e.mustApply(transfer(id("big"), big, sink, math.MaxInt64-10, codeAdjustment))

	for _, tc := range []struct {
		name   string
		mutate func(*paycenterv1.Transfer)
		want   paycenterv1.TransferError
		field  string
	}{
		{"zero amount", func(t *paycenterv1.Transfer) { t.Amount = 0 }, paycenterv1.TransferError_TRANSFER_ERROR_INVALID, "amount"},
		{"negative amount", func(t *paycenterv1.Transfer) { t.Amount = -5 }, paycenterv1.TransferError_TRANSFER_ERROR_INVALID, "amount"},
		{"same account", func(t *paycenterv1.Transfer) { t.CreditAccountId = avail }, paycenterv1.TransferError_TRANSFER_ERROR_INVALID, "credit_account_id"},
		{"missing debit account", func(t *paycenterv1.Transfer) { t.DebitAccountId = "" }, paycenterv1.TransferError_TRANSFER_ERROR_INVALID, "debit_account_id"},
		{"no code", func(t *paycenterv1.Transfer) { t.Code = 0 }, paycenterv1.TransferError_TRANSFER_ERROR_INVALID, "code"},
		{"unknown code", func(t *paycenterv1.Transfer) { t.Code = 99 }, paycenterv1.TransferError_TRANSFER_ERROR_INVALID, "code"},
		{"malformed currency", func(t *paycenterv1.Transfer) { t.Currency = "yuan" }, paycenterv1.TransferError_TRANSFER_ERROR_INVALID, "currency"},
		{"pending and post", func(t *paycenterv1.Transfer) { t.Pending, t.PostPending = true, true }, paycenterv1.TransferError_TRANSFER_ERROR_INVALID, "pending"},
		{"timeout without pending", func(t *paycenterv1.Transfer) { t.TimeoutSeconds = 5 }, paycenterv1.TransferError_TRANSFER_ERROR_INVALID, "timeout_seconds"},
		{"control characters in reference", func(t *paycenterv1.Transfer) { t.Reference = "a\nb" }, paycenterv1.TransferError_TRANSFER_ERROR_INVALID, "reference"},
		{"NUL in metadata", func(t *paycenterv1.Transfer) { t.Metadata = map[string]string{"k": "a\x00b"} }, paycenterv1.TransferError_TRANSFER_ERROR_INVALID, "metadata"},
		{"malformed id", func(t *paycenterv1.Transfer) { t.TransferId = "has space" }, paycenterv1.TransferError_TRANSFER_ERROR_INVALID, "transfer_id"},
		{"reserved id", func(t *paycenterv1.Transfer) { t.TransferId = "settle:" + m + ":2020-01:CNY" }, paycenterv1.TransferError_TRANSFER_ERROR_INVALID, "transfer_id"},
		{"unknown debit account", func(t *paycenterv1.Transfer) { t.DebitAccountId = "acc_missing" }, paycenterv1.TransferError_TRANSFER_ERROR_ACCOUNT_NOT_FOUND, "debit_account_id"},
		{"unknown credit account", func(t *paycenterv1.Transfer) { t.CreditAccountId = "acc_missing" }, paycenterv1.TransferError_TRANSFER_ERROR_ACCOUNT_NOT_FOUND, "credit_account_id"},
		{"currency mismatch", func(t *paycenterv1.Transfer) { t.CreditAccountId = usd }, paycenterv1.TransferError_TRANSFER_ERROR_CURRENCY_MISMATCH, "USD"},
		{"exceeds credits", func(t *paycenterv1.Transfer) { t.Amount = 1001 }, paycenterv1.TransferError_TRANSFER_ERROR_EXCEEDS_CREDITS, avail},
		{"overflow", func(t *paycenterv1.Transfer) { t.DebitAccountId, t.CreditAccountId, t.Amount = big, sink, 11 }, paycenterv1.TransferError_TRANSFER_ERROR_OVERFLOW, "overflow"},
		{"post of unknown pending", func(t *paycenterv1.Transfer) { t.PostPending, t.PendingTransferId = true, "nope" }, paycenterv1.TransferError_TRANSFER_ERROR_PENDING_TRANSFER_NOT_FOUND, "pending_transfer_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot()
			tr := transfer(id("bad"), avail, fees, 10, codeFee)
			tc.mutate(tr)
			e.refuse(tr, tc.want, tc.field)
			// A retry gets the same answer; the refusal is recorded when the id is usable.
			e.refuse(tr, tc.want, tc.field)
			if after := e.snapshot(); !equalSnapshots(before, after) {
				t.Fatalf("account totals changed:\nbefore %v\nafter  %v", before, after)
			}
			got, err := e.ledger.GetTransfer(ctx, connect.NewRequest(&paycenterv1.GetTransferRequest{TransferId: tr.GetTransferId()}))
			recordable := !strings.Contains(tc.name, "id") && tc.name != "NUL in metadata"
			switch {
			case recordable && (err != nil || got.Msg.GetTransfer().GetStatus() != paycenterv1.TransferStatus_TRANSFER_STATUS_FAILED):
				t.Fatalf("refusal not recorded: %v %v", got, err)
			case !recordable && err == nil:
				t.Fatalf("unusable transfer was recorded: %v", got.Msg)
			}
		})
	}

	t.Run("whole request", func(t *testing.T) {
		_, err := e.ledger.CreateTransfers(ctx, connect.NewRequest(&paycenterv1.CreateTransfersRequest{}))
		wantCode(t, err, connect.CodeInvalidArgument, "transfers")
		many := make([]*paycenterv1.Transfer, 1001)
		for i := range many {
			many[i] = transfer(id("many"), avail, fees, 1, codeFee)
		}
		_, err = e.ledger.CreateTransfers(ctx, connect.NewRequest(&paycenterv1.CreateTransfersRequest{Transfers: many}))
		wantCode(t, err, connect.CodeInvalidArgument, "transfers")
	})
}

func equalSnapshots(a, b map[string]totals) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRetriedTransferAppliesOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant()
	avail, fees := e.available(m), e.fees()
	e.fund(avail, 1000)

	tr := transfer(id("retry"), avail, fees, 100, codeFee)
	tr.Metadata = map[string]string{"a": "1", "b": "2"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := map[int64]bool{}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.create(tr)[0]
			if r.GetError() != ok {
				t.Errorf("retry refused: %v %s", r.GetError(), r.GetMessage())
				return
			}
			mu.Lock()
			created[r.GetTransfer().GetCreateTime().AsTime().UnixMicro()] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(created) != 1 {
		t.Fatalf("retries returned %d different transfers", len(created))
	}
	if b := e.balance(avail); b != 900 {
		t.Fatalf("balance %d after 16 retries of one transfer, want 900", b)
	}
	// The same id in one request twice is applied once too.
	twice := transfer(id("twice"), avail, fees, 50, codeFee)
	for _, r := range e.create(twice, twice) {
		if r.GetError() != ok {
			t.Fatalf("duplicate in request: %v", r)
		}
	}
	if b := e.balance(avail); b != 850 {
		t.Fatalf("balance %d, want 850", b)
	}
	// Same id, other content.
	other := transfer(tr.GetTransferId(), avail, fees, 101, codeFee)
	e.refuse(other, paycenterv1.TransferError_TRANSFER_ERROR_EXISTS_WITH_DIFFERENT_CONTENT, "transfer_id")
	// Metadata order does not matter; linked is not content.
	same := transfer(tr.GetTransferId(), avail, fees, 100, codeFee)
	same.Metadata = map[string]string{"b": "2", "a": "1"}
	e.mustApply(same)
	if b := e.balance(avail); b != 850 {
		t.Fatalf("balance %d, want 850", b)
	}
}

func TestRefusedTransferStaysRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant()
	avail, fees := e.available(m), e.fees()
	tr := transfer(id("early"), avail, fees, 100, codeFee)
	e.refuse(tr, paycenterv1.TransferError_TRANSFER_ERROR_EXCEEDS_CREDITS, avail)
	e.fund(avail, 1000)
	e.refuse(tr, paycenterv1.TransferError_TRANSFER_ERROR_EXCEEDS_CREDITS, avail)
	if b := e.balance(avail); b != 1000 {
		t.Fatalf("balance %d, want 1000", b)
	}
}

func TestConcurrentTransfersNeverOverdrawALimitedAccount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant()
	avail, fees := e.available(m), e.fees()
	e.fund(avail, 1000)

	// Half the requests go to a second replica: each replica's batches skip their read on
	// accounts it wrote last, and must notice the other's writes.
	replica := servertest.Replica(t, e.srv).Admin().Ledger
	const goroutines, each, amount = 32, 8, 7
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied, refused := 0, 0
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				req := connect.NewRequest(&paycenterv1.CreateTransfersRequest{Transfers: []*paycenterv1.Transfer{
					transfer(id("hot"), avail, fees, amount, codeFee)}})
				client := e.ledger
				if g%2 == 1 {
					client = replica
				}
				res, err := client.CreateTransfers(ctx, req)
				if err != nil {
					t.Error(err)
					return
				}
				r := res.Msg.GetResults()[0]
				mu.Lock()
				switch r.GetError() {
				case ok:
					applied++
				case paycenterv1.TransferError_TRANSFER_ERROR_EXCEEDS_CREDITS:
					refused++
				default:
					t.Errorf("unexpected refusal %v %s", r.GetError(), r.GetMessage())
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if applied != 1000/amount || refused != goroutines*each-1000/amount {
		t.Fatalf("applied %d refused %d, want %d and %d", applied, refused, 1000/amount, goroutines*each-1000/amount)
	}
	if b := e.balance(avail); b != 1000%amount {
		t.Fatalf("balance %d, want %d", b, 1000%amount)
	}
	// Concurrent requests were group-committed.
	if count, sum := histogram(t, e, "paycenter_ledger_batch_size"); sum <= float64(count) {
		t.Errorf("no batch held more than one transfer: %v transfers in %v batches", sum, count)
	}
}

// histogram returns a histogram's sample count and sum from the server's registry.
func histogram(t *testing.T, e *env, name string) (count uint64, sum float64) {
	t.Helper()
	mfs, err := e.srv.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0, 0
}

// metricValue returns the value of the counter or gauge name whose labels include labels, or
// NaN when there is none.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				switch {
				case m.GetCounter() != nil:
					return m.GetCounter().GetValue()
				case m.GetGauge() != nil:
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return math.NaN()
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok && v == lp.GetValue() {
			n++
		}
	}
	return n == len(labels)
}

func TestPendingIsPostedOrVoidedExactlyOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant()
	avail, fees := e.available(m), e.fees()
	e.fund(avail, 1000)

	hold := transfer(id("hold"), avail, fees, 600, codeFee)
	hold.Pending = true
	if got := e.mustApply(hold); got.GetStatus() != paycenterv1.TransferStatus_TRANSFER_STATUS_PENDING {
		t.Fatalf("pending status %v", got.GetStatus())
	}
	if a := e.totals(avail); a != (totals{cp: 1000, dpe: 600}) {
		t.Fatalf("totals after hold %+v", a)
	}
	// The hold reserves: 600 held + 500 more exceeds the 1000 credited.
	e.refuse(transfer(id("more"), avail, fees, 500, codeFee), paycenterv1.TransferError_TRANSFER_ERROR_EXCEEDS_CREDITS, avail)

	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := map[string]int{}
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &paycenterv1.Transfer{TransferId: id("resolve"), PendingTransferId: hold.GetTransferId()}
			kind := "post"
			if i%2 == 0 {
				r.VoidPending, kind = true, "void"
			} else {
				r.PostPending = true
			}
			res := e.create(r)[0]
			mu.Lock()
			defer mu.Unlock()
			switch res.GetError() {
			case ok:
				winners[kind]++
			case paycenterv1.TransferError_TRANSFER_ERROR_PENDING_TRANSFER_ALREADY_RESOLVED:
			default:
				t.Errorf("unexpected %v %s", res.GetError(), res.GetMessage())
			}
		}()
	}
	wg.Wait()
	if winners["post"]+winners["void"] != 1 {
		t.Fatalf("pending resolved %v times", winners)
	}
	want := totals{cp: 1000}
	status := paycenterv1.TransferStatus_TRANSFER_STATUS_VOIDED
	if winners["post"] == 1 {
		want.dp, status = 600, paycenterv1.TransferStatus_TRANSFER_STATUS_PENDING_POSTED
	}
	if a := e.totals(avail); a != want {
		t.Fatalf("totals %+v, want %+v", a, want)
	}
	got, err := e.ledger.GetTransfer(ctx, connect.NewRequest(&paycenterv1.GetTransferRequest{TransferId: hold.GetTransferId()}))
	if err != nil || got.Msg.GetTransfer().GetStatus() != status {
		t.Fatalf("pending status %v %v, want %v", got, err, status)
	}

	t.Run("partial post", func(t *testing.T) {
		before := e.totals(avail)
		h := transfer(id("partial"), avail, fees, 300, codeFee)
		h.Pending = true
		e.mustApply(h)
		e.refuse(&paycenterv1.Transfer{TransferId: id("over"), PostPending: true, PendingTransferId: h.GetTransferId(), Amount: 301},
			paycenterv1.TransferError_TRANSFER_ERROR_EXCEEDS_PENDING_AMOUNT, "amount")
		e.refuse(&paycenterv1.Transfer{TransferId: id("wrong"), PostPending: true, PendingTransferId: h.GetTransferId(), DebitAccountId: fees},
			paycenterv1.TransferError_TRANSFER_ERROR_INVALID, "debit_account_id")
		post := e.mustApply(&paycenterv1.Transfer{TransferId: id("post"), PostPending: true, PendingTransferId: h.GetTransferId(), Amount: 100})
		if post.GetAmount() != 100 || post.GetDebitAccountId() != avail || post.GetCode() != codeFee {
			t.Fatalf("post inherits the pending transfer: %v", post)
		}
		if a := e.totals(avail); a != (totals{dp: before.dp + 100, cp: before.cp, dpe: before.dpe}) {
			t.Fatalf("after partial post %+v (before %+v)", a, before)
		}
		e.refuse(&paycenterv1.Transfer{TransferId: id("again"), VoidPending: true, PendingTransferId: h.GetTransferId()},
			paycenterv1.TransferError_TRANSFER_ERROR_PENDING_TRANSFER_ALREADY_RESOLVED, "already posted")
	})

	t.Run("pending and post in one linked request", func(t *testing.T) {
		before := e.balance(avail)
		h := transfer(id("inreq"), avail, fees, 10, codeFee)
		h.Pending, h.Linked = true, true
		rs := e.create(h, &paycenterv1.Transfer{TransferId: id("inreq-post"), PostPending: true, PendingTransferId: h.GetTransferId()})
		if rs[0].GetError() != ok || rs[1].GetError() != ok {
			t.Fatalf("results %v", rs)
		}
		if b := e.balance(avail); b != before-10 {
			t.Fatalf("balance %d, want %d", b, before-10)
		}
	})
}

func TestPendingTransferTimesOutOnceWithTwoReplicas(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	replica := servertest.Replica(t, e.srv) // a second server sweeping the same database
	m := e.merchant()
	avail, fees := e.available(m), e.fees()
	e.fund(avail, 1000)
	h := transfer(id("timeout"), avail, fees, 400, codeFee)
	h.Pending, h.TimeoutSeconds = true, 1
	e.mustApply(h)
	if a := e.totals(avail); a.dpe != 400 {
		t.Fatalf("totals %+v", a)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := e.ledger.GetTransfer(ctx, connect.NewRequest(&paycenterv1.GetTransferRequest{TransferId: h.GetTransferId()}))
		if err != nil {
			t.Fatal(err)
		}
		if got.Msg.GetTransfer().GetStatus() == paycenterv1.TransferStatus_TRANSFER_STATUS_VOIDED {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pending transfer did not time out")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if a := e.totals(avail); a != (totals{cp: 1000}) {
		t.Fatalf("hold not released: %+v", a)
	}
	e.refuse(&paycenterv1.Transfer{TransferId: id("late"), PostPending: true, PendingTransferId: h.GetTransferId()},
		paycenterv1.TransferError_TRANSFER_ERROR_PENDING_TRANSFER_EXPIRED, "timed out")
	other := &env{t: t, srv: replica}
	if v := metricValue(t, e.srv.Registry, "paycenter_ledger_pending_expired_total", nil) + metricValue(t, other.srv.Registry, "paycenter_ledger_pending_expired_total", nil); v != 1 {
		t.Errorf("expired %v times by the two replicas, want once", v)
	}
}

func TestFrozenAccountRefusesMovements(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant()
	avail, fees := e.available(m), e.fees()
	e.fund(avail, 1000)
	hold := transfer(id("hold"), avail, fees, 100, codeFee)
	hold.Pending = true
	e.mustApply(hold)
	hold2 := transfer(id("hold2"), avail, fees, 100, codeFee)
	hold2.Pending = true
	e.mustApply(hold2)

	_, err := e.ledger.FreezeAccount(ctx, connect.NewRequest(&paycenterv1.FreezeAccountRequest{AccountId: avail}))
	wantCode(t, err, connect.CodeInvalidArgument, "reason")
	res, err := e.ledger.FreezeAccount(ctx, connect.NewRequest(&paycenterv1.FreezeAccountRequest{AccountId: avail, Reason: "court order"}))
	if err != nil || !res.Msg.GetAccount().GetFrozen() {
		t.Fatalf("freeze: %v %v", res, err)
	}
	before := e.totals(avail)
	e.refuse(transfer(id("out"), avail, fees, 1, codeFee), paycenterv1.TransferError_TRANSFER_ERROR_ACCOUNT_FROZEN, avail)
	e.refuse(transfer(id("in"), e.funding["CNY"], avail, 1, paycenterv1.TransferCode_TRANSFER_CODE_RECHARGE), paycenterv1.TransferError_TRANSFER_ERROR_ACCOUNT_FROZEN, avail)
	e.refuse(&paycenterv1.Transfer{TransferId: id("post"), PostPending: true, PendingTransferId: hold.GetTransferId()},
		paycenterv1.TransferError_TRANSFER_ERROR_ACCOUNT_FROZEN, avail)
	if a := e.totals(avail); a != before {
		t.Fatalf("frozen account moved: %+v, was %+v", a, before)
	}
	// Releasing a hold is not a movement.
	e.mustApply(&paycenterv1.Transfer{TransferId: id("void"), VoidPending: true, PendingTransferId: hold2.GetTransferId()})

	_, err = e.srv.Client(e.appKey(m)).Ledger.FreezeAccount(ctx, connect.NewRequest(&paycenterv1.FreezeAccountRequest{AccountId: avail, Reason: "x"}))
	wantCode(t, err, connect.CodePermissionDenied, "")
	_, err = e.ledger.FreezeAccount(ctx, connect.NewRequest(&paycenterv1.FreezeAccountRequest{AccountId: "acc_nope", Reason: "x"}))
	wantCode(t, err, connect.CodeNotFound, "acc_nope")

	un, err := e.ledger.UnfreezeAccount(ctx, connect.NewRequest(&paycenterv1.UnfreezeAccountRequest{AccountId: avail}))
	if err != nil || un.Msg.GetAccount().GetFrozen() {
		t.Fatalf("unfreeze: %v %v", un, err)
	}
	e.mustApply(transfer(id("after"), avail, fees, 1, codeFee))
	e.mustApply(&paycenterv1.Transfer{TransferId: id("post2"), PostPending: true, PendingTransferId: hold.GetTransferId()})
}

func TestLinkedChainSucceedsOrFailsAsAWhole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant()
	avail, fees := e.available(m), e.fees()
	clearing := e.account(m, paycenterv1.AccountCode_ACCOUNT_CODE_CHANNEL_CLEARING_ALIPAY).GetAccountId()
	e.fund(avail, 100)
	before := e.snapshot()

	t1 := transfer(id("t1"), clearing, avail, 50, codePayment)
	t1.Linked = true
	t2 := transfer(id("t2"), avail, fees, 500, codeFee) // exceeds credits even with t1
	t2.Linked = true
	t3 := transfer(id("t3"), avail, fees, 10, codeFee)
	t4 := transfer(id("t4"), avail, fees, 20, codeFee) // not in the chain
	rs := e.create(t1, t2, t3, t4)
	want := []paycenterv1.TransferError{
		paycenterv1.TransferError_TRANSFER_ERROR_LINKED_TRANSFER_FAILED,
		paycenterv1.TransferError_TRANSFER_ERROR_EXCEEDS_CREDITS,
		paycenterv1.TransferError_TRANSFER_ERROR_LINKED_TRANSFER_FAILED,
		ok,
	}
	for i, r := range rs {
		if r.GetError() != want[i] || int(r.GetIndex()) != i {
			t.Fatalf("result %d: %v %s, want %v", i, r.GetError(), r.GetMessage(), want[i])
		}
	}
	after := e.snapshot()
	before[avail] = totals{cp: before[avail].cp, dp: before[avail].dp + 20}
	before[fees] = totals{cp: before[fees].cp + 20}
	if !equalSnapshots(before, after) {
		t.Fatalf("only t4 may have moved money:\nwant %v\ngot  %v", before, after)
	}
	// Transfers that failed only because of their chain are not recorded.
	t1.Linked = false
	e.mustApply(t1)
	// A chain without end is refused whole.
	open := transfer(id("open"), clearing, avail, 5, codePayment)
	open.Linked = true
	e.refuse(open, paycenterv1.TransferError_TRANSFER_ERROR_INVALID, "linked")
	// A chain that holds succeeds whole.
	a := transfer(id("a"), clearing, avail, 500, codePayment)
	a.Linked = true
	b := transfer(id("b"), avail, fees, 500, codeFee) // needs a's credit
	for _, r := range e.create(a, b) {
		if r.GetError() != ok {
			t.Fatalf("chain refused: %v", r)
		}
	}
}

func TestPointInTimeBalanceEqualsTheSumOfHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant()
	avail, fees := e.available(m), e.fees()
	var applied []*paycenterv1.Transfer
	for i, amount := range []int64{1000, 200, 300, 50, 400} {
		var tr *paycenterv1.Transfer
		if i%2 == 0 {
			tr = e.fund(avail, amount)
		} else {
			tr = e.mustApply(transfer(id("spend"), avail, fees, amount, codeFee))
		}
		applied = append(applied, tr)
	}
	// A pending transfer and a refusal are history/absent but do not move the balance.
	h := transfer(id("hold"), avail, fees, 7, codeFee)
	h.Pending = true
	e.mustApply(h)
	e.refuse(transfer(id("refused"), avail, fees, 1_000_000, codeFee), paycenterv1.TransferError_TRANSFER_ERROR_EXCEEDS_CREDITS, avail)

	var history []*paycenterv1.Transfer
	token := ""
	for {
		res, err := e.ledger.ListTransfers(ctx, connect.NewRequest(&paycenterv1.ListTransfersRequest{AccountId: avail, PageSize: 2, PageToken: token}))
		if err != nil {
			t.Fatal(err)
		}
		history = append(history, res.Msg.GetTransfers()...)
		if token = res.Msg.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(history) != len(applied)+1 {
		t.Fatalf("history has %d transfers, want %d", len(history), len(applied)+1)
	}
	sum := int64(0)
	for i, tr := range history {
		if i < len(applied) && tr.GetTransferId() != applied[i].GetTransferId() {
			t.Fatalf("history[%d] = %s, want %s (applied order)", i, tr.GetTransferId(), applied[i].GetTransferId())
		}
		at := tr.GetCreateTime().AsTime()
		b, err := e.ledger.GetBalance(ctx, connect.NewRequest(&paycenterv1.GetBalanceRequest{AccountId: avail, AtTime: timestamppb.New(at)}))
		if err != nil {
			t.Fatal(err)
		}
		if b.Msg.GetBalance() != sum {
			t.Fatalf("balance just before %s is %d, want %d", tr.GetTransferId(), b.Msg.GetBalance(), sum)
		}
		if tr.GetStatus() == paycenterv1.TransferStatus_TRANSFER_STATUS_POSTED {
			if tr.GetCreditAccountId() == avail {
				sum += tr.GetAmount()
			} else {
				sum -= tr.GetAmount()
			}
		}
	}
	now, err := e.ledger.GetBalance(ctx, connect.NewRequest(&paycenterv1.GetBalanceRequest{AccountId: avail}))
	if err != nil || now.Msg.GetBalance() != sum || now.Msg.GetDebitsPending() != 7 {
		t.Fatalf("current balance %v %v, want %d", now, err, sum)
	}
	later, err := e.ledger.GetBalance(ctx, connect.NewRequest(&paycenterv1.GetBalanceRequest{AccountId: avail, AtTime: timestamppb.New(time.Now().Add(time.Hour))}))
	if err != nil || later.Msg.GetBalance() != sum {
		t.Fatalf("balance in an hour %v %v, want %d", later, err, sum)
	}
	// A time range selects part of the history.
	from, to := history[1].GetCreateTime(), history[3].GetCreateTime()
	res, err := e.ledger.ListTransfers(ctx, connect.NewRequest(&paycenterv1.ListTransfersRequest{AccountId: avail, StartTime: from, EndTime: to}))
	if err != nil || len(res.Msg.GetTransfers()) != 2 || res.Msg.GetTransfers()[0].GetTransferId() != history[1].GetTransferId() {
		t.Fatalf("range [1,3): %v %v", res, err)
	}
	_, err = e.ledger.ListTransfers(ctx, connect.NewRequest(&paycenterv1.ListTransfersRequest{AccountId: avail, PageToken: "garbage!"}))
	wantCode(t, err, connect.CodeInvalidArgument, "page_token")
}

// backdate moves transfers to another time, as if they had been applied then.
func (e *env) backdate(at time.Time, ids ...string) {
	e.t.Helper()
	if _, err := e.srv.DB.Exec(`UPDATE ledger_transfers SET created_at = $1 WHERE transfer_id = ANY($2)`, at, pq.Array(ids)); err != nil {
		e.t.Fatal(err)
	}
}

func TestStatementOfADay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant()
	avail, fees := e.available(m), e.fees()
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	y, mo, d := time.Now().In(shanghai).AddDate(0, 0, -1).Date()
	yesterday := time.Date(y, mo, d, 0, 0, 0, 0, shanghai)

	f1 := e.fund(avail, 1000)
	s1 := e.mustApply(transfer(id("spend"), avail, fees, 100, codeFee))
	e.backdate(yesterday.Add(2*time.Hour), f1.GetTransferId())
	e.backdate(yesterday.Add(3*time.Hour), s1.GetTransferId())
	f2 := e.fund(avail, 500)
	spend := transfer(id("spend"), avail, fees, 30, codeFee)
	spend.Reference = "=HYPERLINK(1)"
	s2 := e.mustApply(spend)
	today := f2.GetCreateTime().AsTime().In(shanghai).Format("2006-01-02")

	st := e.statement(avail, yesterday.Format("2006-01-02"), "")
	if st.GetOpeningBalance() != 0 || st.GetClosingBalance() != 900 || len(st.GetLines()) != 2 ||
		st.GetTotalCredits() != 1000 || st.GetTotalDebits() != 100 {
		t.Fatalf("yesterday: %v", st)
	}
	if l := st.GetLines()[1]; l.GetBalanceChange() != -100 || l.GetBalanceAfter() != 900 || l.GetTransfer().GetTransferId() != s1.GetTransferId() {
		t.Fatalf("line %v", l)
	}
	st = e.statement(avail, today, "Asia/Shanghai")
	if st.GetOpeningBalance() != 900 || st.GetClosingBalance() != 1370 || len(st.GetLines()) != 2 || st.GetClosingBalance() != e.balance(avail) {
		t.Fatalf("today: %v", st)
	}
	rows, err := csv.NewReader(strings.NewReader(st.GetCsv())).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v\n%s", err, st.GetCsv())
	}
	if len(rows) != 5 || rows[0][0] != "type" || rows[1][0] != "opening" || rows[1][9] != "900" ||
		rows[3][2] != s2.GetTransferId() || rows[3][4] != "'=HYPERLINK(1)" || rows[3][8] != "-30" || rows[4][0] != "closing" || rows[4][9] != "1370" {
		t.Fatalf("CSV rows %q", rows)
	}
	// In UTC, yesterday's 02:00 and 03:00 in Shanghai are the day before (18:00, 19:00 UTC).
	if st := e.statement(avail, yesterday.AddDate(0, 0, -1).Format("2006-01-02"), "UTC"); len(st.GetLines()) != 2 || st.GetClosingBalance() != 900 {
		t.Fatalf("UTC statement: %v", st)
	}
	for _, tc := range []struct{ date, tz, field string }{{"2024-13-01", "", "date"}, {"yesterday", "", "date"}, {"2024-01-01", "Mars/Olympus", "time_zone"}} {
		_, err := e.ledger.GetStatement(ctx, connect.NewRequest(&paycenterv1.GetStatementRequest{AccountId: avail, Date: tc.date, TimeZone: tc.tz}))
		wantCode(t, err, connect.CodeInvalidArgument, tc.field)
	}
}

func (e *env) statement(accountID, date, tz string) *paycenterv1.GetStatementResponse {
	e.t.Helper()
	res, err := e.ledger.GetStatement(ctx, connect.NewRequest(&paycenterv1.GetStatementRequest{AccountId: accountID, Date: date, TimeZone: tz}))
	if err != nil {
		e.t.Fatalf("GetStatement: %v", err)
	}
	return res.Msg
}

func TestReconcileReportsEveryKindOfDifference(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant()
	clearing := e.account(m, paycenterv1.AccountCode_ACCOUNT_CODE_CHANNEL_CLEARING_ALIPAY).GetAccountId()
	avail, fees := e.available(m), e.fees()
	var day string
	for _, p := range []struct {
		ref    string
		amount int64
	}{{"R1", 100}, {"R2", 200}, {"R3", 300}} {
		tr := transfer(id("pay"), clearing, avail, p.amount, codePayment)
		tr.Reference = p.ref
		day = e.mustApply(tr).GetCreateTime().AsTime().In(time.FixedZone("CST", 8*3600)).Format("2006-01-02")
	}
	fee := transfer(id("fee"), avail, fees, 50, codeFee)
	fee.Reference = "R4"
	e.mustApply(fee)
	before := e.snapshot()

	credit, debit := paycenterv1.Direction_DIRECTION_CREDIT, paycenterv1.Direction_DIRECTION_DEBIT
	res, err := e.ledger.Reconcile(ctx, connect.NewRequest(&paycenterv1.ReconcileRequest{AccountId: avail, Date: day, Records: []*paycenterv1.ReconcileRecord{
		{Reference: "R1", Amount: 100, Direction: credit}, // matches
		{Reference: "R2", Amount: 250, Direction: credit}, // amount differs
		{Reference: "R4", Amount: 50, Direction: credit},  // direction differs
		{Reference: "R5", Amount: 70, Direction: credit},  // missing here
		// R3 is missing there
	}}))
	if err != nil {
		t.Fatal(err)
	}
	r := res.Msg
	if r.GetMatchedCount() != 1 {
		t.Errorf("matched %d, want 1", r.GetMatchedCount())
	}
	if len(r.GetMissingHere()) != 1 || r.GetMissingHere()[0].GetReference() != "R5" {
		t.Errorf("missing here %v", r.GetMissingHere())
	}
	if len(r.GetMissingThere()) != 1 || r.GetMissingThere()[0].GetReference() != "R3" || r.GetMissingThere()[0].GetAmount() != 300 {
		t.Errorf("missing there %v", r.GetMissingThere())
	}
	d := r.GetDifferent()
	if len(d) != 2 || d[0].GetReference() != "R2" || d[0].GetReason() != "amount" || d[0].GetOurs().GetAmount() != 200 ||
		d[1].GetReference() != "R4" || d[1].GetReason() != "direction" || d[1].GetOurs().GetDirection() != debit {
		t.Errorf("different %v", d)
	}
	if !equalSnapshots(before, e.snapshot()) {
		t.Error("Reconcile changed the books")
	}
	_, err = e.ledger.Reconcile(ctx, connect.NewRequest(&paycenterv1.ReconcileRequest{AccountId: avail, Date: day,
		Records: []*paycenterv1.ReconcileRecord{{Reference: "R1", Amount: 0, Direction: credit}}}))
	wantCode(t, err, connect.CodeInvalidArgument, "records[0].amount")
}

func TestSettlementTwiceEqualsSettlementOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	now := time.Now().In(shanghai)
	thisMonth := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, shanghai)
	lastMonth := thisMonth.AddDate(0, -1, 0)
	month := lastMonth.Format("2006-01")

	m1, m2, m3 := e.merchant(), e.merchant(), e.merchant()
	a1, a2, a3, fees := e.available(m1), e.available(m2), e.available(m3), e.fees()
	old := []string{e.fund(a1, 1000).GetTransferId(), e.mustApply(transfer(id("fee"), a1, fees, 10, codeFee)).GetTransferId(),
		e.fund(a2, 300).GetTransferId(), e.fund(a3, 70).GetTransferId()}
	e.backdate(lastMonth.Add(48*time.Hour), old...)
	e.fund(a1, 500) // this month: not settled
	if _, err := e.ledger.FreezeAccount(ctx, connect.NewRequest(&paycenterv1.FreezeAccountRequest{AccountId: a3, Reason: "audit"})); err != nil {
		t.Fatal(err)
	}

	run := func() *paycenterv1.RunSettlementResponse {
		res, err := e.ledger.RunSettlement(ctx, connect.NewRequest(&paycenterv1.RunSettlementRequest{Month: month, Currency: "CNY"}))
		if err != nil {
			t.Fatalf("RunSettlement: %v", err)
		}
		return res.Msg
	}
	first := run()
	byMerchant := map[string]*paycenterv1.Settlement{}
	for _, s := range first.GetSettlements() {
		byMerchant[s.GetMerchantId()] = s
	}
	if s := byMerchant[m1]; s.GetAmount() != 990 || s.GetAlreadySettled() || s.GetTransferId() != "settle:"+m1+":"+month+":CNY" {
		t.Fatalf("m1 settlement %v", s)
	}
	if s := byMerchant[m2]; s.GetAmount() != 300 {
		t.Fatalf("m2 settlement %v", s)
	}
	if s := byMerchant[m3]; s.GetAmount() != 0 || s.GetSkippedReason() == "" {
		t.Fatalf("frozen m3 settlement %v", s)
	}
	if first.GetTotalAmount() != 1290 {
		t.Fatalf("total %d", first.GetTotalAmount())
	}
	if b := e.balance(a1); b != 500 {
		t.Fatalf("m1 available %d after settlement, want 500 (this month's)", b)
	}
	books := e.snapshot()

	second := run()
	if !equalSnapshots(books, e.snapshot()) {
		t.Fatal("the second run moved money")
	}
	for _, s := range second.GetSettlements() {
		want := byMerchant[s.GetMerchantId()]
		if s.GetAmount() != want.GetAmount() || s.GetTransferId() != want.GetTransferId() || s.GetAlreadySettled() != (s.GetMerchantId() != m3) {
			t.Fatalf("second run %v, first %v", s, want)
		}
	}
	if second.GetTotalAmount() != first.GetTotalAmount() {
		t.Fatalf("second total %d, first %d", second.GetTotalAmount(), first.GetTotalAmount())
	}
	payable, err := e.ledger.ListAccounts(ctx, connect.NewRequest(&paycenterv1.ListAccountsRequest{MerchantId: m1, Code: paycenterv1.AccountCode_ACCOUNT_CODE_SETTLEMENT_PAYABLE}))
	if err != nil || len(payable.Msg.GetAccounts()) != 1 || payable.Msg.GetAccounts()[0].GetBalance() != 990 {
		t.Fatalf("m1 settlement payable %v %v", payable, err)
	}

	_, err = e.ledger.RunSettlement(ctx, connect.NewRequest(&paycenterv1.RunSettlementRequest{Month: thisMonth.Format("2006-01"), Currency: "CNY"}))
	wantCode(t, err, connect.CodeFailedPrecondition, "not ended")
	_, err = e.ledger.RunSettlement(ctx, connect.NewRequest(&paycenterv1.RunSettlementRequest{Month: "2024-5", Currency: "CNY"}))
	wantCode(t, err, connect.CodeInvalidArgument, "month")
}

func TestReadsAreScopedToTheCallersMerchant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m1, m2 := e.merchant(), e.merchant()
	a1, a2, fees := e.available(m1), e.available(m2), e.fees()
	t2 := e.fund(a2, 100)
	t1 := e.fund(a1, 100)
	app := e.srv.Client(e.appKey(m1)).Ledger

	if res, err := app.GetAccount(ctx, connect.NewRequest(&paycenterv1.GetAccountRequest{AccountId: a1})); err != nil || res.Msg.GetAccount().GetBalance() != 100 {
		t.Fatalf("own account: %v %v", res, err)
	}
	if _, err := app.GetTransfer(ctx, connect.NewRequest(&paycenterv1.GetTransferRequest{TransferId: t1.GetTransferId()})); err != nil {
		t.Fatalf("own transfer: %v", err)
	}
	list, err := app.ListAccounts(ctx, connect.NewRequest(&paycenterv1.ListAccountsRequest{}))
	if err != nil || len(list.Msg.GetAccounts()) != 1 || list.Msg.GetAccounts()[0].GetAccountId() != a1 {
		t.Fatalf("own accounts: %v %v", list, err)
	}
	for name, call := range map[string]func() error{
		"other account": func() error {
			_, err := app.GetAccount(ctx, connect.NewRequest(&paycenterv1.GetAccountRequest{AccountId: a2}))
			return err
		},
		"platform account": func() error {
			_, err := app.GetAccount(ctx, connect.NewRequest(&paycenterv1.GetAccountRequest{AccountId: fees}))
			return err
		},
		"other transfer": func() error {
			_, err := app.GetTransfer(ctx, connect.NewRequest(&paycenterv1.GetTransferRequest{TransferId: t2.GetTransferId()}))
			return err
		},
		"other balance": func() error {
			_, err := app.GetBalance(ctx, connect.NewRequest(&paycenterv1.GetBalanceRequest{AccountId: a2}))
			return err
		},
		"other history": func() error {
			_, err := app.ListTransfers(ctx, connect.NewRequest(&paycenterv1.ListTransfersRequest{AccountId: a2}))
			return err
		},
		"other statement": func() error {
			_, err := app.GetStatement(ctx, connect.NewRequest(&paycenterv1.GetStatementRequest{AccountId: a2, Date: "2024-01-01"}))
			return err
		},
		"other reconciliation": func() error {
			_, err := app.Reconcile(ctx, connect.NewRequest(&paycenterv1.ReconcileRequest{AccountId: a2, Date: "2024-01-01"}))
			return err
		},
		"other merchant's list": func() error {
			_, err := app.ListAccounts(ctx, connect.NewRequest(&paycenterv1.ListAccountsRequest{MerchantId: m2}))
			return err
		},
	} {
		t.Run(name, func(t *testing.T) { wantCode(t, call(), connect.CodeNotFound, "") })
	}
	for name, call := range map[string]func() error{
		"create account": func() error {
			_, err := app.CreateAccount(ctx, connect.NewRequest(&paycenterv1.CreateAccountRequest{MerchantId: m1, Code: paycenterv1.AccountCode_ACCOUNT_CODE_PLATFORM_FEES, Currency: "CNY"}))
			return err
		},
		"create transfers": func() error {
			_, err := app.CreateTransfers(ctx, connect.NewRequest(&paycenterv1.CreateTransfersRequest{Transfers: []*paycenterv1.Transfer{transfer(id("x"), a1, fees, 1, codeFee)}}))
			return err
		},
		"settlement": func() error {
			_, err := app.RunSettlement(ctx, connect.NewRequest(&paycenterv1.RunSettlementRequest{Month: "2024-01", Currency: "CNY"}))
			return err
		},
		"invariants": func() error {
			_, err := app.CheckInvariants(ctx, connect.NewRequest(&paycenterv1.CheckInvariantsRequest{}))
			return err
		},
	} {
		t.Run(name, func(t *testing.T) { wantCode(t, call(), connect.CodePermissionDenied, "") })
	}
}

func TestCheckInvariantsFindsBrokenBooks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant()
	avail := e.available(m)
	e.fund(avail, 100)
	e.checkInvariants()
	if v := metricValue(t, e.srv.Registry, "paycenter_ledger_invariants_ok", nil); v != 1 {
		t.Fatalf("invariants gauge %v, want 1", v)
	}
	if v := metricValue(t, e.srv.Registry, "paycenter_ledger_transfers_total", map[string]string{"code": "recharge", "result": "applied"}); v != 1 {
		t.Fatalf("transfers counter %v, want 1", v)
	}

	// Corrupt an account behind the ledger's back, then repair it.
	if _, err := e.srv.DB.Exec(`UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE account_id = $1`, avail); err != nil {
		t.Fatal(err)
	}
	res, err := e.ledger.CheckInvariants(ctx, connect.NewRequest(&paycenterv1.CheckInvariantsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.GetOk() || len(res.Msg.GetViolations()) != 2 || !strings.Contains(strings.Join(res.Msg.GetViolations(), "\n"), avail) {
		t.Fatalf("corruption not found: %v", res.Msg)
	}
	if v := metricValue(t, e.srv.Registry, "paycenter_ledger_invariants_ok", nil); v != 0 {
		t.Fatalf("invariants gauge %v, want 0", v)
	}
	if _, err := e.srv.DB.Exec(`UPDATE ledger_accounts SET credits_posted = credits_posted - 1 WHERE account_id = $1`, avail); err != nil {
		t.Fatal(err)
	}
}

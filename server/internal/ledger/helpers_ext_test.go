package ledger_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/gen/go/paycenter/v1/paycenterv1connect"
	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
	"github.com/paycenter/paycenter/server/internal/server/servertest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is a running server with a ledger client; when the test ends it proves the books
// still add up.
type env struct {
	t       testing.TB
	srv     *servertest.Env
	ledger  paycenterv1connect.LedgerServiceClient
	mch     paycenterv1connect.MerchantServiceClient
	funding map[string]string // currency → EXTERNAL_FUNDING account
}

func newEnv(t testing.TB) *env {
	t.Helper()
	srv := servertest.Start(t)
	c := srv.Admin()
	e := &env{t: t, srv: srv, ledger: c.Ledger, mch: c.Merchants, funding: map[string]string{}}
	t.Cleanup(func() { e.checkInvariants() })
	return e
}

var ctx = context.Background()

func (e *env) checkInvariants() {
	e.t.Helper()
	res, err := e.ledger.CheckInvariants(ctx, connect.NewRequest(&paycenterv1.CheckInvariantsRequest{}))
	if err != nil {
		e.t.Fatalf("CheckInvariants: %v", err)
	}
	if !res.Msg.GetOk() || res.Msg.GetTotalDebitsPosted() != res.Msg.GetTotalCreditsPosted() {
		e.t.Fatalf("books do not add up: %v", res.Msg)
	}
}

var seq atomic.Int64

// id returns a unique transfer id with a readable prefix.
func id(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

func (e *env) merchant() string {
	e.t.Helper()
	res, err := e.mch.CreateMerchant(ctx, connect.NewRequest(&paycenterv1.CreateMerchantRequest{Name: "Merchant " + id("m")}))
	if err != nil {
		e.t.Fatalf("CreateMerchant: %v", err)
	}
	return res.Msg.GetMerchant().GetMerchantId()
}

// appKey returns an API key of a new app of merchantID.
func (e *env) appKey(merchantID string) string {
	e.t.Helper()
	res, err := e.mch.CreateApp(ctx, connect.NewRequest(&paycenterv1.CreateAppRequest{MerchantId: merchantID, Name: "app"}))
	if err != nil {
		e.t.Fatalf("CreateApp: %v", err)
	}
	return res.Msg.GetApiKey()
}

type accountOpt func(*paycenterv1.CreateAccountRequest)

func limited(r *paycenterv1.CreateAccountRequest) { r.DebitsMustNotExceedCredits = true }
func currency(c string) accountOpt {
	return func(r *paycenterv1.CreateAccountRequest) { r.Currency = c }
}

func (e *env) account(merchantID string, code paycenterv1.AccountCode, opts ...accountOpt) *paycenterv1.Account {
	e.t.Helper()
	req := &paycenterv1.CreateAccountRequest{MerchantId: merchantID, Code: code, Currency: "CNY"}
	for _, o := range opts {
		o(req)
	}
	res, err := e.ledger.CreateAccount(ctx, connect.NewRequest(req))
	if err != nil {
		e.t.Fatalf("CreateAccount: %v", err)
	}
	return res.Msg.GetAccount()
}

// available opens a merchant's MERCHANT_AVAILABLE account that may not go negative.
func (e *env) available(merchantID string) string {
	return e.account(merchantID, paycenterv1.AccountCode_ACCOUNT_CODE_MERCHANT_AVAILABLE, limited).GetAccountId()
}

// fees opens the platform fee account (credit-normal, no limit).
func (e *env) fees() string {
	return e.account("", paycenterv1.AccountCode_ACCOUNT_CODE_PLATFORM_FEES).GetAccountId()
}

// fund recharges accountID with amount from the platform's funding account.
func (e *env) fund(accountID string, amount int64) *paycenterv1.Transfer {
	e.t.Helper()
	from, ok := e.funding["CNY"]
	if !ok {
		from = e.account("", paycenterv1.AccountCode_ACCOUNT_CODE_EXTERNAL_FUNDING).GetAccountId()
		e.funding["CNY"] = from
	}
	return e.mustApply(transfer(id("fund"), from, accountID, amount, paycenterv1.TransferCode_TRANSFER_CODE_RECHARGE))
}

func transfer(tid, debit, credit string, amount int64, code paycenterv1.TransferCode) *paycenterv1.Transfer {
	return &paycenterv1.Transfer{TransferId: tid, DebitAccountId: debit, CreditAccountId: credit, Amount: amount, Currency: "CNY", Code: code}
}

func (e *env) create(ts ...*paycenterv1.Transfer) []*paycenterv1.TransferResult {
	e.t.Helper()
	res, err := e.ledger.CreateTransfers(ctx, connect.NewRequest(&paycenterv1.CreateTransfersRequest{Transfers: ts}))
	if err != nil {
		e.t.Fatalf("CreateTransfers: %v", err)
	}
	if len(res.Msg.GetResults()) != len(ts) {
		e.t.Fatalf("%d results for %d transfers", len(res.Msg.GetResults()), len(ts))
	}
	return res.Msg.GetResults()
}

func (e *env) mustApply(t *paycenterv1.Transfer) *paycenterv1.Transfer {
	e.t.Helper()
	r := e.create(t)[0]
	if r.GetError() != paycenterv1.TransferError_TRANSFER_ERROR_UNSPECIFIED {
		e.t.Fatalf("transfer %s refused: %v %s", t.GetTransferId(), r.GetError(), r.GetMessage())
	}
	return r.GetTransfer()
}

// refuse applies t and checks that it is refused with want and a message containing field.
func (e *env) refuse(t *paycenterv1.Transfer, want paycenterv1.TransferError, field string) {
	e.t.Helper()
	r := e.create(t)[0]
	if r.GetError() != want || !strings.Contains(r.GetMessage(), field) {
		e.t.Fatalf("transfer %s: got %v %q, want %v naming %q", t.GetTransferId(), r.GetError(), r.GetMessage(), want, field)
	}
	if r.GetTransfer() != nil {
		e.t.Fatalf("refused transfer %s returned a transfer", t.GetTransferId())
	}
}

func (e *env) get(accountID string) *paycenterv1.Account {
	e.t.Helper()
	res, err := e.ledger.GetAccount(ctx, connect.NewRequest(&paycenterv1.GetAccountRequest{AccountId: accountID}))
	if err != nil {
		e.t.Fatalf("GetAccount: %v", err)
	}
	return res.Msg.GetAccount()
}

func (e *env) balance(accountID string) int64 { return e.get(accountID).GetBalance() }

// totals is an account's four running totals.
type totals struct{ dp, cp, dpe, cpe int64 }

func (e *env) totals(accountID string) totals {
	a := e.get(accountID)
	return totals{a.GetDebitsPosted(), a.GetCreditsPosted(), a.GetDebitsPending(), a.GetCreditsPending()}
}

// snapshot returns every account's totals.
func (e *env) snapshot() map[string]totals {
	e.t.Helper()
	out := map[string]totals{}
	token := ""
	for {
		res, err := e.ledger.ListAccounts(ctx, connect.NewRequest(&paycenterv1.ListAccountsRequest{PageSize: 100, PageToken: token}))
		if err != nil {
			e.t.Fatalf("ListAccounts: %v", err)
		}
		for _, a := range res.Msg.GetAccounts() {
			out[a.GetAccountId()] = totals{a.GetDebitsPosted(), a.GetCreditsPosted(), a.GetDebitsPending(), a.GetCreditsPending()}
		}
		if token = res.Msg.GetNextPageToken(); token == "" {
			return out
		}
	}
}

func wantCode(t testing.TB, err error, want connect.Code, mention string) {
	t.Helper()
	if connect.CodeOf(err) != want {
		t.Fatalf("got %v, want %v", err, want)
	}
	if mention != "" && !strings.Contains(err.Error(), mention) {
		t.Fatalf("error %q does not mention %q", err, mention)
	}
}

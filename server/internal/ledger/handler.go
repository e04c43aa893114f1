package ledger

import (
	"context"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/gen/go/paycenter/v1/paycenterv1connect"
	"github.com/paycenter/paycenter/server/internal/page"
)

// Handler serves LedgerService: it translates proto to domain and back.
type Handler struct {
	svc *Service
}

var _ paycenterv1connect.LedgerServiceHandler = (*Handler)(nil)

// NewHandler returns a Handler calling svc.
func NewHandler(svc *Service) *Handler { return &Handler{svc: svc} }

func (h *Handler) CreateAccount(ctx context.Context, req *connect.Request[paycenterv1.CreateAccountRequest]) (*connect.Response[paycenterv1.CreateAccountResponse], error) {
	m := req.Msg
	a, err := h.svc.CreateAccount(ctx, AccountSpec{
		MerchantID: m.GetMerchantId(), Code: accountCode(m.GetCode()), Currency: m.GetCurrency(), Description: m.GetDescription(),
		Limits: Limits{DebitsMustNotExceedCredits: m.GetDebitsMustNotExceedCredits(), CreditsMustNotExceedDebits: m.GetCreditsMustNotExceedDebits()},
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.CreateAccountResponse{Account: accountProto(a)}), nil
}

func (h *Handler) GetAccount(ctx context.Context, req *connect.Request[paycenterv1.GetAccountRequest]) (*connect.Response[paycenterv1.GetAccountResponse], error) {
	a, err := h.svc.Account(ctx, req.Msg.GetAccountId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.GetAccountResponse{Account: accountProto(a)}), nil
}

func (h *Handler) ListAccounts(ctx context.Context, req *connect.Request[paycenterv1.ListAccountsRequest]) (*connect.Response[paycenterv1.ListAccountsResponse], error) {
	var code AccountCode
	if c := req.Msg.GetCode(); c != paycenterv1.AccountCode_ACCOUNT_CODE_UNSPECIFIED {
		code = accountCode(c)
	}
	as, next, err := h.svc.Accounts(ctx, req.Msg.GetMerchantId(), code, page.Request{Size: req.Msg.GetPageSize(), Token: req.Msg.GetPageToken()})
	if err != nil {
		return nil, err
	}
	res := &paycenterv1.ListAccountsResponse{NextPageToken: next}
	for _, a := range as {
		res.Accounts = append(res.Accounts, accountProto(a))
	}
	return connect.NewResponse(res), nil
}

func (h *Handler) CreateTransfers(ctx context.Context, req *connect.Request[paycenterv1.CreateTransfersRequest]) (*connect.Response[paycenterv1.CreateTransfersResponse], error) {
	in := req.Msg.GetTransfers()
	ts := make([]Transfer, len(in))
	for i, t := range in {
		ts[i] = transferFromProto(t)
	}
	rs, err := h.svc.CreateTransfers(ctx, ts)
	if err != nil {
		return nil, err
	}
	res := &paycenterv1.CreateTransfersResponse{Results: make([]*paycenterv1.TransferResult, len(rs))}
	for i, r := range rs {
		out := &paycenterv1.TransferResult{Index: int32(r.Index), TransferId: r.TransferID, Message: r.Message}
		if r.Refusal != "" {
			out.Error = paycenterv1.TransferError(paycenterv1.TransferError_value["TRANSFER_ERROR_"+string(r.Refusal)])
		}
		if r.Transfer != nil {
			out.Transfer = transferProto(*r.Transfer)
		}
		res.Results[i] = out
	}
	return connect.NewResponse(res), nil
}

func (h *Handler) GetTransfer(ctx context.Context, req *connect.Request[paycenterv1.GetTransferRequest]) (*connect.Response[paycenterv1.GetTransferResponse], error) {
	t, err := h.svc.Transfer(ctx, req.Msg.GetTransferId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.GetTransferResponse{Transfer: transferProto(t)}), nil
}

func (h *Handler) ListTransfers(ctx context.Context, req *connect.Request[paycenterv1.ListTransfersRequest]) (*connect.Response[paycenterv1.ListTransfersResponse], error) {
	m := req.Msg
	ts, next, err := h.svc.Transfers(ctx, m.GetAccountId(), TimeRange{Start: timeOf(m.GetStartTime()), End: timeOf(m.GetEndTime())},
		page.Request{Size: m.GetPageSize(), Token: m.GetPageToken()})
	if err != nil {
		return nil, err
	}
	res := &paycenterv1.ListTransfersResponse{NextPageToken: next, Transfers: make([]*paycenterv1.Transfer, len(ts))}
	for i, t := range ts {
		res.Transfers[i] = transferProto(t)
	}
	return connect.NewResponse(res), nil
}

func (h *Handler) GetBalance(ctx context.Context, req *connect.Request[paycenterv1.GetBalanceRequest]) (*connect.Response[paycenterv1.GetBalanceResponse], error) {
	b, err := h.svc.Balance(ctx, req.Msg.GetAccountId(), timeOf(req.Msg.GetAtTime()))
	if err != nil {
		return nil, err
	}
	a := b.Account
	return connect.NewResponse(&paycenterv1.GetBalanceResponse{
		AccountId: a.ID, Currency: a.Currency, Balance: a.Balance(),
		DebitsPosted: a.DebitsPosted, CreditsPosted: a.CreditsPosted, DebitsPending: a.DebitsPending, CreditsPending: a.CreditsPending,
		AsOfTime: timestamppb.New(b.AsOf),
	}), nil
}

func (h *Handler) FreezeAccount(ctx context.Context, req *connect.Request[paycenterv1.FreezeAccountRequest]) (*connect.Response[paycenterv1.FreezeAccountResponse], error) {
	a, err := h.svc.Freeze(ctx, req.Msg.GetAccountId(), req.Msg.GetReason())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.FreezeAccountResponse{Account: accountProto(a)}), nil
}

func (h *Handler) UnfreezeAccount(ctx context.Context, req *connect.Request[paycenterv1.UnfreezeAccountRequest]) (*connect.Response[paycenterv1.UnfreezeAccountResponse], error) {
	a, err := h.svc.Unfreeze(ctx, req.Msg.GetAccountId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.UnfreezeAccountResponse{Account: accountProto(a)}), nil
}

func (h *Handler) GetStatement(ctx context.Context, req *connect.Request[paycenterv1.GetStatementRequest]) (*connect.Response[paycenterv1.GetStatementResponse], error) {
	st, err := h.svc.Statement(ctx, req.Msg.GetAccountId(), req.Msg.GetDate(), req.Msg.GetTimeZone())
	if err != nil {
		return nil, err
	}
	res := &paycenterv1.GetStatementResponse{
		Account: accountProto(st.Account), OpeningBalance: st.Opening, ClosingBalance: st.Closing,
		TotalDebits: st.TotalDebits, TotalCredits: st.TotalCredits, Csv: st.CSV,
		Lines: make([]*paycenterv1.StatementLine, len(st.Lines)),
	}
	for i, l := range st.Lines {
		res.Lines[i] = &paycenterv1.StatementLine{Transfer: transferProto(l.Transfer), BalanceChange: l.Change, BalanceAfter: l.After}
	}
	return connect.NewResponse(res), nil
}

func (h *Handler) Reconcile(ctx context.Context, req *connect.Request[paycenterv1.ReconcileRequest]) (*connect.Response[paycenterv1.ReconcileResponse], error) {
	in := req.Msg.GetRecords()
	theirs := make([]Record, len(in))
	for i, r := range in {
		theirs[i] = Record{Reference: r.GetReference(), Amount: r.GetAmount(), Direction: Direction(r.GetDirection())}
	}
	rep, err := h.svc.Reconcile(ctx, req.Msg.GetAccountId(), req.Msg.GetDate(), req.Msg.GetTimeZone(), theirs)
	if err != nil {
		return nil, err
	}
	res := &paycenterv1.ReconcileResponse{MatchedCount: int32(rep.Matched)}
	for _, r := range rep.MissingHere {
		res.MissingHere = append(res.MissingHere, recordProto(r))
	}
	for _, r := range rep.MissingThere {
		res.MissingThere = append(res.MissingThere, recordProto(r))
	}
	for _, d := range rep.Different {
		res.Different = append(res.Different, &paycenterv1.ReconcileDifference{
			Reference: d.Reference, Ours: recordProto(d.Ours), Theirs: recordProto(d.Theirs), Reason: d.Reason,
		})
	}
	return connect.NewResponse(res), nil
}

func (h *Handler) RunSettlement(ctx context.Context, req *connect.Request[paycenterv1.RunSettlementRequest]) (*connect.Response[paycenterv1.RunSettlementResponse], error) {
	run, err := h.svc.RunSettlement(ctx, req.Msg.GetMonth(), req.Msg.GetCurrency())
	if err != nil {
		return nil, err
	}
	res := &paycenterv1.RunSettlementResponse{TotalAmount: run.Total}
	for _, s := range run.Settlements {
		res.Settlements = append(res.Settlements, &paycenterv1.Settlement{
			MerchantId: s.MerchantID, Month: s.Month, Amount: s.Amount, Currency: s.Currency, TransferId: s.TransferID,
			AlreadySettled: s.AlreadySettled, SkippedReason: s.SkippedReason,
		})
	}
	return connect.NewResponse(res), nil
}

func (h *Handler) CheckInvariants(ctx context.Context, req *connect.Request[paycenterv1.CheckInvariantsRequest]) (*connect.Response[paycenterv1.CheckInvariantsResponse], error) {
	rep, err := h.svc.CheckInvariants(ctx)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paycenterv1.CheckInvariantsResponse{
		Ok: len(rep.Violations) == 0, TotalDebitsPosted: rep.DebitsPosted, TotalCreditsPosted: rep.CreditsPosted,
		AccountsChecked: int32(rep.Accounts), Violations: rep.Violations,
	}), nil
}

// accountCode converts a proto code; UNSPECIFIED and unknown values become codes that fail
// validation.
func accountCode(c paycenterv1.AccountCode) AccountCode {
	if name, ok := paycenterv1.AccountCode_name[int32(c)]; ok && c != paycenterv1.AccountCode_ACCOUNT_CODE_UNSPECIFIED {
		return AccountCode(strings.TrimPrefix(name, "ACCOUNT_CODE_"))
	}
	return AccountCode(fmt.Sprintf("UNKNOWN_%d", c))
}

func accountProto(a Account) *paycenterv1.Account {
	side := paycenterv1.NormalSide_NORMAL_SIDE_CREDIT
	if a.Code.NormalSide() == SideDebit {
		side = paycenterv1.NormalSide_NORMAL_SIDE_DEBIT
	}
	return &paycenterv1.Account{
		AccountId: a.ID, MerchantId: a.MerchantID, Currency: a.Currency,
		Code:                       paycenterv1.AccountCode(paycenterv1.AccountCode_value["ACCOUNT_CODE_"+string(a.Code)]),
		DebitsMustNotExceedCredits: a.DebitsMustNotExceedCredits, CreditsMustNotExceedDebits: a.CreditsMustNotExceedDebits,
		Frozen: a.Frozen, NormalSide: side,
		DebitsPosted: a.DebitsPosted, CreditsPosted: a.CreditsPosted, DebitsPending: a.DebitsPending, CreditsPending: a.CreditsPending,
		Balance: a.Balance(), Description: a.Description, CreateTime: timestamppb.New(a.CreatedAt),
	}
}

func transferFromProto(t *paycenterv1.Transfer) Transfer {
	var code TransferCode
	if c := t.GetCode(); c != paycenterv1.TransferCode_TRANSFER_CODE_UNSPECIFIED {
		if name, ok := paycenterv1.TransferCode_name[int32(c)]; ok {
			code = TransferCode(strings.TrimPrefix(name, "TRANSFER_CODE_"))
		} else {
			code = TransferCode(fmt.Sprintf("UNKNOWN_%d", c))
		}
	}
	return Transfer{
		ID: t.GetTransferId(), DebitAccountID: t.GetDebitAccountId(), CreditAccountID: t.GetCreditAccountId(),
		Amount: t.GetAmount(), Currency: t.GetCurrency(), Code: code, Reference: t.GetReference(), Metadata: t.GetMetadata(),
		Pending: t.GetPending(), PostPending: t.GetPostPending(), VoidPending: t.GetVoidPending(), Linked: t.GetLinked(),
		PendingTransferID: t.GetPendingTransferId(), TimeoutSeconds: t.GetTimeoutSeconds(),
	}
}

func transferProto(t Transfer) *paycenterv1.Transfer {
	return &paycenterv1.Transfer{
		TransferId: t.ID, DebitAccountId: t.DebitAccountID, CreditAccountId: t.CreditAccountID, Amount: t.Amount,
		Currency: t.Currency, Code: paycenterv1.TransferCode(paycenterv1.TransferCode_value["TRANSFER_CODE_"+string(t.Code)]),
		Reference: t.Reference, Metadata: t.Metadata, Pending: t.Pending, PostPending: t.PostPending, VoidPending: t.VoidPending,
		PendingTransferId: t.PendingTransferID, TimeoutSeconds: t.TimeoutSeconds,
		Status:     paycenterv1.TransferStatus(paycenterv1.TransferStatus_value["TRANSFER_STATUS_"+string(t.Status)]),
		CreateTime: timestamppb.New(t.CreatedAt),
	}
}

func recordProto(r Record) *paycenterv1.ReconcileRecord {
	return &paycenterv1.ReconcileRecord{Reference: r.Reference, Amount: r.Amount, Direction: paycenterv1.Direction(r.Direction)}
}

func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

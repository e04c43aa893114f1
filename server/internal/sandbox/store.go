package sandbox

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by the payer, refund and control methods. Wire handlers do
// not use them: they answer in the channel's own error format.
var (
	// ErrNotFound: no trade or refund with that number.
	ErrNotFound = errors.New("sandbox: not found")
	// ErrConflict: the action is not allowed in the trade's or refund's
	// current state (paying a closed trade, completing a finished refund...).
	ErrConflict = errors.New("sandbox: not allowed in the current state")
	// ErrAmbiguous: several apps or merchants use the same out_trade_no, so
	// a payer action naming only that number cannot tell which one is meant.
	ErrAmbiguous = errors.New("sandbox: out_trade_no is used by several apps or merchants")
	// ErrRejected: a request (such as an Alipay app order string) failed the
	// channel's own checks; the wrapped message says why.
	ErrRejected = errors.New("sandbox: rejected")
)

// beijing is the time zone both channels use on the wire.
var beijing = time.FixedZone("CST", 8*60*60)

type tradeState int

const (
	tradePending tradeState = iota // awaiting the payer
	tradePaid                      // money received (refunds do not change this)
	tradeClosed                    // closed, cancelled or expired without payment
	tradeFailed                    // the payer's payment failed (WeChat PAYERROR)
)

type refundState int

const (
	refundProcessing refundState = iota
	refundSucceeded
	refundFailed
)

// trade is one order at the channel, in the channel-neutral form both
// sandboxes keep; each renders it in its own wire format.
type trade struct {
	owner      string // Alipay app_id or WeChat mchid
	appID      string // WeChat appid (the payer-facing app)
	outTradeNo string
	channelNo  string // Alipay trade_no or WeChat transaction_id
	product    string // Alipay method or WeChat trade_type
	subject    string
	attach     string // Alipay passback_params or WeChat attach, echoed back
	amount     int64  // fen
	// misreported, when set, is the amount notifications claim instead of amount
	// (a channel mixing trades up), signed like any genuine notification.
	misreported int64
	currency    string
	notifyURL   string
	returnURL   string
	token       string // cashier and QR code token
	prepayID    string // WeChat only
	payerID     string // Alipay buyer_id or WeChat openid, set on payment
	// scanned tells whether the payer has opened the trade at the channel.
	// Real Alipay only creates a precreate or page-pay trade then; with
	// AlipayOptions.HideUnscannedTrades the sandbox does the same.
	scanned  bool
	state    tradeState
	expireAt time.Time
	created  time.Time
	paidAt   time.Time
	closedAt time.Time
	refunds  []*refund
}

type refund struct {
	outRefundNo string
	refundID    string
	amount      int64
	reason      string
	notifyURL   string
	state       refundState
	created     time.Time
	doneAt      time.Time
}

// expire closes a pending trade whose deadline has passed. Expiry is applied
// lazily whenever a trade is looked up, which is all a client can observe.
func (t *trade) expire(now time.Time) {
	if t.state == tradePending && !t.expireAt.IsZero() && now.After(t.expireAt) {
		t.state, t.closedAt = tradeClosed, t.expireAt
	}
}

// refunded is the money actually returned to the payer.
func (t *trade) refunded() int64 {
	var sum int64
	for _, r := range t.refunds {
		if r.state == refundSucceeded {
			sum += r.amount
		}
	}
	return sum
}

// refundable is what a new refund may still take: processing refunds hold
// their amount so that concurrent refunds never exceed the paid amount.
func (t *trade) refundable() int64 {
	left := t.amount
	for _, r := range t.refunds {
		if r.state != refundFailed {
			left -= r.amount
		}
	}
	return left
}

func (t *trade) findRefund(outRefundNo string) *refund {
	for _, r := range t.refunds {
		if r.outRefundNo == outRefundNo {
			return r
		}
	}
	return nil
}

// pay records the payer's money. force accepts money for a closed trade, the
// race a real channel can lose when the merchant closes while the payer pays.
func (t *trade) pay(now time.Time, payerID string, force bool) error {
	switch {
	case t.state == tradePending, force && t.state == tradeClosed:
	case t.state == tradePaid:
		return fmt.Errorf("trade %s is already paid: %w", t.outTradeNo, ErrConflict)
	default:
		return fmt.Errorf("trade %s is closed or failed: %w", t.outTradeNo, ErrConflict)
	}
	t.state, t.paidAt, t.payerID, t.scanned = tradePaid, now, payerID, true
	return nil
}

type tradeKey struct{ owner, outTradeNo string }

// book indexes the trades of one sandbox. The sandbox's mutex guards it.
type book struct {
	trades       map[tradeKey]*trade
	byOutTradeNo map[string][]*trade
	byChannelNo  map[string]*trade
	byToken      map[string]*trade
	seq          int64 // for deterministic channel ids
}

func newBook() book {
	return book{
		trades:       map[tradeKey]*trade{},
		byOutTradeNo: map[string][]*trade{},
		byChannelNo:  map[string]*trade{},
		byToken:      map[string]*trade{},
	}
}

func (b *book) next() int64 {
	b.seq++
	return b.seq
}

func (b *book) add(t *trade) {
	b.trades[tradeKey{t.owner, t.outTradeNo}] = t
	b.byOutTradeNo[t.outTradeNo] = append(b.byOutTradeNo[t.outTradeNo], t)
	b.index(t)
}

// index records the channel number and token once they are assigned.
func (b *book) index(t *trade) {
	if t.channelNo != "" {
		b.byChannelNo[t.channelNo] = t
	}
	if t.token != "" {
		b.byToken[t.token] = t
	}
}

func (b *book) get(owner, outTradeNo string, now time.Time) *trade {
	t := b.trades[tradeKey{owner, outTradeNo}]
	if t != nil {
		t.expire(now)
	}
	return t
}

func (b *book) getByChannelNo(owner, channelNo string, now time.Time) *trade {
	t := b.byChannelNo[channelNo]
	if t == nil || t.owner != owner {
		return nil
	}
	t.expire(now)
	return t
}

func (b *book) getByToken(token string, now time.Time) *trade {
	t := b.byToken[token]
	if t != nil {
		t.expire(now)
	}
	return t
}

// forPayer finds a trade by out_trade_no alone, as the payer actions do.
func (b *book) forPayer(outTradeNo string, now time.Time) (*trade, error) {
	ts := b.byOutTradeNo[outTradeNo]
	switch len(ts) {
	case 0:
		return nil, fmt.Errorf("trade %q: %w", outTradeNo, ErrNotFound)
	case 1:
		ts[0].expire(now)
		return ts[0], nil
	default:
		return nil, fmt.Errorf("trade %q: %w", outTradeNo, ErrAmbiguous)
	}
}

// refundForPayer finds a refund for the refund actions.
func (b *book) refundForPayer(outTradeNo, outRefundNo string, now time.Time) (*trade, *refund, error) {
	t, err := b.forPayer(outTradeNo, now)
	if err != nil {
		return nil, nil, err
	}
	r := t.findRefund(outRefundNo)
	if r == nil {
		return nil, nil, fmt.Errorf("refund %q of trade %q: %w", outRefundNo, outTradeNo, ErrNotFound)
	}
	if r.state != refundProcessing {
		return nil, nil, fmt.Errorf("refund %q is already finished: %w", outRefundNo, ErrConflict)
	}
	return t, r, nil
}

// TradeInfo is a snapshot of one trade, for tests and the control endpoints.
// Status is the channel's own word for the state (TRADE_SUCCESS, NOTPAY...).
type TradeInfo struct {
	Owner      string       `json:"owner"` // app_id or mchid
	OutTradeNo string       `json:"out_trade_no"`
	ChannelNo  string       `json:"channel_no"` // trade_no or transaction_id
	Product    string       `json:"product"`
	Subject    string       `json:"subject"`
	Amount     int64        `json:"amount"` // fen
	Currency   string       `json:"currency"`
	Status     string       `json:"status"`
	Refunded   int64        `json:"refunded"` // fen
	Refunds    []RefundInfo `json:"refunds"`
}

// RefundInfo is a snapshot of one refund.
type RefundInfo struct {
	OutRefundNo string `json:"out_refund_no"`
	RefundID    string `json:"refund_id,omitempty"`
	Amount      int64  `json:"amount"` // fen
	Status      string `json:"status"`
}

func (t *trade) info(status string, refundStatus func(*refund) string) TradeInfo {
	ti := TradeInfo{
		Owner: t.owner, OutTradeNo: t.outTradeNo, ChannelNo: t.channelNo, Product: t.product,
		Subject: t.subject, Amount: t.amount, Currency: t.currency, Status: status,
		Refunded: t.refunded(), Refunds: []RefundInfo{},
	}
	for _, r := range t.refunds {
		ti.Refunds = append(ti.Refunds, RefundInfo{
			OutRefundNo: r.outRefundNo, RefundID: r.refundID, Amount: r.amount, Status: refundStatus(r),
		})
	}
	return ti
}

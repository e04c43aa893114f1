package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// controlled is what both sandboxes offer to the JSON control endpoints.
type controlled interface {
	Pay(outTradeNo string) error
	PayAfterClose(outTradeNo string) error
	Fail(outTradeNo string) error
	CompleteRefund(outTradeNo, outRefundNo string) error
	FailRefund(outTradeNo, outRefundNo string) error
	SetManualRefunds(manual bool)
	SetBalanceShort(owner string, short bool)
	FaultNext(f Fault)
	FaultTrade(outTradeNo string, f Fault)
	Deliveries() []Delivery
	Trade(outTradeNo string) (TradeInfo, error)
	publicKey() (pem, id string)
}

// registerControl mounts the payer and misbehaviour endpoints under prefix.
// They speak plain JSON so that `make run` users (curl) and browser tests can
// drive the sandbox:
//
//	GET  {prefix}/public-key                      {"public_key_pem", "public_key_id"}
//	GET  {prefix}/trades/{out_trade_no}           TradeInfo
//	POST {prefix}/trades/{out_trade_no}/pay       the payer pays
//	POST {prefix}/trades/{out_trade_no}/fail      the payment fails
//	POST {prefix}/trades/{out_trade_no}/pay-after-close
//	POST {prefix}/trades/{out_trade_no}/refunds/{out_refund_no}/complete
//	POST {prefix}/trades/{out_trade_no}/refunds/{out_refund_no}/fail
//	POST {prefix}/faults        {"out_trade_no"?, "delay_ms", "duplicate", "reorder", "drop", "forge"}
//	POST {prefix}/refund-mode   {"manual": true|false}
//	POST {prefix}/balance       {"owner": app_id|mchid, "short": true|false}
//	GET  {prefix}/notifications []Delivery
//
// Trade actions answer the trade's TradeInfo; errors are {"error": "..."}
// with 400, 404 or 409.
func registerControl(mux *http.ServeMux, prefix string, c controlled) {
	mux.HandleFunc("GET "+prefix+"/public-key", func(w http.ResponseWriter, r *http.Request) {
		pem, id := c.publicKey()
		writeControlJSON(w, http.StatusOK, map[string]string{"public_key_pem": pem, "public_key_id": id})
	})
	mux.HandleFunc("GET "+prefix+"/trades/{out_trade_no}", func(w http.ResponseWriter, r *http.Request) {
		writeTrade(w, c, r.PathValue("out_trade_no"))
	})
	tradeAction := func(action func(string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			no := r.PathValue("out_trade_no")
			if err := action(no); err != nil {
				writeControlError(w, err)
				return
			}
			writeTrade(w, c, no)
		}
	}
	mux.HandleFunc("POST "+prefix+"/trades/{out_trade_no}/pay", tradeAction(c.Pay))
	mux.HandleFunc("POST "+prefix+"/trades/{out_trade_no}/fail", tradeAction(c.Fail))
	mux.HandleFunc("POST "+prefix+"/trades/{out_trade_no}/pay-after-close", tradeAction(c.PayAfterClose))
	refundAction := func(action func(string, string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			no := r.PathValue("out_trade_no")
			if err := action(no, r.PathValue("out_refund_no")); err != nil {
				writeControlError(w, err)
				return
			}
			writeTrade(w, c, no)
		}
	}
	mux.HandleFunc("POST "+prefix+"/trades/{out_trade_no}/refunds/{out_refund_no}/complete", refundAction(c.CompleteRefund))
	mux.HandleFunc("POST "+prefix+"/trades/{out_trade_no}/refunds/{out_refund_no}/fail", refundAction(c.FailRefund))

	mux.HandleFunc("POST "+prefix+"/faults", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			OutTradeNo string `json:"out_trade_no"`
			DelayMS    int64  `json:"delay_ms"`
			Duplicate  int    `json:"duplicate"`
			Reorder    bool   `json:"reorder"`
			Drop       bool   `json:"drop"`
			Forge      bool   `json:"forge"`
		}
		if !decodeControl(w, r, &req) {
			return
		}
		if req.DelayMS < 0 || req.Duplicate < 0 || req.Duplicate > 100 {
			writeControlError(w, fmt.Errorf("%w: delay_ms must be ≥ 0 and duplicate within 0..100", ErrRejected))
			return
		}
		f := Fault{
			Delay: time.Duration(req.DelayMS) * time.Millisecond, Duplicate: req.Duplicate,
			Reorder: req.Reorder, Drop: req.Drop, Forge: req.Forge,
		}
		if req.OutTradeNo != "" {
			c.FaultTrade(req.OutTradeNo, f)
		} else {
			c.FaultNext(f)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+prefix+"/refund-mode", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Manual bool `json:"manual"`
		}
		if !decodeControl(w, r, &req) {
			return
		}
		c.SetManualRefunds(req.Manual)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+prefix+"/balance", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Owner string `json:"owner"`
			Short bool   `json:"short"`
		}
		if !decodeControl(w, r, &req) {
			return
		}
		if req.Owner == "" {
			writeControlError(w, fmt.Errorf("%w: owner (app_id or mchid) is required", ErrRejected))
			return
		}
		c.SetBalanceShort(req.Owner, req.Short)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+prefix+"/notifications", func(w http.ResponseWriter, r *http.Request) {
		writeControlJSON(w, http.StatusOK, c.Deliveries())
	})
	mux.HandleFunc(prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		writeControlJSON(w, http.StatusNotFound, map[string]string{"error": "no such sandbox endpoint: " + r.Method + " " + r.URL.Path})
	})
}

func writeTrade(w http.ResponseWriter, c controlled, outTradeNo string) {
	info, err := c.Trade(outTradeNo)
	if err != nil {
		writeControlError(w, err)
		return
	}
	writeControlJSON(w, http.StatusOK, info)
}

func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeControlError(w, fmt.Errorf("%w: invalid JSON body: %v", ErrRejected, err))
		return false
	}
	return true
}

func writeControlError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrConflict), errors.Is(err, ErrAmbiguous):
		status = http.StatusConflict
	case errors.Is(err, ErrRejected):
		status = http.StatusBadRequest
	}
	writeControlJSON(w, status, map[string]string{"error": err.Error()})
}

func writeControlJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

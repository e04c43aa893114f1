// Package cashier serves the hosted cashier page: GET /pay/{trade_no}?t=<cashier token> shows
// the amount, the subject and the QR code (or sends the payer on to the channel's page), and
// turns to "paid" by itself through PaymentService.WatchPayment over Connect-Web.
package cashier

import (
	"context"
	_ "embed" // the bundled page script
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/paycenter/paycenter/server/internal/channel"
	"github.com/paycenter/paycenter/server/internal/payment"
)

// script is web/cashier.ts bundled by `make generate` (esbuild), never edited by hand.
//
//go:embed assets/cashier.js
var script []byte

// Payments finds a payment by its cashier token.
type Payments interface {
	ForCashier(ctx context.Context, tradeNo, token string) (payment.Payment, error)
}

// Handler serves /pay/{trade_no} and /pay/assets/cashier.js.
func Handler(payments Payments) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /pay/assets/cashier.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(script)
	})
	mux.HandleFunc("GET /pay/{trade_no}", func(w http.ResponseWriter, r *http.Request) {
		p, err := payments.ForCashier(r.Context(), r.PathValue("trade_no"), r.URL.Query().Get("t"))
		if err != nil {
			http.Error(w, "payment not found", http.StatusNotFound)
			return
		}
		action := p.PayerAction.V
		if p.Status == payment.StatusPending && action.PayURL != "" && (p.Method == channel.MethodPCPage || p.Method == channel.MethodWAP) {
			http.Redirect(w, r, action.PayURL, http.StatusFound)
			return
		}
		view := pageView{TradeNo: p.TradeNo, Token: p.CashierToken, Subject: p.Subject,
			Amount: FormatAmount(p.Amount, p.Currency), Status: string(p.Status)}
		if action.QRCode != "" && p.Status == payment.StatusPending {
			png, err := qrcode.Encode(action.QRCode, qrcode.Medium, 256)
			if err == nil {
				view.QRImage = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'")
		w.Header().Set("Referrer-Policy", "no-referrer")
		_ = page.Execute(w, view)
	})
	return mux
}

type pageView struct {
	TradeNo, Token, Subject, Amount, Status string
	QRImage                                 template.URL
}

// FormatAmount shows minor units as the payer reads them, e.g. 12345 CNY → "¥123.45".
func FormatAmount(amount int64, currency string) string {
	symbol := currency + " "
	if currency == "CNY" {
		symbol = "¥"
	}
	return fmt.Sprintf("%s%d.%02d", symbol, amount/100, amount%100)
}

var page = template.Must(template.New("cashier").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pay {{.Amount}} · paycenter</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:flex;justify-content:center}
main{background:#fff;margin:2rem;padding:2rem;border-radius:12px;box-shadow:0 2px 12px #0001;text-align:center;max-width:22rem}
#amount{font-size:2.2rem;font-weight:600;margin:.5rem 0}
#status{margin-top:1rem;font-weight:600}
main[data-status=SUCCEEDED] #status{color:#0a7d32} main[data-status=SUCCEEDED] #qr{display:none}
</style></head>
<body><main id="cashier" data-trade-no="{{.TradeNo}}" data-token="{{.Token}}" data-status="{{.Status}}">
<div id="subject">{{.Subject}}</div>
<div id="amount">{{.Amount}}</div>
{{if .QRImage}}<img id="qr" alt="QR code to scan and pay" width="256" height="256" src="{{.QRImage}}">{{end}}
<div id="status">{{if eq .Status "SUCCEEDED"}}Paid{{else if eq .Status "PENDING"}}Waiting for payment…{{else}}{{.Status}}{{end}}</div>
<div style="color:#888;font-size:.8rem;margin-top:1rem">Order {{.TradeNo}}</div>
</main><script src="/pay/assets/cashier.js"></script></body></html>
`))

package sandbox

import (
	"html/template"
	"net/http"
)

// cashierPage is what the payer sees after scanning a QR code or opening a
// pay URL: the amount, the subject and a Pay button that pays.
type cashierPage struct {
	Channel    string
	Subject    string
	Amount     string // yuan, two decimals
	OutTradeNo string
	Status     string
	PayAction  string // form action; empty when the trade cannot be paid
	ReturnURL  string // where the payer goes back to the merchant
	Error      string
}

var cashierTemplate = template.Must(template.New("cashier").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Channel}} sandbox cashier</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 26rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
.card { border: 1px solid #ddd; border-radius: .5rem; padding: 1.5rem; }
.amount { font-size: 2rem; font-weight: 600; margin: .5rem 0; }
.muted { color: #666; font-size: .9rem; }
.error { color: #b00020; }
button { font-size: 1.1rem; padding: .6rem 2rem; border: 0; border-radius: .3rem; background: #1677ff; color: #fff; cursor: pointer; }
</style>
</head>
<body>
<div class="card">
<p class="muted">{{.Channel}} sandbox — no real money moves</p>
{{if .Error}}<p id="error" class="error">{{.Error}}</p>{{end}}
{{if .Subject}}<h1 id="subject">{{.Subject}}</h1>{{end}}
{{if .Amount}}<p id="amount" class="amount">¥{{.Amount}}</p>{{end}}
{{if .OutTradeNo}}<p class="muted">Order <span id="out-trade-no">{{.OutTradeNo}}</span></p>{{end}}
{{if .Status}}<p>Status: <strong id="status">{{.Status}}</strong></p>{{end}}
{{if .PayAction}}<form method="post" action="{{.PayAction}}"><button id="pay" type="submit">Pay</button></form>{{end}}
{{if .ReturnURL}}<p><a id="return" href="{{.ReturnURL}}">Return to the merchant</a></p>{{end}}
</div>
</body>
</html>
`))

func renderCashier(w http.ResponseWriter, status int, p cashierPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = cashierTemplate.Execute(w, p)
}

package cashier_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/chromedp/chromedp"

	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/server/internal/cashier"
	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
	"github.com/paycenter/paycenter/server/internal/server/servertest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// chromium is Debian's headless Chromium (PAYCENTER_CHROMIUM overrides the path). The test
// fails rather than skips without it: .ci/run installs it.
func chromium(t *testing.T) string {
	path := os.Getenv("PAYCENTER_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		t.Fatalf("headless Chromium not found at %s (apt-get install chromium): %v", path, err)
	}
	return path
}

func TestCashierPageShowsQRAndAmountAndTurnsPaidByItself(t *testing.T) {
	env := servertest.Start(t)
	sb := servertest.StartSandbox(t)
	tenant := env.NewTenant(t, sb, "")
	ctx := context.Background()
	res, err := tenant.Client.Payments.CreatePayment(ctx, connect.NewRequest(&paycenterv1.CreatePaymentRequest{
		MerchantOrderNo: "cashier-1", Amount: 1234, Currency: "CNY", Subject: "Parking, December",
		Channel: paycenterv1.Channel_CHANNEL_ALIPAY, Method: paycenterv1.PaymentMethod_PAYMENT_METHOD_QR}))
	if err != nil {
		t.Fatal(err)
	}
	p := res.Msg.Payment

	// Without the token the page does not exist.
	plain, err := http.Get(strings.Split(p.CashierUrl, "?")[0])
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if plain.StatusCode != http.StatusNotFound {
		t.Fatalf("cashier page without its token: %s", plain.Status)
	}

	// Chromium may still be writing its profile as it exits, so the directory is removed
	// best-effort rather than by t.TempDir's strict cleanup.
	profile, err := os.MkdirTemp("", "paycenter-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(profile) })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	browser, cancelTimeout := context.WithTimeout(browser, 60*time.Second)
	defer cancelTimeout()

	var amount, subject, status string
	var qrWidth int
	if err := chromedp.Run(browser,
		chromedp.Navigate(p.CashierUrl),
		chromedp.WaitVisible("#qr", chromedp.ByID),
		chromedp.Text("#amount", &amount, chromedp.ByID),
		chromedp.Text("#subject", &subject, chromedp.ByID),
		chromedp.Text("#status", &status, chromedp.ByID),
		chromedp.Evaluate(`document.getElementById("qr").naturalWidth`, &qrWidth),
	); err != nil {
		t.Fatalf("load cashier page: %v", err)
	}
	if amount != cashier.FormatAmount(1234, "CNY") || amount != "¥12.34" || subject != "Parking, December" || qrWidth < 100 {
		t.Fatalf("page shows amount %q subject %q, QR %dpx wide", amount, subject, qrWidth)
	}
	if !strings.Contains(status, "Waiting") {
		t.Fatalf("status before paying: %q", status)
	}
	// Give the page's WatchPayment stream a moment to open, then the payer pays.
	if err := chromedp.Run(browser, chromedp.Sleep(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := sb.Alipay.Pay(p.TradeNo); err != nil {
		t.Fatal(err)
	}
	var paid bool
	if err := chromedp.Run(browser,
		chromedp.Poll(`document.getElementById("status").textContent === "Paid" && document.getElementById("cashier").dataset.status === "SUCCEEDED"`, &paid,
			chromedp.WithPollingTimeout(20*time.Second)),
	); err != nil {
		t.Fatalf("the page did not turn to paid by itself: %v", err)
	}
	var shot []byte
	if err := chromedp.Run(browser, chromedp.FullScreenshot(&shot, 100)); err == nil && os.Getenv("PAYCENTER_SCREENSHOT") != "" {
		_ = os.WriteFile(os.Getenv("PAYCENTER_SCREENSHOT"), shot, 0o644)
	}
}

package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	paycenter "github.com/paycenter/paycenter/clients/go"
	paycenterv1 "github.com/paycenter/paycenter/gen/go/paycenter/v1"
	"github.com/paycenter/paycenter/server/internal/pgdb/pgtest"
	"github.com/paycenter/paycenter/server/internal/server"
	"github.com/paycenter/paycenter/server/internal/server/servertest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestHealthReflectionAndMetricsOverHTTP2(t *testing.T) {
	env := servertest.Start(t)
	ctx := context.Background()
	hc := paycenter.NewHTTPClient()

	health := grpchealth.NewClient(hc, env.URL, connect.WithGRPC())
	res, err := health.Check(ctx, &grpchealth.CheckRequest{})
	if err != nil || res.Status != grpchealth.StatusServing {
		t.Fatalf("health: %v, %v", res, err)
	}
	if _, err := health.Check(ctx, &grpchealth.CheckRequest{Service: "nope.Service"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("health of an unknown service: %v", err)
	}

	stream := grpcreflect.NewClient(hc, env.URL).NewStream(ctx)
	defer stream.Close()
	names, err := stream.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, n := range names {
		listed[string(n)] = true
	}
	for _, want := range append(server.ServiceNames, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection") {
		if !listed[want] {
			t.Errorf("reflection does not list %s (got %v)", want, names)
		}
	}

	// One RPC, then the metrics show it with its code; the response came over HTTP/2.
	_, err = env.Admin().Merchants.GetMerchant(ctx, connect.NewRequest(&paycenterv1.GetMerchantRequest{MerchantId: "mch_x"}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatal(err)
	}
	resp, err := hc.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("served over HTTP/%d, want cleartext HTTP/2", resp.ProtoMajor)
	}
	for _, want := range []string{
		`paycenter_rpc_requests_total{code="not_found",procedure="/paycenter.v1.MerchantService/GetMerchant"} 1`,
		`paycenter_rpc_duration_seconds_count{procedure="/paycenter.v1.MerchantService/GetMerchant"} 1`,
		`go_sql_max_open_connections{db_name="paycenter"}`,
		`paycenter_build_info{go_version=`,
		`go_goroutines`,
		`process_cpu_seconds_total`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestHTTP1ConnectAndLimits(t *testing.T) {
	env := servertest.Start(t)
	post := func(path, body string, header map[string]string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, env.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req) // HTTP/1.1
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	auth := map[string]string{"Authorization": "Bearer " + servertest.AdminKey, "Request-Id": "my-trace-1"}
	res := post("/paycenter.v1.MerchantService/CreateMerchant", `{"name":"Over HTTP/1.1"}`, auth)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.ProtoMajor != 1 || !strings.Contains(string(body), `"Over HTTP/1.1"`) {
		t.Fatalf("HTTP/1.1 Connect call: %s %s", res.Status, body)
	}
	if res.Header.Get("Request-Id") != "my-trace-1" {
		t.Fatalf("request id not echoed: %q", res.Header.Get("Request-Id"))
	}
	// Requests above the limit are refused before any work.
	huge := `{"name":"` + strings.Repeat("x", 2<<20) + `"}`
	if res := post("/paycenter.v1.MerchantService/CreateMerchant", huge, auth); res.StatusCode < 400 {
		t.Fatalf("oversize request answered %s", res.Status)
	}
	// Not yet implemented services answer UNIMPLEMENTED.
	res = post("/paycenter.v1.CollectorService/ListDevices", `{}`, auth)
	body, _ = io.ReadAll(res.Body)
	if !strings.Contains(string(body), `"unimplemented"`) {
		t.Fatalf("unimplemented RPC: %s %s", res.Status, body)
	}
	// Browsers from allowed origins pass the CORS preflight.
	req, _ := http.NewRequest(http.MethodOptions, env.URL+"/paycenter.v1.MerchantService/GetMerchant", nil)
	req.Header.Set("Origin", "http://localhost:3000")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,connect-protocol-version,content-type")
	pre, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
		t.Fatalf("CORS preflight: %v", pre.Header)
	}
}

func TestAppKeysAreRateLimitedAndOperatorsAreNot(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.AppRateLimit = 5 }) // bursts of 10
	ctx := context.Background()
	admin := env.Admin()
	m, err := admin.Merchants.CreateMerchant(ctx, connect.NewRequest(&paycenterv1.CreateMerchantRequest{Name: "Busy"}))
	if err != nil {
		t.Fatal(err)
	}
	app, err := admin.Merchants.CreateApp(ctx, connect.NewRequest(&paycenterv1.CreateAppRequest{MerchantId: m.Msg.Merchant.MerchantId, Name: "loop"}))
	if err != nil {
		t.Fatal(err)
	}
	client := env.Client(app.Msg.ApiKey)
	limited := 0
	for i := 0; i < 40; i++ {
		_, err := client.Merchants.GetApp(ctx, connect.NewRequest(&paycenterv1.GetAppRequest{AppId: app.Msg.App.AppId}))
		switch connect.CodeOf(err) {
		case connect.CodeResourceExhausted:
			limited++
		default:
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if limited < 20 {
		t.Fatalf("%d of 40 back-to-back calls were limited, want most of those past the burst of 10", limited)
	}
	for i := 0; i < 40; i++ {
		if _, err := admin.Merchants.GetApp(ctx, connect.NewRequest(&paycenterv1.GetAppRequest{AppId: app.Msg.App.AppId})); err != nil {
			t.Fatalf("operator call %d: %v", i, err)
		}
	}
}

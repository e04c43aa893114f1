package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	paycenter "github.com/paycenter/paycenter/clients/go"
	"github.com/paycenter/paycenter/server/internal/cpustat"
)

// unitCosts are the server's CPU time for the two things every payment does many times,
// measured in the same run on the same server process: one Connect RPC (four HTTP exchanges
// per payment: CreatePayment, the prepay call, the channel's callback, the webhook) and one
// database round trip (about twelve per payment). With the RSA signature they give the
// floor under the server's CPU per payment on this machine.
type unitCosts struct {
	RPCus       float64 `json:"rpc_us"`
	RoundTripUs float64 `json:"db_round_trip_us"`
	Calls       int     `json:"calls"`
	Concurrency int     `json:"concurrency"`
}

// measureUnitCosts calls the server's gRPC health check calls times, twice, from
// concurrency callers: once for an unknown service (answered NOT_FOUND without touching the
// database: one RPC) and once for the server as a whole (which pings the database: one RPC
// and one round trip), reading the server process's CPU time around each. The difference is
// the round trip.
func measureUnitCosts(ctx context.Context, serverPID int, serverURL string, calls, concurrency int) (unitCosts, error) {
	hc := paycenter.NewHTTPClient()
	check := func(service string) (time.Duration, error) {
		body := []byte(fmt.Sprintf(`{"service":%q}`, service))
		call := func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, serverURL+"/grpc.health.v1.Health/Check", bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			want := http.StatusNotFound // an unknown service
			if service == "" {
				want = http.StatusOK
			}
			if resp.StatusCode != want {
				return fmt.Errorf("health check %q: HTTP %d, want %d", service, resp.StatusCode, want)
			}
			return nil
		}
		if err := call(); err != nil { // and the connection is up before the clock starts
			return 0, err
		}
		before, err := cpustat.ProcessCPU(serverPID)
		if err != nil {
			return 0, err
		}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			firstErr error
		)
		for w := range concurrency {
			wg.Go(func() {
				for i := w; i < calls; i += concurrency {
					if err := call(); err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						return
					}
				}
			})
		}
		wg.Wait()
		after, err := cpustat.ProcessCPU(serverPID)
		if err != nil {
			return 0, err
		}
		return (after - before) / time.Duration(calls), firstErr
	}
	rpc, err := check("no.such.Service")
	if err != nil {
		return unitCosts{}, err
	}
	withPing, err := check("")
	if err != nil {
		return unitCosts{}, err
	}
	return unitCosts{
		RPCus:       float64(rpc) / float64(time.Microsecond),
		RoundTripUs: float64(withPing-rpc) / float64(time.Microsecond),
		Calls:       calls, Concurrency: concurrency,
	}, nil
}

package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"runtime"
	"time"

	"github.com/paycenter/paycenter/server/internal/cpustat"
)

// rsaSignCPU measures, in this run and on this machine, the CPU time of one RSA-2048
// SHA256withRSA signature: what both channels require on every request paycenter sends (an
// Alipay precreate, a WeChat Pay prepay), so at least one per payment. It runs before any load
// starts, on one goroutine, and reads the process's CPU time rather than the clock.
func rsaSignCPU() (time.Duration, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0, err
	}
	digest := sha256.Sum256([]byte("out_trade_no=T0001&total_amount=0.01"))
	const n = 200
	runtime.GC()
	start := cpustat.SelfCPU()
	for range n {
		if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
			return 0, err
		}
	}
	return (cpustat.SelfCPU() - start) / n, nil
}

package sandbox

import (
	"fmt"
	"net/http"
)

// Pair is both sandboxes behind one handler, as `paycenter dev`, `paycenter sandbox` and the
// end-to-end tests run them.
type Pair struct {
	Alipay    *Alipay
	WechatPay *WechatPay
	handler   http.Handler
}

// NewPair starts both sandboxes with the same options.
func NewPair(opts Options) (*Pair, error) {
	ali, err := NewAlipay(AlipayOptions{Options: opts})
	if err != nil {
		return nil, err
	}
	wx, err := NewWechatPay(WechatPayOptions{Options: opts})
	if err != nil {
		ali.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(AlipayGatewayPath, ali)
	mux.Handle(AlipayControlPrefix+"/", ali)
	mux.Handle("/v3/", wx)
	mux.Handle(WechatPayControlPrefix+"/", wx)
	return &Pair{Alipay: ali, WechatPay: wx, handler: mux}, nil
}

// ServeHTTP serves both sandboxes' APIs, pages and control endpoints.
func (p *Pair) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.handler.ServeHTTP(w, r) }

// Close stops both sandboxes' notification senders.
func (p *Pair) Close() {
	p.Alipay.Close()
	p.WechatPay.Close()
}

// Credentials is one merchant's complete sandbox set-up on both channels.
type Credentials struct {
	Alipay    AlipayApp
	WechatPay WechatMerchant
}

// NewCredentials registers a fresh Alipay app and WeChat Pay merchant; n makes the ids unique
// within the sandbox.
func (p *Pair) NewCredentials(n int) (Credentials, error) {
	app, err := p.Alipay.NewApp(fmt.Sprintf("20210000%08d", n))
	if err != nil {
		return Credentials{}, err
	}
	mch, err := p.WechatPay.NewMerchant(fmt.Sprintf("19000%05d", n))
	if err != nil {
		return Credentials{}, err
	}
	return Credentials{Alipay: app, WechatPay: mch}, nil
}

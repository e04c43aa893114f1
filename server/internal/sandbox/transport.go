package sandbox

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// RewriteTransport returns a RoundTripper that sends every request to
// baseURL's scheme and host (and path prefix, if any) and passes it to next
// (http.DefaultTransport when nil).
//
// The WeChat Pay SDK hard-codes https://api.mch.weixin.qq.com; give it
// option.WithHTTPClient(&http.Client{Transport: rt}) to reach a sandbox.
// This is safe for signatures: the client signs the request URI
// (path and query), which the rewrite leaves as it was, and the sandbox
// verifies what it receives after any prefix has been stripped.
func RewriteTransport(baseURL string, next http.RoundTripper) (http.RoundTripper, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("rewrite transport: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("rewrite transport: base URL %q must be http(s)://host[/prefix]", baseURL)
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return &rewriteTransport{scheme: u.Scheme, host: u.Host, prefix: strings.TrimRight(u.Path, "/"), next: next}, nil
}

type rewriteTransport struct {
	scheme, host, prefix string
	next                 http.RoundTripper
}

func (t *rewriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// A RoundTripper must not modify the caller's request.
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = t.scheme, t.host, t.host
	if t.prefix != "" {
		out.URL.Path = t.prefix + out.URL.Path
		if out.URL.RawPath != "" {
			out.URL.RawPath = t.prefix + out.URL.RawPath
		}
	}
	return t.next.RoundTrip(out)
}

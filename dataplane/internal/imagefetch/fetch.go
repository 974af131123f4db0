package imagefetch

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// Defaults of Config.
const (
	DefaultMaxBytes     = 20 << 20
	DefaultTimeout      = 10 * time.Second
	DefaultMaxImages    = 16
	DefaultMaxRedirects = 3
)

// Config configures a Fetcher. The zero value fetches from public addresses
// only, with the defaults above.
type Config struct {
	// Policy says which addresses may be fetched from.
	Policy Policy
	// MaxBytes bounds one image; default DefaultMaxBytes.
	MaxBytes int64
	// Timeout bounds one fetch, connection and body included; default
	// DefaultTimeout.
	Timeout time.Duration
	// MaxImages bounds the URL images of one request; default DefaultMaxImages.
	MaxImages int
	// MaxRedirects bounds the redirects one fetch follows; default
	// DefaultMaxRedirects.
	MaxRedirects int
}

// Fetcher fetches images by URL behind the SSRF guard. It is safe for
// concurrent use.
type Fetcher struct {
	cfg    Config
	client *http.Client
}

// New returns a fetcher with its own connection pool (never shared with the
// backend client, whose transport may reach private addresses).
func New(cfg Config) *Fetcher {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxImages <= 0 {
		cfg.MaxImages = DefaultMaxImages
	}
	if cfg.MaxRedirects <= 0 {
		cfg.MaxRedirects = DefaultMaxRedirects
	}
	policy := cfg.Policy
	guarded := &net.Dialer{Timeout: cfg.Timeout, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &refusal{"an address that cannot be checked"}
		}
		if why := policy.check(ap.Addr()); why != "" {
			return &refusal{why}
		}
		return nil
	}}
	open := &net.Dialer{Timeout: cfg.Timeout}
	tr := &http.Transport{
		Proxy: nil, // an environment proxy would dial on our behalf, unchecked
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err == nil && policy.hostAllowed(host) {
				return open.DialContext(ctx, network, addr)
			}
			return guarded.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConns:          32,
		IdleConnTimeout:       30 * time.Second,
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > cfg.MaxRedirects {
			return &refusal{fmt.Sprintf("more than %d redirects", cfg.MaxRedirects)}
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return &refusal{"a redirect to a non-http(s) URL"}
		}
		return nil
	}}
	return &Fetcher{cfg: cfg, client: client}
}

// refusal is a fetch the guard refused.
type refusal struct{ what string }

func (r *refusal) Error() string { return "image URL points to " + r.what }

// Error is a fetch that failed for a reason the client may read. It carries
// no URL (URLs can hold credentials) and no body.
type Error struct {
	// Message is the client-facing description.
	Message string
	// Err is the cause, for logs.
	Err error
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Fetch downloads one image and returns it inline (base64, with its media
// type). Every failure is an *Error.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (*canonical.Image, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &Error{Message: "image URLs must be absolute http(s) URLs", Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &Error{Message: "image URLs must be absolute http(s) URLs", Err: err}
	}
	req.Header.Set("Accept", "image/*")
	req.Header.Set("User-Agent", "MindRouter-ImageFetch/1")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, f.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &Error{Message: "could not fetch the image URL: it answered HTTP " + strconv.Itoa(resp.StatusCode)}
	}
	if resp.ContentLength > f.cfg.MaxBytes {
		return nil, f.tooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBytes+1))
	if err != nil {
		return nil, f.transportError(ctx, err)
	}
	if int64(len(body)) > f.cfg.MaxBytes {
		return nil, f.tooLarge()
	}
	mediaType, err := imageType(resp.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, err
	}
	return &canonical.Image{MediaType: mediaType, Data: base64.StdEncoding.EncodeToString(body)}, nil
}

func (f *Fetcher) tooLarge() error {
	return &Error{Message: fmt.Sprintf("the image at the URL is larger than %d bytes", f.cfg.MaxBytes)}
}

func (f *Fetcher) transportError(ctx context.Context, err error) error {
	var r *refusal
	switch {
	case errors.As(err, &r):
		return &Error{Message: r.Error(), Err: err}
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return &Error{Message: fmt.Sprintf("fetching the image URL took longer than %s", f.cfg.Timeout), Err: err}
	}
	return &Error{Message: "could not fetch the image URL: the connection failed", Err: err}
}

// imageType returns the image's media type: the Content-Type header when it
// names an image, else what the bytes look like (servers often say
// application/octet-stream); anything that is not an image is refused.
func imageType(header string, body []byte) (string, error) {
	if mt, _, err := mime.ParseMediaType(header); err == nil && strings.HasPrefix(mt, "image/") {
		return mt, nil
	}
	sniffed := http.DetectContentType(body)
	if strings.HasPrefix(sniffed, "image/") {
		return sniffed, nil
	}
	got := header
	if got == "" {
		got = sniffed
	}
	return "", &Error{Message: fmt.Sprintf("the image URL did not return an image (content type %q)", got)}
}

// isTimeout reports a network timeout (a dial or read that ran out of time before
// the request's own deadline was noticed).
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

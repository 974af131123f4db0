package imagefetch_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
	"github.com/mindrouter/mindrouter/dataplane/internal/imagefetch"
)

func pngBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// imageServer serves a PNG at /img.png (and other paths for the error cases)
// on loopback.
func imageServer(t *testing.T) *httptest.Server {
	t.Helper()
	img := pngBytes(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/img.png", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(img)
	})
	mux.HandleFunc("/octet", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(img)
	})
	mux.HandleFunc("/page", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>hi</html>"))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(bytes.Repeat([]byte{0}, 4096))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/to-loopback", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:"+r.URL.Query().Get("port")+"/img.png", http.StatusFound)
	})
	mux.HandleFunc("/to-file", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func loopbackAllowed() imagefetch.Policy {
	return imagefetch.Policy{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
}

func TestFetch(t *testing.T) {
	t.Parallel()
	srv := imageServer(t)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	localhost := "http://localhost:" + port
	tests := []struct {
		name    string
		cfg     imagefetch.Config
		url     string
		wantErr string
		media   string
	}{
		{"loopback refused by default", imagefetch.Config{}, srv.URL + "/img.png", "image URL points to a loopback address", ""},
		{"a name resolving to loopback is refused at dial", imagefetch.Config{}, localhost + "/img.png", "loopback address", ""},
		{"allow-listed CIDR", imagefetch.Config{Policy: loopbackAllowed()}, srv.URL + "/img.png", "", "image/png"},
		{"allow-listed host", imagefetch.Config{Policy: imagefetch.Policy{AllowHosts: []string{"LOCALHOST"}}}, localhost + "/img.png", "", "image/png"},
		{"redirect from an allowed host to a forbidden address", imagefetch.Config{Policy: imagefetch.Policy{AllowHosts: []string{"localhost"}}},
			localhost + "/to-loopback?port=" + port, "loopback address", ""},
		{"redirect to another scheme", imagefetch.Config{Policy: loopbackAllowed()}, srv.URL + "/to-file", "non-http(s)", ""},
		{"octet-stream is sniffed", imagefetch.Config{Policy: loopbackAllowed()}, srv.URL + "/octet", "", "image/png"},
		{"not an image", imagefetch.Config{Policy: loopbackAllowed()}, srv.URL + "/page", `did not return an image (content type "text/html")`, ""},
		{"not found", imagefetch.Config{Policy: loopbackAllowed()}, srv.URL + "/missing", "answered HTTP 404", ""},
		{"too large", imagefetch.Config{Policy: loopbackAllowed(), MaxBytes: 1024}, srv.URL + "/big", "larger than 1024 bytes", ""},
		{"too slow", imagefetch.Config{Policy: loopbackAllowed(), Timeout: 100 * time.Millisecond}, srv.URL + "/slow", "took longer than 100ms", ""},
		{"metadata address", imagefetch.Config{Timeout: time.Second}, "http://169.254.169.254/latest/meta-data/", "link-local address", ""},
		{"private literal", imagefetch.Config{Timeout: time.Second}, "http://10.1.2.3/x.png", "private address", ""},
		{"IPv6 loopback", imagefetch.Config{Timeout: time.Second}, "http://[::1]:" + port + "/img.png", "loopback address", ""},
		{"not http", imagefetch.Config{}, "ftp://example.com/x.png", "absolute http(s) URLs", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			im, err := imagefetch.New(tc.cfg).Fetch(context.Background(), tc.url)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				var fe *imagefetch.Error
				require.ErrorAs(t, err, &fe)
				require.NotContains(t, fe.Message, "127.0.0.1", "messages carry no address")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.media, im.MediaType)
			raw, err := base64.StdEncoding.DecodeString(im.Data)
			require.NoError(t, err)
			require.Equal(t, pngBytes(t), raw)
			require.Empty(t, im.URL)
		})
	}
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want string // "" allowed
	}{
		{"127.0.0.1", "loopback"},
		{"127.8.9.10", "loopback"},
		{"10.0.0.1", "private"},
		{"172.16.5.4", "private"},
		{"172.32.0.1", ""},
		{"192.168.1.1", "private"},
		{"169.254.169.254", "link-local"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"0.0.0.0", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"255.255.255.255", "reserved"},
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"::1", "loopback"},
		{"::", "unspecified"},
		{"fd00::1", "private"},
		{"fe80::1", "link-local"},
		{"ff02::1", "multicast"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:10.0.0.1", "private"},
		{"64:ff9b::a9fe:a9fe", "link-local"},
		{"2002:c0a8:0101::1", "private"},
		{"2606:4700:4700::1111", ""},
	}
	for _, tc := range tests {
		got := imagefetch.Check(imagefetch.Policy{}, netip.MustParseAddr(tc.addr))
		if tc.want == "" {
			require.Empty(t, got, tc.addr)
		} else {
			require.Contains(t, got, tc.want, tc.addr)
		}
	}
	allow := imagefetch.Policy{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	require.Empty(t, imagefetch.Check(allow, netip.MustParseAddr("10.9.9.9")))
	require.NotEmpty(t, imagefetch.Check(allow, netip.MustParseAddr("192.168.0.1")))
}

func TestResolve(t *testing.T) {
	t.Parallel()
	srv := imageServer(t)
	req := &canonical.Request{Messages: []canonical.Message{
		{Role: canonical.RoleSystem, Content: []canonical.Part{canonical.TextPart("x")}},
		{Role: canonical.RoleUser, Content: []canonical.Part{
			canonical.TextPart("what is this?"),
			{Type: canonical.PartImage, Image: &canonical.Image{URL: srv.URL + "/img.png", Detail: "low"}},
			{Type: canonical.PartImage, Image: &canonical.Image{Data: "AAAA", MediaType: "image/png"}},
		}},
	}}
	err := imagefetch.New(imagefetch.Config{}).Resolve(context.Background(), req)
	ce := canonical.AsError(err)
	require.Equal(t, canonical.KindInvalidRequest, ce.Kind)
	require.Equal(t, "messages[1].content[1]", ce.Param)
	require.Equal(t, "messages[1].content[1]: image URL points to a loopback address", ce.Message)

	require.NoError(t, imagefetch.New(imagefetch.Config{Policy: loopbackAllowed()}).Resolve(context.Background(), req))
	im := req.Messages[1].Content[1].Image
	require.Equal(t, "image/png", im.MediaType)
	require.Equal(t, base64.StdEncoding.EncodeToString(pngBytes(t)), im.Data)
	require.Equal(t, "low", im.Detail)
	require.Empty(t, im.URL)
	require.Equal(t, "AAAA", req.Messages[1].Content[2].Image.Data, "inline images are left alone")

	many := &canonical.Request{Messages: []canonical.Message{{Role: canonical.RoleUser}}}
	for range 3 {
		many.Messages[0].Content = append(many.Messages[0].Content,
			canonical.Part{Type: canonical.PartImage, Image: &canonical.Image{URL: srv.URL + "/img.png"}})
	}
	err = imagefetch.New(imagefetch.Config{Policy: loopbackAllowed(), MaxImages: 2}).Resolve(context.Background(), many)
	require.ErrorContains(t, err, "at most 2 images by URL")
}

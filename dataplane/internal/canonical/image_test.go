package canonical_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

const pngHeader = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

func TestParseDataURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url, media, data string
		ok                     bool
	}{
		{"png", "data:image/png;base64," + pngHeader, "image/png", pngHeader, true},
		{"media type case and params", "data:Image/JPEG;name=a.jpg;base64,/9j/4AAQ", "image/jpeg", "/9j/4AAQ", true},
		{"missing media type is sniffed", "data:;base64," + pngHeader, "image/png", pngHeader, true},
		{"unpadded and wrapped data is normalised", "data:image/png;base64,/9j/\n4AAQSk", "image/png", "/9j/4AAQSk==", true},
		{"not base64 encoded", "data:image/png,abc", "", "", false},
		{"bad base64", "data:image/png;base64,@@@@", "", "", false},
		{"not an image", "data:text/plain;base64,aGk=", "", "", false},
		{"sniffed non-image", "data:;base64,aGVsbG8=", "", "", false},
		{"empty data", "data:image/png;base64,", "", "", false},
		{"no comma", "data:image/png;base64", "", "", false},
		{"not a data URL", "https://x/y.png", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			im, err := canonical.ParseDataURL(tc.url)
			if !tc.ok {
				require.ErrorIs(t, err, canonical.ErrBadDataURL)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.media, im.MediaType)
			require.Equal(t, tc.data, im.Data)
			require.Empty(t, im.URL)
		})
	}
}

func FuzzParseDataURL(f *testing.F) {
	f.Add("data:image/png;base64," + pngHeader)
	f.Add("data:;base64,/9j/4AAQ")
	f.Add("data:image/gif;x=y;base64,R0lGODlh\n")
	f.Fuzz(func(t *testing.T, url string) {
		im, err := canonical.ParseDataURL(url)
		if err != nil {
			if !errors.Is(err, canonical.ErrBadDataURL) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !strings.HasPrefix(im.MediaType, "image/") {
			t.Fatalf("accepted media type %q", im.MediaType)
		}
		if _, err := base64.StdEncoding.DecodeString(im.Data); err != nil {
			t.Fatalf("accepted data that engines cannot decode: %v", err)
		}
		if !strings.HasPrefix(im.DataURL(), "data:"+im.MediaType+";base64,") {
			t.Fatal("does not round-trip")
		}
	})
}

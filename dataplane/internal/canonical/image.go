package canonical

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
)

// ErrBadDataURL is returned by ParseDataURL for anything but a base64 image
// data: URL.
var ErrBadDataURL = errors.New("image data URLs must look like data:image/<type>;base64,<data>")

// ParseDataURL reads an image given as data:<media type>[;params];base64,<data>
// into an inline Image. The media type must be image/* (it is sniffed from the
// bytes when absent) and the data valid standard base64; whitespace and
// unpadded data are tolerated and normalised, since Ollama and vLLM decode
// strictly.
func ParseDataURL(url string) (*Image, error) {
	rest, ok := strings.CutPrefix(url, "data:")
	if !ok {
		return nil, ErrBadDataURL
	}
	meta, data, found := strings.Cut(rest, ",")
	params, isBase64 := strings.CutSuffix(meta, ";base64")
	if !found || !isBase64 {
		return nil, ErrBadDataURL
	}
	mediaType, _, _ := strings.Cut(params, ";")
	mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	data = normaliseBase64(data)
	if data == "" {
		return nil, ErrBadDataURL
	}
	if _, err := base64.StdEncoding.DecodeString(data); err != nil {
		return nil, ErrBadDataURL
	}
	if mediaType == "" {
		head, _ := base64.StdEncoding.DecodeString(data[:min(len(data), 512)&^3])
		mediaType = http.DetectContentType(head)
	}
	if !strings.HasPrefix(mediaType, "image/") {
		return nil, ErrBadDataURL
	}
	return &Image{MediaType: mediaType, Data: data}, nil
}

// normaliseBase64 drops whitespace and restores missing padding.
func normaliseBase64(s string) string {
	if strings.ContainsAny(s, " \t\r\n") {
		s = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, s)
	}
	if n := len(s) % 4; n != 0 && !strings.HasSuffix(s, "=") {
		s += strings.Repeat("=", 4-n)
	}
	return s
}

package imagefetch

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/mindrouter/mindrouter/dataplane/internal/canonical"
)

// parallelFetches bounds the fetches of one request that run at once.
const parallelFetches = 4

// Resolve fetches every image of req given by URL and replaces it with the
// inline image, in place. A failed fetch is a *canonical.Error of
// KindInvalidRequest naming the message part: the URL is the client's.
func (f *Fetcher) Resolve(ctx context.Context, req *canonical.Request) error {
	type ref struct {
		param string
		im    *canonical.Image
	}
	var refs []ref
	for i := range req.Messages {
		for j, p := range req.Messages[i].Content {
			if p.Type == canonical.PartImage && p.Image != nil && p.Image.Data == "" && p.Image.URL != "" {
				refs = append(refs, ref{fmt.Sprintf("messages[%d].content[%d]", i, j), p.Image})
			}
		}
	}
	if len(refs) == 0 {
		return nil
	}
	if len(refs) > f.cfg.MaxImages {
		return canonical.Invalid("messages", fmt.Sprintf("a request may give at most %d images by URL; got %d", f.cfg.MaxImages, len(refs)))
	}
	fetched := make([]*canonical.Image, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelFetches)
	for k, r := range refs {
		g.Go(func() error {
			im, err := f.Fetch(gctx, r.im.URL)
			if err != nil {
				return &canonical.Error{Kind: canonical.KindInvalidRequest, Param: r.param, Code: "invalid_image_url",
					Message: r.param + ": " + err.Error(), Err: err}
			}
			fetched[k] = im
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("fetch images: %w", ctx.Err())
		}
		return err
	}
	for k, r := range refs {
		r.im.Data, r.im.MediaType = fetched[k].Data, fetched[k].MediaType
		r.im.URL = ""
	}
	return nil
}

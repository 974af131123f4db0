package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

var (
	// ErrSSOFailed is every failed single sign-on whose cause the browser need
	// not know (bad state, binding, code, token or nonce); the log says which.
	ErrSSOFailed = errors.New("single sign-on failed; start again")
	// ErrSSOAccountConflict means a new SSO user's e-mail address or username
	// belongs to an existing account, which SSO never adopts on its own.
	ErrSSOAccountConflict = errors.New("an account with this e-mail address already exists; ask an administrator to link it")
	// ErrUnknownProvider means no provider of that name is configured.
	ErrUnknownProvider = errors.New("unknown sign-in provider")
)

// OIDCProvider configures one OpenID Connect provider.
type OIDCProvider struct {
	// Name is the provider's URL segment: /login/oidc/<name>.
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	// Issuer is discovered at <issuer>/.well-known/openid-configuration.
	Issuer           string `json:"issuer"`
	ClientID         string `json:"client_id"`
	ClientSecret     string `json:"client_secret"`
	ClientSecretFile string `json:"client_secret_file"`
	// RedirectURL is a data plane's /login/oidc/callback as the provider knows it.
	RedirectURL string `json:"redirect_url"`
	// Scopes default to openid, profile and email.
	Scopes []string `json:"scopes"`
	// GroupClaim names the claim mapped to a group: any string or list-of-
	// strings claim of the ID token or userinfo (groups, roles, ...), or
	// email_domain for the domain of a verified e-mail address.
	GroupClaim string `json:"group_claim"`
	// GroupMap maps claim values to MindRouter group names; the first value of
	// the claim (in the claim's order) with an entry decides.
	GroupMap map[string]string `json:"group_map"`
	// DefaultGroup is the group of new users no mapping matches.
	DefaultGroup string `json:"default_group"`
}

// LoadOIDCProviders reads a JSON file {"providers": [...]} and checks it.
func LoadOIDCProviders(path string) ([]OIDCProvider, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("OIDC providers: %w", err)
	}
	ps, err := parseOIDCProviders(raw)
	if err != nil {
		return nil, fmt.Errorf("OIDC providers %s: %w", path, err)
	}
	return ps, nil
}

// parseOIDCProviders decodes and checks a providers document, reading the
// client secret files it names.
func parseOIDCProviders(raw []byte) ([]OIDCProvider, error) {
	var doc struct {
		Providers []OIDCProvider `json:"providers"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var errs []error
	for i := range doc.Providers {
		p := &doc.Providers[i]
		if p.ClientSecret == "" && p.ClientSecretFile != "" {
			b, err := os.ReadFile(p.ClientSecretFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("provider %q: client_secret_file: %w", p.Name, err))
			}
			p.ClientSecret = strings.TrimSpace(string(b))
		}
		switch {
		case p.Name == "" || p.Name == "callback" || strings.ContainsAny(p.Name, "/?#% "):
			errs = append(errs, fmt.Errorf("provider %d: name must be set, URL-safe and not \"callback\"", i))
		case seen[p.Name]:
			errs = append(errs, fmt.Errorf("provider %q is configured twice", p.Name))
		case p.Issuer == "" || p.ClientID == "" || p.RedirectURL == "":
			errs = append(errs, fmt.Errorf("provider %q needs issuer, client_id and redirect_url", p.Name))
		case p.DefaultGroup == "":
			errs = append(errs, fmt.Errorf("provider %q needs default_group (the group of users no mapping matches)", p.Name))
		}
		seen[p.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return doc.Providers, nil
}

// ssoProvider is a configured provider, discovered on first use.
type ssoProvider struct {
	cfg OIDCProvider

	mu       sync.Mutex
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
}

// oidcFlow is a started sign-in, waiting for its callback.
type oidcFlow struct {
	provider string
	nonce    string
	verifier string
	next     string
	binding  string // hex SHA-256 of the browser's binding token
	expires  time.Time
}

// Bounds on started sign-ins.
const (
	oidcFlowTTL  = 10 * time.Minute
	maxOIDCFlows = 10_000
)

// SSO signs people in through OpenID Connect providers (authorization code
// flow with PKCE, state and nonce) and provisions them just in time. Flows in
// progress are kept in memory for oidcFlowTTL.
type SSO struct {
	acct      *Accounts
	st        ssoStore
	client    *http.Client
	providers map[string]*ssoProvider

	mu    sync.Mutex
	flows map[string]oidcFlow // by state
}

type ssoStore interface {
	GetUserByOIDC(ctx context.Context, issuer, subject string) (store.User, error)
	GetGroupByName(ctx context.Context, name string) (store.Group, error)
	CreateUser(ctx context.Context, spec store.UserSpec) (store.User, error)
}

// NewSSO returns the SSO service for providers; client (nil: a default with
// a 15 s timeout) reaches the providers.
func NewSSO(acct *Accounts, st ssoStore, providers []OIDCProvider, client *http.Client) *SSO {
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	s := &SSO{acct: acct, st: st, client: client, providers: map[string]*ssoProvider{}, flows: map[string]oidcFlow{}}
	for _, p := range providers {
		s.providers[p.Name] = &ssoProvider{cfg: p}
	}
	return s
}

// discover returns the provider's discovery and configuration, fetching it
// once; a failure is retried on the next sign-in.
func (s *SSO) discover(ctx context.Context, name string) (*ssoProvider, error) {
	p, ok := s.providers[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownProvider, name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.provider != nil {
		return p, nil
	}
	prov, err := oidc.NewProvider(oidc.ClientContext(ctx, s.client), p.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover OIDC provider %q: %w", name, err)
	}
	scopes := p.cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	p.provider = prov
	p.verifier = prov.Verifier(&oidc.Config{ClientID: p.cfg.ClientID})
	p.oauth = oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, Endpoint: prov.Endpoint(),
		RedirectURL: p.cfg.RedirectURL, Scopes: scopes}
	return p, nil
}

// Begin starts a sign-in at the named provider: it answers the authorization
// URL and the binding token the browser must present with the callback.
func (s *SSO) Begin(ctx context.Context, name, next string) (authURL, binding string, err error) {
	p, err := s.discover(ctx, name)
	if err != nil {
		return "", "", err
	}
	state, err1 := randomToken()
	nonce, err2 := randomToken()
	binding, err3 := randomToken()
	if err := errors.Join(err1, err2, err3); err != nil {
		return "", "", err
	}
	verifier := oauth2.GenerateVerifier()
	now := s.acct.svc.now()
	s.mu.Lock()
	s.pruneFlows(now)
	if len(s.flows) >= maxOIDCFlows {
		s.mu.Unlock()
		return "", "", fmt.Errorf("begin sign-in: too many sign-ins in progress: %w", ErrLoginThrottled)
	}
	s.flows[state] = oidcFlow{provider: name, nonce: nonce, verifier: verifier, next: next,
		binding: tokenDigest(binding), expires: now.Add(oidcFlowTTL)}
	s.mu.Unlock()
	return p.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), binding, nil
}

func (s *SSO) pruneFlows(now time.Time) {
	for k, f := range s.flows {
		if !now.Before(f.expires) {
			delete(s.flows, k)
		}
	}
}

// Complete finishes a sign-in and opens a session; it answers the session
// and where the browser wanted to go.
func (s *SSO) Complete(ctx context.Context, state, code, binding, ip, ua string) (Session, string, error) {
	s.mu.Lock()
	f, ok := s.flows[state]
	delete(s.flows, state) // single use, whatever happens next
	s.mu.Unlock()
	log := s.acct.svc.log
	switch {
	case !ok || !s.acct.svc.now().Before(f.expires):
		log.WarnContext(ctx, "SSO callback refused", slog.String("reason", "unknown or expired state"))
		return Session{}, "", ErrSSOFailed
	case !SameSecret(tokenDigest(binding), f.binding):
		log.WarnContext(ctx, "SSO callback refused", slog.String("reason", "the browser does not hold the flow's binding"))
		return Session{}, "", ErrSSOFailed
	}
	p, err := s.discover(ctx, f.provider)
	if err != nil {
		return Session{}, "", err
	}
	claims, err := s.verify(ctx, p, f, code)
	if err != nil {
		log.WarnContext(ctx, "SSO callback refused", slog.String("provider", f.provider), slog.Any("error", err))
		return Session{}, "", ErrSSOFailed
	}
	u, err := s.provision(ctx, p, claims)
	if err != nil {
		return Session{}, "", err
	}
	if !u.IsActive || u.DeletedAt != nil {
		return Session{}, "", ErrUserInactive
	}
	ss, err := s.acct.openSession(ctx, u.ID, "oidc:"+p.cfg.Name, ip, ua)
	return ss, f.next, err
}

// idClaims are the claims sign-in uses; all claims are kept in raw for the
// group mapping.
type idClaims struct {
	issuer, subject                string
	email, name, preferredUsername string
	emailVerified                  bool
	raw                            map[string]any
}

// verify exchanges the code (with the PKCE verifier), verifies the ID token
// and its nonce, and merges the userinfo claims when the provider has them.
func (s *SSO) verify(ctx context.Context, p *ssoProvider, f oidcFlow, code string) (idClaims, error) {
	cctx := oidc.ClientContext(ctx, s.client)
	tok, err := p.oauth.Exchange(cctx, code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		return idClaims{}, fmt.Errorf("exchange code: %w", err)
	}
	rawID, ok := tok.Extra("id_token").(string)
	if !ok || rawID == "" {
		return idClaims{}, errors.New("no id_token in the token response")
	}
	idt, err := p.verifier.Verify(cctx, rawID)
	if err != nil {
		return idClaims{}, fmt.Errorf("verify ID token: %w", err)
	}
	if !SameSecret(idt.Nonce, f.nonce) {
		return idClaims{}, errors.New("ID token nonce does not match")
	}
	raw := map[string]any{}
	if err := idt.Claims(&raw); err != nil {
		return idClaims{}, fmt.Errorf("read ID token claims: %w", err)
	}
	if p.provider.UserInfoEndpoint() != "" {
		ui, err := p.provider.UserInfo(cctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return idClaims{}, fmt.Errorf("userinfo: %w", err)
		}
		if ui.Subject != idt.Subject {
			return idClaims{}, errors.New("userinfo subject differs from the ID token's")
		}
		extra := map[string]any{}
		if err := ui.Claims(&extra); err == nil {
			for k, v := range extra {
				if _, ok := raw[k]; !ok {
					raw[k] = v
				}
			}
		}
	}
	c := idClaims{issuer: idt.Issuer, subject: idt.Subject, raw: raw}
	c.email, _ = raw["email"].(string)
	c.emailVerified, _ = raw["email_verified"].(bool)
	c.name, _ = raw["name"].(string)
	c.preferredUsername, _ = raw["preferred_username"].(string)
	return c, nil
}

// provision finds the user of (issuer, subject), or creates one in the group
// the claims map to. An existing account is never adopted by e-mail address.
func (s *SSO) provision(ctx context.Context, p *ssoProvider, c idClaims) (store.User, error) {
	u, err := s.st.GetUserByOIDC(ctx, c.issuer, c.subject)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return u, err
	}
	groupName := mapGroup(p.cfg, c)
	g, err := s.st.GetGroupByName(ctx, groupName)
	if err != nil {
		return store.User{}, fmt.Errorf("provision SSO user into group %q: %w", groupName, err)
	}
	email := c.email
	if email == "" || validateEmail(email) != nil {
		email = shortHash(c.issuer+"\x00"+c.subject) + "@sso.invalid"
	}
	spec := store.UserSpec{Username: ssoUsername(c), Email: email, FullName: truncateRunes(c.name, maxFullNameLen),
		GroupID: g.ID, OIDCIssuer: c.issuer, OIDCSubject: c.subject}
	u, err = s.st.CreateUser(ctx, spec)
	if errors.Is(err, store.ErrConflict) {
		// A taken username gets the subject's hash; a taken e-mail address is
		// someone's account, which only an administrator may link.
		spec.Username = truncateRunes(spec.Username, maxUsernameLen-9) + "_" + shortHash(c.subject)
		u, err = s.st.CreateUser(ctx, spec)
		if errors.Is(err, store.ErrConflict) {
			s.acct.svc.log.WarnContext(ctx, "sso_email_link_refused", slog.String("provider", p.cfg.Name))
			return store.User{}, ErrSSOAccountConflict
		}
	}
	if err != nil {
		return store.User{}, err
	}
	s.acct.svc.log.InfoContext(ctx, "SSO user provisioned", slog.Int64("user_id", u.ID), slog.String("user", u.Username),
		slog.String("group", g.Name), slog.String("provider", p.cfg.Name))
	return u, nil
}

// mapGroup returns the group the claims map to, else the default group.
func mapGroup(cfg OIDCProvider, c idClaims) string {
	var values []string
	switch cfg.GroupClaim {
	case "":
	case "email_domain":
		if at := strings.LastIndexByte(c.email, '@'); at >= 0 && c.emailVerified {
			values = []string{strings.ToLower(c.email[at+1:])}
		}
	default:
		switch v := c.raw[cfg.GroupClaim].(type) {
		case string:
			values = []string{v}
		case []any:
			for _, x := range v {
				if s, ok := x.(string); ok {
					values = append(values, s)
				}
			}
		}
	}
	for _, v := range values {
		if g, ok := cfg.GroupMap[v]; ok {
			return g
		}
	}
	return cfg.DefaultGroup
}

// ssoUsername derives a valid username from preferred_username or the
// e-mail's local part, else the subject's hash.
func ssoUsername(c idClaims) string {
	for _, cand := range []string{c.preferredUsername, localPart(c.email)} {
		var b strings.Builder
		for _, r := range cand {
			if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@", r)) {
				b.WriteRune(r)
			}
		}
		if u := truncateRunes(b.String(), maxUsernameLen-9); u != "" {
			return u
		}
	}
	return "sso_" + shortHash(c.subject)
}

func localPart(email string) string {
	if at := strings.IndexByte(email, '@'); at > 0 {
		return email[:at]
	}
	return ""
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	return string(r[:min(len(r), n)])
}

// Providers lists the configured providers' names and display names.
func (s *SSO) Providers() [][2]string {
	var out [][2]string
	for name, p := range s.providers {
		out = append(out, [2]string{name, p.cfg.DisplayName})
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return out
}

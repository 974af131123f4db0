package identity

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mindrouter/mindrouter/controlplane/internal/store"
)

func TestMapGroup(t *testing.T) {
	t.Parallel()
	cfg := OIDCProvider{GroupClaim: "groups", GroupMap: map[string]string{"staff": "staff", "faculty": "faculty"}, DefaultGroup: "student"}
	for name, tc := range map[string]struct {
		cfg    OIDCProvider
		claims idClaims
		want   string
	}{
		"list, first mapped value wins": {cfg, idClaims{raw: map[string]any{"groups": []any{"x", "faculty", "staff"}}}, "faculty"},
		"string claim":                  {cfg, idClaims{raw: map[string]any{"groups": "staff"}}, "staff"},
		"no match":                      {cfg, idClaims{raw: map[string]any{"groups": []any{"x"}}}, "student"},
		"missing claim":                 {cfg, idClaims{raw: map[string]any{}}, "student"},
		"wrong type":                    {cfg, idClaims{raw: map[string]any{"groups": 7.0}}, "student"},
		"verified email domain": {OIDCProvider{GroupClaim: "email_domain", GroupMap: map[string]string{"uni.edu": "faculty"}, DefaultGroup: "student"},
			idClaims{email: "a@UNI.edu", emailVerified: true}, "faculty"},
		"unverified email domain is not trusted": {OIDCProvider{GroupClaim: "email_domain", GroupMap: map[string]string{"uni.edu": "faculty"}, DefaultGroup: "student"},
			idClaims{email: "a@uni.edu"}, "student"},
	} {
		assert.Equal(t, tc.want, mapGroup(tc.cfg, tc.claims), name)
	}
}

func TestSSOUsername(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "jdoe", ssoUsername(idClaims{preferredUsername: "jdoe"}))
	assert.Equal(t, "jane.doe", ssoUsername(idClaims{preferredUsername: "  ", email: "jane.doe@uni.edu"}))
	assert.Equal(t, "Jos", ssoUsername(idClaims{preferredUsername: "José ✓"}))
	u := ssoUsername(idClaims{subject: "abc"})
	assert.Regexp(t, `^sso_[0-9a-f]{8}$`, u)
	assert.NoError(t, validateUsername(ssoUsername(idClaims{preferredUsername: string(make([]byte, 300)) + "x"})))
}

func TestLoadOIDCProviders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	secret := write("secret", "s3cret\n")
	ps, err := LoadOIDCProviders(write("ok.json", `{"providers":[{"name":"entra","issuer":"https://login.example/v2.0","client_id":"c",
		"client_secret_file":"`+secret+`","redirect_url":"https://gw/login/oidc/callback","default_group":"student"}]}`))
	require.NoError(t, err)
	require.Len(t, ps, 1)
	assert.Equal(t, "s3cret", ps[0].ClientSecret)

	for name, body := range map[string]string{
		"unknown field":    `{"providers":[{"name":"x","issuer":"i","client_id":"c","redirect_url":"r","default_group":"g","typo":1}]}`,
		"no issuer":        `{"providers":[{"name":"x","client_id":"c","redirect_url":"r","default_group":"g"}]}`,
		"no default group": `{"providers":[{"name":"x","issuer":"i","client_id":"c","redirect_url":"r"}]}`,
		"reserved name":    `{"providers":[{"name":"callback","issuer":"i","client_id":"c","redirect_url":"r","default_group":"g"}]}`,
		"duplicate": `{"providers":[{"name":"x","issuer":"i","client_id":"c","redirect_url":"r","default_group":"g"},
			{"name":"x","issuer":"i","client_id":"c","redirect_url":"r","default_group":"g"}]}`,
		"not JSON": `providers: []`,
	} {
		_, err := LoadOIDCProviders(write(name+".json", body))
		require.Error(t, err, name)
	}
	_, err = LoadOIDCProviders(filepath.Join(dir, "missing.json"))
	require.Error(t, err)
}

func TestSSOProvisioningMatchesBySubjectNeverByEmail(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	local := f.user(t, "pat", store.GroupStaff)
	sso := NewSSO(f.acct, f.st, []OIDCProvider{{Name: "idp", DefaultGroup: store.GroupStudent}}, nil)
	p := sso.providers["idp"]

	u, err := sso.provision(ctx, p, idClaims{issuer: "https://idp", subject: "s-1", email: "new@example.edu", preferredUsername: "pat", emailVerified: true})
	require.NoError(t, err)
	assert.NotEqual(t, local.ID, u.ID)
	assert.Regexp(t, `^pat_[0-9a-f]{8}$`, u.Username, "a taken username gets the subject's hash")
	assert.Equal(t, store.GroupStudent, u.GroupName)
	assert.Empty(t, u.PasswordHash, "SSO accounts have no local password")

	again, err := sso.provision(ctx, p, idClaims{issuer: "https://idp", subject: "s-1", email: "changed@example.edu"})
	require.NoError(t, err)
	assert.Equal(t, u.ID, again.ID, "matched by (issuer, subject) whatever the e-mail says now")

	_, err = sso.provision(ctx, p, idClaims{issuer: "https://idp", subject: "s-2", email: local.Email, emailVerified: true})
	require.ErrorIs(t, err, ErrSSOAccountConflict, "an existing account is never adopted by e-mail")

	other, err := sso.provision(ctx, p, idClaims{issuer: "https://other-idp", subject: "s-1"})
	require.NoError(t, err)
	assert.NotEqual(t, u.ID, other.ID, "the same subject at another issuer is another person")
	assert.Contains(t, other.Email, "@sso.invalid", "no e-mail claim: a placeholder that cannot collide")
}

func TestSSOCompleteRefusesForeignCallbacks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	sso := NewSSO(f.acct, f.st, nil, nil)
	_, _, err := sso.Complete(ctx, "unknown-state", "code", "binding", "", "")
	require.ErrorIs(t, err, ErrSSOFailed)

	sso.flows["st"] = oidcFlow{provider: "idp", binding: tokenDigest("right"), expires: f.clock.Now().Add(oidcFlowTTL)}
	_, _, err = sso.Complete(ctx, "st", "code", "wrong", "", "")
	require.ErrorIs(t, err, ErrSSOFailed, "the browser must hold the flow's binding")
	_, ok := sso.flows["st"]
	assert.False(t, ok, "a state is used once, even when refused")

	sso.flows["old"] = oidcFlow{provider: "idp", binding: tokenDigest("right"), expires: f.clock.Now().Add(oidcFlowTTL)}
	f.clock.Advance(oidcFlowTTL)
	_, _, err = sso.Complete(ctx, "old", "code", "right", "", "")
	require.ErrorIs(t, err, ErrSSOFailed, "flows expire")

	_, _, err = sso.Begin(ctx, "nope", "/")
	require.ErrorIs(t, err, ErrUnknownProvider)
}

func FuzzParseOIDCProviders(f *testing.F) {
	f.Add([]byte(`{"providers":[{"name":"x","issuer":"https://i","client_id":"c","redirect_url":"https://r","default_group":"g","group_claim":"groups","group_map":{"a":"b"}}]}`))
	f.Add([]byte(`{"providers":[]}`))
	f.Add([]byte(`{"providers":[{"name":"callback"}]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ps, err := parseOIDCProviders(raw)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, p := range ps {
			if p.Name == "" || p.Name == "callback" || p.Issuer == "" || p.ClientID == "" || p.RedirectURL == "" || p.DefaultGroup == "" || seen[p.Name] {
				t.Fatalf("accepted an invalid provider %+v", p)
			}
			seen[p.Name] = true
		}
	})
}

// fakeIdP is an OpenID Connect provider on httptest: discovery, a JWKS with
// one RSA key, and a token endpoint that answers every code with an ID token
// for subject "s-1" carrying the nonce nonceFor returns for the one the
// authorization request sent.
type fakeIdP struct {
	srv      *httptest.Server
	key      *rsa.PrivateKey
	mu       sync.Mutex
	nonce    string // the nonce of the last authorization request
	nonceFor func(sent string) string
}

func newFakeIdP(t *testing.T) *fakeIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	idp := &fakeIdP{key: key, nonceFor: func(sent string) string { return sent }}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		iss := idp.srv.URL
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "authorization_endpoint": iss + "/authorize",
			"token_endpoint": iss + "/token", "jwks_uri": iss + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		b64 := base64.RawURLEncoding.EncodeToString
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]string{"kty": "RSA", "kid": "k1", "alg": "RS256",
			"use": "sig", "n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes())}}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, _ *http.Request) {
		idp.mu.Lock()
		nonce := idp.nonceFor(idp.nonce)
		idp.mu.Unlock()
		now := time.Now()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600,
			"id_token": idp.sign(t, map[string]any{"iss": idp.srv.URL, "sub": "s-1", "aud": "client", "nonce": nonce,
				"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "email": "sam@example.edu", "email_verified": true})})
	})
	idp.srv = httptest.NewServer(mux)
	t.Cleanup(idp.srv.Close)
	return idp
}

// sign returns claims as an RS256 JWT.
func (idp *fakeIdP) sign(t *testing.T, claims map[string]any) string {
	hdr, err := json.Marshal(map[string]string{"alg": "RS256", "kid": "k1", "typ": "JWT"})
	require.NoError(t, err)
	body, err := json.Marshal(claims)
	require.NoError(t, err)
	input := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(body)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, idp.key, crypto.SHA256, sum[:])
	require.NoError(t, err)
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// begin starts a sign-in and notes the nonce the authorization URL carries,
// as the provider would; it answers the state and the binding.
func (idp *fakeIdP) begin(t *testing.T, sso *SSO) (state, binding string) {
	t.Helper()
	authURL, binding, err := sso.Begin(context.Background(), "idp", "/chat")
	require.NoError(t, err)
	u, err := url.Parse(authURL)
	require.NoError(t, err)
	require.NotEmpty(t, u.Query().Get("nonce"))
	idp.mu.Lock()
	idp.nonce = u.Query().Get("nonce")
	idp.mu.Unlock()
	return u.Query().Get("state"), binding
}

func TestSSOCompleteRefusesAnIDTokenWithAnotherNonce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	idp := newFakeIdP(t)
	sso := NewSSO(f.acct, f.st, []OIDCProvider{{Name: "idp", Issuer: idp.srv.URL, ClientID: "client", ClientSecret: "secret",
		RedirectURL: "https://gw.example/login/oidc/callback", DefaultGroup: store.GroupStudent}}, idp.srv.Client())
	users, err := f.st.CountUsers(ctx)
	require.NoError(t, err)

	// An ID token minted for another sign-in (a replayed or injected one)
	// carries that sign-in's nonce, not this one's.
	idp.mu.Lock()
	idp.nonceFor = func(string) string { return "a-nonce-from-another-sign-in" }
	idp.mu.Unlock()
	state, binding := idp.begin(t, sso)
	ss, _, err := sso.Complete(ctx, state, "code", binding, "", "")
	require.ErrorIs(t, err, ErrSSOFailed)
	assert.Empty(t, ss.Token, "no session")
	_, err = f.st.GetUserByOIDC(ctx, idp.srv.URL, "s-1")
	require.ErrorIs(t, err, store.ErrNotFound, "no user provisioned")
	after, err := f.st.CountUsers(ctx)
	require.NoError(t, err)
	assert.Equal(t, users, after)

	// The same provider and token with the flow's own nonce signs in: the
	// refusal above was the nonce's.
	idp.mu.Lock()
	idp.nonceFor = func(sent string) string { return sent }
	idp.mu.Unlock()
	state, binding = idp.begin(t, sso)
	ss, next, err := sso.Complete(ctx, state, "code", binding, "", "")
	require.NoError(t, err)
	assert.Equal(t, "/chat", next)
	p, err := f.acct.VerifySession(ctx, ss.Token)
	require.NoError(t, err)
	u, err := f.st.GetUserByOIDC(ctx, idp.srv.URL, "s-1")
	require.NoError(t, err)
	assert.Equal(t, u.ID, p.UserID)
}

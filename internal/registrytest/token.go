package registrytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tokenServer is a minimal Docker token service (the "Bearer" scheme of
// the distribution spec): it checks basic credentials and answers a JWT,
// signed with a key whose certificate the registry trusts, granting the
// scopes asked for.
type tokenServer struct {
	realm, service, issuer string
	certFile               string
	key                    *ecdsa.PrivateKey
	certDER                []byte
	user, password         string
}

// startTokenServer prepares the token service; it is served by front,
// the registry's own address, at /token (go-containerregistry refuses a
// token realm on another loopback or private address, against SSRF,
// unless it is the registry's host:port).
func startTokenServer(t testing.TB, dir, user, password, front string) *tokenServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fusebox test token issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{service: "fusebox-test", issuer: "fusebox-test-issuer", key: key, certDER: der, user: user, password: password,
		certFile: filepath.Join(dir, "token.pem")}
	if err := os.WriteFile(ts.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	ts.realm = "http://" + front + "/token"
	return ts
}

// serveFront answers /token itself and passes everything else to the
// registry at backend.
func (ts *tokenServer) serveFront(t testing.TB, front, backend string) {
	t.Helper()
	u, _ := url.Parse("http://" + backend)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // the registry is not up yet
	mux := http.NewServeMux()
	mux.HandleFunc("/token", ts.serve)
	mux.Handle("/", rp)
	l, err := net.Listen("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	u, p, ok := r.BasicAuth()
	if !ok || u != ts.user || p != ts.password {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}`))
		return
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	grants := []access{}
	for _, s := range r.URL.Query()["scope"] {
		for _, one := range strings.Split(s, " ") {
			parts := strings.SplitN(one, ":", 3)
			if len(parts) == 3 {
				grants = append(grants, access{parts[0], parts[1], strings.Split(parts[2], ",")})
			}
		}
	}
	now := time.Now()
	header, _ := json.Marshal(map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}})
	claims, _ := json.Marshal(map[string]any{
		"iss": ts.issuer, "sub": u, "aud": ts.service, "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(),
		"iat": now.Unix(), "jti": now.Format(time.RFC3339Nano), "access": grants,
	})
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	h := sha256.Sum256([]byte(input))
	rr, ss, err := ecdsa.Sign(rand.Reader, ts.key, h[:])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	tok := input + "." + enc.EncodeToString(sig)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 3600, "issued_at": now.Format(time.RFC3339)})
}

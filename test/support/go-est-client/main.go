// An EST client (RFC 7030) written from the RFCs with Go's standard library
// only: an outside peer for devid-ca's EST front end. It fetches cacerts,
// then enrolls over TLS 1.3 with the birth certificate, the CSR carrying the
// tls-exporter channel binding (RFC 9266) as challengePassword, and checks
// the issued certificate against the CA certificates it fetched.
//
//	go run main.go <host:port> <server name> <root.pem> <birth.pem> <birth.key> <serial> <out.pem>
package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

var (
	oidChallengePassword = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 7}
	oidECDSAWithSHA256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidSignedData        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// One HTTP/1.1 request on the TLS session; the status and the body.
func exchange(conn *tls.Conn, method, path, host, contentType string, body []byte) (int, string) {
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n", method, path, host, len(body))
	if contentType != "" {
		fmt.Fprintf(&req, "Content-Type: %s\r\n", contentType)
	}
	req.WriteString("\r\n")
	req.Write(body)
	if _, err := conn.Write(req.Bytes()); err != nil {
		fail("write: %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		fail("read: %v", err)
	}
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(data)
}

func dial(addr, name string, roots *x509.CertPool, client []tls.Certificate) *tls.Conn {
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: roots, Certificates: client, MinVersion: tls.VersionTLS13})
	if err != nil {
		fail("dial: %v", err)
	}
	return conn
}

// The certificates of a base64 certs-only CMS SignedData (RFC 5652 5.1).
func certsOnly(text string) []*x509.Certificate {
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
	if err != nil {
		fail("base64: %v", err)
	}
	var info struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(der, &info); err != nil || !info.ContentType.Equal(oidSignedData) {
		fail("not a CMS SignedData: %v", err)
	}
	var signed struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		EncapContentInfo asn1.RawValue
		Certificates     asn1.RawValue `asn1:"optional,tag:0"`
		SignerInfos      asn1.RawValue
	}
	if _, err := asn1.Unmarshal(info.Content.Bytes, &signed); err != nil {
		fail("SignedData: %v", err)
	}
	certs, err := x509.ParseCertificates(signed.Certificates.Bytes)
	if err != nil {
		fail("certificates: %v", err)
	}
	return certs
}

// A PKCS#10 request (RFC 2986) for CN=<serial> with one challengePassword attribute (UTF8String).
func csr(key *ecdsa.PrivateKey, serial, password string) []byte {
	subject, _ := asn1.Marshal(pkix.Name{CommonName: serial}.ToRDNSequence())
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	value, _ := asn1.MarshalWithParams(password, "utf8")
	attribute, _ := asn1.Marshal(struct {
		Type   asn1.ObjectIdentifier
		Values []asn1.RawValue `asn1:"set"`
	}{oidChallengePassword, []asn1.RawValue{{FullBytes: value}}})
	info, err := asn1.Marshal(struct {
		Version    int
		Subject    asn1.RawValue
		PublicKey  asn1.RawValue
		Attributes []asn1.RawValue `asn1:"tag:0"`
	}{0, asn1.RawValue{FullBytes: subject}, asn1.RawValue{FullBytes: spki}, []asn1.RawValue{{FullBytes: attribute}}})
	if err != nil {
		fail("CertificationRequestInfo: %v", err)
	}
	digest := sha256.Sum256(info)
	signature, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
	request, _ := asn1.Marshal(struct {
		Info      asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}{asn1.RawValue{FullBytes: info}, pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256}, asn1.BitString{Bytes: signature, BitLength: len(signature) * 8}})
	return request
}

func main() {
	if len(os.Args) != 8 {
		fail("usage: main <host:port> <server name> <root.pem> <birth.pem> <birth.key> <serial> <out.pem>")
	}
	addr, name, rootFile, certFile, keyFile, serial, out := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6], os.Args[7]
	rootPem, _ := os.ReadFile(rootFile)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPem) {
		fail("no root in %s", rootFile)
	}
	birth, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		fail("birth credentials: %v", err)
	}

	// RFC 7030 4.1: the CA certificates, without a client certificate.
	conn := dial(addr, name, roots, nil)
	status, body := exchange(conn, "GET", "/.well-known/est/cacerts", name, "", nil)
	conn.Close()
	if status != 200 {
		fail("cacerts: %d %s", status, body)
	}
	cas := certsOnly(body)
	intermediates := x509.NewCertPool()
	for _, ca := range cas {
		intermediates.AddCert(ca)
	}

	// RFC 7030 4.2.1 with the RFC 9266 binding of this very session.
	conn = dial(addr, name, roots, []tls.Certificate{birth})
	state := conn.ConnectionState()
	if state.Version != tls.VersionTLS13 {
		fail("not TLS 1.3")
	}
	binding, err := state.ExportKeyingMaterial("EXPORTER-Channel-Binding", []byte{}, 32)
	if err != nil {
		fail("exporter: %v", err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	request := base64.StdEncoding.EncodeToString(csr(key, serial, base64.StdEncoding.EncodeToString(binding)))
	status, body = exchange(conn, "POST", "/.well-known/est/simpleenroll", name, "application/pkcs10", []byte(request))
	conn.Close()
	if status != 200 {
		fail("simpleenroll: %d %s", status, body)
	}
	issued := certsOnly(body)
	if len(issued) != 1 {
		fail("simpleenroll answered %d certificates", len(issued))
	}
	leaf := issued[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		fail("the issued certificate does not verify: %v", err)
	}
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		fail("the issued certificate is not for the CSR's key")
	}
	if err := os.WriteFile(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o600); err != nil {
		fail("write: %v", err)
	}
	fmt.Printf("enrolled %s\n", leaf.Subject.CommonName)
}

// An outside verifier of devid-ca's Merkle audit log, with nothing of ours:
// Go's golang.org/x/mod/sumdb/note and sumdb/tlog (test/tlog-log.test.ts
// builds it offline from Debian's golang-golang-x-mod-dev).
//
// Usage: tlog-verifier <http base> <https base> <root.pem> <token> <old checkpoint file> <entry index>
//
//	or: tlog-verifier device-proof <log verifier key> <proof file> <serial>
//
// The second form checks a device's proof offline: the answer of
// GET /audit/v1/devices/<serial>/proof or a per-device export.
// TLS_SERVER_NAME, when set, is the name the HTTPS certificate is checked
// against (the CA's public host when the URL gives an address).
// WITNESS_KEYS, when set, is a space-separated list of witness verifier keys
// (C2SP tlog-cosignature, type 0x04): each must have cosigned the checkpoint.
// Prints "OK ..." and exits 0, or prints the failure and exits 1.
package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func get(client *http.Client, url, token string) []byte {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		fail("%v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		fail("%s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		fail("%s: %d %s %v", url, resp.StatusCode, body, err)
	}
	return body
}

// openCheckpoint verifies a signed note and reads the tlog-checkpoint body: origin, size, root hash.
func openCheckpoint(msg []byte, verifier note.Verifier) (string, tlog.Tree) {
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint does not verify: %v\n%s", err, msg)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		fail("checkpoint body too short: %q", n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("checkpoint size %q: %v", lines[1], err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		fail("checkpoint root %q: %v", lines[2], err)
	}
	var hash tlog.Hash
	copy(hash[:], root)
	return lines[0], tlog.Tree{N: size, Hash: hash}
}

// cosigner verifies C2SP tlog-cosignature/v1 Ed25519 cosignatures (key type 0x04).
// The note package of golang.org/x/mod 0.7 only knows type 0x01, but note.Open
// takes any note.Verifier: this one checks the timestamped signature over
// "cosignature/v1\ntime <t>\n" followed by the checkpoint text.
type cosigner struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func newCosigner(vkey string) (*cosigner, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("malformed witness key %q", vkey)
	}
	blob, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(blob) != 1+ed25519.PublicKeySize || blob[0] != 0x04 {
		return nil, fmt.Errorf("witness key %q is not an Ed25519 cosignature key (type 0x04)", vkey)
	}
	h := sha256.Sum256(append([]byte(parts[0]+"\n"), blob...))
	hash := binary.BigEndian.Uint32(h[:4])
	if fmt.Sprintf("%08x", hash) != parts[1] {
		return nil, fmt.Errorf("witness key %q: the key hash does not match", vkey)
	}
	return &cosigner{name: parts[0], hash: hash, key: ed25519.PublicKey(blob[1:])}, nil
}

func (c *cosigner) Name() string    { return c.name }
func (c *cosigner) KeyHash() uint32 { return c.hash }
func (c *cosigner) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	signed := append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", t)), msg...)
	return ed25519.Verify(c.key, signed, sig[8:])
}

// checkCosignatures opens the checkpoint with the log key and every witness key: each witness must have signed it.
func checkCosignatures(msg []byte, log note.Verifier, keys string) int {
	verifiers := []note.Verifier{log}
	for _, vkey := range strings.Fields(keys) {
		c, err := newCosigner(vkey)
		if err != nil {
			fail("%v", err)
		}
		verifiers = append(verifiers, c)
	}
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		fail("cosigned checkpoint: %v\n%s", err, msg)
	}
	for _, v := range verifiers[1:] {
		signed := false
		for _, sig := range n.Sigs {
			if sig.Name == v.Name() && sig.Hash == v.KeyHash() {
				signed = true
			}
		}
		if !signed {
			fail("the checkpoint has no valid cosignature by the witness %s\n%s", v.Name(), msg)
		}
	}
	return len(verifiers) - 1
}

// tiles reads hash tiles from /log/tile/<L>/<N>[.p/<W>] (tlog-tiles drops Go's height element).
type tiles struct {
	client *http.Client
	base   string
}

func (t tiles) Height() int { return 8 }

func (t tiles) ReadTiles(list []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(list))
	for i, tile := range list {
		out[i] = get(t.client, t.base+"/log/"+strings.Replace(tile.Path(), "tile/8/", "tile/", 1), "")
	}
	return out, nil
}

func (t tiles) SaveTiles([]tlog.Tile, [][]byte) {}

// checkDeviceProof verifies every entry of a device proof against its signed checkpoint, offline.
func checkDeviceProof(vkey, file, serial string) {
	verifier, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		fail("verifier key: %v", err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		fail("%v", err)
	}
	var doc struct {
		Size       int64  `json:"size"`
		Checkpoint string `json:"checkpoint"`
		Entries    []struct {
			Index int64    `json:"index"`
			Entry string   `json:"entry"`
			Proof []string `json:"proof"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		fail("proof file: %v", err)
	}
	_, tree := openCheckpoint([]byte(doc.Checkpoint), verifier)
	if tree.N != doc.Size {
		fail("the file says size %d, its checkpoint signs %d", doc.Size, tree.N)
	}
	for _, e := range doc.Entries {
		var proof tlog.RecordProof
		for _, b64 := range e.Proof {
			raw, err := base64.StdEncoding.DecodeString(b64)
			if err != nil || len(raw) != tlog.HashSize || base64.StdEncoding.EncodeToString(raw) != b64 {
				fail("entry %d: proof hash %q", e.Index, b64)
			}
			var h tlog.Hash
			copy(h[:], raw)
			proof = append(proof, h)
		}
		if err := tlog.CheckRecord(proof, tree.N, tree.Hash, e.Index, tlog.RecordHash([]byte(e.Entry))); err != nil {
			fail("entry %d: %v", e.Index, err)
		}
		var event struct {
			Seq    int64  `json:"seq"`
			Device string `json:"device"`
		}
		if err := json.Unmarshal([]byte(e.Entry), &event); err != nil || event.Device != serial || event.Seq != e.Index+1 {
			fail("entry %d is not event %d of device %s", e.Index, e.Index+1, serial)
		}
	}
	fmt.Printf("OK device=%s entries=%d size=%d\n", serial, len(doc.Entries), tree.N)
}

func main() {
	if len(os.Args) == 5 && os.Args[1] == "device-proof" {
		checkDeviceProof(os.Args[2], os.Args[3], os.Args[4])
		return
	}
	if len(os.Args) != 7 {
		fail("usage: tlog-verifier <http base> <https base> <root.pem> <token> <old checkpoint file> <entry index>")
	}
	httpBase, httpsBase, rootFile, token, oldFile := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]
	index, err := strconv.ParseInt(os.Args[6], 10, 64)
	if err != nil {
		fail("entry index: %v", err)
	}
	plain := &http.Client{}
	rootPem, err := os.ReadFile(rootFile)
	if err != nil {
		fail("%v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rootPem) {
		fail("no certificate in %s", rootFile)
	}
	secure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: os.Getenv("TLS_SERVER_NAME")}}}

	verifier, err := note.NewVerifier(strings.TrimSpace(string(get(plain, httpBase+"/log/key", ""))))
	if err != nil {
		fail("verifier key: %v", err)
	}
	checkpoint := get(plain, httpBase+"/log/checkpoint", "")
	origin, tree := openCheckpoint(checkpoint, verifier)
	cosigned := 0
	if keys := os.Getenv("WITNESS_KEYS"); keys != "" {
		cosigned = checkCosignatures(checkpoint, verifier, keys)
	}
	if origin != verifier.Name() {
		fail("origin %q is not the key name %q", origin, verifier.Name())
	}
	oldNote, err := os.ReadFile(oldFile)
	if err != nil {
		fail("%v", err)
	}
	_, old := openCheckpoint(oldNote, verifier)
	if index >= tree.N || old.N > tree.N {
		fail("entry %d or old size %d beyond the tree of %d", index, old.N, tree.N)
	}

	// The tile reader checks every tile it reads against the signed tree hash.
	reader := tlog.TileHashReader(tree, tiles{plain, httpBase})
	root, err := tlog.TreeHash(tree.N, reader)
	if err != nil || root != tree.Hash {
		fail("tree hash from the tiles: %v", err)
	}

	// Inclusion: the entry from its bundle, proved against the checkpoint.
	bundleIndex := index / 256
	width := tree.N - bundleIndex*256
	if width > 256 {
		width = 256
	}
	bundlePath := strings.Replace(tlog.Tile{H: 8, L: -1, N: bundleIndex, W: int(width)}.Path(), "tile/8/data/", "tile/entries/", 1)
	bundle := get(secure, httpsBase+"/log/"+bundlePath, token)
	var entries [][]byte
	for len(bundle) > 0 {
		if len(bundle) < 2 {
			fail("truncated bundle")
		}
		n := int(binary.BigEndian.Uint16(bundle))
		if len(bundle) < 2+n {
			fail("truncated entry")
		}
		entries = append(entries, bundle[2:2+n])
		bundle = bundle[2+n:]
	}
	if int64(len(entries)) != width {
		fail("bundle has %d entries, not %d", len(entries), width)
	}
	entry := entries[index%256]
	proof, err := tlog.ProveRecord(tree.N, index, reader)
	if err != nil {
		fail("inclusion proof: %v", err)
	}
	if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(entry)); err != nil {
		fail("inclusion of entry %d: %v", index, err)
	}

	// Consistency: the old checkpoint's tree is a prefix of the new one.
	treeProof, err := tlog.ProveTree(tree.N, old.N, reader)
	if err != nil {
		fail("consistency proof: %v", err)
	}
	if err := tlog.CheckTree(treeProof, tree.N, tree.Hash, old.N, old.Hash); err != nil {
		fail("consistency from %d to %d: %v", old.N, tree.N, err)
	}
	if cosigned > 0 {
		fmt.Printf("OK cosigned by %d witnesses\n", cosigned)
	}
	fmt.Printf("OK size=%d old=%d entry=%s\n", tree.N, old.N, entry)
}

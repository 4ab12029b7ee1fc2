package mls

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

// runPassiveClientVector joins a group from a Welcome with a key package's
// private keys and follows it epoch by epoch, processing the proposals and
// commits of each epoch and comparing epoch authenticators
// (passive-client-welcome, passive-client-handling-commit).
func runPassiveClientVector(t *testing.T, raw json.RawMessage) {
	var v struct {
		CipherSuite  uint16 `json:"cipher_suite"`
		ExternalPSKs []struct {
			PSKID hexBytes `json:"psk_id"`
			PSK   hexBytes `json:"psk"`
		} `json:"external_psks"`
		KeyPackage                hexBytes `json:"key_package"`
		SignaturePriv             hexBytes `json:"signature_priv"`
		EncryptionPriv            hexBytes `json:"encryption_priv"`
		InitPriv                  hexBytes `json:"init_priv"`
		Welcome                   hexBytes `json:"welcome"`
		RatchetTree               hexBytes `json:"ratchet_tree"`
		InitialEpochAuthenticator hexBytes `json:"initial_epoch_authenticator"`
		Epochs                    []struct {
			Proposals          []hexBytes `json:"proposals"`
			Commit             hexBytes   `json:"commit"`
			EpochAuthenticator hexBytes   `json:"epoch_authenticator"`
		} `json:"epochs"`
	}
	decodeVectorJSON(t, raw, &v)
	psks := map[string][]byte{}
	for _, p := range v.ExternalPSKs {
		psks[string(p.PSKID)] = p.PSK
	}
	// The vectors' key packages were valid when they were made: run the
	// clock at the start of the key package's lifetime.
	kpMsg, err := decodeMLSMessage(v.KeyPackage)
	must(t, "key_package", err)
	if kpMsg.keyPackage == nil {
		t.Fatal("key_package is not a KeyPackage")
	}
	now := time.Unix(int64(min(kpMsg.keyPackage.leafNode.notBefore, 1<<62)), 0)
	cfg := &Config{
		Now:         func() time.Time { return now },
		MaxLifetime: -1, // the vectors' key packages last up to 2^64-1 seconds
		ExternalPSK: func(id []byte) ([]byte, bool) {
			p, ok := psks[string(id)]
			return p, ok
		},
	}
	kp, err := ImportKeyPackage(v.KeyPackage, v.InitPriv, v.EncryptionPriv, v.SignaturePriv, cfg)
	must(t, "import key package", err)
	g, err := JoinGroup(v.Welcome, kp, v.RatchetTree, cfg)
	must(t, "join", err)
	defer g.Close()
	kp.Wipe()
	ea, err := g.EpochAuthenticator()
	must(t, "epoch authenticator", err)
	wantBytes(t, "initial epoch authenticator", ea, v.InitialEpochAuthenticator)
	for i, e := range v.Epochs {
		if len(e.Proposals) > 0 && i == 0 {
			// Before its proposals arrive, a commit that includes them by
			// reference is refused, and the state does not change.
			if _, err := g.Process(e.Commit); !errors.Is(err, ErrInvalidProposal) {
				t.Fatalf("epoch %d commit before its proposals: %v, want ErrInvalidProposal", i, err)
			}
		}
		// A commit with one byte flipped is refused, the state unchanged.
		if i == 0 {
			for _, at := range []int{len(e.Commit) - 1, len(e.Commit) / 2} {
				bad := bytes.Clone(e.Commit)
				bad[at] ^= 0x01
				if _, err := g.Process(bad); err == nil {
					t.Fatalf("epoch %d commit with byte %d flipped accepted", i, at)
				}
			}
		}
		for j, p := range e.Proposals {
			r, err := g.Process(p)
			must(t, fmt.Sprintf("epoch %d proposal %d", i, j), err)
			if r.Kind != KindProposal {
				t.Fatalf("epoch %d proposal %d: processed as kind %d", i, j, r.Kind)
			}
		}
		r, err := g.Process(e.Commit)
		must(t, fmt.Sprintf("epoch %d commit", i), err)
		if r.Kind != KindCommit || r.Commit.SelfRemoved {
			t.Fatalf("epoch %d commit: %+v", i, r)
		}
		ea, err := g.EpochAuthenticator()
		must(t, "epoch authenticator", err)
		wantBytes(t, fmt.Sprintf("epoch %d authenticator", i), ea, e.EpochAuthenticator)
		// Replaying the commit finds the group in the next epoch.
		if _, err := g.Process(e.Commit); !errors.Is(err, ErrWrongEpoch) {
			t.Fatalf("epoch %d commit replayed: %v, want ErrWrongEpoch", i, err)
		}
	}
}

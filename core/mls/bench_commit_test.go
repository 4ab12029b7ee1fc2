package mls

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkCommit measures, for groups of 10, 100 and 1,000 members in
// x0x's post-quantum suite and in suite 1, the time to create a commit
// (with a path: a key update), the time for another member to apply it,
// and the commit's size. The group is built by its founder adding every
// other member in one commit, so its parent nodes are blank: each commit
// encrypts its path secrets to every other leaf (TreeKEM's worst case,
// N-1 HPKE encryptions). Members that have all committed once would need
// about log2(N).
func BenchmarkCommit(b *testing.B) {
	for _, cs := range []CipherSuite{X0XMLS128MLKEM768X25519ChaCha20Poly1305SHA256MLDSA65, MLS128DHKEMX25519AES128GCMSHA256Ed25519} {
		for _, n := range []int{10, 100, 1000} {
			b.Run(fmt.Sprintf("suite=%#04x/members=%d", uint16(cs), n), func(b *testing.B) {
				// Commits of the post-quantum suite outgrow the default 1 MiB
				// from about 90 members with blank parents (and a bulk add of
				// 99 key packages is 1.1 MB): measure them anyway.
				cfg := &Config{MaxMessageSize: 64 << 20}
				founder := newTestMember(b, cs, "founder")
				g, err := CreateGroup(cs, []byte("bench-group"), founder.cred, founder.sigPriv, cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer g.Close()
				kps := make([][]byte, n-1)
				var second *PrivateKeyPackage
				for i := range kps {
					kp := newTestMember(b, cs, fmt.Sprintf("member-%d", i)).keyPackage(b, cs, nil)
					kps[i] = kp.KeyPackage()
					if i == 0 {
						second = kp
					} else {
						kp.Wipe()
					}
				}
				res := mustCommit(b, g, &CommitOptions{Add: kps})
				other := mustJoin(b, res.Welcome, second, cfg)
				defer other.Close()
				var create, apply time.Duration
				bytes := 0
				b.ResetTimer()
				for range b.N {
					t0 := time.Now()
					r, err := g.Commit(nil)
					if err != nil {
						b.Fatal(err)
					}
					if err := g.MergePendingCommit(); err != nil {
						b.Fatal(err)
					}
					t1 := time.Now()
					if _, err := other.Process(r.Commit); err != nil {
						b.Fatal(err)
					}
					create += t1.Sub(t0)
					apply += time.Since(t1)
					bytes += len(r.Commit)
				}
				b.ReportMetric(float64(create.Microseconds())/1000/float64(b.N), "create-ms/op")
				b.ReportMetric(float64(apply.Microseconds())/1000/float64(b.N), "apply-ms/op")
				b.ReportMetric(float64(bytes)/float64(b.N), "commit-bytes/op")
			})
		}
	}
}

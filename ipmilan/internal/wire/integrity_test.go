package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestIntegrityCodeMatchesHMAC: the AuthCode computed from the key's
// kept pad states is crypto/hmac's, cut to the algorithm's length, for
// keys shorter than, as long as and longer than a block, and the same
// Keys used from several goroutines at once gives the same codes.
func TestIntegrityCodeMatchesHMAC(t *testing.T) {
	t.Parallel()
	algs := map[IntegrityAlg]func() hash.Hash{IntegrityHMACSHA1_96: sha1.New, IntegrityHMACMD5_128: md5.New, IntegrityHMACSHA256128: sha256.New}
	rng := rand.New(rand.NewPCG(3, 4))
	for alg, h := range algs {
		for _, kl := range []int{0, 1, 16, 20, 32, 63, 64, 65, 100} {
			key := make([]byte, kl)
			for i := range key {
				key[i] = byte(rng.Uint32())
			}
			k := &Keys{Integrity: alg, K1: key}
			msgs := make([][]byte, 50)
			want := make([][]byte, len(msgs))
			for i := range msgs {
				msgs[i] = make([]byte, rng.IntN(300))
				for j := range msgs[i] {
					msgs[i][j] = byte(rng.Uint32())
				}
				m := hmac.New(h, key)
				m.Write(msgs[i])
				want[i] = m.Sum(nil)[:alg.CodeLen()]
			}
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for i, msg := range msgs {
						if got := k.appendIntegrityCode([]byte("x"), msg); !bytes.Equal(got[1:], want[i]) || got[0] != 'x' {
							t.Errorf("%v, %d-byte key, %d-byte message: code %x, want %x", alg, kl, len(msg), got, want[i])
							return
						}
					}
				})
			}
			wg.Wait()
		}
	}
}

// TestIntegrityCodeMD5: MD5-128 is MD5 of password, data, password (the
// password padded to 20 bytes), with no key state.
func TestIntegrityCodeMD5(t *testing.T) {
	t.Parallel()
	k := &Keys{Integrity: IntegrityMD5_128, Password: []byte("secret")}
	msg := []byte("some packet bytes")
	var pw [20]byte
	copy(pw[:], "secret")
	want := md5.Sum(append(append(append([]byte(nil), pw[:]...), msg...), pw[:]...))
	for range 3 {
		if got := k.appendIntegrityCode(nil, msg); !bytes.Equal(got, want[:]) {
			t.Fatalf("code %x, want %x", got, want)
		}
	}
}

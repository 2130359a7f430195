package forward

import (
	"bufio"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"
)

// Security is the shared-key handshake of Forward protocol v1 (Fluentd's
// <security>, Fluent Bit's Shared_Key): with a shared key, a connection
// must prove it knows the key before anything it sends is read. It
// authenticates, it does not encrypt: use it with tls.
type Security struct {
	// SharedKey: empty, no handshake.
	SharedKey string `yaml:"shared_key"`
	// SelfHostname is the name this server gives in its PONG (default: the
	// host name).
	SelfHostname string `yaml:"self_hostname"`
}

var errAuth = errors.New("shared key handshake failed")

// handshake runs the server side: HELO [“HELO”, {nonce, auth: "" (no user
// authentication), keepalive: true}]; the client's PING [“PING”, hostname,
// salt, hex(sha512(salt+hostname+nonce+key)), username, password] is
// checked in constant time and answered with PONG [“PONG”, ok, reason,
// self_hostname, hex(sha512(salt+self_hostname+nonce+key))]. A client that
// fails it gets its PONG (false, with the reason) and is closed.
func (s *Server) handshake(c net.Conn, br *bufio.Reader) error {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	helo := []byte{0x92}
	helo = appendStr(helo, "HELO")
	helo = append(helo, 0x83)
	helo = appendStr(helo, "nonce")
	helo = append(helo, 0xc4, byte(len(nonce)))
	helo = append(helo, nonce...)
	helo = appendStr(helo, "auth")
	helo = append(helo, 0xc4, 0)
	helo = appendStr(helo, "keepalive")
	helo = append(helo, 0xc3)
	c.SetWriteDeadline(time.Now().Add(s.cfg.ReadTimeout))
	if _, err := c.Write(helo); err != nil {
		return err
	}

	d := &decoder{r: br, left: 64 << 10}
	kind, n, _, err := d.head()
	if err != nil {
		return err
	}
	if kind != kindArray || n < 4 {
		return fmt.Errorf("%w: expected PING, an array of 4 to 6 values", errMalformed)
	}
	var f [4]string // type, hostname, salt, digest
	for i := range f {
		if f[i], err = d.string(); err != nil {
			return err
		}
	}
	for i := int64(4); i < n; i++ { // username, password: no user authentication here
		if err := d.skip(); err != nil {
			return err
		}
	}
	if f[0] != "PING" {
		return fmt.Errorf("%w: expected PING, got %.16q", errMalformed, f[0])
	}
	key := s.cfg.Security.SharedKey
	ok := subtle.ConstantTimeCompare([]byte(f[3]), []byte(digest(f[2], f[1], nonce, key))) == 1
	reason := ""
	if !ok {
		reason = "shared_key mismatch"
	}
	self := s.cfg.Security.SelfHostname
	pong := []byte{0x95}
	pong = appendStr(pong, "PONG")
	auth := byte(0xc2) // false
	if ok {
		auth = 0xc3
	}
	pong = append(pong, auth)
	pong = appendStr(pong, reason)
	pong = appendStr(pong, self)
	pong = appendStr(pong, digest(f[2], self, nonce, key))
	c.SetWriteDeadline(time.Now().Add(s.cfg.ReadTimeout))
	if _, err := c.Write(pong); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s from client %q", errAuth, reason, f[1])
	}
	return nil
}

// digest is hex(sha512(salt + hostname + nonce + key)).
func digest(salt, hostname string, nonce []byte, key string) string {
	h := sha512.New()
	h.Write([]byte(salt))
	h.Write([]byte(hostname))
	h.Write(nonce)
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}

// appendStr appends s as a MessagePack str.
func appendStr(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 256:
		b = append(b, 0xd9, byte(n))
	case n < 65536:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

// heartbeat answers the UDP heartbeats of legacy senders (Fluentd's
// out_forward with heartbeat_type udp) on the TCP port's number: every
// datagram gets one zero byte back, as Fluentd's in_forward does. The
// answer is never larger than the question.
func (s *Server) heartbeat(pc net.PacketConn) {
	defer s.wg.Done()
	buf := make([]byte, 128)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		pc.WriteTo([]byte{0}, from)
	}
}

package forward

import (
	"bytes"
	"net"
	"testing"
	"time"

	ffclient "github.com/IBM/fluent-forward-go/fluent/client"
	"github.com/IBM/fluent-forward-go/fluent/protocol"
	"github.com/tinylib/msgp/msgp"
)

func secured(key string) Config {
	cfg := DefaultConfig()
	cfg.Security = Security{SharedKey: key, SelfHostname: "logweave-test"}
	return cfg
}

// A sender that knows the shared key (IBM's fluent-forward-go client, an
// implementation of the handshake independent of this one) passes it and
// its events are taken and acknowledged.
func TestSharedKeyHandshake(t *testing.T) {
	s, got := collect(t, secured("s3cret-shared-key"))
	c := ffclient.New(ffclient.ConnectionOptions{
		Factory:    &ffclient.ConnFactory{Address: s.Addr()},
		RequireAck: true,
		AuthInfo:   ffclient.AuthInfo{SharedKey: []byte("s3cret-shared-key")},
	})
	c.Hostname = "app-node-1"
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	for i := range 3 {
		if err := c.SendMessage("app", map[string]any{"msg": "hello", "seq": i}); err != nil {
			t.Fatalf("send %d (with ack): %v", i, err)
		}
	}
	if n := len(got.all()); n != 3 {
		t.Fatalf("%d messages handled, want 3", n)
	}
}

// A sender with the wrong key fails the handshake: its PONG says so (the
// client cannot verify the server's digest either), the connection is
// closed, and nothing it sends is read.
func TestSharedKeyMismatchIsRefused(t *testing.T) {
	s, got := collect(t, secured("s3cret-shared-key"))
	c := ffclient.New(ffclient.ConnectionOptions{
		Factory:  &ffclient.ConnFactory{Address: s.Addr()},
		AuthInfo: ffclient.AuthInfo{SharedKey: []byte("a-guess")},
	})
	c.Hostname = "intruder"
	if err := c.Connect(); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect()
	if err := c.Handshake(); err == nil {
		t.Fatal("handshake with the wrong key passed")
	}

	// By hand, to see the PONG and the close: HELO, a PING with a wrong
	// digest, PONG false, EOF.
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	var helo protocol.Helo
	r := msgpReader(conn)
	if err := helo.DecodeMsg(r); err != nil || helo.MessageType != "HELO" || len(helo.Options.Nonce) != 16 {
		t.Fatalf("HELO: %+v %v", helo, err)
	}
	ping, _ := protocol.NewPing("intruder", []byte("a-guess"), []byte("salt-salt-salt-1"), helo.Options.Nonce)
	encode(t, conn, ping)
	var pong protocol.Pong
	if err := pong.DecodeMsg(r); err != nil {
		t.Fatal(err)
	}
	if pong.AuthResult || pong.Reason == "" || pong.ServerHostname != "logweave-test" {
		t.Fatalf("PONG %+v, want a refusal with its reason", pong)
	}
	conn.Write(mp(t, []any{"app", int64(1), map[string]any{"msg": "sneaked in"}}))
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("connection open after a failed handshake")
	}
	if n := len(got.all()); n != 0 {
		t.Fatalf("%d messages handled from unauthenticated senders", n)
	}
}

// A sender that does not speak the handshake (sends its events at once) is
// closed; nothing it sent is taken.
func TestNoHandshakeIsRefused(t *testing.T) {
	s, got := collect(t, secured("s3cret-shared-key"))
	c := dial(t, s.Addr())
	c.Write(mp(t, []any{"app", int64(1), map[string]any{"msg": "hi"}, map[string]any{"chunk": "c1"}}))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var all bytes.Buffer
	if _, err := all.ReadFrom(c); err != nil {
		t.Fatalf("connection not closed: %v", err)
	}
	if bytes.Contains(all.Bytes(), []byte("ack")) || len(got.all()) != 0 {
		t.Fatalf("an event was taken without the handshake: %q", all.Bytes())
	}
}

// Fluentd's UDP heartbeat on the port's number is answered with one zero
// byte.
func TestUDPHeartbeat(t *testing.T) {
	s, _ := collect(t, DefaultConfig())
	c, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte{0})
	b := make([]byte, 16)
	n, err := c.Read(b)
	if err != nil || n != 1 || b[0] != 0 {
		t.Fatalf("heartbeat answer %q %v", b[:n], err)
	}
}

func msgpReader(c net.Conn) *msgp.Reader { return msgp.NewReader(c) }

func encode(t *testing.T, c net.Conn, e msgp.Encodable) {
	t.Helper()
	if err := msgp.Encode(c, e); err != nil {
		t.Fatal(err)
	}
}

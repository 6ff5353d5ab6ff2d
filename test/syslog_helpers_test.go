package test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solgate/solgate/test/internal/testkit"
)

// rsyslogPeer is a private rsyslogd on loopback: inputs tcp, tls (ossl,
// anonymous client, the test's self-signed certificate), udp and relp
// (imrelp), all written to one file as JSON lines. It runs as nobody when
// the tests run as root.
type rsyslogPeer struct {
	t                   testing.TB
	dir, conf, out      string
	tcp, tls, udp, relp string // 127.0.0.1:port
	caFile              string // the server certificate, to pin as CA
	cmd                 *exec.Cmd
	exited              chan struct{}
	uid, gid            int
	asNobody            bool
}

// rsyslogLine is one received message as the template writes it.
type rsyslogLine struct {
	Pri, Ver, Host, App, ProcID, MsgID, SD, Msg, TS, Input string
}

func freePort(t testing.TB, udp bool) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !udp {
			return port
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func newRsyslog(t testing.TB) *rsyslogPeer { return newRsyslogMode(t, false) }

// newRsyslogQueued is rsyslog as a site would run it for throughput: an
// in-memory main queue between the inputs and a worker that writes one
// compact line per message ("INPUT HOSTNAME MSG") with buffered writes.
// Messages queued but not written are lost when it stops (the tests that
// stop rsyslog use newRsyslog: a direct queue and every message as JSON).
func newRsyslogQueued(t testing.TB) *rsyslogPeer { return newRsyslogMode(t, true) }

func newRsyslogMode(t testing.TB, queued bool) *rsyslogPeer {
	t.Helper()
	bin := needTool(t, "rsyslogd")
	for _, mod := range []string{"imrelp.so", "lmnsd_ossl.so"} {
		if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/rsyslog/" + mod); err != nil {
			if matches, _ := filepath.Glob("/usr/lib/*/rsyslog/" + mod); len(matches) == 0 {
				if os.Getenv("SOLGATE_REQUIRE_INTEROP") != "" {
					t.Fatalf("rsyslog module %s missing (packages rsyslog-relp, rsyslog-openssl)", mod)
				}
				t.Skipf("rsyslog module %s missing (packages rsyslog-relp, rsyslog-openssl)", mod)
			}
		}
	}
	_ = bin
	dir := t.TempDir()
	p := &rsyslogPeer{t: t, dir: dir, conf: filepath.Join(dir, "rsyslog.conf"), out: filepath.Join(dir, "out", "all.log")}
	p.uid, p.gid = os.Getuid(), os.Getgid()
	if uid, gid, ok := testkit.Nobody(); ok {
		p.uid, p.gid, p.asNobody = uid, gid, true
	}
	for _, d := range []string{"work", "out", "tls"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p.caFile = filepath.Join(dir, "tls", "server.pem")
	makeCert(t, p.caFile, filepath.Join(dir, "tls", "server.key"), "127.0.0.1")
	tp, tl, rp := freePort(t, true), freePort(t, false), freePort(t, false)
	p.tcp, p.udp = fmt.Sprintf("127.0.0.1:%d", tp), fmt.Sprintf("127.0.0.1:%d", tp)
	p.tls, p.relp = fmt.Sprintf("127.0.0.1:%d", tl), fmt.Sprintf("127.0.0.1:%d", rp)
	queue, action := `main_queue(queue.type="Direct")`, `template="json"`
	if queued {
		queue = `main_queue(queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="1024")`
		action = `template="compact" asyncWriting="on" ioBufferSize="1m" flushOnTXEnd="off" flushInterval="1"`
	}
	conf := fmt.Sprintf(`global(
  workDirectory="%[1]s/work"
  maxMessageSize="64k"
  defaultNetstreamDriverCAFile="%[1]s/tls/server.pem"
  defaultNetstreamDriverCertFile="%[1]s/tls/server.pem"
  defaultNetstreamDriverKeyFile="%[1]s/tls/server.key"
)
%[5]s
module(load="imtcp")
module(load="imudp")
module(load="imrelp")
template(name="json" type="string"
  string="{\"pri\":\"%%pri%%\",\"ver\":\"%%protocol-version%%\",\"host\":\"%%hostname:::json%%\",\"app\":\"%%app-name:::json%%\",\"procid\":\"%%procid:::json%%\",\"msgid\":\"%%msgid:::json%%\",\"sd\":\"%%structured-data:::json%%\",\"ts\":\"%%timestamp:::date-rfc3339%%\",\"input\":\"%%inputname%%\",\"msg\":\"%%msg:::json%%\"}\n")
template(name="compact" type="string" string="%%inputname%% %%hostname%% %%msg%%\n")
ruleset(name="peer") {
  action(type="omfile" file="%[1]s/out/all.log" %[6]s)
}
input(type="imtcp" name="tcp" address="127.0.0.1" port="%[2]d" ruleset="peer")
input(type="imtcp" name="tls" address="127.0.0.1" port="%[3]d" ruleset="peer"
      streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imudp" name="udp" address="127.0.0.1" port="%[2]d" ruleset="peer")
input(type="imrelp" name="relp" address="127.0.0.1" port="%[4]d" ruleset="peer")
`, dir, tp, tl, rp, queue, action)
	if err := os.WriteFile(p.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if p.asNobody {
		testkit.OpenTo(dir, p.uid, p.gid)
	}
	if out, err := exec.Command("rsyslogd", "-N1", "-f", p.conf).CombinedOutput(); err != nil {
		t.Fatalf("rsyslogd -N1: %v\n%s", err, out)
	}
	p.start()
	t.Cleanup(p.stop)
	return p
}

// start runs rsyslogd in the foreground and waits for its inputs.
func (p *rsyslogPeer) start() {
	t := p.t
	t.Helper()
	stderr, err := os.OpenFile(filepath.Join(p.dir, "rsyslogd.stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("rsyslogd", "-n", "-f", p.conf, "-i", filepath.Join(p.dir, "work", "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if p.asNobody {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(p.uid), Gid: uint32(p.gid)}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stderr.Close()
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func() { cmd.Wait(); close(p.exited) }()
	testkit.WaitTCP(t, "rsyslogd", p.exited, filepath.Join(p.dir, "rsyslogd.stderr"), 20*time.Second, p.tcp, p.tls, p.relp)
}

// stop ends rsyslogd (SIGTERM, by PID) and waits for it.
func (p *rsyslogPeer) stop() {
	if p.cmd == nil {
		return
	}
	testkit.StopProcess(p.cmd, p.exited, 15*time.Second)
	p.cmd = nil
}

// lines reads what rsyslog has written so far.
func (p *rsyslogPeer) lines() []rsyslogLine {
	p.t.Helper()
	f, err := os.Open(p.out)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	var out []rsyslogLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l rsyslogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			continue // a line being written
		}
		out = append(out, l)
	}
	return out
}

// waitLines polls rsyslog's output until pred holds or the deadline.
func (p *rsyslogPeer) waitLines(timeout time.Duration, pred func([]rsyslogLine) bool) []rsyslogLine {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ls := p.lines()
		if pred(ls) || time.Now().After(deadline) {
			return ls
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sdParam returns a PARAM-VALUE from rsyslog's %structured-data%.
func sdParam(sd, name string) string {
	i := strings.Index(sd, " "+name+"=\"")
	if i < 0 {
		return ""
	}
	rest := sd[i+len(name)+3:]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return rest[:j]
}

// makeCert writes a self-signed ECDSA P-256 certificate for an IP.
func makeCert(t testing.TB, certFile, keyFile, ip string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: ip},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP(ip)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

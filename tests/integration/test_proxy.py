"""--proxy-protocol: the HAProxy PROXY header (v1, v2) before the greeting,
from the addresses of --proxy-trusted only.  Headers written here (good
ones of every kind, bad ones, none, an untrusted sender), the per-IP limit
counted on the client the header names, and the real HAProxy (Debian
package haproxy, started here on free loopback ports) in front of two
smtphookd instances, one backend with send-proxy and one with
send-proxy-v2: the messages land on both, with the client's address in
Received: and seen by policy:deny_ip.  Clients bind 127.0.0.2 and
127.0.0.3, HAProxy connects from 127.0.0.1, so the two addresses differ."""
import mailbox
import os
import shutil
import socket
import struct
import tempfile
import time
import unittest

from smtphook_test import (DaemonTestCase, SLOW, free_port, require_bundled_plugin,
                           require_tool, run_daemon, start_peer)

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_tcp4(src, sport, dst, dport, tlv=b""):
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(addrs) + len(tlv)) + addrs + tlv


def v2_tcp6(src, sport, dst, dport):
    addrs = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
             + struct.pack("!HH", sport, dport))
    return SIG + bytes([0x21, 0x21]) + struct.pack("!H", len(addrs)) + addrs


class ProxyBase(DaemonTestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="smtphook-proxy-")
        self.addCleanup(shutil.rmtree, self.root, True)

    def start(self, *args, box="box"):
        md = require_bundled_plugin("maildump")
        return self.daemon("--proxy-protocol", *args, "-p",
                           md + ":dir=" + os.path.join(self.root, box))

    def stored(self, box="box"):
        b = mailbox.Maildir(os.path.join(self.root, box), factory=None, create=False)
        return [b.get_bytes(k) for k in b.keys()]

    def connect(self, port, source="127.0.0.1"):
        s = socket.socket()
        s.settimeout(10 * SLOW)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        self.addCleanup(s.close)
        return s

    @staticmethod
    def read_until(s, needle):
        data = b""
        while needle not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError("closed after %r" % data)
            data += chunk
        return data

    @staticmethod
    def closed_silently(s, timeout=10):
        """The server closes without a word."""
        s.settimeout(timeout * SLOW)
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            return True
        return data == b""

    def send_message(self, s, header, client="c.example"):
        s.sendall(header)
        self.read_until(s, b"220 ")
        s.sendall(b"EHLO " + client.encode() + b"\r\nMAIL FROM:<a@test.example>\r\n"
                  b"RCPT TO:<b@test.example>\r\nDATA\r\n")
        self.read_until(s, b"354 ")
        s.sendall(b"Subject: proxied\r\n\r\nhi\r\n.\r\nQUIT\r\n")
        return self.read_until(s, b"221 ")


class ProxyHeaderTest(ProxyBase):
    def test_v1_client_is_the_peer(self):
        d = self.start()
        s = self.connect(d.port)
        out = self.send_message(s, b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n")
        self.assertIn(b"250 2.0.0 Ok: queued", out)
        msg, = self.stored()
        self.assertIn(b"Received: from c.example (192.0.2.7 [192.0.2.7])", msg)
        log = d.wait_log("disconnect from c.example[192.0.2.7]:56324")
        self.assertIn("client [192.0.2.7]:56324 to [198.51.100.1]:25 via proxy", log)

    def test_v2_tcp4_with_tlv_and_tcp6(self):
        d = self.start()
        s = self.connect(d.port)
        self.send_message(s, v2_tcp4("192.0.2.8", 1000, "198.51.100.1", 25,
                                     tlv=b"\x01\x00\x02h2"))
        s = self.connect(d.port)
        self.send_message(s, v2_tcp6("2001:db8::8", 2000, "2001:db8::1", 25))
        received = sorted(m.split(b"\r\n\tby ")[0].split(b"Received: ")[1] for m in self.stored())
        self.assertEqual(received, [b"from c.example (192.0.2.8 [192.0.2.8])",
                                    b"from c.example (2001:db8::8 [2001:db8::8])"])

    def test_plugins_see_the_client(self):
        pol = require_bundled_plugin("policy")
        d = self.start("-p", pol + ":deny_ip=192.0.2.66")
        s = self.connect(d.port)
        s.sendall(b"PROXY TCP4 192.0.2.66 198.51.100.1 4000 25\r\n")
        self.assertIn(b"554 5.7.1", self.read_until(s, b"\r\n"))
        s = self.connect(d.port)
        s.sendall(b"PROXY TCP4 192.0.2.67 198.51.100.1 4000 25\r\n")
        self.assertTrue(self.read_until(s, b"\r\n").startswith(b"220 "))

    def test_local_health_check_and_unknown(self):
        d = self.start()
        for header in (SIG + b"\x20\x00\x00\x00", b"PROXY UNKNOWN\r\n"):
            s = self.connect(d.port)
            s.sendall(header + b"QUIT\r\n")
            out = self.read_until(s, b"221 ")
            self.assertTrue(out.startswith(b"220 "), out)
        self.assertIn("LOCAL from [127.0.0.1]", d.log())

    def test_bad_headers_close_without_a_reply(self):
        d = self.start()
        bad = [b"EHLO client.example\r\n",
               b"PROXY TCP4 192.0.2.7 198.51.100.1 70000 25\r\n",
               b"PROXY TCP4 2001:db8::1 198.51.100.1 1 25\r\n",
               b"PROXY TCP4  192.0.2.7 198.51.100.1 1 25\r\n",
               b"PROXY UNKNOWN " + b"x" * 120,
               SIG + b"\x21\x12\x00\x0c" + b"\x00" * 12,      # UDP
               SIG + b"\x31\x11\x00\x0c" + b"\x00" * 12,      # version 3
               SIG + b"\x21\x11\xff\xff"]                     # longer than taken
        for header in bad:
            s = self.connect(d.port)
            s.sendall(header)
            self.assertTrue(self.closed_silently(s), header)
        log = d.log()
        self.assertEqual(log.count("closed without a reply"), len(bad), log)
        self.assertIn("not a PROXY header", log)
        self.assertIn("PROXY v2: not a stream (TCP)", log)

    def test_no_header_in_time(self):
        d = self.start()
        s = self.connect(d.port)
        t0 = time.time()
        self.assertTrue(self.closed_silently(s, timeout=15))
        self.assertGreater(time.time() - t0, 4)
        d.wait_log("no PROXY header within 5 s")

    def test_untrusted_peer_is_closed_without_a_reply(self):
        d = self.start("--proxy-trusted", "192.0.2.0/24;2001:db8::/32")
        s = self.connect(d.port)
        s.sendall(b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n")
        self.assertTrue(self.closed_silently(s))
        d.wait_log("not in --proxy-trusted")
        self.assertNotIn("192.0.2.7", d.log())

    def test_per_ip_limit_counts_the_client(self):
        d = self.start("--max-connections-per-ip", "1")
        a = self.connect(d.port)
        a.sendall(b"PROXY TCP4 192.0.2.7 198.51.100.1 1 25\r\n")
        self.read_until(a, b"220 ")
        # the same balancer, another client: allowed
        b = self.connect(d.port)
        b.sendall(b"PROXY TCP4 192.0.2.8 198.51.100.1 2 25\r\n")
        self.read_until(b, b"220 ")
        # the same client again: over its limit
        c = self.connect(d.port)
        c.sendall(b"PROXY TCP4 192.0.2.7 198.51.100.1 3 25\r\n")
        self.assertIn(b"421 4.7.0", self.read_until(c, b"\r\n"))
        # once the first is gone, it may come back
        a.sendall(b"QUIT\r\n")
        self.read_until(a, b"221 ")
        a.close()
        d.wait_log("disconnect from unknown[192.0.2.7]:1")
        e = self.connect(d.port)
        e.sendall(b"PROXY TCP4 192.0.2.7 198.51.100.1 4 25\r\n")
        self.assertTrue(self.read_until(e, b"\r\n").startswith(b"220 "))

    def test_option_errors(self):
        r = run_daemon(["--check", "--proxy-protocol", "--proxy-trusted", "10.0.0.0/33"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("'10.0.0.0/33' is not an address or network", r.stderr)
        r = run_daemon(["--check", "--proxy-protocol", "--tls-cert", "/dev/null",
                        "--tls-key", "/dev/null", "--tls-listen", "127.0.0.1:1"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--proxy-protocol with --tls-listen is not supported", r.stderr)


HAPROXY_CFG = """global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend smtp
    bind 127.0.0.1:{front}
    default_backend mx
backend mx
    balance roundrobin
    server one 127.0.0.1:{one} send-proxy
    server two 127.0.0.1:{two} send-proxy-v2
"""


class HAProxyTest(ProxyBase):
    def haproxy(self, one, two):
        exe = require_tool("haproxy", "haproxy")
        front = free_port()
        cfg = os.path.join(self.root, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(HAPROXY_CFG.format(front=front, one=one, two=two))
        start_peer(self, [exe, "-db", "-f", cfg], os.path.join(self.root, "haproxy.log"),
                   front, "haproxy")
        return front

    def test_two_instances_behind_haproxy(self):
        pol = require_bundled_plugin("policy")
        one = self.start("-p", pol + ":deny_ip=127.0.0.3", box="one")
        two = self.start("-p", pol + ":deny_ip=127.0.0.3", box="two")
        front = self.haproxy(one.port, two.port)
        for i in range(6):
            s = self.connect(front, source="127.0.0.2")
            out = self.send_message(s, b"", client="client%d.example" % i)
            self.assertIn(b"250 2.0.0 Ok: queued", out)
        got = {"one": self.stored("one"), "two": self.stored("two")}
        self.assertEqual(len(got["one"]) + len(got["two"]), 6)
        self.assertGreaterEqual(min(len(v) for v in got.values()), 2, got)
        for msg in got["one"] + got["two"]:
            self.assertRegex(msg, rb"Received: from client\d\.example \(127\.0\.0\.2 "
                             rb"\[127\.0\.0\.2\]\)")
        self.assertIn("(PROXY v1)", one.log())
        self.assertIn("(PROXY v2)", two.log())
        self.assertIn("via proxy [127.0.0.1]", one.log())
        # a client policy denies: refused by whichever instance gets it
        for _ in range(2):
            s = self.connect(front, source="127.0.0.3")
            self.assertIn(b"554 5.7.1", self.read_until(s, b"\r\n"))


if __name__ == "__main__":
    unittest.main()

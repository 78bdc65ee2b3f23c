"""XCLIENT (Postfix's XCLIENT_README) with --xclient: swaks, a real client
that speaks it, sends a message as another client; policy:deny_ip sees the
address XCLIENT gave; attributes in xtext; refused for peers not in the
list (550 5.7.0, not advertised), inside a transaction (503), and with a
bad attribute (501, nothing applied); the per-IP count moves with the
address."""
import mailbox
import os
import shutil
import subprocess
import tempfile
import unittest

from smtphook_test import (DaemonTestCase, SLOW, require_bundled_plugin, require_swaks,
                           run_daemon)
from plugin_helpers import wait_for


class XclientTest(DaemonTestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="smtphook-xclient-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.box = os.path.join(self.root, "box")

    def start(self, *args):
        md = require_bundled_plugin("maildump")
        pol = require_bundled_plugin("policy")
        return self.daemon(*args, "-p", pol + ":deny_ip=192.0.2.66",
                           "-p", md + ":dir=" + self.box)

    def stored(self):
        b = mailbox.Maildir(self.box, factory=None, create=False)
        return [b.get_bytes(k) for k in b.keys()]

    def swaks(self, d, *xargs):
        exe = require_swaks()
        return subprocess.run([exe, "-s", "127.0.0.1", "-p", str(d.port),
                               "-f", "a@test.example", "-t", "b@test.example",
                               "--helo", "proxy.example", *xargs],
                              capture_output=True, text=True, timeout=30 * SLOW,
                              stdin=subprocess.DEVNULL)

    def test_swaks_sends_as_another_client(self):
        d = self.start("--xclient", "127.0.0.0/8")
        r = self.swaks(d, "--xclient-addr", "192.0.2.9", "--xclient-port", "4711",
                       "--xclient-helo", "real.example", "--xclient-name", "real.example",
                       "--xclient-login", "alice")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("<-  220 ", r.stdout.split("XCLIENT ADDR=")[1])
        msg, = self.stored()
        # the XCLIENT HELO stays through the client's second EHLO
        self.assertIn(b"Received: from real.example (192.0.2.9 [192.0.2.9])", msg)
        self.assertIn(b"with ESMTPA id", msg)
        log = d.wait_log("disconnect from real.example[192.0.2.9]:4711")
        self.assertIn("XCLIENT from [127.0.0.1]", log)
        self.assertIn("name=real.example helo=real.example login=alice", log)

    def test_plugins_see_the_new_client(self):
        d = self.start("--xclient", "127.0.0.1")
        r = self.swaks(d, "--xclient-addr", "192.0.2.66")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("554 5.7.1", r.stdout)
        self.assertEqual(self.stored(), [])
        d.wait_log("client 192.0.2.66 refused")

    def test_not_authorized(self):
        d = self.start()
        c = self.client(d)
        ehlo = c.cmd("EHLO x.example")
        self.assertFalse(any("XCLIENT" in t for t in ehlo.texts), ehlo)
        r = c.cmd("XCLIENT ADDR=192.0.2.9")
        self.assertEqual((r.code, r.text), (550, "5.7.0 Error: insufficient authorization"))
        d2 = self.start("--xclient", "192.0.2.0/24")
        c = self.client(d2)
        self.assertEqual(c.cmd("XCLIENT ADDR=192.0.2.9").code, 550)

    def test_sequence_syntax_and_all_or_nothing(self):
        d = self.start("--xclient", "127.0.0.1")
        c = self.client(d)
        ehlo = c.cmd("EHLO x.example")
        self.assertTrue(any(t.startswith("XCLIENT NAME ADDR") for t in ehlo.texts), ehlo)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        r = c.cmd("XCLIENT ADDR=192.0.2.9")
        self.assertEqual(r.code, 503, r)
        self.assertEqual(c.cmd("RSET").code, 250)
        for bad, text in (("BOGUS=1", "Bad XCLIENT attribute name"),
                          ("ADDR=192.0.2.300", "Bad XCLIENT address syntax"),
                          ("ADDR=192.0.2.9 PORT=70000", "Bad XCLIENT port syntax"),
                          ("HELO=a+2", "Bad XCLIENT attribute value"),
                          ("HELO=a+0D+0Ab", "Bad XCLIENT attribute value"),
                          ("PROTO=LMTP", "Bad XCLIENT PROTO syntax"),
                          ("ADDR", "Bad XCLIENT attribute syntax")):
            r = c.cmd("XCLIENT " + bad)
            self.assertEqual((r.code, r.enhanced), (501, "5.5.4"), bad)
            self.assertIn(text, r.text, bad)
        # nothing was applied: still the real peer
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send("Subject: x\r\n\r\nx\r\n.\r\n")
        self.assertEqual(c.reply().code, 250)
        self.assertIn(b"(127.0.0.1 [127.0.0.1])", self.stored()[0])

    def test_ipv6_xtext_and_unavailable(self):
        d = self.start("--xclient", "127.0.0.1")
        c = self.client(d)
        r = c.cmd("XCLIENT ADDR=IPV6:2001:db8::9 HELO=a+2Bb.example NAME=[UNAVAILABLE]")
        self.assertEqual(r.code, 220, r)
        self.assertEqual(c.cmd("EHLO ignored.example").code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send("Subject: x\r\n\r\nx\r\n.\r\n")
        self.assertEqual(c.reply().code, 250)
        self.assertIn(b"Received: from a+b.example (2001:db8::9 [2001:db8::9])",
                      self.stored()[0])
        # a second XCLIENT is judged on the connection's peer, not on ::9
        self.assertEqual(c.cmd("XCLIENT ADDR=192.0.2.10").code, 220)

    def test_per_ip_count_moves(self):
        d = self.start("--xclient", "127.0.0.1", "--max-connections-per-ip", "1")
        # the start-up probe's connection may not be gone yet
        wait_for(lambda: "disconnect from" in d.log(), what="the probe gone")
        a = self.client(d)
        self.assertEqual(a.greeting.code, 220)
        self.assertEqual(a.cmd("XCLIENT ADDR=192.0.2.9").code, 220)
        # 127.0.0.1 has no connection counted now: another one is let in
        b = self.client(d)
        self.assertEqual(b.greeting.code, 220)
        c = self.client(d)
        self.assertEqual(c.greeting.code, 421)

    def test_option_error(self):
        r = run_daemon(["--check", "--xclient", "127.0.0.1;bogus"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--xclient: 'bogus' is not an address or network", r.stderr)


if __name__ == "__main__":
    unittest.main()

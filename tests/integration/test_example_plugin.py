"""The tutorial's example plugin (sdk/examples/domain_guard.c) in the real
daemon: argument checks, a verdict, per-connection state, a PENDING tarpit
on a libev timer, and a header added at eom."""
import os
import time
import unittest

from smtphook_test import BUILD_DIR, DaemonTestCase, run_daemon, SLOW

GUARD = os.path.join(BUILD_DIR, "examples", "domain_guard.so")


class ExamplePluginTest(DaemonTestCase):
    def start(self, args="domains=example.org;Example.NET"):
        d = self.daemon("-p", GUARD + ":" + args, "-p", "sink")
        c = self.client(d)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        return d, c

    def test_requires_domains(self):
        r = run_daemon(["-p", GUARD])
        self.assertEqual(r.returncode, 2)
        self.assertIn("domains= is required", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)

    def test_unknown_key_refused(self):
        r = run_daemon(["-p", GUARD + ":domains=x.example,colour=red"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown argument 'colour'", r.stderr)

    def test_allowed_domains_case_insensitive(self):
        d, c = self.start()
        self.assertEqual(c.cmd("RCPT TO:<x@example.org>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<x@EXAMPLE.net>").code, 250)

    def test_other_domain_rejected(self):
        d, c = self.start()
        r = c.cmd("RCPT TO:<x@elsewhere.test>")
        self.assertEqual(r.code, 550)
        self.assertEqual(r.enhanced, "5.7.1")
        self.assertIn("not served here", r.text)

    def test_tarpit_delays_without_blocking_others(self):
        d, c = self.start("domains=example.org,tarpit=0.8")
        c.send("RCPT TO:<x@elsewhere.test>\r\n")
        t0 = time.time()
        other = self.client(d)  # served while the first one waits
        self.assertEqual(other.ehlo().code, 250)
        self.assertLess(time.time() - t0, 0.5 * SLOW)
        r = c.reply()
        self.assertEqual(r.code, 550)
        self.assertGreaterEqual(time.time() - t0, 0.7)

    def test_disconnect_after_max_bad(self):
        d, c = self.start("domains=example.org,max_bad=2")
        self.assertEqual(c.cmd("RCPT TO:<a@bad.test>").code, 550)
        self.assertEqual(c.cmd("RCPT TO:<b@bad.test>").code, 550)
        r = c.cmd("RCPT TO:<c@bad.test>")
        self.assertEqual(r.code, 421)
        self.assertTrue(c.closed())

    def test_client_leaves_during_tarpit(self):
        d, c = self.start("domains=example.org,tarpit=1")
        c.send("RCPT TO:<x@elsewhere.test>\r\n")
        time.sleep(0.2)
        c.close()
        d.wait_log("disconnect from")
        time.sleep(1.0)  # the cancelled timer must not fire into freed state
        c2 = self.client(d)
        self.assertEqual(c2.ehlo().code, 250)


if __name__ == "__main__":
    unittest.main()

"""Resource limits: --max-recipients, --max-connections,
--max-connections-per-ip, --timeout, --reject-early-talkers and
--greet-pause."""
import socket
import time
import unittest

from smtphook_test import Client, DaemonTestCase, HOSTNAME, SLOW, transaction


def raw_connect(port, source="127.0.0.1", timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout * SLOW)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


class SourceClient(Client):
    """A Client whose connection comes from another loopback address."""

    def __init__(self, port, source, timeout=10, greeting=True):
        self.sock = raw_connect(port, source, timeout)
        self.buf = b""
        self.greeting = self.reply() if greeting else None


def wait_probe_gone(d):
    """Daemon() opens and closes a probe connection; wait until the daemon
    has seen it go, so it does not count against connection limits."""
    d.wait_log("disconnect from")


def wait_count_log(d, needle, n, timeout=10):
    deadline = time.time() + timeout * SLOW
    while d.log().count(needle) < n and time.time() < deadline:
        time.sleep(0.05)
    return d.log().count(needle)


class MaxRecipientsTest(DaemonTestCase):
    def test_limit_and_limit_plus_one(self):
        d = self.daemon("-p", "sink", "--max-recipients", "3")
        c = self.client(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        for i in range(3):
            self.assertEqual(c.cmd("RCPT TO:<r%d@test.example>" % i).code, 250)
        r = c.cmd("RCPT TO:<r3@test.example>")
        self.assertEqual((r.code, r.enhanced), (452, "4.5.3"), r)
        r = c.cmd("RCPT TO:<r4@test.example>")
        self.assertEqual((r.code, r.enhanced), (452, "4.5.3"), r)
        # The message goes to the 3 accepted ones.
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(b"hi\r\n.\r\n")
        self.assertEqual(c.reply().code, 250)
        d.wait_log("3 recipient(s)")
        # A new transaction starts counting again.
        self.assertEqual(transaction(c, rcpts=["x%d@test.example" % i for i in range(3)]).code, 250)

    def test_limit_does_not_count_errors(self):
        d = self.daemon("-p", "sink", "--max-recipients", "2")
        c = self.client(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<bad@>").code, 501)
        self.assertEqual(c.cmd("RCPT TO:<r1@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r2@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r3@test.example>").code, 452)
        self.assertEqual(c.cmd("RSET").code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r1@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r2@test.example>").code, 250)

    def test_default_100_pipelined(self):
        d = self.daemon("-p", "sink")
        c = self.client(d)
        c.ehlo()
        c.send(b"MAIL FROM:<a@test.example>\r\n" +
               b"".join(b"RCPT TO:<r%d@test.example>\r\n" % i for i in range(102)))
        self.assertEqual(c.reply().code, 250)
        for i in range(100):
            self.assertEqual(c.reply().code, 250, i)
        for i in range(2):
            r = c.reply()
            self.assertEqual((r.code, r.enhanced), (452, "4.5.3"), r)

    def test_max_recipients_one(self):
        d = self.daemon("-p", "sink", "--max-recipients", "1")
        c = self.client(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r1@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r2@test.example>").code, 452)


class MaxConnectionsTest(DaemonTestCase):
    def test_connection_n_plus_one_refused(self):
        d = self.daemon("-p", "sink", "--max-connections", "2")
        wait_probe_gone(d)
        c1 = self.client(d)
        c2 = self.client(d)
        self.assertEqual(c1.greeting.code, 220)
        self.assertEqual(c2.greeting.code, 220)
        c3 = self.client(d)
        self.assertEqual((c3.greeting.code, c3.greeting.enhanced), (421, "4.7.0"), c3.greeting)
        self.assertTrue(c3.greeting.text.startswith("4.7.0 " + HOSTNAME), c3.greeting)
        self.assertTrue(c3.closed(5))
        # The two served sessions are unaffected.
        self.assertEqual(c1.ehlo().code, 250)
        self.assertEqual(c2.ehlo().code, 250)
        self.assertEqual(transaction(c2).code, 250)
        # When one leaves, there is room again.
        self.assertEqual(c1.cmd("QUIT").code, 221)
        self.assertTrue(c1.closed(5))
        d.wait_log("reason=\"quit\"")
        c4 = self.client(d)
        self.assertEqual(c4.greeting.code, 220)
        d.wait_log("too many connections")

    def test_max_connections_one(self):
        d = self.daemon("-p", "sink", "--max-connections", "1")
        wait_probe_gone(d)
        c1 = self.client(d)
        self.assertEqual(c1.greeting.code, 220)
        for _ in range(3):
            c = self.client(d)
            self.assertEqual(c.greeting.code, 421)
            self.assertTrue(c.closed(5))
        self.assertEqual(c1.ehlo().code, 250)
        self.assertEqual(transaction(c1).code, 250)


class ManyConnectionsTest(DaemonTestCase):
    def test_300_concurrent_sessions(self):
        """Many clients at once (more than one accept batch) are all
        served; the default limit is 1000."""
        d = self.daemon("-p", "sink")
        socks = []
        try:
            for _ in range(300):
                socks.append(socket.create_connection(("127.0.0.1", d.port), timeout=10 * SLOW))
            for s in socks:
                f = s.makefile("rb")
                self.assertTrue(f.readline().startswith(b"220 "))
                s.sendall(b"QUIT\r\n")
                self.assertTrue(f.readline().startswith(b"221 "))
                f.close()
        finally:
            for s in socks:
                s.close()
        self.assertEqual(wait_count_log(d, "reason=\"quit\"", 300), 300)


class MaxConnectionsPerIpTest(DaemonTestCase):
    def test_per_ip_limit(self):
        d = self.daemon("-p", "sink", "--max-connections-per-ip", "2")
        wait_probe_gone(d)
        c1 = self.client(d)
        c2 = self.client(d)
        self.assertEqual((c1.greeting.code, c2.greeting.code), (220, 220))
        c3 = self.client(d)
        self.assertEqual((c3.greeting.code, c3.greeting.enhanced), (421, "4.7.0"), c3.greeting)
        self.assertTrue(c3.closed(5))
        d.wait_log("too many connections from this address")
        # Another client address is not affected.
        try:
            other = SourceClient(d.port, "127.0.0.2")
        except OSError as e:
            self.skipTest("cannot bind 127.0.0.2: %s" % e)
        self.addCleanup(other.close)
        self.assertEqual(other.greeting.code, 220)
        self.assertEqual(other.ehlo().code, 250)
        # A refused connection did not use up a slot: after one leaves,
        # exactly one more fits.
        c1.cmd("QUIT")
        self.assertTrue(c1.closed(5))
        d.wait_log("reason=\"quit\"")
        c4 = self.client(d)
        self.assertEqual(c4.greeting.code, 220)
        c5 = self.client(d)
        self.assertEqual(c5.greeting.code, 421)

    def test_per_ip_with_global_limit(self):
        d = self.daemon("-p", "sink", "--max-connections-per-ip", "1",
                        "--max-connections", "2")
        wait_probe_gone(d)
        c1 = self.client(d)
        self.assertEqual(c1.greeting.code, 220)
        self.assertEqual(self.client(d).greeting.code, 421)
        try:
            c2 = SourceClient(d.port, "127.0.0.2")
            self.addCleanup(c2.close)
            c3 = SourceClient(d.port, "127.0.0.3")
            self.addCleanup(c3.close)
        except OSError as e:
            self.skipTest("cannot bind 127.0.0.x: %s" % e)
        self.assertEqual(c2.greeting.code, 220)
        self.assertEqual(c3.greeting.code, 421)  # the global limit


class TimeoutTest(DaemonTestCase):
    def assertTimedOut(self, c, t0, lo=0.8, hi=4.0):
        r = c.reply()
        elapsed = time.time() - t0
        self.assertEqual((r.code, r.enhanced), (421, "4.4.2"), r)
        self.assertIn(HOSTNAME, r.text)
        self.assertTrue(c.closed(5))
        self.assertGreaterEqual(elapsed, lo)
        self.assertLess(elapsed, hi * SLOW)

    def test_idle_after_greeting(self):
        d = self.daemon("-p", "sink", "--timeout", "1")
        t0 = time.time()
        c = self.client(d)
        self.assertTimedOut(c, t0)
        d.wait_log("reason=\"timeout\"")

    def test_idle_after_command(self):
        d = self.daemon("-p", "sink", "--timeout", "1")
        c = self.client(d)
        c.ehlo()
        c.cmd("MAIL FROM:<a@test.example>")
        t0 = time.time()
        self.assertTimedOut(c, t0)

    def test_activity_keeps_session(self):
        d = self.daemon("-p", "sink", "--timeout", "1")
        c = self.client(d)
        t0 = time.time()
        while time.time() - t0 < 2.5:
            self.assertEqual(c.cmd("NOOP").code, 250)
            time.sleep(0.4)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(transaction(c).code, 250)
        t0 = time.time()
        self.assertTimedOut(c, t0)

    def test_idle_in_the_middle_of_data(self):
        d = self.daemon("-p", "sink", "--timeout", "1")
        c = self.client(d)
        c.ehlo()
        c.cmd("MAIL FROM:<a@test.example>")
        c.cmd("RCPT TO:<b@test.example>")
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(b"Subject: slow\r\n\r\nfirst line\r\n")
        t0 = time.time()
        self.assertTimedOut(c, t0)
        log = d.wait_log("reason=\"timeout\"")
        self.assertNotIn("accepted by plugin", log)

    def test_slow_body_within_timeout_each_block(self):
        """The timeout covers each data block, not the whole body."""
        d = self.daemon("-p", "sink", "--timeout", "1")
        c = self.client(d)
        c.ehlo()
        c.cmd("MAIL FROM:<a@test.example>")
        c.cmd("RCPT TO:<b@test.example>")
        self.assertEqual(c.cmd("DATA").code, 354)
        for i in range(5):
            c.send(b"line %d\r\n" % i)
            time.sleep(0.5)
        c.send(b".\r\n")
        self.assertEqual(c.reply().code, 250)

    def test_partial_command_line_times_out(self):
        d = self.daemon("-p", "sink", "--timeout", "1")
        c = self.client(d)
        c.send(b"EHLO client.test.exa")
        t0 = time.time()
        self.assertTimedOut(c, t0)

    def test_fractional_timeout(self):
        d = self.daemon("-p", "sink", "--timeout", "0.5")
        t0 = time.time()
        c = self.client(d)
        self.assertTimedOut(c, t0, lo=0.4, hi=3.0)


class EarlyTalkerTest(DaemonTestCase):
    def test_reject_early_talker(self):
        d = self.daemon("-p", "sink", "--reject-early-talkers")
        t0 = time.time()
        c = self.client(d, greeting=False)
        c.send(b"EHLO client.test.example\r\n")
        r = c.reply()
        # The greeting pause (1 s) runs out first; no 220 is ever sent.
        self.assertGreaterEqual(time.time() - t0, 0.8)
        self.assertEqual(r.code, 554, r)
        self.assertEqual(r.enhanced, "5.5.0")
        # What it sent early is dropped; from now on only QUIT works.
        self.assertEqual(c.cmd("EHLO client.test.example").code, 503)
        self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertTrue(c.closed(5))
        self.assertNotIn(b"250", c.buf)
        d.wait_log("reason=\"early talker\"")

    def test_polite_client_served_after_pause(self):
        d = self.daemon("-p", "sink", "--reject-early-talkers")
        t0 = time.time()
        c = self.client(d)
        self.assertGreaterEqual(time.time() - t0, 0.8)
        self.assertEqual(c.greeting.lines, ["220 %s ESMTP smtphook" % HOSTNAME])
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(transaction(c).code, 250)

    def test_talker_after_greeting_pause_ok(self):
        d = self.daemon("-p", "sink", "--reject-early-talkers", "--greet-pause", "0.3")
        t0 = time.time()
        c = self.client(d)
        elapsed = time.time() - t0
        self.assertGreaterEqual(elapsed, 0.25)
        self.assertLess(elapsed, 0.9 * SLOW + 0.5)
        self.assertEqual(c.greeting.code, 220)
        c2 = self.client(d, greeting=False)
        c2.send(b"NOOP\r\n")
        self.assertEqual(c2.reply().code, 554)
        self.assertEqual(c2.cmd("QUIT").code, 221)
        self.assertTrue(c2.closed(5))

    def test_early_talker_that_leaves_at_once(self):
        d = self.daemon("-p", "sink", "--reject-early-talkers")
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            s.sendall(b"EHLO client.test.example\r\nQUIT\r\n")
            s.close()
        c = self.client(d)
        self.assertEqual(c.greeting.code, 220)
        self.assertEqual(c.ehlo().code, 250)

    def test_early_talker_served_without_flag(self):
        d = self.daemon("-p", "sink")
        c = self.client(d, greeting=False)
        c.send(b"EHLO client.test.example\r\nMAIL FROM:<a@test.example>\r\n")
        self.assertEqual(c.reply().lines, ["220 %s ESMTP smtphook" % HOSTNAME])
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(c.reply().code, 250)

    def test_early_talker_with_pause_but_no_reject(self):
        d = self.daemon("-p", "sink", "--greet-pause", "0.5")
        t0 = time.time()
        c = self.client(d, greeting=False)
        c.send(b"EHLO client.test.example\r\n")
        r = c.reply()
        self.assertGreaterEqual(time.time() - t0, 0.4)
        self.assertEqual(r.code, 220, r)
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(transaction(c).code, 250)


if __name__ == "__main__":
    unittest.main()

"""Graceful shutdown (SPEC §3, docs/PROTOCOL.md): on SIGTERM/SIGINT the
listeners close at once, idle sessions get 421 4.3.2, a running
transaction may finish (then 421 4.3.2), --shutdown-timeout bounds that,
and the daemon exits 0."""
import signal
import socket
import time
import unittest

from smtphook_test import DaemonTestCase, HOSTNAME, SLOW, transaction


def refused(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except (ConnectionRefusedError, ConnectionResetError):
        return True


class ShutdownTestCase(DaemonTestCase):
    def assert421(self, c):
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (421, "4.3.2"), r)
        self.assertIn(HOSTNAME, r.text)
        self.assertTrue(c.closed(5))

    def wait_exit(self, d, timeout=10):
        """The daemon exits by itself, with status 0, within timeout;
        returns its log."""
        rc = d.proc.wait(timeout=timeout * SLOW)
        log = d.log()
        self.assertEqual(rc, 0, log)
        d.stop()  # already exited: checks the status again, tidies the log
        return log

    def start_data(self, c):
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)


class IdleShutdownTest(ShutdownTestCase):
    def test_idle_sessions_get_421(self):
        d = self.daemon("-p", "sink")
        fresh = self.client(d)               # greeted, nothing sent
        greeted = self.client(d)
        self.assertEqual(greeted.ehlo().code, 250)
        done = self.client(d)                # after a whole transaction
        self.assertEqual(done.ehlo().code, 250)
        self.assertEqual(transaction(done).code, 250)
        d.send_signal(signal.SIGTERM)
        for c in (fresh, greeted, done):
            self.assert421(c)
        log = self.wait_exit(d)
        self.assertEqual(log.count("reason=\"shutdown\""), 3, log)

    def test_no_sessions(self):
        d = self.daemon("-p", "sink")
        d.send_signal(signal.SIGTERM)
        t0 = time.time()
        self.wait_exit(d)
        self.assertLess(time.time() - t0, 2 * SLOW)

    def test_sigint_like_sigterm(self):
        d = self.daemon("-p", "sink")
        c = self.client(d)
        d.send_signal(signal.SIGINT)
        self.assert421(c)
        self.wait_exit(d)

    def test_sighup_ignored(self):
        d = self.daemon("-p", "sink")
        d.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        self.assertIsNone(d.proc.poll())
        c = self.client(d)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(transaction(c).code, 250)

    def test_client_in_greeting_pause(self):
        d = self.daemon("-p", "sink", "--greet-pause", "5")
        c = self.client(d, greeting=False)
        d.wait_log("connect from", timeout=5)
        time.sleep(0.2)
        d.send_signal(signal.SIGTERM)
        self.assert421(c)
        self.wait_exit(d)


class TransactionShutdownTest(ShutdownTestCase):
    def test_mid_data_finishes_then_421(self):
        d = self.daemon("-p", "sink")
        c = self.client(d)
        self.start_data(c)
        c.send(b"Subject: in flight\r\n\r\nfirst part\r\n")
        time.sleep(0.2)
        d.send_signal(signal.SIGTERM)
        d.wait_log("shutting down")
        time.sleep(0.3)
        # Still running, waiting for the transaction.
        self.assertIsNone(d.proc.poll())
        c.send(b"second part\r\n.\r\n")
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        self.assert421(c)
        log = self.wait_exit(d)
        self.assertIn("accepted by plugin sink", log)

    def test_mid_envelope_finishes_then_421(self):
        d = self.daemon("-p", "sink")
        c = self.client(d)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        d.send_signal(signal.SIGTERM)
        d.wait_log("shutting down")
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(b"body\r\n.\r\n")
        self.assertEqual(c.reply().code, 250)
        self.assert421(c)
        self.wait_exit(d)

    def test_rset_ends_transaction_then_421(self):
        d = self.daemon("-p", "sink")
        c = self.client(d)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        d.send_signal(signal.SIGTERM)
        d.wait_log("shutting down")
        self.assertEqual(c.cmd("RSET").code, 250)
        self.assert421(c)
        self.wait_exit(d)

    def test_busy_and_idle_together(self):
        d = self.daemon("-p", "sink")
        idle = self.client(d)
        busy = self.client(d)
        self.start_data(busy)
        d.send_signal(signal.SIGTERM)
        self.assert421(idle)
        busy.send(b"x\r\n.\r\n")
        self.assertEqual(busy.reply().code, 250)
        self.assert421(busy)
        self.wait_exit(d)

    def test_pipelined_after_end_of_data(self):
        """Commands pipelined after the last message are not run once the
        transaction has ended: the session gets its 421."""
        d = self.daemon("-p", "sink")
        c = self.client(d)
        self.start_data(c)
        d.send_signal(signal.SIGTERM)
        d.wait_log("shutting down")
        c.send(b"x\r\n.\r\nMAIL FROM:<a@test.example>\r\n")
        self.assertEqual(c.reply().code, 250)
        self.assert421(c)
        self.wait_exit(d)


class ShutdownTimeoutTest(ShutdownTestCase):
    def test_stuck_mid_data_closed_after_timeout(self):
        d = self.daemon("-p", "sink", "--shutdown-timeout", "1")
        c = self.client(d)
        self.start_data(c)
        c.send(b"Subject: stuck\r\n\r\nand then nothing\r\n")
        time.sleep(0.1)
        t0 = time.time()
        d.send_signal(signal.SIGTERM)
        self.assert421(c)
        elapsed = time.time() - t0
        self.assertGreaterEqual(elapsed, 0.8)
        self.assertLess(elapsed, 4 * SLOW)
        self.wait_exit(d)

    def test_stuck_mid_envelope_closed_after_timeout(self):
        d = self.daemon("-p", "sink", "--shutdown-timeout", "0.5")
        c = self.client(d)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        t0 = time.time()
        d.send_signal(signal.SIGTERM)
        self.assert421(c)
        self.assertGreaterEqual(time.time() - t0, 0.4)
        self.wait_exit(d)

    def test_second_signal_closes_at_once(self):
        d = self.daemon("-p", "sink", "--shutdown-timeout", "30")
        c = self.client(d)
        self.start_data(c)
        d.send_signal(signal.SIGTERM)
        d.wait_log("shutting down")
        t0 = time.time()
        d.send_signal(signal.SIGTERM)
        self.assert421(c)
        self.assertLess(time.time() - t0, 3 * SLOW)
        self.wait_exit(d)

    def test_client_not_reading(self):
        """A client that sends a large body and never reads: the shutdown
        timeout still ends the daemon."""
        d = self.daemon("-p", "sink", "--shutdown-timeout", "1")
        c = self.client(d)
        self.start_data(c)
        c.sock.settimeout(0.5)
        try:
            c.send(b"y" * (4 << 20))
        except (socket.timeout, TimeoutError):
            pass
        d.send_signal(signal.SIGTERM)
        self.wait_exit(d, timeout=10)


class ListenerClosedTest(ShutdownTestCase):
    def test_new_connections_refused_after_sigterm(self):
        d = self.daemon("-p", "sink", "--shutdown-timeout", "10")
        busy = self.client(d)
        self.start_data(busy)
        d.send_signal(signal.SIGTERM)
        d.wait_log("shutting down")
        # The daemon is still running (the transaction may finish) ...
        self.assertIsNone(d.proc.poll())
        # ... but it no longer listens.
        self.assertTrue(refused(d.port))
        busy.send(b"done\r\n.\r\n")
        self.assertEqual(busy.reply().code, 250)
        self.assert421(busy)
        self.wait_exit(d)


if __name__ == "__main__":
    unittest.main()

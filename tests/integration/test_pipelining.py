"""PIPELINING (RFC 2920): batches of commands in one packet get their
replies complete and in order; without PIPELINING a client that does not
wait for each reply gets 503 5.5.0."""
import socket
import time
import unittest

from smtphook_test import DaemonTestCase, HOSTNAME, SLOW

EHLO = b"EHLO client.test.example\r\n"
BODY = b"Subject: pipelined\r\n\r\nhello\r\n"


def envelope(n_rcpts=3, sender="a@test.example"):
    out = b"MAIL FROM:<%s>\r\n" % sender.encode()
    for i in range(n_rcpts):
        out += b"RCPT TO:<r%d@test.example>\r\n" % i
    return out + b"DATA\r\n"


class PipeliningTest(DaemonTestCase):
    def setUp(self):
        self.d = self.daemon("-p", "sink")

    def expect(self, c, codes):
        got = []
        for want in codes:
            r = c.reply()
            got.append(r)
            self.assertEqual(r.code, want, "replies so far %r" % got)
        return got

    def test_whole_envelope_in_one_packet(self):
        c = self.client(self.d)
        c.send(EHLO + envelope(3))
        rs = self.expect(c, [250, 250, 250, 250, 250, 354])
        self.assertEqual(rs[0].texts[0], HOSTNAME)
        self.assertIn("PIPELINING", rs[0].texts)
        self.assertEqual(rs[1].enhanced, "2.1.0")
        self.assertEqual([r.enhanced for r in rs[2:5]], ["2.1.5"] * 3)
        c.send(BODY + b".\r\n")
        self.expect(c, [250])
        # Nothing more was sent than these replies.
        self.assertEqual(c.buf, b"")

    def test_body_pipelined_after_data(self):
        c = self.client(self.d)
        c.send(EHLO + envelope(3) + BODY + b".\r\nQUIT\r\n")
        rs = self.expect(c, [250, 250, 250, 250, 250, 354, 250, 221])
        self.assertEqual(rs[6].enhanced, "2.0.0")
        self.assertTrue(c.closed(5))
        self.d.wait_log("accepted by plugin sink")

    def test_next_transaction_after_end_of_data(self):
        c = self.client(self.d)
        batch = EHLO
        for i in range(5):
            batch += envelope(2, "s%d@test.example" % i) + BODY + b".\r\n"
        batch += b"QUIT\r\n"
        c.send(batch)
        codes = [250] + [250, 250, 250, 354, 250] * 5 + [221]
        rs = self.expect(c, codes)
        # Each message got its own queue id.
        queued = [r.text for r in rs if "queued as" in r.text]
        self.assertEqual(len(queued), 5, rs)
        self.assertEqual(len(set(queued)), 5, queued)
        self.assertTrue(c.closed(5))
        log = self.d.log()
        self.assertEqual(log.count("accepted by plugin sink"), 5, log)

    def test_errors_inside_a_batch_keep_order(self):
        c = self.client(self.d)
        c.send(EHLO + b"MAIL FROM:<a@test.example>\r\n"
               b"RCPT TO:<bad@>\r\n"
               b"RCPT TO:<good@test.example>\r\n"
               b"FOO\r\n"
               b"RCPT TO:<good2@test.example> FOO=1\r\n"
               b"DATA\r\n" + BODY + b".\r\n"
               b"RSET\r\nNOOP\r\n")
        rs = self.expect(c, [250, 250, 501, 250, 500, 555, 354, 250, 250, 250])
        self.assertEqual(rs[2].enhanced, "5.1.3")

    def test_rejected_envelope_then_pipelined_data_is_not_a_body(self):
        """RFC 2920 §3.1: if every RCPT failed, DATA fails, and the
        pipelined body lines are taken as commands (and fail)."""
        c = self.client(self.d)
        c.send(EHLO + b"MAIL FROM:<a@test.example>\r\n"
               b"RCPT TO:<bad@>\r\n"
               b"DATA\r\n"
               b"NOOP body line\r\n"
               b".\r\n"
               b"RSET\r\n")
        rs = self.expect(c, [250, 250, 501, 554, 250, 500, 250])
        self.assertEqual(rs[3].enhanced, "5.5.1")

    def test_replies_to_a_batch_arrive_together(self):
        c = self.client(self.d)
        c.send(EHLO)
        c.reply()
        c.sock.settimeout(5 * SLOW)
        c.send(envelope(3))
        # 5 replies: count the recv() calls it takes to collect them.
        data, calls = b"", 0
        deadline = time.time() + 5 * SLOW
        while data.count(b"\r\n") < 5 and time.time() < deadline:
            chunk = c.sock.recv(65536)
            self.assertTrue(chunk)
            data += chunk
            calls += 1
        self.assertEqual(data.count(b"\r\n"), 5, data)
        self.assertLessEqual(calls, 3, "replies scattered over %d recv() calls" % calls)
        self.assertTrue(data.endswith(b"354 End data with <CR><LF>.<CR><LF>\r\n"), data)

    def test_half_close_after_batch(self):
        """A client that shuts down its sending side after a batch still
        gets every reply (docs/PROTOCOL.md)."""
        c = self.client(self.d)
        c.send(EHLO + envelope(1) + BODY + b".\r\nNOOP\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        self.expect(c, [250, 250, 250, 354, 250, 250])
        self.assertTrue(c.closed(5))
        self.d.wait_log("accepted by plugin sink")

    def test_large_batch_with_reply_backpressure(self):
        """More replies than the server's output high-water mark while the
        client does not read: the server stops reading and resumes."""
        c = self.client(self.d)
        n = 8000
        c.send(b"NOOP\r\n" * n + b"QUIT\r\n")
        for i in range(n):
            r = c.reply()
            self.assertEqual(r.code, 250, (i, r))
        self.assertEqual(c.reply().code, 221)
        self.assertTrue(c.closed(5))

    def test_many_recipients_pipelined(self):
        c = self.client(self.d)
        c.send(EHLO + envelope(100) + BODY + b".\r\n")
        rs = self.expect(c, [250, 250] + [250] * 100 + [354, 250])
        self.d.wait_log("100 recipient(s)")


class NoPipeliningTest(DaemonTestCase):
    def setUp(self):
        self.d = self.daemon("-p", "sink", "--no-pipelining")

    def test_lock_step_client_works(self):
        c = self.client(self.d)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        # The body is not pipelining: it may come in one packet.
        c.send(BODY + b".\r\n")
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(c.cmd("QUIT").code, 221)

    def test_pipelining_client_gets_503(self):
        """docs/PROTOCOL.md: the first command of a batch is executed (it
        was sent after the previous reply); each later one was sent too
        early and gets 503 5.5.0 instead of being executed.  Every command
        still gets exactly one reply."""
        c = self.client(self.d)
        self.assertEqual(c.ehlo().code, 250)
        c.send(envelope(3))
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (250, "2.1.0"), r)
        for i in range(4):  # RCPT x3, DATA
            r = c.reply()
            self.assertEqual((r.code, r.enhanced), (503, "5.5.0"), (i, r))
        # Nothing else is answered.
        time.sleep(0.3)
        c.sock.settimeout(0.3)
        try:
            extra = c.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            extra = b""
        self.assertEqual(c.buf + extra, b"")
        # The pipelined RCPTs were not executed: DATA has no recipient.
        c.sock.settimeout(10 * SLOW)
        r = c.cmd("DATA")
        self.assertEqual((r.code, r.enhanced), (554, "5.5.1"), r)
        # The session goes on in lock-step.
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(BODY + b".\r\n")
        self.assertEqual(c.reply().code, 250)

    def test_pipelined_greeting_batch(self):
        c = self.client(self.d)
        c.send(EHLO + b"NOOP\r\nQUIT\r\n")
        self.assertEqual(c.reply().code, 250)
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (503, "5.5.0"), r)
        # QUIT is honoured even when sent early.
        self.assertEqual(c.reply().code, 221)
        self.assertTrue(c.closed(5))

    def test_pipelined_errors_count_toward_max_errors(self):
        d = self.daemon("-p", "sink", "--no-pipelining", "--max-errors", "3")
        c = self.client(d)
        c.send(b"NOOP\r\n" * 10)
        self.assertEqual(c.reply().code, 250)
        for _ in range(3):
            self.assertEqual(c.reply().code, 503)
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (421, "4.7.0"), r)
        self.assertTrue(c.closed(5))

    def test_pipelined_body_end_and_next_command(self):
        """Commands sent with the end of data did not wait for its reply:
        they are early too."""
        c = self.client(self.d)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(BODY + b".\r\nNOOP\r\nNOOP\r\n")
        self.assertEqual(c.reply().code, 250)
        for _ in range(2):
            r = c.reply()
            self.assertEqual((r.code, r.enhanced), (503, "5.5.0"), r)
        self.assertEqual(c.cmd("NOOP").code, 250)


if __name__ == "__main__":
    unittest.main()

"""Asynchronous verdicts (SPEC §4, smtphook.h sh_pend/sh_resume,
sh_pool_submit): PENDING resolved by a libev timer (pending_timer), by a
host pool job (pending_thread), or never (pending_never, with the host's
timeout= and on_timeout=); resume before return; backpressure while a
chunk verdict is pending; a client that leaves while a verdict is
pending."""
import hashlib
import os
import re
import socket
import struct
import threading
import time
import unittest

from smtphook_test import DaemonTestCase, Client, transaction, SLOW, VALGRIND
from plugin_helpers import (spec, plugins, session_id, wait_for, start_data, tmpdir,
                            read_file, send_in_parts)

BODY = b"Subject: pending\r\n\r\nbody\r\n"


class PendingTestCase(DaemonTestCase):
    def greeted(self, d):
        c = self.client(d)
        self.assertEqual(c.ehlo().code, 250)
        return c

    @staticmethod
    def gone(c):
        """The client goes away for good: an abortive close (RST).  A plain
        close() only sends a FIN, which the daemon cannot tell from a
        half-close: that one is waited for (test_halfclose.py)."""
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()

    def timed(self, fn, *args):
        t0 = time.monotonic()
        r = fn(*args)
        return r, time.monotonic() - t0

    def assertHealthy(self, d):
        """A fresh session gets a full transaction through."""
        c = Client(d.port)
        try:
            self.assertEqual(c.ehlo().code, 250)
            self.assertEqual(c.cmd("NOOP").code, 250)
            self.assertEqual(c.cmd("QUIT").code, 221)
        finally:
            c.close()


class TimerTest(PendingTestCase):
    def test_rcpt_verdict_comes_from_timer(self):
        d = self.daemon(*plugins(spec("pending_timer", hook="rcpt", delay=0.5,
                                      verdict="reject")), "-p", "sink")
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        r, dt = self.timed(c.cmd, "RCPT TO:<b@test.example>")
        self.assertEqual(r.code, 550, r)
        self.assertEqual(r.enhanced, "5.7.1", r)
        self.assertGreaterEqual(dt, 0.45)
        d.wait_log("pending_timer: resumed rcpt rc=0")

    def test_continue_from_timer_proceeds(self):
        d = self.daemon(*plugins(spec("pending_timer", hook="mail", delay=0.3)), "-p", "sink")
        c = self.greeted(d)
        r, dt = self.timed(transaction, c)
        self.assertEqual(r.code, 250, r)
        self.assertGreaterEqual(dt, 0.25)

    def test_resume_carries_the_reply(self):
        d = self.daemon(*plugins(spec("pending_timer", hook="rcpt", delay=0.2, verdict="reject",
                                      code=553, enh="5.1.2", text="Unknown domain")))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<b@x.example>").lines, ["553 5.1.2 Unknown domain"])

    def test_pending_connect_delays_the_greeting(self):
        d = self.daemon(*plugins(spec("pending_timer", hook="connect", delay=0.5)))
        t0 = time.monotonic()
        c = self.client(d)
        self.assertEqual(c.greeting.code, 220)
        self.assertGreaterEqual(time.monotonic() - t0, 0.45)

    def test_pending_eom_accept(self):
        d = self.daemon(*plugins(spec("pending_timer", hook="eom", delay=0.3, verdict="accept")))
        c = self.greeted(d)
        r, dt = self.timed(transaction, c)
        self.assertEqual(r.code, 250, r)
        self.assertGreaterEqual(dt, 0.25)

    def test_pipelined_commands_wait_for_the_verdict(self):
        d = self.daemon(*plugins(spec("pending_timer", hook="mail", delay=0.5,
                                      verdict="tempfail")), "-p", "sink")
        c = self.greeted(d)
        c.send("MAIL FROM:<a@test.example>\r\nRCPT TO:<b@test.example>\r\nNOOP\r\n")
        replies = [c.reply() for _ in range(3)]
        # The session processed nothing else while MAIL was pending: RCPT
        # was read after the (refused) MAIL, hence out of sequence.
        self.assertEqual([r.code for r in replies], [451, 503, 250], replies)

    def test_resume_before_return(self):
        d = self.daemon(*plugins(spec("pending_timer", hook="rcpt", sync=1, verdict="tempfail",
                                      code=450, enh="4.2.0", text="Try later")))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").lines, ["450 4.2.0 Try later"])
        d.wait_log("pending_timer: resumed before return rc=0")
        # The token is spent: the session goes on normally.
        self.assertEqual(c.cmd("NOOP").code, 250)

    def test_resume_before_return_continue_at_every_hook(self):
        d = self.daemon(*plugins(*(spec("pending_timer", hook=h, sync=1)
                                   for h in ("helo", "mail", "rcpt", "data", "header",
                                             "chunk", "eom"))), "-p", "sink")
        c = self.greeted(d)
        self.assertEqual(transaction(c).code, 250)
        self.assertEqual(d.log().count("resumed before return rc=0"), 7)

    def test_second_resume_of_a_token_is_refused(self):
        d = self.daemon(*plugins(spec("pending_timer", hook="rcpt", delay=0.1,
                                      verdict="accept")), "-p", "sink")
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        # The first verdict (ACCEPT) counts, the second (REJECT) does not.
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").code, 250)
        d.wait_log("pending_timer: resumed rcpt rc=0 again=-1")
        d2 = self.daemon(*plugins(spec("pending_timer", hook="rcpt", sync=1,
                                       verdict="accept")), "-p", "sink")
        c2 = self.greeted(d2)
        self.assertEqual(c2.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c2.cmd("RCPT TO:<b@test.example>").code, 250)
        d2.wait_log("pending_timer: resumed before return rc=0 again=-1")

    def test_pending_header_then_the_rest_of_the_message(self):
        out = os.path.join(tmpdir(self), "msg.eml")
        d = self.daemon(*plugins(spec("pending_timer", hook="header", delay=0.1),
                                 spec("chunk_recorder", file=out, headers=1)))
        c = self.greeted(d)
        body = b"Subject: one\r\nFrom: two@test.example\r\nTo: three@test.example\r\n\r\nbody\r\n"
        r, dt = self.timed(transaction, c, "a@test.example", ("b@test.example",), body)
        self.assertEqual(r.code, 250, r)
        self.assertGreaterEqual(dt, 0.3)
        self.assertEqual(read_file(out + ".headers").decode().splitlines(),
                         ["Subject: one", "From: two@test.example", "To: three@test.example"])
        self.assertTrue(read_file(out).endswith(body))

    def test_resumed_accept_of_a_chunk_skips_that_plugin(self):
        out = os.path.join(tmpdir(self), "msg.eml")
        d = self.daemon(*plugins(spec("pending_timer", hook="chunk", delay=0.1,
                                      verdict="accept"),
                                 spec("trace", name="B"),
                                 spec("chunk_recorder", file=out)))
        c = self.greeted(d)
        sid = session_id(d, c)
        start_data(c)
        parts = [b"Subject: skip\r\n\r\none\r\n", b"two\r\n", b"three\r\n"]
        for i, p in enumerate(parts):
            c.send(p)
            wait_for(lambda: d.log().count("session %s: plugin trace: trace B chunk" % sid) > i,
                     what="chunk %d" % i)
        c.send(b".\r\n")
        self.assertEqual(c.reply().code, 250)
        # Pended once (first chunk, ACCEPT = skip me), never again.
        self.assertEqual(d.log().count("pending_timer: pend chunk"), 1)
        self.assertTrue(read_file(out).endswith(b"".join(parts)))

    def test_resumed_disconnect_at_chunk_closes_at_once(self):
        d = self.daemon(*plugins(spec("pending_timer", hook="chunk", delay=0.2,
                                      verdict="disconnect")), "-p", "sink")
        c = self.greeted(d)
        start_data(c)
        c.send(b"Subject: x\r\n\r\nno end in sight\r\n")
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (421, "4.7.0"), r)
        self.assertTrue(c.closed())
        self.assertHealthy(d)

    def test_chunk_pending_message_arrives_complete(self):
        out = os.path.join(tmpdir(self), "msg.eml")
        d = self.daemon(*plugins(spec("pending_timer", hook="chunk", delay=0.2),
                                 spec("chunk_recorder", file=out)))
        c = self.greeted(d)
        body = b"Subject: slow chunks\r\n\r\n" + b"".join(
            b"line %05d .. some text to fill the line\r\n" % i for i in range(8000))
        body = body.replace(b"\r\nline 00100", b"\r\n.line 00100")
        start_data(c)
        t0 = time.monotonic()
        c.send(body.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        r = c.reply()
        self.assertEqual(r.code, 250, r)
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)
        data = read_file(out)
        self.assertTrue(data.endswith(body), "recorded message differs")
        self.assertEqual(len(data) - data.index(b"Subject: slow chunks"), len(body))
        self.assertGreaterEqual(d.log().count("pending_timer: resumed chunk rc=0"), 1)

    def test_chunk_pending_stops_reading_from_the_client(self):
        out = os.path.join(tmpdir(self), "msg.eml")
        d = self.daemon(*plugins(spec("pending_timer", hook="chunk", delay=3, times=1),
                                 spec("chunk_recorder", file=out)))
        c = self.greeted(d)
        line = b"0123456789" * 10 + b"\r\n"
        body = b"Subject: backpressure\r\n\r\n" + line * (32 * 1024 * 1024 // len(line))
        start_data(c)
        sent = [0]

        def sender():
            view = memoryview(body + b".\r\n")
            while view:
                n = c.sock.send(view[:65536])
                sent[0] += n
                view = view[n:]

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        time.sleep(1.5)
        # The daemon holds at most its input buffer and the sockets'
        # buffers (a few MiB on loopback): the client is stuck long before
        # 32 MiB.
        self.assertTrue(t.is_alive())
        self.assertLess(sent[0], 8 * 1024 * 1024)
        t.join(60 * SLOW)
        self.assertFalse(t.is_alive())
        r = c.reply()
        self.assertEqual(r.code, 250, r)
        data = read_file(out)
        self.assertEqual(hashlib.sha256(data[data.index(b"Subject: backpressure"):]).hexdigest(),
                         hashlib.sha256(body).hexdigest())

    def test_client_gone_while_pending_cancels_the_timer(self):
        d = self.daemon(*plugins(spec("pending_timer", hook="rcpt", delay=1.5)), "-p", "sink")
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        c.send("RCPT TO:<b@test.example>\r\n")
        d.wait_log("pending_timer: pend rcpt")
        self.gone(c)
        d.wait_log("pending_timer: cancelled rcpt")
        # Past the delay: the stopped timer never fired.
        time.sleep(1.7)
        self.assertNotIn("resumed rcpt", d.log())
        self.assertHealthy(d)

    def test_client_gone_while_chunk_pending(self):
        d = self.daemon(*plugins(spec("pending_timer", hook="chunk", delay=1.5)), "-p", "sink")
        c = self.greeted(d)
        start_data(c)
        c.send(b"Subject: gone\r\n\r\nhalf")
        d.wait_log("pending_timer: pend chunk")
        self.gone(c)
        d.wait_log("pending_timer: cancelled chunk")
        self.assertHealthy(d)


class PoolTest(PendingTestCase):
    def test_pool_job_verdict(self):
        d = self.daemon(*plugins(spec("pending_thread", hook="rcpt", ms=200, verdict="reject")))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        r, dt = self.timed(c.cmd, "RCPT TO:<b@test.example>")
        self.assertEqual(r.code, 550, r)
        self.assertGreaterEqual(dt, 0.19)
        d.wait_log("pending_thread: done rcpt rc=0")

    def test_concurrent_jobs_overlap(self):
        d = self.daemon(*plugins(spec("pending_thread", hook="rcpt", ms=300)), "-p", "sink")
        clients = [self.greeted(d) for _ in range(10)]
        for c in clients:
            self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        t0 = time.monotonic()
        for c in clients:
            c.send("RCPT TO:<b@test.example>\r\n")
        for c in clients:
            self.assertEqual(c.reply().code, 250)
        elapsed = time.monotonic() - t0
        # Serial would be 10 x 300 ms; the pool runs them side by side.
        self.assertLess(elapsed, 1.8 * SLOW, elapsed)
        for c in clients:
            c.send(b"DATA\r\n")
            self.assertEqual(c.reply().code, 354)
            c.send(BODY + b".\r\n")
            self.assertEqual(c.reply().code, 250)

    def test_pending_job_does_not_stall_other_sessions(self):
        d = self.daemon(*plugins(spec("pending_thread", hook="rcpt", ms=2000)), "-p", "sink")
        c1 = self.greeted(d)
        self.assertEqual(c1.cmd("MAIL FROM:<a@test.example>").code, 250)
        c1.send("RCPT TO:<b@test.example>\r\n")
        d.wait_log("pending_thread: submit rcpt")
        t0 = time.monotonic()
        c2 = self.client(d)
        self.assertEqual(c2.greeting.code, 220)
        self.assertEqual(c2.ehlo().code, 250)
        self.assertEqual(c2.cmd("MAIL FROM:<c@test.example>").code, 250)
        self.assertLess(time.monotonic() - t0, 0.5 * SLOW)
        # The first session still gets its answer.
        self.assertEqual(c1.reply().code, 250)

    def test_client_gone_before_job_done_late_resume_is_harmless(self):
        d = self.daemon(*plugins(spec("pending_thread", hook="rcpt", ms=800)), "-p", "sink")
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        c.send("RCPT TO:<b@test.example>\r\n")
        d.wait_log("pending_thread: submit rcpt")
        self.gone(c)
        d.wait_log("pending_thread: cancelled rcpt")
        # done still runs; its sh_resume() finds nothing (-1).
        d.wait_log("pending_thread: done rcpt rc=-1")
        self.assertHealthy(d)

    def test_pool_at_chunk_and_eom(self):
        out = os.path.join(tmpdir(self), "msg.eml")
        d = self.daemon(*plugins(spec("pending_thread", hook="chunk", ms=50),
                                 spec("pending_thread", hook="eom", ms=50),
                                 spec("chunk_recorder", file=out)))
        c = self.greeted(d)
        start_data(c)
        send_in_parts(c, [b"Subject: pool\r\n\r\none\r\n", b"two\r\n", b"three\r\n.\r\n"])
        self.assertEqual(c.reply().code, 250)
        self.assertTrue(read_file(out).endswith(b"Subject: pool\r\n\r\none\r\ntwo\r\nthree\r\n"))


class NeverTest(PendingTestCase):
    def test_timeout_default_is_451_443(self):
        d = self.daemon(*plugins(spec("pending_never", hook="rcpt", timeout=1)), "-p", "sink")
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        r, dt = self.timed(c.cmd, "RCPT TO:<b@test.example>")
        self.assertEqual(r.code, 451, r)
        self.assertEqual(r.enhanced, "4.4.3", r)
        self.assertGreaterEqual(dt, 0.9)
        self.assertLess(dt, 5 * SLOW)
        log = d.wait_log("pending_never: cancelled rcpt")
        self.assertRegex(log, r"plugin pending_never gave no rcpt verdict within 1s; "
                              r"taken as tempfail")
        # The session goes on.
        self.assertEqual(c.cmd("NOOP").code, 250)

    def test_on_timeout_continue_proceeds(self):
        d = self.daemon(*plugins(spec("pending_never", hook="rcpt", timeout=1,
                                      on_timeout="continue")), "-p", "sink")
        c = self.greeted(d)
        r, dt = self.timed(transaction, c)
        self.assertEqual(r.code, 250, r)
        self.assertGreaterEqual(dt, 0.9)
        self.assertIn("taken as continue", d.log())

    def test_on_timeout_reject_is_5xx(self):
        d = self.daemon(*plugins(spec("pending_never", hook="rcpt", timeout=1,
                                      on_timeout="reject")), "-p", "sink")
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        r = c.cmd("RCPT TO:<b@test.example>")
        self.assertEqual(r.code // 100, 5, r)
        self.assertIn("pending_never gave no rcpt verdict", d.log())
        d.wait_log("pending_never: cancelled rcpt")

    def test_timeout_at_eom_then_next_transaction(self):
        d = self.daemon(*plugins(spec("pending_never", hook="eom", timeout=1)), "-p", "sink")
        c = self.greeted(d)
        r = transaction(c)
        self.assertEqual((r.code, r.enhanced), (451, "4.4.3"), r)
        d.wait_log("pending_never: cancelled eom")
        # Same session, a new transaction gets as far as eom again.
        self.assertEqual(transaction(c).code, 451)

    def test_timeout_continue_at_eom_lets_later_plugin_accept(self):
        d = self.daemon(*plugins(spec("pending_never", hook="eom", timeout=1,
                                      on_timeout="continue")), "-p", "sink")
        c = self.greeted(d)
        self.assertEqual(transaction(c).code, 250)

    def test_timeout_at_chunk_drains_and_replies_after_end(self):
        d = self.daemon(*plugins(spec("pending_never", hook="chunk", timeout=1)), "-p", "sink")
        c = self.greeted(d)
        start_data(c)
        c.send(b"Subject: t\r\n\r\nbody\r\n")
        d.wait_log("pending_never: cancelled chunk")
        c.send(b"more body\r\n.\r\n")
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (451, "4.4.3"), r)
        self.assertEqual(c.cmd("NOOP").code, 250)

    def test_timeout_at_connect_refuses_with_421(self):
        d = self.daemon(*plugins(spec("pending_never", hook="connect", timeout=1)))
        c = self.client(d, greeting=False)
        r = c.reply()
        self.assertEqual(r.code, 421, r)
        self.assertTrue(c.closed())

    def test_client_gone_while_never_pending(self):
        d = self.daemon(*plugins(spec("pending_never", hook="rcpt", timeout=30)), "-p", "sink")
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        c.send("RCPT TO:<b@test.example>\r\n")
        d.wait_log("pending_never: pend rcpt")
        self.gone(c)
        d.wait_log("pending_never: cancelled rcpt")
        self.assertHealthy(d)

    def test_reserved_keys_are_not_passed_to_init(self):
        # pending_never's init refuses to start if it sees them.
        d = self.daemon(*plugins(spec("pending_never", hook="vrfy", timeout=1,
                                      on_timeout="reject")))
        c = self.greeted(d)
        self.assertEqual(c.cmd("VRFY x").code // 100, 5)


if __name__ == "__main__":
    unittest.main()

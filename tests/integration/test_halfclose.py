"""A client that half-closes (shutdown(SHUT_WR), `printf ... | nc -N`)
after pipelining a whole session (docs/PROTOCOL.md "Connections"): every
complete command already received is acted on, plugins decide (a PENDING
verdict completes, it is not cancelled), the replies go out, then the
connection closes.  A command line cut off by the EOF has no effect; a
body or BDAT chunk cut off is a lost transaction (nothing stored)."""
import os
import shutil
import socket
import struct
import tempfile
import time

from smtphook_test import DaemonTestCase, SLOW
from plugin_helpers import spec

EHLO = b"EHLO client.test.example\r\n"
ENVELOPE = b"MAIL FROM:<a@test.example>\r\nRCPT TO:<b@test.example>\r\n"
BODY = b"Subject: halfclose\r\n\r\nhello\r\n"
TX = EHLO + ENVELOPE + b"DATA\r\n" + BODY + b".\r\n"


def codes(data):
    """The reply codes in data, one per reply (multi-line folded)."""
    out = []
    for line in data.split(b"\r\n"):
        if len(line) >= 4 and line[3:4] == b" ":
            out.append(int(line[:3]))
    return out


class HalfCloseTestCase(DaemonTestCase):
    def setUp(self):
        root = tempfile.mkdtemp(prefix="smtphook-halfclose-")
        self.addCleanup(shutil.rmtree, root, True)
        self.box = os.path.join(root, "box")

    def start(self, *before, extra=()):
        args = []
        for b in before:
            args += ["-p", b]
        return self.daemon(*args, "-p", "maildump:dir=" + self.box, *extra)

    def stored(self):
        new = os.path.join(self.box, "new")
        out = []
        for n in sorted(os.listdir(new)) if os.path.isdir(new) else []:
            with open(os.path.join(new, n), "rb") as f:
                out.append(f.read())
        return out

    def tmp_files(self):
        tmp = os.path.join(self.box, "tmp")
        return os.listdir(tmp) if os.path.isdir(tmp) else []

    def half_close(self, d, data, timeout=10):
        """Connect, send data in one write, shut down the sending side, and
        read everything up to the server's close: the octets received."""
        s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout * SLOW)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = b""
            deadline = time.monotonic() + timeout * SLOW
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    return got
                got += chunk
            raise AssertionError("server did not close; got %r" % got)
        finally:
            s.close()


class DataTest(HalfCloseTestCase):
    def test_pipelined_transaction_and_quit(self):
        d = self.start()
        got = self.half_close(d, TX + b"QUIT\r\n")
        self.assertEqual(codes(got), [220, 250, 250, 250, 354, 250, 221], got)
        self.assertIn(b"250 2.0.0 Ok: queued as", got)
        msgs = self.stored()
        self.assertEqual(len(msgs), 1)
        self.assertTrue(msgs[0].endswith(BODY), msgs[0])
        d.wait_log('reason="quit"')

    def test_truncated_last_command_has_no_effect(self):
        d = self.start()
        got = self.half_close(d, TX + b"MAIL FROM:<late@test.example>")
        self.assertEqual(codes(got), [220, 250, 250, 250, 354, 250], got)
        self.assertEqual(len(self.stored()), 1)
        log = d.wait_log('reason="client closed mid-command"')
        self.assertIn("mail=1 ", log)

    def test_unterminated_body_is_lost(self):
        d = self.start()
        got = self.half_close(d, EHLO + ENVELOPE + b"DATA\r\n" + BODY + b"more\r\n.")
        self.assertEqual(codes(got), [220, 250, 250, 250, 354], got)
        d.wait_log('reason="client closed during DATA"')
        self.assertEqual(self.stored(), [])
        self.assertEqual(self.tmp_files(), [])

    def test_two_transactions(self):
        d = self.start()
        got = self.half_close(d, TX + ENVELOPE + b"DATA\r\n" + BODY + b".\r\nQUIT\r\n")
        self.assertEqual(codes(got), [220, 250, 250, 250, 354, 250, 250, 250, 354, 250,
                                      221], got)
        self.assertEqual(len(self.stored()), 2)


class PendingTest(HalfCloseTestCase):
    def test_pending_eom_verdict_completes_after_eof(self):
        d = self.start(spec("pending_timer", hook="eom", delay=0.5))
        t0 = time.monotonic()
        got = self.half_close(d, TX + b"QUIT\r\n")
        self.assertGreaterEqual(time.monotonic() - t0, 0.45)
        self.assertEqual(codes(got), [220, 250, 250, 250, 354, 250, 221], got)
        self.assertEqual(len(self.stored()), 1)
        log = d.wait_log("pending_timer: resumed eom")
        self.assertNotIn("pending_timer: cancelled", log)

    def test_pool_verdict_completes_after_eof(self):
        d = self.start(spec("pending_thread", hook="rcpt", ms=300))
        got = self.half_close(d, TX + b"QUIT\r\n")
        self.assertEqual(codes(got), [220, 250, 250, 250, 354, 250, 221], got)
        self.assertEqual(len(self.stored()), 1)
        log = d.wait_log("pending_thread: done rcpt rc=0")
        self.assertNotIn("pending_thread: cancelled", log)

    def test_pending_timeout_still_bounds_a_half_closed_session(self):
        d = self.start(spec("pending_never", hook="eom", timeout=1))
        t0 = time.monotonic()
        got = self.half_close(d, TX + b"QUIT\r\n")
        self.assertLess(time.monotonic() - t0, 5 * SLOW)
        self.assertEqual(codes(got), [220, 250, 250, 250, 354, 451, 221], got)
        d.wait_log("pending_never: cancelled eom")
        self.assertEqual(self.stored(), [])

    def test_reset_while_pending_still_cancels(self):
        d = self.start(spec("pending_timer", hook="rcpt", delay=1.5))
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10 * SLOW)
        s.sendall(EHLO + ENVELOPE)
        d.wait_log("pending_timer: pend rcpt")
        # An abortive close: the client is gone, not half-closed.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        d.wait_log("pending_timer: cancelled rcpt")
        time.sleep(1.7)
        self.assertNotIn("pending_timer: resumed rcpt", d.log())


class BdatTest(HalfCloseTestCase):
    def test_bdat_chunks_and_quit(self):
        d = self.start()
        got = self.half_close(d, EHLO + ENVELOPE + b"BDAT 20\r\n" + BODY[:20] +
                              b"BDAT %d LAST\r\n" % (len(BODY) - 20) + BODY[20:] +
                              b"QUIT\r\n")
        self.assertEqual(codes(got), [220, 250, 250, 250, 250, 250, 221], got)
        msgs = self.stored()
        self.assertEqual(len(msgs), 1)
        self.assertTrue(msgs[0].endswith(BODY), msgs[0])

    def test_bdat_pending_eom(self):
        d = self.start(spec("pending_timer", hook="eom", delay=0.3))
        got = self.half_close(d, EHLO + ENVELOPE + b"BDAT %d LAST\r\n" % len(BODY) +
                              BODY + b"QUIT\r\n")
        self.assertEqual(codes(got), [220, 250, 250, 250, 250, 221], got)
        self.assertEqual(len(self.stored()), 1)

    def test_unterminated_chunk_is_lost(self):
        d = self.start()
        got = self.half_close(d, EHLO + ENVELOPE + b"BDAT 1000 LAST\r\n" + BODY)
        self.assertEqual(codes(got), [220, 250, 250, 250], got)
        d.wait_log('reason="client closed during BDAT"')
        self.assertEqual(self.stored(), [])
        self.assertEqual(self.tmp_files(), [])


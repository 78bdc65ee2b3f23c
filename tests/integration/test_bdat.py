"""BDAT (RFC 3030 CHUNKING) against the real daemon, sent raw: exact bytes
(no unstuffing, no end marker), chunk sizes from 0 to several MiB,
pipelining, sequence and syntax errors, --max-size, refusals by plugins
mid-stream, and the session staying usable afterwards.

No installed client speaks CHUNKING (Python's smtplib and swaks only send
DATA), so every sequence here is written out by hand.  The recording is
done by the test plugin chunk_recorder, which writes the host's trace
block followed by every chunk it received to file=PATH at eom.
"""
import hashlib
import os
import re
import tempfile
import time
import unittest

from smtphook_test import DaemonTestCase, PLUGIN_DIR, SLOW, plugin_path, require_bundled_plugin

RECORDER = plugin_path("chunk_recorder")
REJECT_AT = plugin_path("reject_at")
TRACE_RE = re.compile(rb"\AReceived: [^\r\n]*\r\n(?:\t[^\r\n]*\r\n)*")
# What DATA would take as an end marker, dot-stuffing or a smuggled
# transaction: in a BDAT chunk it is all just message.
TRICKY = (b"Subject: tricky\r\n\r\n.\r\n..two dots\r\n\r\n.\r\n"
          b"bare\nLF\rCR\r\n.\n\x00\xff\xc3\xa4\r\n"
          b"MAIL FROM:<evil@test.example>\r\nQUIT\r\n")


def bdat(size, last=False):
    return ("BDAT %d%s\r\n" % (size, " LAST" if last else "")).encode()


class BdatTestCase(DaemonTestCase):
    extra_args = ()
    plugins = ()

    def setUp(self):
        for p in (RECORDER, REJECT_AT):
            if not os.path.exists(p):
                self.fail("test plugin not built: %s" % p)
        tmp = tempfile.TemporaryDirectory(prefix="smtphook-bdat-")
        self.addCleanup(tmp.cleanup)
        self.file = os.path.join(tmp.name, "message")
        args = []
        for spec in self.plugins:
            args += ["-p", spec]
        args += ["-p", "%s:file=%s" % (RECORDER, self.file)]
        self.d = self.daemon(*(args + list(self.extra_args)))

    def ehlo_client(self):
        c = self.client(self.d)
        r = c.ehlo()
        self.assertEqual(r.code, 250, r)
        return c

    def start(self, c, rcpts=1):
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        for i in range(rcpts):
            self.assertEqual(c.cmd("RCPT TO:<r%d@test.example>" % i).code, 250)

    def chunk(self, c, data, last=False):
        """One BDAT with its octets; its reply."""
        c.send(bdat(len(data), last) + data)
        return c.reply()

    def recorded(self, reply):
        """The message of the transaction that reply accepted."""
        self.assertEqual(reply.code, 250, reply)
        self.assertIn("queued as", reply.text)
        qid = reply.text.rsplit(" ", 1)[-1]
        with open(self.file, "rb") as f:
            data = f.read()
        m = TRACE_RE.match(data)
        self.assertIsNotNone(m, "no trace block at the start of %r" % data[:200])
        self.assertIn((" id %s" % qid).encode(), m.group(0))
        return data[m.end():]

    def assertChunkOk(self, r, size):
        self.assertEqual((r.code, r.text), (250, "2.0.0 %d octets received" % size), r)


class BasicTest(BdatTestCase):
    def test_chunking_advertised_not_binarymime(self):
        c = self.client(self.d)
        caps = [t.upper() for t in c.ehlo().texts[1:]]
        self.assertIn("CHUNKING", caps)
        self.assertIn("DSN", caps)
        self.assertNotIn("BINARYMIME", caps)
        r = c.cmd("MAIL FROM:<a@test.example> BODY=BINARYMIME")
        self.assertEqual((r.code, r.enhanced), (555, "5.5.4"), r)

    def test_single_last_chunk_stored_exactly(self):
        c = self.ehlo_client()
        self.start(c)
        r = self.chunk(c, TRICKY, last=True)
        self.assertEqual(self.recorded(r), TRICKY)
        # The smuggled-looking lines were data: the session is as it was.
        self.assertEqual(c.cmd("NOOP").code, 250)
        with open(self.file, "rb") as f:
            self.assertIn(b" with ESMTP id ", f.read(300))

    def test_several_chunks(self):
        c = self.ehlo_client()
        self.start(c)
        parts = [b"Subject: three\r\n", b"\r\nfirst line\r\n", b"second line\r\n"]
        self.assertChunkOk(self.chunk(c, parts[0]), len(parts[0]))
        self.assertChunkOk(self.chunk(c, parts[1]), len(parts[1]))
        r = self.chunk(c, parts[2], last=True)
        self.assertEqual(self.recorded(r), b"".join(parts))

    def test_zero_last_as_the_only_bdat_is_an_empty_message(self):
        c = self.ehlo_client()
        self.start(c)
        c.send(b"BDAT 0 LAST\r\n")
        self.assertEqual(self.recorded(c.reply()), b"")

    def test_chunks_then_zero_last(self):
        c = self.ehlo_client()
        self.start(c)
        self.assertChunkOk(self.chunk(c, b"Subject: z\r\n\r\n"), 14)
        self.assertChunkOk(self.chunk(c, b""), 0)
        self.assertChunkOk(self.chunk(c, b"body\r\n"), 6)
        c.send(b"BDAT 0 LAST\r\n")
        self.assertEqual(self.recorded(c.reply()), b"Subject: z\r\n\r\nbody\r\n")

    def test_one_octet_chunks(self):
        c = self.ehlo_client()
        self.start(c)
        message = b"Subject: tiny\r\n\r\n.\r\nx\r\n"
        for i in range(len(message) - 1):
            self.assertChunkOk(self.chunk(c, message[i:i + 1]), 1)
        r = self.chunk(c, message[-1:], last=True)
        self.assertEqual(self.recorded(r), message)

    def test_chunk_larger_than_the_input_buffer(self):
        c = self.ehlo_client()
        self.start(c)
        body = bytes((i * 31 + i // 7) & 0xff for i in range(200 * 1024 + 17))
        c.send(bdat(len(body), last=True))
        view = memoryview(body)
        for off in range(0, len(body), 4096):
            c.send(view[off:off + 4096])
        self.assertEqual(self.recorded(c.reply()), body)

    def test_five_mib_in_three_chunks(self):
        c = self.ehlo_client()
        self.start(c)
        line = b"0123456789abcdefghijklmnopqrstuvwxyz\r\n"
        body = b"Subject: big\r\n\r\n" + line * ((5 << 20) // len(line) + 1)
        self.assertGreater(len(body), 5 << 20)
        thirds = [body[:len(body) // 3], body[len(body) // 3:2 * len(body) // 3],
                  body[2 * len(body) // 3:]]
        c.sock.settimeout(60 * SLOW)
        start = time.time()
        for i, part in enumerate(thirds):
            c.send(bdat(len(part), last=i == 2))
            view = memoryview(part)
            for off in range(0, len(part), 1 << 16):
                c.send(view[off:off + (1 << 16)])
            r = c.reply()
            if i < 2:
                self.assertChunkOk(r, len(part))
        self.assertLess(time.time() - start, 30 * SLOW)
        rec = self.recorded(r)
        self.assertEqual(len(rec), len(body))
        self.assertEqual(hashlib.sha256(rec).hexdigest(), hashlib.sha256(body).hexdigest())
        self.d.wait_log("%d octets" % len(body))

    def test_bare_lf_policy_is_for_data_only(self):
        # The default --bare-lf=reject refuses this after DATA; BDAT has no
        # dot/CRLF framing, so a bare LF cannot end or smuggle anything.
        c = self.ehlo_client()
        self.start(c)
        message = b"Subject: lf\n\nline\n.\nend\n"
        self.assertEqual(self.recorded(self.chunk(c, message, last=True)), message)

    def test_client_closes_mid_chunk(self):
        c = self.ehlo_client()
        self.start(c)
        c.send(bdat(1000) + b"x" * 10)
        c.close()
        self.d.wait_log("bdat=0/1")
        self.assertFalse(os.path.exists(self.file))
        c = self.ehlo_client()
        self.start(c)
        self.assertEqual(self.recorded(self.chunk(c, b"ok\r\n", last=True)), b"ok\r\n")


class PipeliningTest(BdatTestCase):
    def test_pipelined_bdats_in_one_send(self):
        c = self.ehlo_client()
        c.send(b"MAIL FROM:<a@test.example>\r\nRCPT TO:<b@test.example>\r\n"
               + bdat(5) + b"Sub: " + bdat(4) + b"x\r\n\r" + bdat(7, True)
               + b"\nbody\r\nNOOP\r\n")
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(c.reply().code, 250)
        self.assertChunkOk(c.reply(), 5)
        self.assertChunkOk(c.reply(), 4)
        self.assertEqual(self.recorded(c.reply()), b"Sub: x\r\n\r\nbody\r\n")
        self.assertEqual(c.reply().text, "2.0.0 Ok")

    def test_bdat_last_then_next_transaction_in_the_same_send(self):
        c = self.ehlo_client()
        self.start(c)
        c.send(bdat(7, True) + b"first\r\n"
               + b"MAIL FROM:<a@test.example>\r\nRCPT TO:<b@test.example>\r\n"
               + bdat(8, True) + b"second\r\nQUIT\r\n")
        first = c.reply()
        self.assertEqual(first.code, 250, first)
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(c.reply().code, 250)
        second = c.reply()
        self.assertEqual(self.recorded(second), b"second\r\n")
        self.assertNotEqual(first.text, second.text)
        self.assertEqual(c.reply().code, 221)

    def test_bdat_and_data_transactions_alternate(self):
        c = self.ehlo_client()
        self.start(c)
        self.assertEqual(self.recorded(self.chunk(c, b"one\r\n", True)), b"one\r\n")
        self.start(c)
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(b"two\r\n.\r\n")
        self.assertEqual(self.recorded(c.reply()), b"two\r\n")
        self.start(c)
        self.assertEqual(self.recorded(self.chunk(c, b"three\r\n", True)), b"three\r\n")


class NoPipeliningTest(BdatTestCase):
    extra_args = ("--no-pipelining",)

    def test_bdat_waiting_for_each_reply_is_fine(self):
        c = self.ehlo_client()
        self.start(c)
        self.assertChunkOk(self.chunk(c, b"Subject: a\r\n\r\n"), 14)
        self.assertEqual(self.recorded(self.chunk(c, b"b\r\n", True)), b"Subject: a\r\n\r\nb\r\n")

    def test_bdat_sent_before_the_reply_is_refused_and_read(self):
        c = self.ehlo_client()
        self.start(c)
        c.send(bdat(3) + b"abc" + bdat(6, True) + b"QUIT\r\n")
        self.assertChunkOk(c.reply(), 3)
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (503, "5.5.0"), r)
        self.assertEqual(c.cmd("NOOP").code, 250)
        self.assertFalse(os.path.exists(self.file))


class SequenceTest(BdatTestCase):
    def test_data_after_bdat(self):
        c = self.ehlo_client()
        self.start(c)
        self.assertChunkOk(self.chunk(c, b"Subject: mixed\r\n"), 16)
        r = c.cmd("DATA")
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"), r)
        self.assertIn("DATA after BDAT", r.text)
        self.assertEqual(c.cmd("RSET").code, 250)
        self.assertFalse(os.path.exists(self.file))
        self.start(c)
        self.assertEqual(self.recorded(self.chunk(c, b"clean\r\n", True)), b"clean\r\n")

    def test_bdat_out_of_sequence_reads_its_octets(self):
        c = self.client(self.d)
        payload = b"QUIT\r\n"
        r = self.chunk(c, payload)
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"), r)
        self.assertEqual(c.ehlo().code, 250)
        r = self.chunk(c, payload, last=True)
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"), r)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        r = self.chunk(c, payload)
        self.assertEqual((r.code, r.enhanced), (554, "5.5.1"), r)
        # None of the octets was taken for a QUIT.
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").code, 250)
        self.assertEqual(self.recorded(self.chunk(c, b"late\r\n", True)), b"late\r\n")

    def test_bad_syntax_closes_the_connection(self):
        for arg in (b"", b"-1", b"12 LAST now", b"1x", b"99999999999999999999 LAST", b"LAST"):
            c = self.ehlo_client()
            self.start(c)
            c.send(b"BDAT " + arg + b"\r\nMAIL FROM:<evil@test.example>\r\n")
            r = c.reply()
            self.assertEqual((r.code, r.enhanced), (501, "5.5.4"), (arg, r))
            r = c.reply()
            self.assertEqual(r.code, 421, (arg, r))
            self.assertTrue(c.closed(5), arg)
        self.assertFalse(os.path.exists(self.file))


class MaxSizeTest(BdatTestCase):
    extra_args = ("-s", "100")

    def test_exactly_max_size_in_two_chunks(self):
        c = self.ehlo_client()
        self.start(c)
        self.assertChunkOk(self.chunk(c, b"a" * 60), 60)
        self.assertEqual(self.recorded(self.chunk(c, b"b" * 40, True)), b"a" * 60 + b"b" * 40)

    def test_announced_size_over_the_limit(self):
        c = self.ehlo_client()
        self.start(c)
        self.assertChunkOk(self.chunk(c, b"a" * 60), 60)
        # Refused at the command, octets read and thrown away.
        c.send(bdat(41) + b"QUIT\r\n" + b"b" * 35 + bdat(0, True))
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
        self.assertFalse(os.path.exists(self.file))
        self.assertEqual(c.cmd("NOOP").code, 250)
        self.start(c)
        self.assertEqual(self.recorded(self.chunk(c, b"small\r\n", True)), b"small\r\n")

    def test_huge_first_chunk(self):
        c = self.ehlo_client()
        self.start(c)
        c.send(bdat(300 * 1024, True))
        c.send(b"z" * (300 * 1024))
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
        self.assertEqual(c.cmd("NOOP").code, 250)


class RefusalTest(BdatTestCase):
    plugins = ("%s:hook=chunk,verdict=reject,code=550,enh=5.7.1,text=No chunks today"
               % REJECT_AT,)

    def test_reject_mid_stream(self):
        c = self.ehlo_client()
        self.start(c)
        c.send(bdat(12) + b"Subject: r\r\n" + bdat(8) + b"RSET\r\n\r\n"
               + bdat(6, True) + b"QUIT\r\n" + b"NOOP\r\n")
        r = c.reply()
        self.assertEqual((r.code, r.text), (550, "5.7.1 No chunks today"), r)
        for _ in range(2):
            r = c.reply()
            self.assertEqual((r.code, r.enhanced), (550, "5.7.1"), r)
        self.assertEqual(c.reply().code, 250)  # the NOOP
        self.assertFalse(os.path.exists(self.file))
        self.d.wait_log("reject_at: chunk -> reject")
        # Usable: a message with no chunk at all reaches eom.
        self.assertEqual(c.cmd("RSET").code, 250)
        self.start(c)
        c.send(b"BDAT 0 LAST\r\n")
        self.assertEqual(self.recorded(c.reply()), b"")

    def test_reject_in_the_last_chunk(self):
        c = self.ehlo_client()
        self.start(c)
        r = self.chunk(c, b"x" * 100000, last=True)
        self.assertEqual((r.code, r.enhanced), (550, "5.7.1"), r)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)


class TempfailTest(BdatTestCase):
    plugins = ("%s:hook=chunk,verdict=tempfail" % REJECT_AT,)

    def test_tempfail_stays_temporary_for_the_pipelined_rest(self):
        c = self.ehlo_client()
        self.start(c)
        c.send(bdat(3) + b"abc" + bdat(3) + b"def" + bdat(3, True) + b"ghi")
        for _ in range(3):
            r = c.reply()
            self.assertEqual((r.code, r.enhanced), (451, "4.7.1"), r)
        self.assertEqual(c.cmd("RSET").code, 250)


class DataHookRefusalTest(BdatTestCase):
    plugins = ("%s:hook=data,verdict=reject" % REJECT_AT,)

    def test_data_hook_refusal_answers_the_first_bdat(self):
        c = self.ehlo_client()
        self.start(c)
        c.send(bdat(6) + b"QUIT\r\n" + bdat(6, True) + b"QUIT\r\n")
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (554, "5.7.1"), r)
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (554, "5.7.1"), r)
        self.assertEqual(c.cmd("NOOP").code, 250)


class PendingChunkTest(BdatTestCase):
    plugins = ("%s:hook=chunk,delay=0.01" % plugin_path("pending_timer"),)

    def test_pending_at_every_piece_keeps_the_bytes_exact(self):
        c = self.ehlo_client()
        self.start(c)
        body = bytes((i * 13 + i // 509) & 0xff for i in range(1 << 20))
        # One send for both chunks: the daemon reads only while no verdict
        # is pending, so the rest waits in the socket (backpressure).
        c.sock.settimeout(60 * SLOW)
        c.send(bdat(700000) + body[:700000] + bdat(len(body) - 700000, True)
               + body[700000:])
        self.assertChunkOk(c.reply(), 700000)
        self.assertEqual(self.recorded(c.reply()), body)


class PendingRefusalTest(BdatTestCase):
    plugins = ("%s:hook=chunk,delay=0.05,verdict=tempfail,code=452,enh=4.3.1,"
               "text=Later" % plugin_path("pending_timer"),)

    def test_pending_refusal_answers_the_current_bdat(self):
        c = self.ehlo_client()
        self.start(c)
        c.send(bdat(5000) + b"a" * 5000 + bdat(5000) + b"b" * 5000
               + bdat(3, True) + b"end" + b"NOOP\r\n")
        r = c.reply()
        self.assertEqual((r.code, r.text), (452, "4.3.1 Later"), r)
        for _ in range(2):
            r = c.reply()
            self.assertEqual((r.code, r.enhanced), (452, "4.3.1"), r)
        self.assertEqual(c.reply().code, 250)


class SizefilterTest(BdatTestCase):
    plugins = ("sizefilter:max=1000",)

    def setUp(self):
        require_bundled_plugin("sizefilter")
        super().setUp()

    def test_sizefilter_refuses_through_chunk(self):
        c = self.ehlo_client()
        self.start(c)
        self.assertChunkOk(self.chunk(c, b"a" * 600), 600)
        r = self.chunk(c, b"b" * 600, last=True)
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
        self.assertFalse(os.path.exists(self.file))
        self.start(c)
        self.assertEqual(self.recorded(self.chunk(c, b"fits\r\n", True)), b"fits\r\n")


class TimeoutTest(BdatTestCase):
    extra_args = ("--timeout", "1")

    def test_timeout_inside_a_chunk(self):
        c = self.ehlo_client()
        self.start(c)
        c.send(bdat(100) + b"only ten..")
        c.sock.settimeout(10 * SLOW)
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (421, "4.4.2"), r)
        self.assertTrue(c.closed(5))


if __name__ == "__main__":
    unittest.main()

"""The DATA stream (SPEC §3): exact dot-unstuffing, CRLF kept, 8-bit and
NUL bytes, any packet split, the SMTP smuggling sequences, --bare-lf,
--max-size and a large message.

The recording is done by the test plugin chunk_recorder (tests/plugins),
which writes the host's trace block followed by every chunk it received to
file=PATH at eom; the tests strip the trace block and compare the rest
byte for byte with the message the client meant.
"""
import hashlib
import os
import re
import socket
import subprocess
import tempfile
import time
import unittest

from smtphook_test import DaemonTestCase, SLOW, VALGRIND, plugin_path, require_c_compiler

RECORDER = plugin_path("chunk_recorder")
TRACE_RE = re.compile(rb"\AReceived: [^\r\n]*\r\n(?:\t[^\r\n]*\r\n)*")
SMUGGLED = b"MAIL FROM:<evil@test.example>\r\nRCPT TO:<victim@test.example>\r\nDATA\r\n" \
    b"Subject: smuggled\r\n\r\nevil\r\n"


def stuff(message):
    """What a client sends for message (RFC 5321 §4.5.2), end marker
    included.  message must use CRLF line ends."""
    wire = re.sub(rb"(?m)^\.", b"..", message)
    if wire and not wire.endswith(b"\r\n"):
        wire += b"\r\n"
    return wire + b".\r\n"


class DataTestCase(DaemonTestCase):
    extra_args = ()

    def setUp(self):
        if not os.path.exists(RECORDER):
            self.fail("test plugin not built: %s" % RECORDER)
        tmp = tempfile.TemporaryDirectory(prefix="smtphook-data-")
        self.addCleanup(tmp.cleanup)
        self.file = os.path.join(tmp.name, "message")
        self.d = self.daemon("-p", "%s:file=%s" % (RECORDER, self.file),
                             *self.extra_args)

    def start(self, c, rcpts=1):
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        for i in range(rcpts):
            self.assertEqual(c.cmd("RCPT TO:<r%d@test.example>" % i).code, 250)
        r = c.cmd("DATA")
        self.assertEqual(r.code, 354, r)

    def send_raw(self, c, wire):
        """One transaction whose DATA stream is wire (end marker included);
        returns the final reply."""
        self.start(c)
        c.send(wire)
        return c.reply()

    def recorded(self, reply):
        """The message of the transaction that reply accepted."""
        self.assertEqual(reply.code, 250, reply)
        qid = reply.text.rsplit(" ", 1)[-1]
        with open(self.file, "rb") as f:
            data = f.read()
        m = TRACE_RE.match(data)
        self.assertIsNotNone(m, "no trace block at the start of %r" % data[:200])
        self.assertIn((" id %s" % qid).encode(), m.group(0))
        return data[m.end():]

    def assertRecorded(self, c, wire, message):
        r = self.send_raw(c, wire)
        self.assertEqual(self.recorded(r), message)

    def ehlo_client(self):
        c = self.client(self.d)
        self.assertEqual(c.ehlo().code, 250)
        return c


class DotStuffingTest(DataTestCase):
    def test_unstuffing_exact(self):
        c = self.ehlo_client()
        wire = (b".x first line with a stuffed dot\r\n"
                b"..\r\n"
                b"...x\r\n"
                b". \r\n"
                b"a.b\r\n"
                b"a\r\n"
                b".\r\n")
        message = (b"x first line with a stuffed dot\r\n"
                   b".\r\n"
                   b"..x\r\n"
                   b" \r\n"
                   b"a.b\r\n"
                   b"a\r\n")
        self.assertRecorded(c, wire, message)

    def test_dot_only_message(self):
        c = self.ehlo_client()
        self.assertRecorded(c, b"..\r\n.\r\n", b".\r\n")

    def test_stuffed_roundtrip(self):
        c = self.ehlo_client()
        message = (b"From: a@test.example\r\nSubject: dots\r\n\r\n"
                   b".\r\n..\r\n...\r\n.leading\r\n..two\r\n"
                   b"trailing.\r\n.\r\n\r\n.end\r\n")
        self.assertRecorded(c, stuff(message), message)

    def test_empty_message(self):
        c = self.ehlo_client()
        self.assertRecorded(c, b".\r\n", b"")

    def test_empty_lines_kept(self):
        c = self.ehlo_client()
        self.assertRecorded(c, b"\r\n\r\n\r\n.\r\n", b"\r\n\r\n\r\n")


class BytesTest(DataTestCase):
    def test_crlf_kept_and_bytes_exact(self):
        c = self.ehlo_client()
        message = (b"Subject: t\r\nX-Folded: a\r\n\tb\r\n\r\n"
                   b"line one\r\nline two  \r\n\ttabbed\r\n")
        self.assertRecorded(c, stuff(message), message)

    def test_8bit_and_nul_bytes(self):
        c = self.ehlo_client()
        allbytes = bytes(b for b in range(256) if b not in (10, 13))
        message = (b"Subject: bin\r\n\r\n" + allbytes + b"\r\n" +
                   b"\x00\r\n\x00.\x00\r\n\xff\xfe\r\n" +
                   "gr\u00fc\u00dfe \u2603\r\n".encode())
        self.assertRecorded(c, stuff(message), message)

    def test_long_line_without_limit(self):
        """No line-length limit inside the body (the host does not enforce
        RFC 5322's 998): a 200 KiB line, longer than the input buffer,
        passes intact."""
        c = self.ehlo_client()
        message = b"Subject: long\r\n\r\n" + b"y" * (200 * 1024) + b"\r\n"
        self.assertRecorded(c, stuff(message), message)

    def test_message_split_into_one_byte_sends(self):
        c = self.ehlo_client()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        message = (b"Subject: bytes\r\n\r\n.one\r\n..\r\n\r\n.\r\nlast.\r\n"
                   b"x\x00\xff\r\n")
        wire = stuff(message)
        self.start(c)
        for i in range(len(wire)):
            c.send(wire[i:i + 1])
            if i % 8 == 0:
                time.sleep(0.002)
        self.assertEqual(self.recorded(c.reply()), message)
        # The session is in step: exactly one reply came.
        self.assertEqual(c.cmd("NOOP").code, 250)

    def test_end_marker_split_at_every_position(self):
        c = self.ehlo_client()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for cut in range(1, 8):
            with self.subTest(cut=cut):
                message = b"Subject: cut %d\r\n\r\nbody\r\n" % cut
                wire = stuff(message)  # ends "body\r\n.\r\n"
                split = len(wire) - cut  # from after "\r\n." back into "body"
                self.start(c)
                c.send(wire[:split])
                time.sleep(0.1)
                c.send(wire[split:])
                self.assertEqual(self.recorded(c.reply()), message)

    def test_stuffed_dot_split_from_its_line(self):
        """A '.' at a line start as the last byte of a packet: only the
        next bytes tell a stuffed dot from the end marker."""
        c = self.ehlo_client()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.start(c)
        for part in (b"a\r\n.", b".b\r\n.", b"\r", b"x\r\n.", b"\r\n"):
            c.send(part)
            time.sleep(0.1)
        # ".\rx" is a stuffed dot followed by a bare CR: rejected.
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (550, "5.5.2"), r)
        self.start(c)
        for part in (b"a\r\n.", b".b\r\n.", b"\r", b"\n"):
            c.send(part)
            time.sleep(0.1)
        self.assertEqual(self.recorded(c.reply()), b"a\r\n.b\r\n")

    def test_several_messages_in_one_session(self):
        c = self.ehlo_client()
        for i in range(5):
            message = b"Subject: %d\r\n\r\n" % i + b".line\r\n" * i
            self.assertRecorded(c, stuff(message), message)


class SmugglingTest(DataTestCase):
    SEQUENCES = {
        "LF.LF": b"\n.\n",
        "CRLF.LF": b"\r\n.\n",
        "LF.CRLF": b"\n.\r\n",
        "CR.CRLF": b"\r.\r\n",
    }

    def test_smuggling_sequences_do_not_end_data(self):
        c = self.ehlo_client()
        for name, seq in self.SEQUENCES.items():
            with self.subTest(seq=name):
                if os.path.exists(self.file):
                    os.unlink(self.file)
                self.start(c)
                c.send(b"Subject: s\r\n\r\ntext" + seq + SMUGGLED)
                # Had the sequence ended the data, the smuggled commands
                # would have been answered by now.
                time.sleep(0.2)
                c.send(b"more\r\n.\r\n")
                r = c.reply()
                self.assertEqual((r.code, r.enhanced), (550, "5.5.2"), r)
                # Exactly one reply: the next one is for our NOOP.
                self.assertEqual(c.cmd("NOOP").code, 250)
                self.assertEqual(c.buf, b"")
                self.assertFalse(os.path.exists(self.file))
        self.assertNotIn("accepted by plugin", self.d.log())

    def test_smuggling_sequences_pipelined_at_once(self):
        """The same with everything in one packet, the real end too."""
        c = self.ehlo_client()
        for name, seq in self.SEQUENCES.items():
            with self.subTest(seq=name):
                self.start(c)
                c.send(b"text" + seq + SMUGGLED + b".\r\nNOOP\r\n")
                r = c.reply()
                self.assertEqual((r.code, r.enhanced), (550, "5.5.2"), r)
                r = c.reply()
                self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
                self.assertNotIn("queued", r.text)

    def test_bare_lf_rejected_session_usable(self):
        c = self.ehlo_client()
        for bad in (b"line1\nline2\r\n", b"line1\rline2\r\n", b"end with cr\r\r\n"):
            with self.subTest(body=bad):
                r = self.send_raw(c, bad + b".\r\n")
                self.assertEqual((r.code, r.enhanced), (550, "5.5.2"), r)
        self.assertRecorded(c, b"fine\r\n.\r\n", b"fine\r\n")


class NormalizeTest(DataTestCase):
    extra_args = ("--bare-lf", "normalize")

    def test_bare_lf_and_cr_become_crlf(self):
        c = self.ehlo_client()
        self.assertRecorded(c, b"Subject: n\n\nline1\nline2\rline3\r\n.\r\n",
                            b"Subject: n\r\n\r\nline1\r\nline2\r\nline3\r\n")

    def test_smuggling_sequences_stay_data(self):
        c = self.ehlo_client()
        for name, seq in SmugglingTest.SEQUENCES.items():
            with self.subTest(seq=name):
                self.start(c)
                c.send(b"text" + seq + SMUGGLED + b".\r\n")
                rec = self.recorded(c.reply())
                # The smuggled commands are part of the message ...
                self.assertIn(SMUGGLED, rec)
                self.assertTrue(rec.startswith(b"text\r\n"), rec)
                # ... whose every line now ends in CRLF.
                self.assertNotRegex(rec, rb"\r(?!\n)|(?<!\r)\n")
                self.assertEqual(c.cmd("NOOP").code, 250)

    def test_dot_after_bare_lf_is_not_unstuffed(self):
        """docs/PROTOCOL.md: a line after a bare LF is not a line start."""
        c = self.ehlo_client()
        self.assertRecorded(c, b"a\n..b\r\n.\r\n", b"a\r\n..b\r\n")

    def test_normal_message_unchanged(self):
        c = self.ehlo_client()
        message = b"Subject: ok\r\n\r\n.dot\r\nbody\r\n"
        self.assertRecorded(c, stuff(message), message)


class MaxSizeTest(DataTestCase):
    extra_args = ("-s", "100")

    def test_exactly_max_size_accepted(self):
        c = self.ehlo_client()
        message = b"x" * 98 + b"\r\n"
        self.assertEqual(len(message), 100)
        self.assertRecorded(c, stuff(message), message)

    def test_one_over_max_size_rejected(self):
        c = self.ehlo_client()
        message = b"x" * 99 + b"\r\n"
        r = self.send_raw(c, stuff(message))
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
        self.assertFalse(os.path.exists(self.file))
        # The session stays usable.
        self.assertRecorded(c, b"small\r\n.\r\n", b"small\r\n")

    def test_size_counts_the_unstuffed_message(self):
        c = self.ehlo_client()
        message = b".a\r\n" * 25  # 100 octets, 125 on the wire
        self.assertEqual(len(message), 100)
        wire = stuff(message)
        self.assertEqual(len(wire), 125 + 3)
        self.assertRecorded(c, wire, message)

    def test_far_over_max_size_drained(self):
        c = self.ehlo_client()
        self.start(c)
        c.send(b"z" * 998 + b"\r\n")
        for _ in range(1000):
            c.send(b"z" * 998 + b"\r\n")
        c.send(b".\r\n")
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
        self.assertFalse(os.path.exists(self.file))
        self.assertEqual(c.cmd("NOOP").code, 250)
        self.assertRecorded(c, b"ok\r\n.\r\n", b"ok\r\n")


    def test_over_size_then_pipelined_transaction(self):
        c = self.ehlo_client()
        self.start(c)
        c.send(b"q" * 500 + b"\r\n.\r\nMAIL FROM:<a@test.example>\r\n"
               b"RCPT TO:<b@test.example>\r\nDATA\r\nsmall\r\n.\r\n")
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
        for want in (250, 250, 354):
            self.assertEqual(c.reply().code, want)
        self.assertEqual(self.recorded(c.reply()), b"small\r\n")


class LargeMessageTest(DataTestCase):
    def test_20_mib_message_streams(self):
        c = self.ehlo_client()
        line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,-+=*\r\n"
        body = b"Subject: big\r\n\r\n" + line * ((20 << 20) // len(line) + 1)
        self.assertGreater(len(body), 20 << 20)
        h = hashlib.sha256(body).hexdigest()
        start = time.time()
        self.start(c)
        view = memoryview(body)
        for off in range(0, len(body), 1 << 16):
            c.send(view[off:off + (1 << 16)])
        c.send(b".\r\n")
        c.sock.settimeout(60 * SLOW)
        r = c.reply()
        elapsed = time.time() - start
        self.assertLess(elapsed, 30 * SLOW, "20 MiB took %.1fs" % elapsed)
        rec = self.recorded(r)
        self.assertEqual(len(rec), len(body))
        self.assertEqual(hashlib.sha256(rec).hexdigest(), h)
        self.d.wait_log("%d octets" % len(body))


class HeaderLimitsTest(DataTestCase):
    """At most 1,000 header fields, 1 MiB of header section, 64 KiB per
    unfolded field and 100 Received: fields (docs/PROTOCOL.md); past them
    the message is read to its end and refused, and the session goes on."""

    def refused_then_ok(self, header, code, enhanced, bdat=False):
        c = self.ehlo_client()
        message = header + b"\r\nbody\r\n"
        if bdat:
            self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<r@test.example>").code, 250)
            c.send(b"BDAT %d LAST\r\n" % len(message) + message)
            r = c.reply()
        else:
            r = self.send_raw(c, stuff(message))
        self.assertEqual((r.code, r.enhanced), (code, enhanced), r)
        # The next transaction in the same session is untouched.
        r = self.send_raw(c, stuff(b"Subject: next\r\n\r\nok\r\n"))
        self.assertEqual(r.code, 250, r)
        self.assertEqual(self.recorded(r), b"Subject: next\r\n\r\nok\r\n")
        return c

    @staticmethod
    def fields(n, name=b"X-F"):
        return b"".join(b"%s: %d\r\n" % (name, i) for i in range(n))

    def test_1000_fields_accepted(self):
        c = self.ehlo_client()
        message = self.fields(1000) + b"\r\nbody\r\n"
        r = self.send_raw(c, stuff(message))
        self.assertEqual(r.code, 250, r)
        self.assertEqual(self.recorded(r), message)

    def test_1001_fields_refused(self):
        self.refused_then_ok(self.fields(1001), 552, "5.3.4")
        self.d.wait_log("refused: too many header fields")

    def test_20000_fields_refused(self):
        # The unbounded case of the report: 21,845 one-line fields.
        self.refused_then_ok(b"a:\r\n" * 21845, 552, "5.3.4")

    def test_header_section_over_1_mib_refused(self):
        field = b"X-Big: " + b"v" * 60000 + b"\r\n"
        self.refused_then_ok(field * 18, 552, "5.3.4")
        self.d.wait_log("refused: a header section over the size limit")

    def test_one_field_over_64_kib_refused(self):
        folded = b"X-Long: start" + b"\r\n\t" + b"\r\n\t".join([b"w" * 900] * 80) + b"\r\n"
        self.refused_then_ok(folded, 552, "5.3.4")
        self.d.wait_log("refused: a header field over the size limit")

    def test_100_received_accepted_101_refused(self):
        c = self.ehlo_client()
        message = self.fields(100, b"Received") + b"\r\nbody\r\n"
        r = self.send_raw(c, stuff(message))
        self.assertEqual(r.code, 250, r)
        self.refused_then_ok(self.fields(101, b"received"), 554, "5.4.6")

    def test_limits_hold_for_bdat(self):
        self.refused_then_ok(self.fields(1001), 552, "5.3.4", bdat=True)


FAIL_MALLOC_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
/* malloc(FAIL_MALLOC_SIZE) fails; every other size goes through. */
void *malloc(size_t n)
{
	static void *(*real)(size_t);
	static size_t fail;
	if (real == NULL) {
		const char *e = getenv("FAIL_MALLOC_SIZE");
		fail = e != NULL ? (size_t)strtoul(e, NULL, 10) : 0;
		real = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	}
	return n == fail && fail != 0 ? NULL : real(n);
}
"""


@unittest.skipIf(VALGRIND or os.environ.get("ASAN_OPTIONS"),
                 "ASan and valgrind own malloc: an LD_PRELOAD shim cannot fail it "
                 "(the plain stage of make test runs these)")
class FailMallocCase(DataTestCase):
    """A daemon in which malloc(FAIL_SIZE) fails (an LD_PRELOAD shim)."""
    FAIL_SIZE = 0

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="smtphook-nomem-")
        self.addCleanup(tmp.cleanup)
        so = os.path.join(tmp.name, "failmalloc.so")
        src = os.path.join(tmp.name, "failmalloc.c")
        with open(src, "w") as f:
            f.write(FAIL_MALLOC_C)
        r = subprocess.run([require_c_compiler(), "-shared", "-fPIC", "-o", so, src, "-ldl"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        env = {"LD_PRELOAD": so, "FAIL_MALLOC_SIZE": str(self.FAIL_SIZE)}
        if os.environ.get("ASAN_OPTIONS"):
            env["ASAN_OPTIONS"] = os.environ["ASAN_OPTIONS"] + ":verify_asan_link_order=0"
        self.file = os.path.join(tmp.name, "message")
        self.d = self.daemon("-p", "%s:file=%s" % (RECORDER, self.file), env=env)


class AllocationFailureTest(FailMallocCase):
    """A header the store cannot keep gets a temporary copy; when that
    allocation fails the message fails with 451 4.3.0 instead of going
    past the header hooks unseen (and being accepted)."""
    FAIL_SIZE = 50001       # malloc(name + value + 2) of the second field

    def test_failed_header_copy_fails_the_message(self):
        c = self.ehlo_client()
        first = b"X-Fill: " + b"f" * 40000 + b"\r\n"            # kept in the store
        name = b"X-Fail"
        second = name + b": " + b"v" * (self.FAIL_SIZE - len(name) - 2) + b"\r\n"
        r = self.send_raw(c, stuff(first + second + b"\r\nbody\r\n"))
        self.assertEqual((r.code, r.enhanced), (451, "4.3.0"), r)
        r = self.send_raw(c, stuff(b"Subject: next\r\n\r\nok\r\n"))
        self.assertEqual(r.code, 250, r)


class StoreAllocationFailureTest(FailMallocCase):
    """The header store (1,000 index entries of 16 octets + 64 KiB, one
    block, server/tx.c) cannot be allocated: the message fails with
    451 4.3.0 rather than reaching the plugins with sh_tx_header() empty
    (before, the store failed silently and the message was accepted)."""
    FAIL_SIZE = 1000 * 16 + 64 * 1024   # index (16-octet entries) + store

    def test_failed_header_store_fails_the_message(self):
        c = self.ehlo_client()
        r = self.send_raw(c, stuff(b"Subject: one\r\n\r\nbody\r\n"))
        self.assertEqual((r.code, r.enhanced), (451, "4.3.0"), r)
        self.d.wait_log("out of memory for the header store")
        # No header, no store: the session itself is unharmed.
        r = self.send_raw(c, stuff(b"\r\nno header\r\n"))
        self.assertEqual(r.code, 250, r)


if __name__ == "__main__":
    unittest.main()

"""The sizefilter plugin in the real daemon: argument checks, SIZE= at MAIL
(smtplib sends it by itself), the streamed limit at limit and limit+1
with a storing plugin after it (tests/plugins/chunk_recorder: nothing is
stored past the limit), constant memory while a 50 MiB oversize body
drains, BDAT at limit and limit+1, and the recipient cap (also pipelined)."""
import os
import re
import smtplib
import socket
import tempfile
import threading
import time
import unittest

from smtphook_test import DaemonTestCase, PLUGIN_DIR, SLOW, VALGRIND, plugin_path, run_daemon

SIZEFILTER = os.path.join(PLUGIN_DIR, "sizefilter.so")
RECORDER = plugin_path("chunk_recorder")
TRACE_RE = re.compile(rb"\AReceived: [^\r\n]*\r\n(?:\t[^\r\n]*\r\n)*")


def message(n):
    """A message of exactly n octets (n >= 40) with CRLF lines, some of
    them starting with '.' (stuffed on the wire, counted once)."""
    head = b"Subject: size test\r\n\r\n"
    out = bytearray(head)
    line = 0
    while len(out) < n:
        rest = n - len(out)
        ln = 70 if rest >= 74 else rest - 2
        body = bytes((ord("a") + (len(out) + k) % 26) for k in range(ln))
        if ln and line % 3 == 0:
            body = b"." + body[1:]
        out += body + b"\r\n"
        line += 1
    assert len(out) == n
    return bytes(out)


def stuff(msg):
    return re.sub(rb"(?m)^\.", b"..", msg) + b".\r\n"


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


class SizefilterArgsTest(unittest.TestCase):
    def check_refused(self, args, needle):
        r = run_daemon(["--check", "-p", SIZEFILTER + (":" + args if args else "")])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(needle, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)

    def test_no_argument_refused(self):
        self.check_refused("", "plugin sizefilter: no limit given")

    def test_bad_numbers_refused(self):
        self.check_refused("max=ten", "max=ten: expected a positive number")
        self.check_refused("max=0", "max=0: expected a positive number")
        self.check_refused("max_recipients=-3", "max_recipients=-3: expected")

    def test_good_arguments_accepted(self):
        r = run_daemon(["--check", "-p", SIZEFILTER + ":max=25M,max_recipients=50"])
        self.assertEqual(r.returncode, 0, r.stderr)


class SizefilterTest(DaemonTestCase):
    MAX = 10000

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="smtphook-sizefilter-")
        self.addCleanup(tmp.cleanup)
        self.file = os.path.join(tmp.name, "stored")
        self.d = self.daemon("-p", "%s:max=%d,max_recipients=3" % (SIZEFILTER, self.MAX),
                             "-p", "%s:file=%s" % (RECORDER, self.file))

    def stored(self):
        with open(self.file, "rb") as f:
            data = f.read()
        m = TRACE_RE.match(data)
        self.assertIsNotNone(m, data[:200])
        return data[m.end():]

    def leftovers(self):
        d = os.path.dirname(self.file)
        return sorted(os.listdir(d))

    def start_data(self, c, rcpts=1):
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        for i in range(rcpts):
            self.assertEqual(c.cmd("RCPT TO:<r%d@test.example>" % i).code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)

    # -- SIZE= --

    def test_smtplib_size_param_over_limit(self):
        with smtplib.SMTP("127.0.0.1", self.d.port, local_hostname="client.test.example",
                          timeout=10 * SLOW) as s:
            with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
                # smtplib adds SIZE=<len> because the server offers SIZE.
                s.sendmail("a@test.example", ["b@test.example"], message(self.MAX + 1))
            self.assertEqual(cm.exception.smtp_code, 552)
            self.assertIn(b"5.3.4 Message size exceeds fixed maximum message size of 10000",
                          cm.exception.smtp_error)
        self.assertFalse(os.path.exists(self.file))

    def test_smtplib_at_limit_is_stored_exactly(self):
        msg = message(self.MAX)
        with smtplib.SMTP("127.0.0.1", self.d.port, local_hostname="client.test.example",
                          timeout=10 * SLOW) as s:
            self.assertEqual(s.sendmail("a@test.example", ["b@test.example"], msg), {})
        self.assertEqual(self.stored(), msg)

    def test_size_param_raw(self):
        c = self.client(self.d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example> SIZE=%d" % self.MAX).code, 250)
        self.assertEqual(c.cmd("RSET").code, 250)
        r = c.cmd("MAIL FROM:<a@test.example> SIZE=%d" % (self.MAX + 1))
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"))

    # -- the streamed limit --

    def test_limit_plus_1_without_size_param_not_stored(self):
        c = self.client(self.d)
        c.ehlo()
        self.start_data(c)
        c.send(stuff(message(self.MAX + 1)))
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
        self.assertIn("maximum message size of 10000 octets", r.text)
        self.assertFalse(os.path.exists(self.file))
        self.assertEqual(self.leftovers(), [], "the recorder's tmp file is gone (reset)")
        # The session goes on; the next message is measured afresh.
        self.start_data(c)
        msg = message(self.MAX)
        c.send(stuff(msg))
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(self.stored(), msg)

    def test_over_limit_in_small_packets(self):
        c = self.client(self.d)
        c.ehlo()
        self.start_data(c)
        wire = stuff(message(self.MAX + 500))
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(wire), 512):
            c.send(wire[i:i + 512])
            time.sleep(0.001)
        r = c.reply()
        self.assertEqual(r.code, 552, r)
        self.assertFalse(os.path.exists(self.file))
        log = self.d.wait_log("chunk by plugin sizefilter: 552 5.3.4")
        self.assertIn("message over max=10000 octets", log)

    def test_pipelined_commands_after_oversize_body(self):
        c = self.client(self.d)
        c.ehlo()
        self.start_data(c)
        c.send(stuff(message(3 * self.MAX)) + b"RSET\r\nNOOP\r\n")
        self.assertEqual(c.reply().code, 552)
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(c.reply().code, 250)

    @unittest.skipIf(VALGRIND, "RSS is valgrind's own under valgrind")
    def test_memory_flat_while_50mib_drain(self):
        pid = self.d.proc.pid
        c = self.client(self.d)
        c.ehlo()
        # Warm up the same path once, so buffers that live for the whole
        # session exist before the measurement.
        self.start_data(c)
        c.send(stuff(message(4 * 1024 * 1024)))
        self.assertEqual(c.reply().code, 552)
        before = vm_rss_kib(pid)
        samples = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                samples.append(vm_rss_kib(pid))
                time.sleep(0.01)

        t = threading.Thread(target=sample)
        t.start()
        try:
            self.start_data(c)
            line = b"x" * 1022 + b"\r\n"
            block = line * 1024            # 1 MiB
            for _ in range(50):
                c.send(block)
            c.send(b".\r\n")
            r = c.reply()
        finally:
            stop.set()
            t.join()
        after = vm_rss_kib(pid)
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
        self.assertFalse(os.path.exists(self.file))
        peak = max(samples + [after])
        # ASan's allocator keeps freed blocks in quarantine and its shadow
        # memory moves with them: RSS there says little about our buffers.
        slack = 8 if os.environ.get("ASAN_OPTIONS") else 1
        self.assertLess(peak - before, 512 * slack,
                        "RSS grew from %d KiB to a peak of %d KiB" % (before, peak))
        self.assertLess(after - before, 256 * slack, "RSS %d -> %d KiB" % (before, after))

    def test_bdat_limit_and_plus_1(self):
        c = self.client(self.d)
        self.assertIn("CHUNKING", c.ehlo().text)
        msg = message(self.MAX + 1)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@test.example>").code, 250)
        c.send(b"BDAT 6000\r\n" + msg[:6000])
        self.assertEqual(c.reply().code, 250)
        c.send(b"BDAT %d LAST\r\n" % (self.MAX - 6000) + msg[6000:self.MAX])
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(self.stored(), msg[:self.MAX])
        os.unlink(self.file)
        # limit+1, pipelined: the 1-octet LAST chunk crosses the limit
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@test.example>").code, 250)
        c.send(b"BDAT 6000\r\n" + msg[:6000] +
               b"BDAT 4000\r\n" + msg[6000:10000] +
               b"BDAT 1 LAST\r\n" + msg[10000:])
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(c.reply().code, 250)
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
        self.assertFalse(os.path.exists(self.file))
        self.assertEqual(c.cmd("NOOP").code, 250)

    # -- recipients --

    def test_recipient_limit_and_plus_1(self):
        c = self.client(self.d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        for i in range(3):
            self.assertEqual(c.cmd("RCPT TO:<r%d@test.example>" % i).code, 250)
        r = c.cmd("RCPT TO:<r3@test.example>")
        self.assertEqual((r.code, r.enhanced), (452, "4.5.3"), r)
        self.assertIn("at most 3 per message", r.text)

    def test_recipient_limit_pipelined(self):
        c = self.client(self.d)
        c.ehlo()
        c.send("MAIL FROM:<a@test.example>\r\n" +
               "".join("RCPT TO:<r%d@test.example>\r\n" % i for i in range(5)) +
               "DATA\r\n")
        codes = [c.reply().code for _ in range(7)]
        self.assertEqual(codes, [250, 250, 250, 250, 452, 452, 354])
        msg = message(100)
        c.send(stuff(msg))
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(self.stored(), msg)

    def test_smtplib_too_many_recipients(self):
        with smtplib.SMTP("127.0.0.1", self.d.port, local_hostname="client.test.example",
                          timeout=10 * SLOW) as s:
            rcpts = ["r%d@test.example" % i for i in range(5)]
            refused = s.sendmail("a@test.example", rcpts, message(200))
        self.assertEqual(sorted(refused), rcpts[3:])
        self.assertEqual(refused[rcpts[3]][0], 452)


if __name__ == "__main__":
    unittest.main()

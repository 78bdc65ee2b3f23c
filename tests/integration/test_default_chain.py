"""The default chain of `make run` (policy -> sizefilter -> spamfilter ->
maildump), with exactly the arguments the Makefile gives it: swaks and
smtplib deliver, Python's mailbox reads the Maildir, and a 100 MiB message
streams through with flat memory."""
import mailbox
import os
import shlex
import shutil
import smtplib
import subprocess
import tempfile
import threading
import time
import unittest

from smtphook_test import DaemonTestCase, SOURCE_DIR, SLOW, VALGRIND, Client, require_swaks


def make_run_args(maildir):
    out = subprocess.run(["make", "-s", "--no-print-directory", "-C", SOURCE_DIR, "print-chain",
                          "MAILDIR=" + maildir], capture_output=True, text=True,
                         check=True).stdout
    args = shlex.split(out)
    return [a.replace("rules=plugins/", "rules=%s/plugins/" % SOURCE_DIR) for a in args]


def vm_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class DefaultChainTest(DaemonTestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="smtphook-chain-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.maildir = os.path.join(self.root, "maildir")
        self.d = self.daemon(*make_run_args(self.maildir))

    def box(self):
        return mailbox.Maildir(self.maildir, factory=None, create=False)

    def test_swaks_message_lands_in_maildir(self):
        r = subprocess.run([require_swaks(), "--server", "127.0.0.1:%d" % self.d.port,
                            "--from", "me@example.org", "--to", "you@example.com",
                            "--header", "Subject: tour"],
                           capture_output=True, text=True, timeout=30 * SLOW)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        msgs = list(self.box())
        self.assertEqual(len(msgs), 1)
        m = msgs[0]
        self.assertEqual(m["Subject"], "tour")
        self.assertEqual(m["Return-Path"], "<me@example.org>")
        self.assertEqual(m["Delivered-To"], "you@example.com")
        self.assertIn("by mx.test.example (smtphook) with ESMTP", m["Received"])
        self.assertIsNotNone(m["X-Spam-Score"])
        self.assertEqual(os.listdir(os.path.join(self.maildir, "tmp")), [])

    def test_smtplib_three_recipients(self):
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=30 * SLOW) as s:
            s.ehlo("client.test.example")
            refused = s.sendmail("a@example.org", ["b@example.com", "c@example.com",
                                                   "d@example.net"],
                                 b"Subject: three\r\n\r\nhello\r\n")
            self.assertEqual(refused, {})
        (m,) = list(self.box())
        self.assertEqual(m.get_all("Delivered-To"),
                         ["b@example.com", "c@example.com", "d@example.net"])
        self.assertTrue(m.get_payload().startswith("hello"))

    def test_size_limit_of_the_chain(self):
        c = Client(self.d.port)
        self.addCleanup(c.close)
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@example.org> SIZE=60000000")
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"))

    @unittest.skipIf(VALGRIND or os.environ.get("ASAN_OPTIONS"),
                     "RSS under valgrind/ASan is the tool's")
    def test_100mib_streams_with_flat_memory(self):
        # The default --max-size is 50 MiB: use a daemon without it, same chain.
        self.d.stop()
        args = [a for a in make_run_args(self.maildir) if a not in ("--max-size", "52428800")]
        args = [a.replace("max=50M", "max=200M") for a in args]
        d = self.daemon(*args)
        c = Client(d.port, timeout=120)
        self.addCleanup(c.close)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<b@example.com>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        before = vm_kib(d.proc.pid, "VmRSS")
        peak = [before]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak.append(vm_kib(d.proc.pid, "VmRSS"))
                time.sleep(0.02)

        t = threading.Thread(target=sample)
        t.start()
        line = b"x" * 1022 + b"\r\n"
        block = line * 1024
        t0 = time.time()
        try:
            c.send(b"Subject: big\r\n\r\n")
            for _ in range(100):
                c.send(block)
            c.send(b".\r\n")
            r = c.reply()
        finally:
            stop.set()
            t.join()
        secs = time.time() - t0
        self.assertEqual(r.code, 250, r)
        growth = max(peak) - before
        print("\n100 MiB through the default chain: %.0f MB/s, RSS %d KiB -> peak +%d KiB"
              % (100 * 1048576 / secs / 1e6, before, growth))
        self.assertLess(growth, 4096, "RSS grew by %d KiB" % growth)
        (m,) = self.box().keys()
        size = os.path.getsize(os.path.join(self.maildir, "new", m))
        self.assertGreater(size, 100 * 1048576)


if __name__ == "__main__":
    unittest.main()

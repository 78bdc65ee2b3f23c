"""The spamfilter plugin in the real daemon: rules files written to a
temporary directory, messages sent with smtplib (and raw sockets where the
packet boundaries matter), start-up errors, and hostile regex input."""
import os
import shutil
import smtplib
import socket
import tempfile
import time
import unittest

from smtphook_test import (require_file, BUILD_DIR, PLUGIN_DIR, SLOW, SOURCE_DIR, TEST_PLUGIN_DIR,
                           DaemonTestCase, free_port, run_daemon)

SPAMFILTER = os.path.join(PLUGIN_DIR, "spamfilter.so")
SINK = os.path.join(PLUGIN_DIR, "sink.so")
RECORDER = os.path.join(TEST_PLUGIN_DIR, "chunk_recorder.so")
DEFAULT_RULES = os.path.join(SOURCE_DIR, "plugins", "spamfilter", "default.rules")

RULES = r"""# test rules
3     body            /\bviagra\b/i           BODY_PHARMA
2.5   header:Subject  /^\s*win\b/i            SUBJ_WIN
-1.5  header:List-Id  /./                     HAS_LIST_ID
1     helo            /^\d+\.\d+\.\d+\.\d+$/  HELO_BARE_IP
0.5   from            /@spam\.test$/
"""


class SpamfilterTest(DaemonTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="spamfilter-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def rules(self, text, name="spam.rules"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self, args="tag=3,reject=6", rules=RULES, store=SINK):
        spec = "%s:rules=%s%s" % (SPAMFILTER, self.rules(rules), "," + args if args else "")
        return self.daemon("-p", spec, "-p", store)

    def smtp(self, d, helo="client.test.example"):
        return self.smtplib_client(d, helo)

    # ---- verdicts ----

    def test_reject_550_with_score(self):
        d = self.start()
        s = self.smtp(d, helo="192.0.2.1")
        msg = "From: a@spam.test\r\nSubject: WIN a prize\r\n\r\nCheap Viagra here\r\n"
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            s.sendmail("a@spam.test", ["user@example.org"], msg)
        self.assertEqual(cm.exception.smtp_code, 550)
        text = cm.exception.smtp_error.decode()
        self.assertEqual(text, "5.7.1 Message looks like spam (score 7.0)")
        d.wait_log("score 7.0 (BODY_PHARMA,SUBJ_WIN,HELO_BARE_IP,6): rejected")
        # The connection goes on: a clean message is taken.
        s.sendmail("a@example.net", ["user@example.org"], "Subject: hi\r\n\r\nhello\r\n")

    def test_clean_and_tagged_scores_logged(self):
        d = self.start()
        s = self.smtp(d)
        s.sendmail("a@example.net", ["user@example.org"], "Subject: hi\r\n\r\nhello\r\n")
        d.wait_log("score 0.0 (none)\n")
        s.sendmail("a@example.net", ["user@example.org"],
                   "Subject: hi\r\n\r\nVIAGRA\r\n")
        d.wait_log("score 3.0 (BODY_PHARMA): tagged")
        # A negative rule takes the next message under the tag threshold.
        s.sendmail("a@example.net", ["user@example.org"],
                   "List-Id: <x.lists.example>\r\nSubject: hi\r\n\r\nviagra\r\n")
        d.wait_log("score 1.5 (BODY_PHARMA,HAS_LIST_ID)\n")

    def test_headers_written_by_a_storing_plugin(self):
        require_file(RECORDER, "test plugin chunk_recorder")
        out = os.path.join(self.dir, "stored.eml")
        d = self.start(store=RECORDER + ":file=" + out)
        s = self.smtp(d)
        body = "Subject: Win big\r\n\r\nline one\r\nviagra\r\n"
        s.sendmail("a@example.net", ["user@example.org"], body)
        with open(out, "rb") as f:
            stored = f.read().decode()
        head, _, rest = stored.partition("Subject: Win big\r\n")
        self.assertTrue(head.startswith("Received: "), stored)
        self.assertIn("\r\nX-Spam-Score: 5.5\r\n", head)
        self.assertIn("\r\nX-Spam-Rules: BODY_PHARMA,SUBJ_WIN\r\n", head)
        self.assertIn("\r\nX-Spam-Flag: YES\r\n", head)
        self.assertEqual(rest, "\r\nline one\r\nviagra\r\n")

    def test_reject_threshold_only_without_tag(self):
        d = self.start(args="reject=2.5")
        s = self.smtp(d)
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            s.sendmail("a@example.net", ["user@example.org"], "Subject: win\r\n\r\nx\r\n")
        self.assertEqual(cm.exception.smtp_code, 550)
        self.assertIn(b"(score 2.5)", cm.exception.smtp_error)

    def test_body_line_split_over_packets(self):
        d = self.start()
        c = socket.create_connection(("127.0.0.1", d.port), timeout=10 * SLOW)
        self.addCleanup(c.close)
        f = c.makefile("rb")

        def reply():
            while True:
                line = f.readline()
                if line[3:4] != b"-":
                    return line

        self.assertTrue(reply().startswith(b"220"))
        for cmd in (b"EHLO c.example", b"MAIL FROM:<a@example.net>",
                    b"RCPT TO:<u@example.org>", b"DATA"):
            c.sendall(cmd + b"\r\n")
            self.assertIn(reply()[:3], (b"250", b"354"))
        parts = [b"Subject: x\r\n\r\nbuy vi", b"ag", b"ra now\r\n", b".\r\n"]
        for p in parts:
            c.sendall(p)
            time.sleep(0.1)
        self.assertTrue(reply().startswith(b"250"))
        d.wait_log("score 3.0 (BODY_PHARMA): tagged")

    # ---- start-up errors ----

    def test_bad_rules_file_exits_2_with_file_and_line(self):
        path = self.rules("# ok\n1 body /fine/\n\n2 header:Subject /(unclosed/i BAD\n")
        r = run_daemon(["-l", "127.0.0.1:%d" % free_port(), "-p", SPAMFILTER + ":rules=" + path,
                        "-p", SINK])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("plugin spamfilter: %s:4: bad regex /(unclosed/: "
                      "missing closing parenthesis at offset 9" % path, r.stderr)

    def test_bad_rule_syntax_exits_2(self):
        for text, want in (("1 body /a/z\n", ":1: unknown flag 'z'"),
                           ("x body /a/\n", ":1: bad score 'x'"),
                           ("\n1 hdr /a/\n", ":2: unknown WHERE 'hdr'"),
                           ("1 body /a/ N\n1 body /b/ N\n",
                            ":2: duplicate rule name 'N' (first used at line 1)")):
            path = self.rules(text, "r%d.rules" % len(text))
            r = run_daemon(["--check", "-p", SPAMFILTER + ":rules=" + path, "-p", SINK])
            self.assertEqual(r.returncode, 2, text)
            self.assertIn(path + want, r.stderr)

    def test_missing_or_unreadable_rules(self):
        r = run_daemon(["--check", "-p", SPAMFILTER, "-p", SINK])
        self.assertEqual(r.returncode, 2)
        self.assertIn("rules= is required", r.stderr)
        missing = os.path.join(self.dir, "none.rules")
        r = run_daemon(["--check", "-p", SPAMFILTER + ":rules=" + missing, "-p", SINK])
        self.assertEqual(r.returncode, 2)
        self.assertIn(missing + ": cannot open: No such file or directory", r.stderr)
        r = run_daemon(["--check", "-p", SPAMFILTER + ":rules=" + self.rules(RULES)
                        + ",reject=high", "-p", SINK])
        self.assertEqual(r.returncode, 2)
        self.assertIn("reject=high: not a score", r.stderr)

    def test_default_rules_file_loads(self):
        r = run_daemon(["--check", "-p", SPAMFILTER + ":rules=" + DEFAULT_RULES
                        + ",tag=5,reject=10", "-p", SINK])
        self.assertEqual(r.returncode, 0, r.stderr)

    # ---- hostile input ----

    def test_catastrophic_regex_does_not_stall_the_server(self):
        d = self.start(rules="1 body /(a+)+$/ EVIL\n2 body /needle/ NEEDLE\n",
                       args="body_max=0")
        s = self.smtp(d)
        msg = b"Subject: evil\r\n\r\n" + b"a" * (1 << 20) + b"b\r\nneedle\r\n"
        t0 = time.time()
        s.sendmail("a@example.net", ["user@example.org"], msg)
        self.assertLess(time.time() - t0, 2.0 * SLOW)
        log = d.wait_log("score 2.0 (NEEDLE)")
        self.assertEqual(log.count("rule EVIL ("), 1, log)
        self.assertIn("hit a PCRE2 limit", log)
        # Other clients are served meanwhile and afterwards.
        other = self.smtp(d)
        self.assertEqual(other.noop()[0], 250)


if __name__ == "__main__":
    unittest.main()

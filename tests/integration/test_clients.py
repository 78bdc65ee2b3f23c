"""Real SMTP clients against smtphookd: Python smtplib, swaks and
Postfix's smtp-source."""
import email.message
import os
import re
import smtplib
import subprocess
import tempfile
import time
import unittest

from smtphook_test import (DaemonTestCase, HOSTNAME, SLOW, require_plugin, require_swaks,
                           require_tool)



def wait_count(d, needle, n, timeout=10):
    deadline = time.time() + timeout * SLOW
    while True:
        count = d.log().count(needle)
        if count >= n or time.time() > deadline:
            return count
        time.sleep(0.05)


class SmtplibTest(DaemonTestCase):
    def smtp(self, d):
        s = smtplib.SMTP("127.0.0.1", d.port, local_hostname="client.test.example",
                         timeout=10 * SLOW)
        self.addCleanup(s.close)
        return s

    def test_sendmail(self):
        d = self.daemon("-p", "sink")
        s = self.smtp(d)
        refused = s.sendmail("a@test.example", ["b@test.example"],
                             b"Subject: smtplib\r\n\r\nhello\r\n")
        self.assertEqual(refused, {})
        code, _ = s.quit()
        self.assertEqual(code, 221)
        self.assertEqual(wait_count(d, "accepted by plugin sink", 1), 1)

    def test_ehlo_features(self):
        d = self.daemon("-p", "sink", "-s", "100000")
        s = self.smtp(d)
        code, _ = s.ehlo()
        self.assertEqual(code, 250)
        for ext in ("pipelining", "8bitmime", "smtputf8", "enhancedstatuscodes", "dsn"):
            self.assertTrue(s.has_extn(ext), ext)
        self.assertEqual(s.esmtp_features["size"], "100000")
        self.assertFalse(s.has_extn("starttls"))
        self.assertFalse(s.has_extn("auth"))
        self.assertEqual(s.noop()[0], 250)
        self.assertEqual(s.rset()[0], 250)
        self.assertEqual(s.verify("someone@test.example")[0], 252)
        self.assertIn(b"HELO", s.help())

    def test_send_message_three_recipients(self):
        d = self.daemon("-p", "sink")
        s = self.smtp(d)
        msg = email.message.EmailMessage()
        msg["From"] = "sender@test.example"
        msg["To"] = "one@test.example, two@test.example"
        msg["Cc"] = "three@test.example"
        msg["Subject"] = "three recipients"
        msg.set_content("Hello,\n.\n..leading dots\nbye\n")
        self.assertEqual(s.send_message(msg), {})
        log = d.wait_log("3 recipient(s)")
        self.assertIn("accepted by plugin sink", log)

    def test_several_messages_one_connection(self):
        d = self.daemon("-p", "sink")
        s = self.smtp(d)
        for i in range(20):
            self.assertEqual(s.sendmail("a@test.example", ["b%d@test.example" % i],
                                        "Subject: %d\r\n\r\nbody %d\r\n" % (i, i)), {})
        s.quit()
        self.assertEqual(wait_count(d, "accepted by plugin sink", 20), 20)

    def test_helo_only_client(self):
        d = self.daemon("-p", "sink")
        s = self.smtp(d)
        self.assertEqual(s.helo()[0], 250)
        self.assertEqual(s.sendmail("a@test.example", "b@test.example", "Subject: x\r\n\r\ny\r\n"), {})

    def test_size_refused_by_mail(self):
        d = self.daemon("-p", "sink", "-s", "1000")
        s = self.smtp(d)
        with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
            s.sendmail("a@test.example", ["b@test.example"], b"x" * 2000)
        self.assertEqual(cm.exception.smtp_code, 552)
        self.assertTrue(cm.exception.smtp_error.startswith(b"5.3.4"))
        # The connection is still usable.
        self.assertEqual(s.sendmail("a@test.example", ["b@test.example"], b"small\r\n"), {})

    def test_smtputf8(self):
        d = self.daemon("-p", "sink")
        s = self.smtp(d)
        msg = email.message.EmailMessage()
        msg["From"] = "j\u00f6rg@b\u00fccher.example"
        msg["To"] = "\u00fcser@test.example"
        msg["Subject"] = "gr\u00fc\u00dfe"
        msg.set_content("hall\u00f6\n")
        self.assertEqual(s.send_message(msg), {})
        d.wait_log("accepted by plugin sink")

    def test_message_arrives_exactly(self):
        """smtplib dot-stuffs; the plugin sees the message unstuffed."""
        rec = require_plugin("chunk_recorder")
        tmp = tempfile.TemporaryDirectory(prefix="smtphook-clients-")
        self.addCleanup(tmp.cleanup)
        path = os.path.join(tmp.name, "msg")
        d = self.daemon("-p", "%s:file=%s" % (rec, path))
        s = self.smtp(d)
        message = (b"Subject: exact\r\n\r\n.\r\n..\r\n.leading\r\n"
                   b"8bit \xc3\xa4\r\n\r\nend\r\n")
        s.sendmail("a@test.example", ["b@test.example"], message)
        with open(path, "rb") as f:
            data = f.read()
        m = re.match(rb"\AReceived: [^\r\n]*\r\n(?:\t[^\r\n]*\r\n)*", data)
        self.assertIsNotNone(m, data[:300])
        self.assertIn(b"with ESMTP", m.group(0))
        self.assertEqual(data[m.end():], message)


class SwaksTest(DaemonTestCase):
    def swaks(self, d, *args):
        cmd = [require_swaks(), "--server", "127.0.0.1:%d" % d.port, "--timeout", "10",
               "--helo", "client.test.example", "--from", "a@test.example"] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60 * SLOW,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout

    def test_swaks(self):
        d = self.daemon("-p", "sink")
        out = self.swaks(d, "--to", "b@test.example")
        self.assertIn("220 %s ESMTP smtphook" % HOSTNAME, out)
        self.assertRegex(out, r"<-  250 2\.0\.0 Ok: queued as \w+")
        self.assertIn("<-  221", out)
        d.wait_log("accepted by plugin sink")

    def test_swaks_pipeline(self):
        d = self.daemon("-p", "sink")
        out = self.swaks(d, "--to", "b@test.example,c@test.example,d@test.example",
                         "--pipeline")
        self.assertRegex(out, r"<-  250 2\.0\.0 Ok: queued as \w+")
        d.wait_log("3 recipient(s)")

    def test_swaks_body_with_dots(self):
        d = self.daemon("-p", "sink")
        out = self.swaks(d, "--to", "b@test.example",
                         "--body", "line\n.\n..\n.dot\nend")
        self.assertRegex(out, r"<-  250 2\.0\.0 Ok")

    def test_swaks_quit_after_rcpt(self):
        d = self.daemon("-p", "sink")
        out = self.swaks(d, "--to", "b@test.example", "--quit-after", "RCPT")
        self.assertIn("<-  250 2.1.5", out)
        d.wait_log("reason=\"quit\"")
        self.assertNotIn("accepted by plugin", d.log())

    def test_swaks_without_pipelining_server(self):
        d = self.daemon("-p", "sink", "--no-pipelining")
        # swaks only pipelines when PIPELINING is advertised.
        out = self.swaks(d, "--to", "b@test.example", "--pipeline")
        self.assertRegex(out, r"<-  250 2\.0\.0 Ok")


class SmtpSourceTest(DaemonTestCase):
    def smtp_source(self, d, *args):
        cmd = [require_tool("smtp-source", "postfix")] + list(args) + ["127.0.0.1:%d" % d.port]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120 * SLOW,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, (cmd, p.stdout[-2000:], p.stderr[-2000:]))
        self.assertEqual(p.stderr, "", p.stderr)
        return p

    def test_200_messages_5_sessions(self):
        d = self.daemon("-p", "sink")
        self.smtp_source(d, "-c", "-m", "200", "-s", "5", "-l", "2048",
                         "-f", "a@test.example", "-t", "b@test.example")
        self.assertEqual(wait_count(d, "accepted by plugin sink", 200), 200)
        sizes = re.findall(r"accepted by plugin sink, (\d+) octets", d.log())
        self.assertEqual(len(sizes), 200)
        self.assertTrue(all(int(n) >= 2048 for n in sizes), set(sizes))
        # Nothing went wrong in any session.
        self.assertNotRegex(d.log(), r"errors=[1-9]")

    def test_one_connection_many_messages(self):
        d = self.daemon("-p", "sink")
        self.smtp_source(d, "-d", "-m", "100", "-s", "1", "-l", "10000",
                         "-f", "a@test.example", "-t", "b@test.example")
        self.assertEqual(wait_count(d, "accepted by plugin sink", 100), 100)
        # The probe connection and the one smtp-source used.
        self.assertEqual(wait_count(d, "disconnect from", 2), 2)
        time.sleep(0.2)
        self.assertEqual(d.log().count("disconnect from"), 2)

    def test_many_recipients_esmtp(self):
        d = self.daemon("-p", "sink")
        # -r: recipients per message (same local part, numbered).
        self.smtp_source(d, "-m", "20", "-s", "4", "-r", "10", "-l", "1000",
                         "-f", "a@test.example", "-t", "b@test.example")
        self.assertEqual(wait_count(d, "10 recipient(s)", 20), 20)

    def test_limit_with_max_connections(self):
        """More parallel sessions than --max-connections: smtp-source would
        fail on a 421; with a limit above the sessions all go through."""
        d = self.daemon("-p", "sink", "--max-connections", "20")
        self.smtp_source(d, "-m", "100", "-s", "10", "-l", "512",
                         "-f", "a@test.example", "-t", "b@test.example")
        self.assertEqual(wait_count(d, "accepted by plugin sink", 100), 100)


if __name__ == "__main__":
    unittest.main()

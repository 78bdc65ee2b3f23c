"""AUTH (RFC 4954) in the real daemon with the bundled authfile plugin:
swaks and smtplib over STARTTLS and implicit TLS, plaintext refusal,
failures slowed down by a timer that follows the client address across
connections, brute force cut off by --max-errors, every error ending the
exchange, NULs inside values refused."""
import base64
import os
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
import unittest

from smtphook_test import DaemonTestCase, run_daemon, free_port, require_swaks, SLOW



def sha512_crypt(password):
    return subprocess.run(["openssl", "passwd", "-6", password], check=True,
                          capture_output=True, text=True).stdout.strip()


def b64(s):
    return base64.b64encode(s.encode()).decode()


class AuthTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="smtphook-auth-")
        cls.cert = os.path.join(cls.dir, "cert.pem")
        cls.key = os.path.join(cls.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", cls.key, "-out", cls.cert, "-days", "1",
                        "-subj", "/CN=mx.test.example"], check=True,
                       capture_output=True)
        cls.users = os.path.join(cls.dir, "users")
        with open(cls.users, "w") as f:
            f.write("# test users\n")
            f.write("alice:%s\n" % sha512_crypt("secret"))
            f.write("bob:%s\n" % sha512_crypt("hunter2"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def start(self, *extra):
        return self.daemon("--tls-cert", self.cert, "--tls-key", self.key,
                           "--auth", "PLAIN,LOGIN", *extra,
                           "-p", "authfile:file=" + self.users, "-p", "sink")

    def tls_context(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def test_swaks_plain_and_login_over_starttls(self):
        d = self.start()
        for mech in ("PLAIN", "LOGIN"):
            r = subprocess.run([require_swaks(tls=True), "--server", "127.0.0.1:%d" % d.port, "--tls",
                                "--auth", mech, "--auth-user", "alice",
                                "--auth-password", "secret", "--to", "x@test.example",
                                "--from", "alice@test.example"],
                               capture_output=True, text=True, timeout=30 * SLOW)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("235 2.7.0", r.stdout)
        log = d.wait_log("authenticated as alice (LOGIN)")
        self.assertNotIn("secret", log)

    def test_smtplib_login_then_send(self):
        d = self.start()
        with smtplib.SMTP("127.0.0.1", d.port, timeout=10 * SLOW) as s:
            s.starttls(context=self.tls_context())
            s.ehlo()
            self.assertIn("auth", s.esmtp_features)
            s.login("bob", "hunter2")
            refused = s.sendmail("bob@test.example", ["x@test.example"],
                                 b"Subject: hi\r\n\r\nbody\r\n")
            self.assertEqual(refused, {})

    def test_smtp_ssl_implicit_tls(self):
        port = free_port()
        d = self.start("--tls-listen", "127.0.0.1:%d" % port)
        with smtplib.SMTP_SSL("127.0.0.1", port, context=self.tls_context(),
                              timeout=10 * SLOW) as s:
            s.login("alice", "secret")
            self.assertEqual(s.noop()[0], 250)

    def test_wrong_password_refused_and_slowed(self):
        d = self.start()
        with smtplib.SMTP("127.0.0.1", d.port, timeout=20 * SLOW) as s:
            s.starttls(context=self.tls_context())
            s.ehlo()
            t0 = time.time()
            with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                s.login("alice", "wrong")
            self.assertEqual(cm.exception.smtp_code, 535)
            t1 = time.time()
            with self.assertRaises(smtplib.SMTPAuthenticationError):
                s.login("nobody", "secret")
            t2 = time.time()
            # The held-back answer grows with each failure.
            self.assertGreaterEqual(t2 - t1, 0.9)
            self.assertGreater(t2 - t1, (t1 - t0) + 0.3)
            s.login("alice", "secret")

    def test_other_sessions_served_while_one_is_slowed(self):
        d = self.start("--auth-insecure")
        c = self.client(d)
        c.ehlo()
        for _ in range(3):
            self.assertEqual(c.cmd("AUTH PLAIN " + b64("\0alice\0bad")).code, 535)
        c.send("AUTH PLAIN %s\r\n" % b64("\0alice\0bad"))
        t0 = time.time()
        other = self.client(d)
        self.assertEqual(other.ehlo().code, 250)
        self.assertLess(time.time() - t0, 1.0 * SLOW)
        self.assertEqual(c.reply().code, 535)

    def test_brute_force_cut_off_by_error_limit(self):
        d = self.start("--auth-insecure", "--max-errors", "3")
        c = self.client(d, timeout=30)
        c.ehlo()
        codes = [c.cmd("AUTH PLAIN " + b64("\0alice\0guess%d" % i)).code for i in range(2)]
        self.assertEqual(codes, [535, 535])
        r = c.cmd("AUTH PLAIN " + b64("\0alice\0guess9"))
        self.assertEqual(r.code, 535)
        self.assertEqual(c.reply().code, 421)
        self.assertTrue(c.closed())

    def test_every_error_ends_the_exchange(self):
        # An over-long answer (100 KiB) is refused and the next line is a
        # command again, not a SASL answer; likewise after * and bad base64.
        d = self.start("--auth-insecure")
        c = self.client(d)
        c.ehlo()
        self.assertEqual(c.cmd("AUTH PLAIN").code, 334)
        c.send("A" * 100 * 1024 + "\r\n")
        self.assertEqual((c.reply().code, c.buf), (500, b""))
        self.assertEqual(c.cmd("NOOP").code, 250)
        for answer, code in (("*", 501), ("!!!!", 501)):
            self.assertEqual(c.cmd("AUTH LOGIN").code, 334)
            self.assertEqual(c.cmd(answer).code, code)
            self.assertEqual(c.cmd("NOOP").code, 250)
        self.assertEqual(c.cmd("AUTH LOGIN " + b64("alice")).code, 334)
        c.send("B" * 3000 + "\r\n")
        self.assertEqual(c.reply().code, 500)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)

    def test_nul_inside_a_value_is_refused_not_cut(self):
        d = self.start("--auth-insecure")
        cases = [["AUTH LOGIN " + b64("alice\0junk"), b64("secret")],
                 ["AUTH LOGIN", b64("alice\0junk"), b64("secret")],
                 ["AUTH LOGIN " + b64("alice"), b64("secret\0junk")],
                 ["AUTH PLAIN " + b64("\0alice\0secret\0junk")],
                 ["AUTH PLAIN " + b64("\0alice\0junk\0secret")]]
        for lines in cases:
            c = self.client(d)
            c.ehlo()
            codes = [c.cmd(l) for l in lines]
            last = next(r for r in codes if r.code != 334)
            self.assertEqual((last.code, last.enhanced), (501, "5.5.2"), lines)
            self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
            c.close()
        self.assertNotIn("authenticated as", d.log())

    def test_throttle_holds_535_and_follows_the_address(self):
        d = self.start("--auth-insecure")

        def guess(c, i):
            c.send("AUTH PLAIN %s\r\n" % b64("\0alice\0guess%d" % i))

        # Two failures make 127.0.0.1 a throttled address (0.5 s, 1 s).
        for i in range(2):
            with self.client(d) as c:
                c.ehlo()
                guess(c, i)
                self.assertEqual(c.reply().code, 535)
        d.wait_log("auth throttle: 127.0.0.1 has 2 failed AUTH attempts")
        # A fresh connection per guess buys nothing: each 535 itself is
        # held about 1 s.
        t0 = time.time()
        for i in range(5):
            with self.client(d) as c:
                c.ehlo()
                t = time.time()
                guess(c, i)
                self.assertEqual(c.reply().code, 535)
                self.assertGreaterEqual(time.time() - t, 0.9)
        self.assertGreaterEqual(time.time() - t0, 4.5)
        self.assertLess(time.time() - t0, 9 * SLOW)
        # Nor do parallel connections: their checks take turns.
        cs = [self.client(d) for _ in range(3)]
        for c in cs:
            c.ehlo()
        t0 = time.time()
        for i, c in enumerate(cs):
            guess(c, i)
        self.assertEqual([c.reply().code for c in cs], [535] * 3)
        self.assertGreaterEqual(time.time() - t0, 2.7)
        self.assertLess(time.time() - t0, 6 * SLOW)
        # The right password too waits for the address's turn.
        c = self.client(d)
        c.ehlo()
        t = time.time()
        self.assertEqual(c.cmd("AUTH PLAIN " + b64("\0alice\0secret")).code, 235)
        self.assertLess(time.time() - t, 2 * SLOW)

    def test_plaintext_refused_without_auth_insecure(self):
        d = self.start()
        c = self.client(d)
        r = c.ehlo()
        self.assertNotIn("AUTH", r.text)
        r = c.cmd("AUTH PLAIN " + b64("\0alice\0secret"))
        self.assertEqual((r.code, r.enhanced), (538, "5.7.11"))

    def test_auth_insecure_offers_in_plaintext(self):
        d = self.start("--auth-insecure")
        c = self.client(d)
        self.assertIn("AUTH PLAIN LOGIN", c.ehlo().text)
        self.assertEqual(c.cmd("AUTH LOGIN").code, 334)
        self.assertEqual(c.cmd(b64("alice")).code, 334)
        self.assertEqual(c.cmd(b64("secret")).code, 235)
        self.assertEqual(c.cmd("AUTH LOGIN").code, 503)

    def test_received_header_says_esmtpa(self):
        out = os.path.join(self.dir, "rec.eml")
        d = self.daemon("--auth", "PLAIN", "--auth-insecure",
                        "-p", "authfile:file=" + self.users,
                        "-p", os.path.join(os.environ.get("SMTPHOOK_BUILD_DIR", "../../build"),
                                           "tests", "plugins", "chunk_recorder.so") + ":file=" + out)
        c = self.client(d)
        c.ehlo()
        self.assertEqual(c.cmd("AUTH PLAIN " + b64("\0alice\0secret")).code, 235)
        self.assertEqual(c.cmd("MAIL FROM:<alice@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<x@test.example>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(b"Subject: a\r\n\r\nb\r\n.\r\n")
        self.assertEqual(c.reply().code, 250)
        with open(out, "rb") as f:
            self.assertIn(b"with ESMTPA id", f.read())

    def test_authfile_bad_file_is_startup_error(self):
        bad = os.path.join(self.dir, "bad-users")
        with open(bad, "w") as f:
            f.write("alice:plaintext-password\n")
        r = run_daemon(["--auth", "PLAIN", "--auth-insecure", "-p", "authfile:file=" + bad])
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad-users:1:", r.stderr)
        r = run_daemon(["-p", "authfile:file=/nonexistent/users"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent/users", r.stderr)


if __name__ == "__main__":
    unittest.main()

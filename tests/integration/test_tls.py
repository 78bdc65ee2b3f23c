"""STARTTLS (RFC 3207) and implicit TLS (RFC 8314) against the real daemon:
real clients (swaks, openssl s_client, Python smtplib), the protocol rules
around STARTTLS (advertising, 501/502/503, the session reset, the
CVE-2011-0411 injection), --require-tls, --tls-min-version, handshake
timeouts, certificate reload on SIGHUP, what plugins and the Received:
header see, large and pipelined traffic over TLS, and a clean SIGTERM.

A throw-away self-signed certificate and key are generated for each run in
a temporary directory (never committed).
"""
import base64
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from smtphook_test import (Client, DaemonTestCase, HOSTNAME, SLOW, VALGRIND,
                           free_port, plugin_path, require_swaks, require_tool,
                           run_daemon)


CERTS = None          # module temp dir
CERT = KEY = None     # CN=mx.test.example
CERT2 = KEY2 = None   # CN=mx2.test.example (the "renewed" certificate)
# --timeout for the handshake-timeout tests; valgrind needs more slack for
# the sessions that must *not* time out.
SHORT = 5 if VALGRIND else 2


def make_cert(directory, name, cn):
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run([require_tool("openssl", "openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-subj", "/CN=" + cn, "-days", "1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def setUpModule():
    global CERTS, CERT, KEY, CERT2, KEY2
    CERTS = tempfile.mkdtemp(prefix="smtphook-tls-")
    CERT, KEY = make_cert(CERTS, "mx", HOSTNAME)
    CERT2, KEY2 = make_cert(CERTS, "mx2", "mx2.test.example")


def tearDownModule():
    if CERTS is not None:
        shutil.rmtree(CERTS, ignore_errors=True)


def client_context(verify=True, maximum_version=None):
    """A client context that trusts the test certificate (no hostname
    check: the certificate has only a CN)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if verify:
        ctx.load_verify_locations(CERT)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if maximum_version is not None:
        ctx.maximum_version = maximum_version
    return ctx


def cert_subject(der):
    """The subject line of a DER certificate, as openssl prints it."""
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run([require_tool("openssl", "openssl"), "x509", "-noout", "-subject"], input=pem,
                         capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.strip()


def file_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class TLSClient(Client):
    """Client that can switch to TLS (STARTTLS) or start with it
    (implicit TLS).  Replies are read the same way either side."""

    def __init__(self, port, implicit=False, ctx=None, timeout=10, greeting=True):
        self.buf = b""
        self.ctx = ctx or client_context()
        self.raw = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
        self.sock = self.raw
        if implicit:
            self.sock = self.ctx.wrap_socket(self.raw, server_hostname=HOSTNAME)
        self.greeting = self.reply() if greeting else None

    def starttls(self, ctx=None):
        """STARTTLS, its 220, then the handshake on the same socket."""
        r = self.cmd("STARTTLS")
        assert r.code == 220, r
        self.handshake(ctx)
        return r

    def handshake(self, ctx=None):
        # Nothing may follow the 220 in plaintext.
        assert self.buf == b"", "server sent more after 220: %r" % self.buf
        self.sock = (ctx or self.ctx).wrap_socket(self.sock, server_hostname=HOSTNAME)

    def quiet(self, wait=0.5):
        """True when the server sends nothing more within wait seconds."""
        self.sock.settimeout(wait * SLOW)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return self.buf == b""
        finally:
            self.sock.settimeout(10 * SLOW)
        self.buf += data
        return False

    def closed(self, timeout=5):
        try:
            return super().closed(timeout)
        except (ssl.SSLError, OSError):
            return True


def ehlo_keywords(reply):
    return [t.split(" ", 1)[0].upper() for t in reply.texts[1:]]


class TLSTestCase(DaemonTestCase):
    def tls_daemon(self, *args, implicit=False, cert=None, key=None, **kw):
        """A daemon with STARTTLS (and an implicit-TLS listener on
        d.tls_port when implicit=True)."""
        extra = ["--tls-cert", cert or CERT, "--tls-key", key or KEY]
        tls_port = None
        if implicit:
            tls_port = free_port()
            extra += ["--tls-listen", "127.0.0.1:%d" % tls_port]
        d = self.daemon(*(extra + list(args)), **kw)
        d.tls_port = tls_port
        return d

    def tls_client(self, d, implicit=False, **kw):
        c = TLSClient(d.tls_port if implicit else d.port, implicit=implicit, **kw)
        self.addCleanup(c.close)
        return c

    def recorder(self):
        """chunk_recorder spec writing into a fresh temp dir; (spec, path)."""
        tmp = tempfile.mkdtemp(prefix="smtphook-tls-rec-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "msg")
        return plugin_path("chunk_recorder") + ":file=" + path, path

    def send_message(self, c, body, rcpt="rcpt@test.example"):
        self.assertEqual(c.cmd("MAIL FROM:<sender@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<%s>" % rcpt).code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(body + b".\r\n")
        return c.reply()

    def assert_healthy(self, d, implicit=True):
        """A fresh TLS session still gets through to a 250."""
        c = self.tls_client(d, implicit=implicit)
        if not implicit:
            c.starttls()
        self.assertEqual(c.greeting.code, 220, c.greeting)
        r = c.ehlo()
        self.assertEqual(r.code, 250, r)
        self.assertEqual(c.cmd("QUIT").code, 221)


class RealClients(TLSTestCase):
    def test_swaks_starttls(self):
        swaks = require_swaks(tls=True)
        d = self.tls_daemon("-p", "sink")
        r = subprocess.run([swaks, "--server", "127.0.0.1", "--port", str(d.port),
                            "--tls", "--helo", "client.test.example",
                            "--from", "a@test.example", "--to", "b@test.example",
                            "--timeout", str(int(20 * SLOW))],
                           capture_output=True, text=True, timeout=60 * SLOW,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("TLS started", r.stdout)
        self.assertRegex(r.stdout, r"<~ +250 ")
        log = d.wait_log("accepted by plugin sink")
        self.assertIn("TLS established: TLSv1.3", log)

    def test_swaks_tls_on_connect(self):
        swaks = require_swaks(tls=True)
        d = self.tls_daemon("-p", "sink", implicit=True)
        r = subprocess.run([swaks, "--server", "127.0.0.1", "--port", str(d.tls_port),
                            "--tls-on-connect", "--helo", "client.test.example",
                            "--from", "a@test.example", "--to", "b@test.example",
                            "--timeout", str(int(20 * SLOW))],
                           capture_output=True, text=True, timeout=60 * SLOW,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("220 %s ESMTP smtphook" % HOSTNAME, r.stdout)
        d.wait_log("accepted by plugin sink")

    def test_openssl_s_client_starttls(self):
        d = self.tls_daemon()
        r = subprocess.run([require_tool("openssl", "openssl"), "s_client", "-starttls", "smtp", "-connect",
                            "127.0.0.1:%d" % d.port, "-quiet",
                            "-name", "client.test.example"],
                           input=b"EHLO client.test.example\r\nQUIT\r\n",
                           capture_output=True, timeout=30 * SLOW)
        out = r.stdout.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, out + r.stderr.decode("utf-8", "replace"))
        # The EHLO over TLS: no STARTTLS any more; then QUIT's 221.
        self.assertIn("250-%s" % HOSTNAME, out)
        self.assertIn("250-PIPELINING", out)
        self.assertNotIn("STARTTLS", out)
        self.assertRegex(out, r"(?m)^221 2\.0\.0")
        d.wait_log("TLS established")

    def test_smtplib_starttls_send(self):
        rec, path = self.recorder()
        d = self.tls_daemon("-p", rec)
        s = smtplib.SMTP("127.0.0.1", d.port, local_hostname="client.test.example",
                         timeout=10 * SLOW)
        self.addCleanup(s.close)
        s.ehlo()
        self.assertTrue(s.has_extn("starttls"))
        code, _ = s.starttls(context=client_context())
        self.assertEqual(code, 220)
        s.ehlo()
        self.assertFalse(s.has_extn("starttls"))
        self.assertTrue(s.has_extn("pipelining"))
        self.assertEqual(s.sendmail("a@test.example", ["b@test.example"],
                                    b"Subject: smtplib over TLS\r\n\r\nhello\r\n"), {})
        self.assertEqual(s.quit()[0], 221)
        with open(path, "rb") as f:
            stored = f.read()
        self.assertTrue(stored.endswith(b"Subject: smtplib over TLS\r\n\r\nhello\r\n"))

    def test_smtplib_smtp_ssl(self):
        d = self.tls_daemon("-p", "sink", implicit=True)
        s = smtplib.SMTP_SSL("127.0.0.1", d.tls_port, local_hostname="client.test.example",
                             timeout=10 * SLOW, context=client_context())
        self.addCleanup(s.close)
        s.ehlo()
        self.assertFalse(s.has_extn("starttls"))
        self.assertEqual(s.sendmail("a@test.example", ["b@test.example"],
                                    b"Subject: implicit\r\n\r\nhello\r\n"), {})
        self.assertEqual(s.quit()[0], 221)
        d.wait_log("accepted by plugin sink")


class StarttlsProtocol(TLSTestCase):
    def test_ehlo_advertises_starttls_only_before_tls(self):
        d = self.tls_daemon()
        c = self.tls_client(d)
        self.assertIn("STARTTLS", ehlo_keywords(c.ehlo()))
        c.starttls()
        self.assertNotIn("STARTTLS", ehlo_keywords(c.ehlo()))
        # HELO is fine over TLS too.
        self.assertEqual(c.cmd("HELO client.test.example").code, 250)

    def test_implicit_tls_does_not_advertise_starttls(self):
        d = self.tls_daemon(implicit=True)
        c = self.tls_client(d, implicit=True)
        self.assertEqual(c.greeting.code, 220)
        self.assertIn("ESMTP smtphook", c.greeting.text)
        kw = ehlo_keywords(c.ehlo())
        self.assertNotIn("STARTTLS", kw)
        self.assertIn("PIPELINING", kw)
        # STARTTLS over implicit TLS is a second STARTTLS.
        r = c.cmd("STARTTLS")
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"))
        # The plaintext listener still offers STARTTLS.
        p = self.tls_client(d)
        self.assertIn("STARTTLS", ehlo_keywords(p.ehlo()))

    def test_no_starttls_without_certificate(self):
        d = self.daemon()
        c = self.client(d)
        self.assertNotIn("STARTTLS", ehlo_keywords(c.ehlo()))
        r = c.cmd("STARTTLS")
        self.assertEqual((r.code, r.enhanced), (502, "5.5.1"))
        # The session goes on in plaintext.
        self.assertEqual(c.cmd("NOOP").code, 250)

    def test_starttls_with_argument_501(self):
        d = self.tls_daemon()
        c = self.tls_client(d)
        c.ehlo()
        r = c.cmd("STARTTLS now")
        self.assertEqual((r.code, r.enhanced), (501, "5.5.4"), r)
        # Still plaintext, and STARTTLS still works.
        c.starttls()
        self.assertEqual(c.ehlo().code, 250)

    def test_second_starttls_503(self):
        d = self.tls_daemon()
        c = self.tls_client(d)
        c.ehlo()
        c.starttls()
        self.assertEqual(c.ehlo().code, 250)
        r = c.cmd("STARTTLS")
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"))
        # The TLS session is unharmed.
        self.assertEqual(c.cmd("NOOP").code, 250)
        self.assertEqual(c.cmd("QUIT").code, 221)

    def test_starttls_before_ehlo(self):
        # RFC 3207 does not require EHLO first; smtphook allows it.
        d = self.tls_daemon()
        c = self.tls_client(d)
        c.starttls()
        self.assertEqual(c.ehlo().code, 250)

    def test_session_reset_after_starttls(self):
        d = self.tls_daemon()
        c = self.tls_client(d)
        self.assertEqual(c.ehlo().code, 250)
        c.starttls()
        # The EHLO from before is forgotten.
        r = c.cmd("MAIL FROM:<a@test.example>")
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"), r)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)

    def test_transaction_before_starttls_is_gone(self):
        trace = plugin_path("trace")
        d = self.tls_daemon("-p", trace)
        c = self.tls_client(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<before@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@test.example>").code, 250)
        c.starttls()
        c.ehlo()
        r = c.cmd("RCPT TO:<r@test.example>")
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"), r)
        r = c.cmd("DATA")
        self.assertEqual(r.code, 503, r)
        # A new transaction starts from scratch.
        self.assertEqual(c.cmd("MAIL FROM:<after@test.example>").code, 250)
        c.cmd("QUIT")
        log = d.wait_log("plugin trace: trace trace disconnect")
        hooks = re.findall(r"plugin trace: trace trace (\w+)", log)
        # mail, rcpt, then the transaction was reset by STARTTLS.
        i = hooks.index("mail")
        self.assertEqual(hooks[i:i + 4], ["mail", "rcpt", "reset", "helo"])

    def test_auth_before_starttls_is_forgotten(self):
        # RFC 3207 §4.2: after STARTTLS the server forgets everything it
        # learned from the client, an AUTH in plaintext included.
        tmp = tempfile.mkdtemp(prefix="smtphook-tls-auth-")
        self.addCleanup(shutil.rmtree, tmp, True)
        users = os.path.join(tmp, "users")
        h = subprocess.run([require_tool("openssl", "openssl"), "passwd", "-6", "secret"], capture_output=True,
                           text=True, check=True, timeout=30).stdout.strip()
        with open(users, "w") as f:
            f.write("alice:%s\n" % h)
        rec, path = self.recorder()
        d = self.tls_daemon("--auth", "PLAIN", "--auth-insecure",
                            "-p", "authfile:file=" + users, "-p", rec)
        c = self.tls_client(d)
        c.ehlo()
        plain = base64.b64encode(b"\0alice\0secret").decode()
        self.assertEqual(c.cmd("AUTH PLAIN " + plain).code, 235)
        c.starttls()
        c.ehlo()
        # Not authenticated any more: the message is not marked ESMTPSA...
        self.assertEqual(self.send_message(c, b"Subject: a\r\n\r\nx\r\n").code, 250)
        with open(path, "rb") as f:
            stored = f.read()
        self.assertIn(b" with ESMTPS id ", stored)
        # ... and AUTH over TLS is a first AUTH, not a second one (503).
        self.assertEqual(c.cmd("AUTH PLAIN " + plain).code, 235)
        self.assertEqual(self.send_message(c, b"Subject: b\r\n\r\nx\r\n").code, 250)
        with open(path, "rb") as f:
            self.assertIn(b" with ESMTPSA id ", f.read())

    def test_require_tls(self):
        d = self.tls_daemon("--require-tls", "-p", "sink", implicit=True)
        c = self.tls_client(d)
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@test.example>")
        self.assertEqual((r.code, r.enhanced), (530, "5.7.0"), r)
        c.starttls()
        c.ehlo()
        r = self.send_message(c, b"Subject: required\r\n\r\nx\r\n")
        self.assertEqual(r.code, 250, r)
        # Implicit TLS satisfies it too.
        i = self.tls_client(d, implicit=True)
        i.ehlo()
        self.assertEqual(i.cmd("MAIL FROM:<a@test.example>").code, 250)

    def test_require_tls_needs_certificate(self):
        r = run_daemon(["--require-tls", "-l", "127.0.0.1:%d" % free_port()])
        self.assertEqual(r.returncode, 2)
        self.assertIn("--require-tls", r.stderr)


class Injection(TLSTestCase):
    """CVE-2011-0411: commands pipelined with STARTTLS in plaintext must
    not be executed as if they had come over TLS."""

    def inject(self, d, extra):
        c = self.tls_client(d)
        c.ehlo()
        c.send(b"STARTTLS\r\n" + extra)
        r = c.reply()
        self.assertEqual(r.code, 220, r)
        # Not one more plaintext reply (the injected command was not run
        # before the handshake either).
        self.assertTrue(c.quiet(0.3), c.buf)
        c.handshake()
        return c

    def test_injected_rset(self):
        d = self.tls_daemon()
        c = self.inject(d, b"RSET\r\n")
        r = c.ehlo()
        self.assertEqual(r.code, 250)
        # Exactly the EHLO reply: nothing for the RSET.
        self.assertTrue(c.quiet(0.5), c.buf)
        self.assertEqual(c.cmd("NOOP").code, 250)
        log = d.wait_log("pipelined after STARTTLS")
        self.assertRegex(log, r"discarding 6 octets pipelined after STARTTLS")

    def test_injected_mail_from(self):
        trace = plugin_path("trace")
        d = self.tls_daemon("-p", trace)
        c = self.inject(d, b"EHLO evil.example\r\nMAIL FROM:<x@y.example>\r\n")
        # Had the injected EHLO/MAIL run over TLS, MAIL would be 503
        # nested and EHLO would be known; neither happened.
        r = c.cmd("MAIL FROM:<a@test.example>")
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"), r)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertTrue(c.quiet(0.3), c.buf)
        c.cmd("QUIT")
        log = d.wait_log("plugin trace: trace trace disconnect")
        self.assertIn("discarding", log)
        self.assertNotIn("evil.example", log)
        self.assertNotIn("x@y.example", log)

    def test_starttls_in_the_middle_of_a_pipeline(self):
        # Commands before STARTTLS in the same packet are answered; those
        # after it are not.
        trace = plugin_path("trace")
        d = self.tls_daemon("-p", trace)
        c = self.tls_client(d)
        c.send(b"EHLO client.test.example\r\nNOOP\r\nSTARTTLS\r\n"
               b"MAIL FROM:<x@y.example>\r\nRCPT TO:<z@y.example>\r\nDATA\r\n")
        self.assertEqual([c.reply().code for _ in range(3)], [250, 250, 220])
        self.assertTrue(c.quiet(0.3), c.buf)
        c.handshake()
        r = c.cmd("RCPT TO:<r@test.example>")
        self.assertEqual((r.code, r.enhanced), (503, "5.5.1"), r)
        log = d.wait_log("pipelined after STARTTLS")
        self.assertNotIn("x@y.example", log)
        self.assertNotIn("z@y.example", log)

    def test_plaintext_after_220_breaks_handshake(self):
        # Bytes sent after the 220 in plaintext are the handshake as far
        # as the server is concerned: it fails, nothing is executed.
        trace = plugin_path("trace")
        d = self.tls_daemon("-p", trace)
        c = self.tls_client(d)
        c.ehlo()
        self.assertEqual(c.cmd("STARTTLS").code, 220)
        c.send(b"MAIL FROM:<x@y.example>\r\n")
        self.assertTrue(c.closed(5))
        log = d.wait_log("TLS handshake failed")
        self.assertNotIn("x@y.example", log)
        self.assert_healthy(d, implicit=False)


class Versions(TLSTestCase):
    def test_min_version_13_refuses_tls12_client(self):
        d = self.tls_daemon("--tls-min-version", "1.3", implicit=True)
        c = self.tls_client(d)
        self.assertEqual(c.cmd("STARTTLS").code, 220)
        with self.assertRaises((ssl.SSLError, OSError)):
            c.handshake(client_context(maximum_version=ssl.TLSVersion.TLSv1_2))
            c.ehlo()
        with self.assertRaises((ssl.SSLError, OSError)):
            self.tls_client(d, implicit=True,
                            ctx=client_context(maximum_version=ssl.TLSVersion.TLSv1_2))
        d.wait_log("TLS handshake failed")
        # A TLS 1.3 client is served.
        c = self.tls_client(d, implicit=True)
        self.assertEqual(c.sock.version(), "TLSv1.3")
        self.assertEqual(c.ehlo().code, 250)

    def test_tls12_accepted_by_default(self):
        probe = plugin_path("tls_probe")
        d = self.tls_daemon("-p", probe)
        c = self.tls_client(d, ctx=client_context(maximum_version=ssl.TLSVersion.TLSv1_2))
        c.starttls()
        self.assertEqual(c.sock.version(), "TLSv1.2")
        # Mozilla intermediate: an ECDHE + AEAD suite.
        self.assertRegex(c.sock.cipher()[0], r"^ECDHE-RSA-.*(GCM|CHACHA20)")
        c.ehlo()
        log = d.wait_log("tls_probe helo tls=1")
        self.assertIn("protocol=TLSv1.2 cipher=%s" % c.sock.cipher()[0], log)

    def test_tls_ciphers_option(self):
        d = self.tls_daemon("--tls-ciphers", "ECDHE-RSA-AES256-GCM-SHA384")
        c = self.tls_client(d, ctx=client_context(maximum_version=ssl.TLSVersion.TLSv1_2))
        c.starttls()
        self.assertEqual(c.sock.cipher()[0], "ECDHE-RSA-AES256-GCM-SHA384")
        self.assertEqual(c.ehlo().code, 250)

    def test_bad_tls_options_exit_2(self):
        port = "127.0.0.1:%d" % free_port()
        cases = [
            (["--tls-min-version", "1.1", "--tls-cert", CERT, "--tls-key", KEY],
             "--tls-min-version"),
            (["--tls-cert", CERT], "--tls-cert and --tls-key"),
            (["--tls-listen", port], "--tls-listen needs"),
            (["--tls-cert", CERT, "--tls-key", KEY2], "key values mismatch"),
            (["--tls-cert", CERT, "--tls-key", KEY, "--tls-ciphers", "NO-SUCH-CIPHER"],
             "--tls-ciphers"),
            (["--tls-cert", os.path.join(CERTS, "missing.crt"), "--tls-key", KEY],
             "missing.crt"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                r = run_daemon(["-l", "127.0.0.1:%d" % free_port()] + args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(needle, r.stderr)
                self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)


class Handshakes(TLSTestCase):
    def test_implicit_port_plaintext_client_closed(self):
        d = self.tls_daemon(implicit=True)
        c = TLSClient.__new__(TLSClient)
        c.buf = b""
        c.sock = socket.create_connection(("127.0.0.1", d.tls_port), timeout=5 * SLOW)
        self.addCleanup(c.close)
        c.send(b"EHLO client.test.example\r\n")
        start = time.time()
        self.assertTrue(c.closed(5))
        self.assertLess(time.time() - start, 1.5 * SLOW)
        self.assertNotIn(b"250", c.buf)
        d.wait_log("TLS handshake failed")
        self.assert_healthy(d)
        self.assert_healthy(d, implicit=False)

    def test_implicit_port_silent_client_times_out(self):
        d = self.tls_daemon("--timeout", str(SHORT), implicit=True)
        s = socket.create_connection(("127.0.0.1", d.tls_port), timeout=10 * SLOW)
        self.addCleanup(s.close)
        start = time.time()
        self.assertEqual(s.recv(100), b"")    # closed, nothing sent
        elapsed = time.time() - start
        self.assertGreater(elapsed, SHORT - 0.5)
        self.assertLess(elapsed, SHORT + 1.5 * SLOW)
        d.wait_log("TLS handshake timed out")
        self.assert_healthy(d)

    def test_starttls_silent_client_times_out(self):
        d = self.tls_daemon("--timeout", str(SHORT))
        c = self.tls_client(d)
        c.ehlo()
        self.assertEqual(c.cmd("STARTTLS").code, 220)
        start = time.time()
        self.assertTrue(c.closed(6))
        elapsed = time.time() - start
        self.assertGreater(elapsed, SHORT - 0.5)
        self.assertLess(elapsed, SHORT + 1.5 * SLOW)
        self.assertEqual(c.buf, b"")   # no plaintext 421 into a TLS stream
        d.wait_log("TLS handshake timed out")
        self.assert_healthy(d, implicit=False)

    def test_handshake_timeout_capped_at_30s(self):
        # The idle timeout is 120 s; a handshake gets min(120, 30) s.
        d = self.tls_daemon("--timeout", "120", implicit=True)
        s = socket.create_connection(("127.0.0.1", d.tls_port), timeout=60 * SLOW)
        self.addCleanup(s.close)
        start = time.time()
        self.assertEqual(s.recv(100), b"")
        elapsed = time.time() - start
        self.assertGreater(elapsed, 28)
        self.assertLess(elapsed, 40 * SLOW)
        d.wait_log("TLS handshake timed out")

    def test_client_vanishes_mid_handshake(self):
        # Half a ClientHello, then the client is gone; later clients are
        # served normally (no stale OpenSSL error leaks into them).
        d = self.tls_daemon(implicit=True)
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", d.tls_port), timeout=5 * SLOW)
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            time.sleep(0.1)
            s.close()
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", d.tls_port), timeout=5 * SLOW)
            s.close()
        self.assert_healthy(d)
        self.assert_healthy(d, implicit=False)
        self.assert_healthy(d)


class Reload(TLSTestCase):
    def own_cert(self):
        """A private copy of the first certificate: the test replaces it."""
        tmp = tempfile.mkdtemp(prefix="smtphook-tls-hup-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        shutil.copy(CERT, cert)
        shutil.copy(KEY, key)
        return cert, key

    def peer_der(self, d, implicit=True):
        c = self.tls_client(d, implicit=implicit, ctx=client_context(verify=False))
        if not implicit:
            c.starttls()
        der = c.sock.getpeercert(binary_form=True)
        c.cmd("QUIT")
        return der

    def test_sighup_loads_new_certificate(self):
        cert, key = self.own_cert()
        rec, path = self.recorder()
        d = self.tls_daemon("-p", rec, implicit=True, cert=cert, key=key)
        self.assertEqual(self.peer_der(d), file_der(CERT))
        # A session opened before the reload, mid-transaction.
        old = self.tls_client(d)
        old.ehlo()
        old.starttls()
        old.ehlo()
        self.assertEqual(old.cmd("MAIL FROM:<old@test.example>").code, 250)
        # Renew: new files (a new CN), then SIGHUP.
        shutil.copy(CERT2, cert + ".new")
        shutil.copy(KEY2, key + ".new")
        os.rename(key + ".new", key)
        os.rename(cert + ".new", cert)
        d.send_signal(signal.SIGHUP)
        d.wait_log("SIGHUP: TLS certificate reloaded from %s" % cert)
        for implicit in (True, False):
            der = self.peer_der(d, implicit)
            self.assertEqual(der, file_der(CERT2))
            self.assertIn("CN = mx2.test.example", cert_subject(der))
        # The old session goes on, over its old TLS session.
        self.assertEqual(cert_subject(old.sock.getpeercert(binary_form=True)),
                         "subject=CN = %s" % HOSTNAME)
        self.assertEqual(old.cmd("RCPT TO:<r@test.example>").code, 250)
        self.assertEqual(old.cmd("DATA").code, 354)
        old.send(b"Subject: across the reload\r\n\r\nstill here\r\n.\r\n")
        self.assertEqual(old.reply().code, 250)
        self.assertEqual(old.cmd("QUIT").code, 221)
        with open(path, "rb") as f:
            self.assertTrue(f.read().endswith(b"still here\r\n"))

    def test_sighup_broken_certificate_keeps_old(self):
        cert, key = self.own_cert()
        d = self.tls_daemon(implicit=True, cert=cert, key=key)
        with open(cert, "w") as f:
            f.write("this is not a certificate\n")
        d.send_signal(signal.SIGHUP)
        log = d.wait_log("SIGHUP: TLS reload failed")
        self.assertRegex(log, r"TLS reload failed, keeping the old certificate: "
                              r"--tls-cert %s: " % re.escape(cert))
        self.assertEqual(self.peer_der(d), file_der(CERT))
        self.assertEqual(self.peer_der(d, implicit=False), file_der(CERT))
        # A certificate that does not match the key is refused too.
        shutil.copy(CERT2, cert)
        d.send_signal(signal.SIGHUP)
        d.wait_log("--tls-key %s: error:05800074:x509 certificate routines::key values "
                   "mismatch" % key)
        self.assertEqual(self.peer_der(d), file_der(CERT))
        # Fixed files load on the next SIGHUP.
        shutil.copy(KEY2, key)
        d.send_signal(signal.SIGHUP)
        d.wait_log("SIGHUP: TLS certificate reloaded")
        self.assertEqual(self.peer_der(d), file_der(CERT2))

    def test_sighup_without_tls(self):
        d = self.daemon()
        d.send_signal(signal.SIGHUP)
        d.wait_log("SIGHUP: nothing to reload")
        c = self.client(d)
        self.assertEqual(c.ehlo().code, 250)


class WhatPluginsSee(TLSTestCase):
    def test_received_header_esmtps(self):
        rec, path = self.recorder()
        d = self.tls_daemon("-p", rec)
        c = self.tls_client(d)
        c.ehlo()
        c.starttls()
        c.ehlo()
        self.assertEqual(self.send_message(c, b"Subject: s\r\n\r\nbody\r\n").code, 250)
        with open(path, "rb") as f:
            stored = f.read().decode()
        received = stored.split("\r\n\r\n", 1)[0]
        self.assertRegex(received, r"^Received: from client\.test\.example "
                                   r"\(127\.0\.0\.1 \[127\.0\.0\.1\]\)\r\n"
                                   r"\t\(using TLSv1\.3 with cipher TLS_[A-Z0-9_]+\)\r\n"
                                   r"\tby mx\.test\.example \(smtphook\) with ESMTPS id ")
        self.assertEqual(re.search(r"cipher (\S+)\)", received).group(1), c.sock.cipher()[0])
        # Plaintext on the same daemon: ESMTP, no "using".
        p = self.tls_client(d)
        p.ehlo()
        self.assertEqual(self.send_message(p, b"Subject: p\r\n\r\nbody\r\n").code, 250)
        with open(path, "rb") as f:
            stored = f.read().decode()
        self.assertIn(" with ESMTP id ", stored)
        self.assertNotIn("using TLS", stored)

    def test_received_header_implicit_helo(self):
        rec, path = self.recorder()
        d = self.tls_daemon("-p", rec, implicit=True)
        c = self.tls_client(d, implicit=True)
        self.assertEqual(c.cmd("HELO client.test.example").code, 250)
        self.assertEqual(self.send_message(c, b"Subject: s\r\n\r\nbody\r\n").code, 250)
        with open(path, "rb") as f:
            stored = f.read().decode()
        # HELO is plain SMTP (RFC 3848 "S" needs ESMTP), but TLS is noted.
        self.assertIn(" with SMTP id ", stored)
        self.assertIn("(using TLSv1.3 with cipher ", stored)

    def test_plugin_sees_tls_state(self):
        d = self.tls_daemon("-p", plugin_path("tls_probe"), implicit=True)
        c = self.tls_client(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        c.starttls()
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").code, 250)
        c.cmd("QUIT")
        cipher = c.sock.cipher()[0]
        log = d.wait_log("tls_probe rcpt")
        probes = re.findall(r"tls_probe (\w+) (tls=.*)$", log, re.M)
        self.assertEqual(probes, [
            ("helo", "tls=0 protocol=- cipher=- peer=-"),
            ("mail", "tls=0 protocol=- cipher=- peer=-"),
            ("helo", "tls=1 protocol=TLSv1.3 cipher=%s peer=-" % cipher),
            ("mail", "tls=1 protocol=TLSv1.3 cipher=%s peer=-" % cipher),
            ("rcpt", "tls=1 protocol=TLSv1.3 cipher=%s peer=-" % cipher),
        ])
        # Implicit TLS: encrypted from the first hook on.
        i = self.tls_client(d, implicit=True)
        i.ehlo()
        i.cmd("QUIT")
        log = d.wait_log("tls_probe helo tls=1 protocol=TLSv1.3 cipher=%s peer=-\n"
                         % i.sock.cipher()[0])


class Traffic(TLSTestCase):
    def test_large_message_over_tls(self):
        rec, path = self.recorder()
        d = self.tls_daemon("-p", rec, implicit=True)
        body = bytearray(b"Subject: big\r\n\r\n")
        i = 0
        while len(body) < 5 * 1024 * 1024:
            body += b"%08d the quick brown fox jumps over the lazy dog .......... %s\r\n" % (
                i, b"x" * (i % 50))
            if i % 997 == 0:
                body += b"..leading dot line (unstuffed to one dot)\r\n"
            i += 1
        body = bytes(body)
        expected = body.replace(b"\r\n..", b"\r\n.")
        for implicit in (True, False):
            with self.subTest(implicit=implicit):
                c = self.tls_client(d, implicit=implicit)
                if not implicit:
                    c.starttls()
                c.ehlo()
                c.sock.settimeout(60 * SLOW)
                r = self.send_message(c, body)
                self.assertEqual(r.code, 250, r)
                c.cmd("QUIT")
                with open(path, "rb") as f:
                    stored = f.read()
                trace, _, message = stored.partition(b"Subject: big\r\n")
                self.assertIn(b"with ESMTPS", trace)
                self.assertEqual(len(b"Subject: big\r\n" + message), len(expected))
                self.assertTrue(b"Subject: big\r\n" + message == expected)

    def test_large_replies_over_tls(self):
        # Many pipelined commands whose replies fill the output buffer
        # (partial TLS writes while the client reads slowly).
        d = self.tls_daemon(implicit=True)
        c = self.tls_client(d, implicit=True)
        c.ehlo()
        n = 3000
        c.send(b"".join(b"NOOP %d\r\n" % i for i in range(n)))
        time.sleep(0.5)
        for _ in range(n):
            self.assertEqual(c.reply().code, 250)
        self.assertEqual(c.cmd("QUIT").code, 221)

    def test_replies_backpressure_over_tls(self):
        # The client reads nothing for a while and has a tiny receive
        # buffer, and the replies (~6 MB of EHLO answers) are more than
        # the kernel will buffer: the daemon's TLS writes hit EAGAIN
        # (partial writes, WANT_WRITE), it stops reading at its output
        # high-water mark, and every reply still arrives, in order.
        d = self.tls_daemon(implicit=True)
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(30 * SLOW)
        raw.connect(("127.0.0.1", d.tls_port))
        sock = client_context().wrap_socket(raw, server_hostname=HOSTNAME)
        self.addCleanup(sock.close)
        n = 40000
        payload = b"EHLO c\r\n" * n + b"QUIT\r\n"
        err = []

        def sender():
            try:
                sock.sendall(payload)
            except OSError as e:   # reported below
                err.append(e)
        t = threading.Thread(target=sender)
        t.start()
        time.sleep(1.0)
        data = bytearray()
        while not data.endswith(b"\r\n") or b"\r\n221 " not in data[-200:]:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        t.join(30 * SLOW)
        self.assertEqual(err, [])
        lines = bytes(data).split(b"\r\n")
        self.assertTrue(lines[0].startswith(b"220 "), lines[0])
        finals = [l[:4] for l in lines[1:] if l[3:4] == b" "]
        self.assertEqual(finals, [b"250 "] * n + [b"221 "])
        self.assertEqual(sum(1 for l in lines if l == b"250-%s" % HOSTNAME.encode()), n)

    def test_pending_verdict_over_tls(self):
        # A plugin that answers later (a timer on the loop) while the rest
        # of the pipeline waits, decrypted, in the daemon.
        d = self.tls_daemon("-p", plugin_path("pending_timer") + ":hook=rcpt,delay=0.3",
                            "-p", "sink")
        c = self.tls_client(d)
        c.starttls()
        c.ehlo()
        c.send(b"MAIL FROM:<a@test.example>\r\nRCPT TO:<b@test.example>\r\n"
               b"RCPT TO:<c@test.example>\r\nDATA\r\n")
        self.assertEqual([c.reply().code for _ in range(4)], [250, 250, 250, 354])
        c.send(b"Subject: pending\r\n\r\nx\r\n.\r\nQUIT\r\n")
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(c.reply().code, 221)

    def test_client_closes_without_quit(self):
        # No close_notify, no QUIT: the session ends, the daemon is fine.
        d = self.tls_daemon(implicit=True)
        c = self.tls_client(d, implicit=True)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        c.raw.close()
        c.sock.close()
        log = d.wait_log("disconnect from client.test.example")
        self.assertRegex(log, r'mail=1 commands=2/2 accepted=0 errors=0 reason="')
        self.assert_healthy(d)

    def test_pipelining_over_tls(self):
        rec, path = self.recorder()
        d = self.tls_daemon("-p", rec)
        c = self.tls_client(d)
        c.starttls()
        self.assertIn("PIPELINING", ehlo_keywords(c.ehlo()))
        # One TLS write: the whole envelope and DATA.
        c.send(b"MAIL FROM:<a@test.example>\r\nRCPT TO:<b@test.example>\r\n"
               b"RCPT TO:<c@test.example>\r\nDATA\r\n")
        self.assertEqual([c.reply().code for _ in range(4)], [250, 250, 250, 354])
        # Body, end, a second transaction and QUIT, all in one write.
        c.send(b"Subject: one\r\n\r\nfirst\r\n.\r\n"
               b"RSET\r\nMAIL FROM:<a@test.example>\r\nRCPT TO:<d@test.example>\r\n"
               b"DATA\r\n")
        self.assertEqual([c.reply().code for _ in range(5)], [250, 250, 250, 250, 354])
        c.send(b"Subject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n")
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(c.reply().code, 221)
        self.assertTrue(c.closed(5))
        with open(path, "rb") as f:
            self.assertTrue(f.read().endswith(b"Subject: two\r\n\r\nsecond\r\n"))


class Shutdown(TLSTestCase):
    def test_sigterm_with_tls_sessions_open(self):
        d = self.tls_daemon("-p", "sink", implicit=True)
        idle_starttls = self.tls_client(d)
        idle_starttls.starttls()
        idle_starttls.ehlo()
        idle_implicit = self.tls_client(d, implicit=True)
        idle_implicit.ehlo()
        busy = self.tls_client(d, implicit=True)
        busy.ehlo()
        self.assertEqual(busy.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(busy.cmd("RCPT TO:<b@test.example>").code, 250)
        self.assertEqual(busy.cmd("DATA").code, 354)
        busy.send(b"Subject: during shutdown\r\n\r\npart one\r\n")
        # One client in the middle of its handshake, one that never starts.
        half = socket.create_connection(("127.0.0.1", d.tls_port), timeout=5 * SLOW)
        self.addCleanup(half.close)
        half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        mute = socket.create_connection(("127.0.0.1", d.port), timeout=5 * SLOW)
        self.addCleanup(mute.close)
        self.assertEqual(self.tls_client(d).starttls().code, 220)
        d.wait_log("TLS established", timeout=5)
        d.send_signal(signal.SIGTERM)
        # Idle TLS sessions get the 421 over TLS.
        for c in (idle_starttls, idle_implicit):
            r = c.reply()
            self.assertEqual((r.code, r.enhanced), (421, "4.3.2"), r)
            self.assertTrue(c.closed(5))
        # The transaction in progress may finish.
        busy.send(b"part two\r\n.\r\n")
        self.assertEqual(busy.reply().code, 250)
        self.assertEqual(busy.reply().code, 421)
        start = time.time()
        rc = d.proc.wait(timeout=20 * SLOW)
        self.assertEqual(rc, 0, d.log())
        self.assertLess(time.time() - start, 10 * SLOW)


if __name__ == "__main__":
    unittest.main()

"""The policy plugin in the real daemon, with raw sockets and smtplib:
allow_ip/deny_ip over IPv4 and IPv6 loopback (deny wins), rcpt_domains,
a deny_senders file (and its start-up errors naming the path and line),
require_helo and reject_ip_helo, and the whole bundled chain
policy -> sizefilter -> storing plugin end to end."""
import os
import smtplib
import socket
import tempfile
import unittest

from smtphook_test import Client, DaemonTestCase, PLUGIN_DIR, SLOW, free_port, plugin_path, \
    run_daemon

POLICY = os.path.join(PLUGIN_DIR, "policy.so")
SIZEFILTER = os.path.join(PLUGIN_DIR, "sizefilter.so")
RECORDER = plugin_path("chunk_recorder")


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class V6Client(Client):
    """A raw client connecting to [::1]:port."""

    def __init__(self, port, timeout=10, greeting=True):
        self.sock = socket.create_connection(("::1", port), timeout=timeout * SLOW)
        self.buf = b""
        self.greeting = self.reply() if greeting else None


class PolicyArgsTest(unittest.TestCase):
    def refused(self, args, needle):
        r = run_daemon(["--check", "-p", POLICY + (":" + args if args else "")])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(needle, r.stderr)
        return r

    def test_no_rule_refused(self):
        self.refused("", "plugin policy: no rule given")

    def test_bad_cidr_refused(self):
        self.refused("allow_ip=127.0.0.1;10.0.0.0/33",
                     "allow_ip: '10.0.0.0/33' is not an IPv4/IPv6 address or CIDR network")
        self.refused("deny_ip=::1/200", "deny_ip: '::1/200'")

    def test_missing_senders_file_named(self):
        self.refused("deny_senders=/nonexistent/deny.txt",
                     "deny_senders: /nonexistent/deny.txt: No such file or directory")

    def test_bad_senders_line_named(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("# list\nok@example.com\nexample.net\n")
        self.addCleanup(os.unlink, f.name)
        self.refused("deny_senders=" + f.name, "%s:3: 'example.net' is neither" % f.name)

    def test_bad_flag_refused(self):
        self.refused("require_helo=sometimes", "require_helo=sometimes: expected yes or no")

    def test_bad_domain_refused(self):
        self.refused("rcpt_domains=example.org;exa mple.net", "'exa mple.net' is not a domain")


class PolicyConnectTest(DaemonTestCase):
    def test_not_in_allow_list_554_then_quit(self):
        d = self.daemon("-p", POLICY + ":allow_ip=192.0.2.0/24;2001:db8::/32", "-p", "sink")
        c = self.client(d, greeting=False)
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (554, "5.7.1"), r)
        self.assertIn("Client address not allowed: [127.0.0.1]", r.text)
        self.assertEqual(c.cmd("MAIL FROM:<a@b.example>").code, 503)
        self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertTrue(c.closed())
        d.wait_log("client 127.0.0.1 refused: not in allow_ip")

    def test_smtplib_sees_connect_refusal(self):
        d = self.daemon("-p", POLICY + ":deny_ip=127.0.0.0/8", "-p", "sink")
        with self.assertRaises(smtplib.SMTPConnectError) as cm:
            smtplib.SMTP("127.0.0.1", d.port, timeout=10 * SLOW)
        self.assertEqual(cm.exception.smtp_code, 554)
        self.assertIn(b"5.7.1", cm.exception.smtp_error)
        self.assertIn(b"Client address denied: [127.0.0.1]", cm.exception.smtp_error)

    def test_in_allow_list(self):
        d = self.daemon("-p", POLICY + ":allow_ip=10.0.0.0/8;127.0.0.1", "-p", "sink")
        c = self.client(d)
        self.assertEqual(c.greeting.code, 220)

    def test_deny_wins_over_allow(self):
        d = self.daemon("-p", POLICY + ":allow_ip=127.0.0.0/8,deny_ip=127.0.0.1/32", "-p", "sink")
        c = self.client(d, greeting=False)
        r = c.reply()
        self.assertEqual(r.code, 554)
        self.assertIn("denied", r.text)
        d.wait_log("refused: deny_ip 127.0.0.1")

    @unittest.skipUnless(have_ipv6_loopback(), "no IPv6 loopback")
    def test_ipv6_client_rules(self):
        port6 = free_port()
        # IPv4 loopback is allowed (the harness probes it); ::1 is not in
        # 2001:db8::/32, and ::/0 would let it in.
        d = self.daemon("-l", "[::1]:%d" % port6,
                        "-p", POLICY + ":allow_ip=127.0.0.0/8;2001:db8::/32", "-p", "sink")
        c6 = V6Client(port6, greeting=False)
        self.addCleanup(c6.close)
        r = c6.reply()
        self.assertEqual(r.code, 554, r)
        self.assertIn("[::1]", r.text)
        self.assertEqual(self.client(d).greeting.code, 220)

    @unittest.skipUnless(have_ipv6_loopback(), "no IPv6 loopback")
    def test_ipv6_host_route_and_deny_all_v6(self):
        port6 = free_port()
        d = self.daemon("-l", "[::1]:%d" % port6, "-p", POLICY + ":allow_ip=127.0.0.1;::1/128",
                        "-p", "sink")
        c6 = V6Client(port6)
        self.addCleanup(c6.close)
        self.assertEqual(c6.greeting.code, 220)
        self.assertEqual(c6.cmd("EHLO [IPv6:::1]").code, 250)
        port6b = free_port()
        d2 = self.daemon("-l", "[::1]:%d" % port6b, "-p", POLICY + ":deny_ip=::/0", "-p", "sink")
        c6b = V6Client(port6b, greeting=False)
        self.addCleanup(c6b.close)
        self.assertEqual(c6b.reply().code, 554)
        self.assertEqual(self.client(d2).greeting.code, 220, "::/0 is IPv6 only")


class PolicySessionTest(DaemonTestCase):
    def setUp(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("# senders we never take mail from\n"
                    "Spammer@Example.COM\n"
                    "@bulk.example   # the whole domain\n"
                    "@*.botnet.example\n")
        self.addCleanup(os.unlink, f.name)
        self.d = self.daemon(
            "-p", POLICY + ":rcpt_domains=test.example;*.test.example,deny_senders=%s,"
                           "require_helo=yes,reject_ip_helo=yes" % f.name,
            "-p", "sink")

    def smtp(self, helo="client.test.example"):
        s = smtplib.SMTP("127.0.0.1", self.d.port, local_hostname=helo, timeout=10 * SLOW)
        self.addCleanup(s.close)
        return s

    def test_rcpt_domains_with_smtplib(self):
        s = self.smtp()
        refused = s.sendmail("a@ok.example", ["x@test.example", "y@mx.TEST.example",
                                              "z@elsewhere.example"], b"Subject: t\r\n\r\nhi\r\n")
        self.assertEqual(list(refused), ["z@elsewhere.example"])
        code, text = refused["z@elsewhere.example"]
        self.assertEqual(code, 550)
        self.assertIn(b"5.7.1 <z@elsewhere.example>: Relay access denied", text)

    def test_all_recipients_refused(self):
        s = self.smtp()
        with self.assertRaises(smtplib.SMTPRecipientsRefused):
            s.sendmail("a@ok.example", ["x@example.test", "y@badtest.example"], b"x\r\n")

    def test_denied_senders_with_smtplib(self):
        s = self.smtp()
        for sender in ("spammer@example.com", "anyone@BULK.example", "x@a.botnet.example"):
            with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
                s.sendmail(sender, ["x@test.example"], b"x\r\n")
            self.assertEqual(cm.exception.smtp_code, 550)
            self.assertIn(b"5.7.1", cm.exception.smtp_error)
            self.assertIn(b"Sender address rejected", cm.exception.smtp_error)
            s.rset()
        self.assertEqual(s.sendmail("x@botnet.example", ["x@test.example"], b"x\r\n"), {})
        self.assertEqual(s.sendmail("", ["x@test.example"], b"bounce\r\n"), {})

    def test_require_helo_with_smtplib(self):
        s = self.smtp(helo="localhost")
        code, text = s.ehlo()
        self.assertEqual(code, 501)
        self.assertIn(b"5.5.2 EHLO localhost refused", text)
        self.assertIn(b"such as [127.0.0.1]", text)
        code, _ = s.helo("mail.client.example")
        self.assertEqual(code, 250)

    def test_helo_checks_raw(self):
        c = self.client(self.d)
        r = c.cmd("EHLO [127.0.0.2]")
        self.assertEqual((r.code, r.enhanced), (550, "5.7.1"), r)
        self.assertIn("not yours, use [127.0.0.1]", r.text)
        self.assertEqual(c.cmd("EHLO 10.1.2.3").code, 550)
        self.assertEqual(c.cmd("EHLO 127.0.0.1").code, 501, "true but bare")
        self.assertEqual(c.cmd("MAIL FROM:<a@ok.example>").code, 503, "no greeting yet")
        self.assertEqual(c.cmd("EHLO [127.0.0.1]").code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<a@ok.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<postmaster>").code, 250, "RFC 5321 4.5.1")


class BundledChainTest(DaemonTestCase):
    def test_policy_sizefilter_store(self):
        tmp = tempfile.TemporaryDirectory(prefix="smtphook-chain-")
        self.addCleanup(tmp.cleanup)
        stored = os.path.join(tmp.name, "stored")
        d = self.daemon("-p", POLICY + ":allow_ip=127.0.0.0/8,rcpt_domains=test.example",
                        "-p", SIZEFILTER + ":max=2000,max_recipients=2",
                        "-p", "%s:file=%s" % (RECORDER, stored))
        msg = b"Subject: chain\r\n\r\n" + b"line\r\n" * 100
        with smtplib.SMTP("127.0.0.1", d.port, local_hostname="client.test.example",
                          timeout=10 * SLOW) as s:
            refused = s.sendmail("a@ok.example", ["a@test.example", "b@other.example",
                                                  "c@test.example", "d@test.example"], msg)
            self.assertEqual(refused["b@other.example"][0], 550)
            self.assertEqual(refused["d@test.example"][0], 452)
            self.assertEqual(len(refused), 2)
            with open(stored, "rb") as f:
                self.assertTrue(f.read().endswith(msg))
            os.unlink(stored)
            with self.assertRaises(smtplib.SMTPSenderRefused):
                s.sendmail("a@ok.example", ["a@test.example"], msg + b"x" * 1500 + b"\r\n")
        self.assertFalse(os.path.exists(stored))


if __name__ == "__main__":
    unittest.main()

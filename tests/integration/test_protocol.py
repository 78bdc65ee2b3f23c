"""Protocol conformance of smtphookd (SPEC §3, RFC 5321, RFC 2034/3463).

Every reply the daemon sends is checked for its code and, for everything
but the greeting, the HELO/EHLO reply and 354, for an RFC 3463 enhanced
status code whose class matches the reply's (354 has no class-3 enhanced
code in RFC 3463, so it carries none; RFC 2034 §3 exempts the greeting
and HELO/EHLO).
"""
import socket
import time
import unittest

from smtphook_test import DaemonTestCase, HOSTNAME, transaction

LINE_MAX = 2048  # SPEC §3: command lines longer than 2048 octets (incl. CRLF)


def noop_line(total, eol=b"\r\n"):
    """A NOOP command line of exactly `total` octets including its end."""
    pad = total - len(b"NOOP ") - len(eol)
    assert pad >= 0
    return b"NOOP " + b"x" * pad + eol


class ProtocolTestCase(DaemonTestCase):
    def setUp(self):
        self.d = self.daemon("-p", "sink")

    def assertReply(self, r, code, enhanced=None):
        self.assertEqual(r.code, code, r)
        if enhanced is not None:
            self.assertEqual(r.enhanced, enhanced, r)
        if code >= 400 or (200 <= code < 300 and enhanced is not None):
            self.assertIsNotNone(r.enhanced, "no enhanced code in %r" % (r,))
            self.assertEqual(r.enhanced[0], str(code)[0],
                             "enhanced code class differs: %r" % (r,))

    def ehlo_client(self, **kw):
        c = self.client(self.d, **kw)
        self.assertReply(c.ehlo(), 250)
        return c


class GreetingTest(ProtocolTestCase):
    def test_greeting_exact(self):
        c = self.client(self.d)
        self.assertEqual(c.greeting.lines, ["220 %s ESMTP smtphook" % HOSTNAME])

    def test_ehlo_capabilities(self):
        c = self.client(self.d)
        r = c.ehlo()
        self.assertEqual(r.code, 250)
        self.assertEqual(r.texts[0], HOSTNAME)
        # Every line but the last is "250-", the last "250 ".
        for line in r.lines[:-1]:
            self.assertTrue(line.startswith("250-"), r)
        self.assertTrue(r.lines[-1].startswith("250 "), r)
        caps = [t.upper() for t in r.texts[1:]]
        for want in ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8",
                     "ENHANCEDSTATUSCODES", "DSN", "CHUNKING"):
            self.assertIn(want, caps)
        # No BINARYMIME (RFC 3030 §3): BODY=BINARYMIME is refused.
        for absent in ("STARTTLS", "BINARYMIME"):
            self.assertNotIn(absent, caps)
        self.assertFalse([t for t in caps if t.startswith("AUTH")], caps)
        # No enhanced codes on the EHLO reply (RFC 2034 §3).
        self.assertIsNone(r.enhanced)

    def test_ehlo_size_with_limit(self):
        d = self.daemon("-p", "sink", "-s", "12345")
        c = self.client(d)
        r = c.ehlo()
        self.assertIn("SIZE 12345", r.texts)
        self.assertNotIn("SIZE", r.texts)

    def test_ehlo_without_pipelining(self):
        d = self.daemon("-p", "sink", "--no-pipelining")
        c = self.client(d)
        r = c.ehlo()
        self.assertEqual(r.code, 250)
        self.assertNotIn("PIPELINING", r.texts)
        self.assertIn("8BITMIME", r.texts)

    def test_helo_reply(self):
        c = self.client(self.d)
        r = c.cmd("HELO client.test.example")
        self.assertEqual(r.lines, ["250 %s" % HOSTNAME])
        # HELO is enough for a transaction.
        self.assertReply(transaction(c), 250)

    def test_helo_ehlo_need_argument(self):
        c = self.client(self.d)
        self.assertReply(c.cmd("HELO"), 501, "5.5.4")
        self.assertReply(c.cmd("EHLO"), 501, "5.5.4")
        self.assertReply(c.cmd("EHLO bad name"), 501, "5.5.4")
        self.assertReply(c.cmd("EHLO -bad-.example"), 501, "5.5.4")
        self.assertReply(c.cmd("EHLO [127.0.0.1]"), 250)

    def test_commands_case_insensitive(self):
        c = self.client(self.d)
        self.assertReply(c.cmd("ehlo client.test.example"), 250)
        self.assertReply(c.cmd("mail from:<a@test.example>"), 250, "2.1.0")
        self.assertReply(c.cmd("rCpT To:<b@test.example>"), 250, "2.1.5")
        self.assertReply(c.cmd("data"), 354)
        c.send(b"x\r\n.\r\n")
        self.assertReply(c.reply(), 250, "2.0.0")


class SequenceTest(ProtocolTestCase):
    def test_unknown_command(self):
        c = self.client(self.d)
        self.assertReply(c.cmd("FOOBAR"), 500, "5.5.1")
        self.assertReply(c.cmd(""), 500, "5.5.1")
        self.assertReply(c.cmd("MAILFROM:<a@test.example>"), 500, "5.5.1")
        self.assertReply(c.ehlo(), 250)

    def test_mail_before_helo(self):
        c = self.client(self.d)
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>"), 503, "5.5.1")
        self.assertReply(c.cmd("RCPT TO:<a@test.example>"), 503, "5.5.1")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>"), 250, "2.1.0")

    def test_rcpt_before_mail(self):
        c = self.ehlo_client()
        self.assertReply(c.cmd("RCPT TO:<a@test.example>"), 503, "5.5.1")

    def test_data_before_mail_and_rcpt(self):
        c = self.ehlo_client()
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>"), 250)
        # RFC 5321 §3.3: DATA with no valid recipient is 554 (or 503).
        r = c.cmd("DATA")
        self.assertIn(r.code, (503, 554), r)
        self.assertReply(r, 554, "5.5.1")
        # The transaction survives: a recipient, then DATA works.
        self.assertReply(c.cmd("RCPT TO:<b@test.example>"), 250)
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b"hi\r\n.\r\n")
        self.assertReply(c.reply(), 250)

    def test_nested_mail(self):
        c = self.ehlo_client()
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>"), 250)
        self.assertReply(c.cmd("MAIL FROM:<b@test.example>"), 503, "5.5.1")
        self.assertReply(c.cmd("RCPT TO:<c@test.example>"), 250)
        self.assertReply(c.cmd("MAIL FROM:<b@test.example>"), 503, "5.5.1")

    def test_ehlo_resets_transaction(self):
        c = self.ehlo_client()
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>"), 250)
        self.assertReply(c.cmd("RCPT TO:<b@test.example>"), 250)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        self.assertReply(c.cmd("RCPT TO:<b@test.example>"), 503, "5.5.1")
        self.assertReply(transaction(c), 250)

    def test_helo_resets_transaction(self):
        c = self.ehlo_client()
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>"), 250)
        self.assertReply(c.cmd("HELO client.test.example"), 250)
        self.assertReply(c.cmd("RCPT TO:<b@test.example>"), 503, "5.5.1")

    def test_rset_resets_transaction(self):
        c = self.ehlo_client()
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>"), 250)
        self.assertReply(c.cmd("RCPT TO:<b@test.example>"), 250)
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        self.assertReply(c.cmd("DATA"), 503, "5.5.1")
        self.assertReply(c.cmd("RCPT TO:<b@test.example>"), 503, "5.5.1")
        # RSET keeps the greeting: MAIL is allowed at once.
        self.assertReply(transaction(c), 250)

    def test_rset_before_helo(self):
        c = self.client(self.d)
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")
        # RSET does not count as a greeting.
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>"), 503, "5.5.1")


class ArgumentTest(ProtocolTestCase):
    def test_bad_arguments_501(self):
        c = self.ehlo_client()
        self.assertReply(c.cmd("MAIL"), 501, "5.5.4")
        self.assertReply(c.cmd("MAIL TO:<a@test.example>"), 501, "5.5.4")
        self.assertReply(c.cmd("MAIL FROM:"), 501, "5.5.4")
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>junk"), 501, "5.5.4")
        self.assertReply(c.cmd("RSET now"), 501, "5.5.4")
        self.assertReply(c.cmd("QUIT now"), 501, "5.5.4")
        self.assertReply(c.cmd("VRFY"), 501, "5.5.4")
        self.assertReply(c.cmd("EXPN"), 501, "5.5.4")
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>"), 250)
        self.assertReply(c.cmd("RCPT"), 501, "5.5.4")
        self.assertReply(c.cmd("RCPT FROM:<b@test.example>"), 501, "5.5.4")
        self.assertReply(c.cmd("RCPT TO:<b@test.example>"), 250)
        self.assertReply(c.cmd("DATA now"), 501, "5.5.4")
        self.assertReply(c.cmd("DATA"), 354)
        c.send(b".\r\n")
        self.assertReply(c.reply(), 250)

    def test_bad_sender_address(self):
        c = self.ehlo_client()
        for bad in ("<a@>", "<@test.example>", "<a b@test.example>",
                    "<a@test..example>", "<a@test.example", "<a@-x.example>"):
            r = c.cmd("MAIL FROM:" + bad)
            self.assertEqual(r.code, 501, (bad, r))
            self.assertIn(r.enhanced, ("5.1.7", "5.5.4"), (bad, r))
        self.assertReply(c.cmd("MAIL FROM:<a@>"), 501, "5.1.7")
        self.assertReply(c.cmd("MAIL FROM:<@test.example>"), 501, "5.1.7")
        # Over 256 octets including the brackets (RFC 5321 §4.5.3.1.3).
        long_path = "<" + "a" * 64 + "@" + ("b" * 60 + ".") * 3 + "example>"
        self.assertGreater(len(long_path), 256)
        self.assertReply(c.cmd("MAIL FROM:" + long_path), 501, "5.1.7")

    def test_bad_recipient_address(self):
        c = self.ehlo_client()
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>"), 250)
        self.assertReply(c.cmd("RCPT TO:<b@>"), 501, "5.1.3")
        self.assertReply(c.cmd("RCPT TO:<@test.example>"), 501, "5.1.3")
        # Only the reverse-path may be null.
        self.assertReply(c.cmd("RCPT TO:<>"), 501, "5.1.3")
        # RFC 5321 §4.1.1.3: <Postmaster> without a domain is valid.
        self.assertReply(c.cmd("RCPT TO:<Postmaster>"), 250, "2.1.5")

    def test_path_length_boundary(self):
        """RFC 5321 §4.5.3.1.3: a path is at most 256 octets, brackets
        included: 256 passes, 257 is refused."""
        def path(total):
            local = "l" * 60
            labels = total - len("<>") - len(local) - len("@") - len(".example")
            domain = []
            while labels > 0:
                n = min(63, labels)
                if labels - n == 1:  # do not leave a lone "." + nothing
                    n -= 2
                domain.append("d" * n)
                labels -= n + 1
            p = "<%s@%s.example>" % (local, ".".join(domain))
            if len(p) < total:  # a one-label shortfall: longer local part
                p = p.replace("<", "<" + "l" * (total - len(p)), 1)
            self.assertEqual(len(p), total)
            return p

        c = self.ehlo_client()
        self.assertReply(c.cmd("MAIL FROM:" + path(257)), 501, "5.1.7")
        self.assertReply(c.cmd("MAIL FROM:" + path(256)), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:" + path(257)), 501, "5.1.3")
        self.assertReply(c.cmd("RCPT TO:" + path(256)), 250, "2.1.5")

    def test_helo_name_length_boundary(self):
        def name(total):
            labels, left = [], total
            while left > 0:
                n = min(63, left)
                if left - n == 1:
                    n -= 2
                labels.append("h" * n)
                left -= n + 1
            out = ".".join(labels)
            self.assertEqual(len(out), total)
            return out

        c = self.client(self.d)
        self.assertReply(c.cmd("EHLO " + name(256)), 501, "5.5.4")
        self.assertReply(c.cmd("EHLO " + name(255)), 250)
        self.assertReply(c.cmd("EHLO " + "a" * 63 + ".example"), 250)
        self.assertReply(c.cmd("EHLO " + "a" * 64 + ".example"), 501, "5.5.4")

    def test_control_characters_in_commands(self):
        c = self.ehlo_client()
        c.send(b"MAIL FROM:<a\x00b@test.example>\r\n")
        self.assertReply(c.reply(), 501)
        c.send(b"EHLO a\x00b\r\n")
        self.assertReply(c.reply(), 501, "5.5.4")
        # A bare CR does not end a command line: one line, one reply.
        c.send(b"RSET\rNOOP\r\n")
        self.assertReply(c.reply(), 500, "5.5.1")
        c.send(b"MAIL FROM:<a@test.example>\rRCPT TO:<b@test.example>\r\n")
        self.assertReply(c.reply(), 501)
        self.assertReply(c.cmd("NOOP"), 250)
        self.assertEqual(c.buf, b"")

    def test_bare_lf_command_lines(self):
        """docs/PROTOCOL.md: command lines may end in a bare LF."""
        c = self.client(self.d)
        c.send(b"EHLO client.test.example\nMAIL FROM:<a@test.example>\n"
               b"RCPT TO:<b@test.example>\nDATA\n")
        self.assertReply(c.reply(), 250)
        self.assertReply(c.reply(), 250, "2.1.0")
        self.assertReply(c.reply(), 250, "2.1.5")
        self.assertReply(c.reply(), 354)
        c.send(b"body\r\n.\r\n")
        self.assertReply(c.reply(), 250, "2.0.0")

    def test_null_sender_accepted(self):
        c = self.ehlo_client()
        self.assertReply(transaction(c, sender=""), 250, "2.0.0")

    def test_unknown_esmtp_parameter(self):
        c = self.ehlo_client()
        self.assertReply(c.cmd("MAIL FROM:<a@test.example> FOO=bar"), 555, "5.5.4")
        self.assertReply(c.cmd("MAIL FROM:<a@test.example> X-Y"), 555, "5.5.4")
        self.assertReply(c.cmd("MAIL FROM:<a@test.example> BODY=8BITMIME SIZE=10"), 250)
        self.assertReply(c.cmd("RCPT TO:<b@test.example> FOO=bar"), 555, "5.5.4")
        # SIZE is a MAIL parameter, not a RCPT one.
        self.assertReply(c.cmd("RCPT TO:<b@test.example> SIZE=10"), 555, "5.5.4")
        self.assertReply(c.cmd("RCPT TO:<b@test.example> NOTIFY=NEVER"), 250)

    def test_bad_esmtp_parameter_value(self):
        c = self.ehlo_client()
        self.assertReply(c.cmd("MAIL FROM:<a@test.example> SIZE=abc"), 501, "5.5.4")
        self.assertReply(c.cmd("MAIL FROM:<a@test.example> BODY=9BIT"), 501, "5.5.4")
        self.assertReply(c.cmd("MAIL FROM:<a@test.example> SIZE=1 SIZE=2"), 501, "5.5.4")

    def test_mail_size_parameter_over_limit(self):
        d = self.daemon("-p", "sink", "-s", "1000")
        c = self.client(d)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@test.example> SIZE=1001"), 552, "5.3.4")
        self.assertReply(c.cmd("MAIL FROM:<a@test.example> SIZE=99999999999"), 552, "5.3.4")
        self.assertReply(c.cmd("MAIL FROM:<a@test.example> SIZE=1000"), 250, "2.1.0")
        self.assertReply(c.cmd("RSET"), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@test.example> SIZE=0"), 250, "2.1.0")

    def test_size_parameter_without_limit(self):
        c = self.ehlo_client()
        self.assertReply(c.cmd("MAIL FROM:<a@test.example> SIZE=99999999999"), 250)

    def test_non_ascii_address_needs_smtputf8(self):
        c = self.ehlo_client()
        self.assertReply(c.cmd("MAIL FROM:<j\u00f6s\u00e9@test.example>"), 553, "5.6.7")
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>"), 250)
        self.assertReply(c.cmd("RCPT TO:<\u00fcser@b\u00fccher.example>"), 553, "5.6.7")
        self.assertReply(c.cmd("RSET"), 250)
        self.assertReply(c.cmd("MAIL FROM:<j\u00f6s\u00e9@test.example> SMTPUTF8"), 250, "2.1.0")
        self.assertReply(c.cmd("RCPT TO:<\u00fcser@b\u00fccher.example>"), 250, "2.1.5")
        self.assertReply(c.cmd("DATA"), 354)
        c.send("Subject: gr\u00fc\u00dfe\r\n\r\nhall\u00f6\r\n.\r\n".encode())
        self.assertReply(c.reply(), 250)

    def test_invalid_utf8_address(self):
        c = self.ehlo_client()
        c.send(b"MAIL FROM:<\xff\xfe@test.example> SMTPUTF8\r\n")
        r = c.reply()
        self.assertEqual(r.code, 501, r)
        self.assertReply(r, 501)


class OtherCommandsTest(ProtocolTestCase):
    def test_rset_noop(self):
        c = self.client(self.d)
        self.assertReply(c.cmd("NOOP"), 250, "2.0.0")
        self.assertReply(c.cmd("NOOP anything goes"), 250, "2.0.0")
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")

    def test_help(self):
        c = self.client(self.d)
        r = c.cmd("HELP")
        self.assertReply(r, 214, "2.0.0")
        self.assertIn("EHLO", r.text)
        self.assertReply(c.cmd("HELP MAIL"), 214, "2.0.0")

    def test_vrfy_expn(self):
        c = self.client(self.d)
        self.assertReply(c.cmd("VRFY postmaster"), 252, "2.5.0")
        self.assertReply(c.cmd("EXPN staff"), 502, "5.5.1")
        # Mid-transaction they leave the transaction alone.
        self.assertReply(c.ehlo(), 250)
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>"), 250)
        self.assertReply(c.cmd("VRFY b@test.example"), 252)
        self.assertReply(c.cmd("RCPT TO:<b@test.example>"), 250)

    def test_quit(self):
        c = self.ehlo_client()
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>"), 250)
        r = c.cmd("QUIT")
        self.assertReply(r, 221, "2.0.0")
        self.assertIn(HOSTNAME, r.text)
        self.assertTrue(c.closed(5))

    def test_quit_before_greeting_reply(self):
        c = self.client(self.d)
        self.assertReply(c.cmd("QUIT"), 221, "2.0.0")
        self.assertTrue(c.closed(5))

    def test_not_implemented(self):
        c = self.ehlo_client()
        for verb in ("STARTTLS", "AUTH PLAIN AGFAYg==", "AUTH LOGIN"):
            self.assertReply(c.cmd(verb), 502, "5.5.1")
        # Still usable afterwards.
        self.assertReply(transaction(c), 250)


class LineLengthTest(ProtocolTestCase):
    def test_line_of_exactly_2048_octets_accepted(self):
        c = self.client(self.d)
        line = noop_line(LINE_MAX)
        self.assertEqual(len(line), 2048)
        c.send(line)
        self.assertReply(c.reply(), 250, "2.0.0")
        # The same with a bare LF end.
        c.send(noop_line(LINE_MAX, b"\n"))
        self.assertReply(c.reply(), 250, "2.0.0")

    def test_line_of_2049_octets_rejected_and_session_continues(self):
        c = self.client(self.d)
        c.send(noop_line(LINE_MAX + 1))
        self.assertReply(c.reply(), 500, "5.5.2")
        self.assertReply(c.cmd("NOOP"), 250)
        self.assertReply(c.ehlo(), 250)
        self.assertReply(transaction(c), 250)

    def test_long_line_pipelined_with_next_command(self):
        c = self.client(self.d)
        c.send(noop_line(LINE_MAX + 1) + b"EHLO client.test.example\r\nNOOP\r\n")
        self.assertReply(c.reply(), 500, "5.5.2")
        self.assertReply(c.reply(), 250)  # EHLO
        self.assertReply(c.reply(), 250, "2.0.0")

    def test_2048_octet_line_split_across_packets(self):
        c = self.client(self.d)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        line = noop_line(LINE_MAX)
        c.send(line[:2047])
        time.sleep(0.2)
        c.send(line[2047:])
        self.assertReply(c.reply(), 250, "2.0.0")
        # 2049 octets where the CRLF straddles the 2048 mark.
        line = noop_line(LINE_MAX + 1)
        c.send(line[:2047])
        time.sleep(0.2)
        c.send(line[2047:] + b"NOOP\r\n")
        self.assertReply(c.reply(), 500, "5.5.2")
        self.assertReply(c.reply(), 250, "2.0.0")

    def test_long_line_reply_comes_before_line_end(self):
        """The 500 is sent as soon as 2048 octets lack an LF; the rest of
        the line, however long and however it arrives, is discarded."""
        c = self.client(self.d)
        c.send(b"MAIL FROM:<" + b"a" * 3000)
        self.assertReply(c.reply(), 500, "5.5.2")
        for _ in range(3):
            c.send(b"b" * 50000)
            time.sleep(0.05)
        c.send(b"c>\r\nNOOP\r\n")
        self.assertReply(c.reply(), 250, "2.0.0")
        # Nothing else was answered for the discarded line.
        self.assertReply(c.cmd("RSET"), 250, "2.0.0")

    def test_long_line_larger_than_input_buffer(self):
        c = self.client(self.d)
        c.send(b"NOOP " + b"z" * (200 * 1024) + b"\r\nNOOP\r\n")
        self.assertReply(c.reply(), 500, "5.5.2")
        self.assertReply(c.reply(), 250, "2.0.0")


    def test_very_long_line_counts_one_error(self):
        d = self.daemon("-p", "sink", "--max-errors", "2")
        c = self.client(d)
        c.send(b"NOOP " + b"w" * (300 * 1024) + b"\r\n")
        self.assertReply(c.reply(), 500, "5.5.2")
        self.assertReply(c.cmd("NOOP"), 250)
        self.assertReply(c.cmd("BOGUS"), 500, "5.5.1")
        self.assertReply(c.reply(), 421, "4.7.0")


class ErrorLimitTest(ProtocolTestCase):
    def _too_many(self, c, allowed):
        for i in range(allowed - 1):
            self.assertReply(c.cmd("BOGUS %d" % i), 500, "5.5.1")
        # Good commands do not reset the count, nor are they refused.
        self.assertReply(c.cmd("NOOP"), 250)
        c.send(b"BOGUS last\r\n")
        self.assertReply(c.reply(), 500, "5.5.1")
        r = c.reply()
        self.assertReply(r, 421, "4.7.0")
        self.assertIn(HOSTNAME, r.text)
        self.assertTrue(c.closed(5))

    def test_default_twenty_errors(self):
        c = self.client(self.d)
        self._too_many(c, 20)

    def test_max_errors_option(self):
        d = self.daemon("-p", "sink", "--max-errors", "3")
        c = self.client(d)
        self._too_many(c, 3)

    def test_max_errors_one(self):
        d = self.daemon("-p", "sink", "--max-errors", "1")
        c = self.client(d)
        self._too_many(c, 1)

    def test_mixed_errors_count(self):
        d = self.daemon("-p", "sink", "--max-errors", "4")
        c = self.client(d)
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>"), 503, "5.5.1")
        self.assertReply(c.cmd("HELO"), 501, "5.5.4")
        self.assertReply(c.cmd("STARTTLS"), 502, "5.5.1")
        c.send(noop_line(LINE_MAX + 1))
        self.assertReply(c.reply(), 500, "5.5.2")
        self.assertReply(c.reply(), 421, "4.7.0")
        self.assertTrue(c.closed(5))

    def test_errors_pipelined_stop_at_limit(self):
        """The 421 ends the session: pipelined commands after it get no
        reply."""
        d = self.daemon("-p", "sink", "--max-errors", "2")
        c = self.client(d)
        c.send(b"X1\r\nX2\r\nNOOP\r\nNOOP\r\n")
        self.assertReply(c.reply(), 500)
        self.assertReply(c.reply(), 500)
        self.assertReply(c.reply(), 421, "4.7.0")
        self.assertTrue(c.closed(5))
        self.assertEqual(c.buf, b"")


class EnhancedCodeTest(ProtocolTestCase):
    def test_every_reply_has_matching_enhanced_code(self):
        d = self.daemon("-p", "sink", "-s", "100", "--max-recipients", "1",
                        "--max-errors", "100")
        c = self.client(d)
        replies = []

        def cmd(line):
            r = c.cmd(line) if isinstance(line, str) else (c.send(line), c.reply())[1]
            replies.append((line, r))
            return r

        for line in ("XYZZY", "", "MAIL FROM:<a@test.example>",
                     "RCPT TO:<b@test.example>", "DATA", "HELO", "EHLO",
                     "VRFY", "VRFY someone", "EXPN list", "HELP", "NOOP",
                     "RSET", b"BDAT 1 LAST\r\nx", "STARTTLS", "AUTH PLAIN",
                     noop_line(3000)):
            cmd(line)
        self.assertEqual(c.ehlo().code, 250)
        for line in ("RCPT TO:<b@test.example>", "MAIL FROM:<a@>",
                     "MAIL FROM:<a@test.example> FOO=1",
                     "MAIL FROM:<a@test.example> SIZE=101",
                     "MAIL FROM:<\u00e4@test.example>",
                     "MAIL FROM:<a@test.example>", "MAIL FROM:<a@test.example>",
                     "DATA", "RCPT TO:<b@>", "RCPT TO:<\u00e4@test.example>",
                     "RCPT TO:<b@test.example>", "RCPT TO:<c@test.example>",
                     "DATA x"):
            cmd(line)
        r = cmd("DATA")
        self.assertEqual(r.code, 354)
        self.assertIsNone(r.enhanced)  # no class-3 enhanced codes exist
        replies.pop()
        c.send(b"x" * 200 + b"\r\n.\r\n")
        replies.append(("<body over -s>", c.reply()))
        replies.append(("QUIT", c.cmd("QUIT")))
        codes = set()
        for line, r in replies:
            codes.add(r.code)
            self.assertIsNotNone(r.enhanced, "%r -> %r" % (line, r))
            self.assertEqual(r.enhanced[0], str(r.code)[0], "%r -> %r" % (line, r))
            # Every line of a multi-line reply carries it.
            for l in r.lines:
                self.assertEqual(l[4:].split(" ", 1)[0], r.enhanced, r)
        # The run above covered these codes.
        for want in (500, 501, 503, 552, 553, 554, 555, 502, 452, 250, 252, 214, 221):
            self.assertIn(want, codes)


if __name__ == "__main__":
    unittest.main()

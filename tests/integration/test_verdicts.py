"""Verdicts become replies (SPEC §4, smtphook.h sh_reply): the reject_at
test plugin answers a fixed verdict at one hook, with or without its own
reply; the host's defaults, custom codes and texts, multi-line replies,
wrong-class fallbacks, and REJECT/DISCONNECT in the middle of a body."""
import time
import unittest

from smtphook_test import DaemonTestCase, transaction, HOSTNAME
from plugin_helpers import spec, plugins, start_data, nothing_pending, send_in_parts

BODY = b"Subject: verdicts\r\nFrom: a@test.example\r\n\r\nline one\r\nline two\r\n"


class VerdictTestCase(DaemonTestCase):
    def start(self, *specs):
        """Daemon with the given plugins and sink last (takes messages)."""
        return self.daemon(*plugins(*specs), "-p", "sink")

    def greeted(self, d):
        c = self.client(d)
        self.assertEqual(c.ehlo().code, 250)
        return c

    def assertReply(self, r, code, enh, text=None):
        self.assertEqual(r.code, code, r)
        self.assertEqual(r.enhanced, enh, r)
        if text is not None:
            self.assertEqual(r.texts[-1].split(" ", 1)[1], text, r)


class DefaultReplyTest(VerdictTestCase):
    """Each hook's verdicts without a plugin reply get the host's default."""

    def test_connect_reject_is_554_then_only_quit(self):
        # RFC 5321 §3.1: after a 554 greeting the server waits for QUIT
        # and answers every other command 503.
        d = self.start(spec("reject_at", hook="connect", verdict="reject"))
        c = self.client(d, greeting=False)
        r = c.reply()
        self.assertReply(r, 554, "5.7.1")
        self.assertIn(HOSTNAME, r.text)
        self.assertReply(c.cmd("EHLO client.example"), 503, "5.5.1")
        self.assertReply(c.cmd("MAIL FROM:<a@b.example>"), 503, "5.5.1")
        self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertTrue(c.closed())

    def test_connect_tempfail_is_421_and_close(self):
        d = self.start(spec("reject_at", hook="connect", verdict="tempfail"))
        c = self.client(d, greeting=False)
        r = c.reply()
        self.assertEqual(r.code, 421, r)
        self.assertEqual(r.enhanced[:2], "4.", r)
        self.assertTrue(c.closed())

    def test_connect_disconnect_is_421_470_and_close(self):
        d = self.start(spec("reject_at", hook="connect", verdict="disconnect"))
        c = self.client(d, greeting=False)
        self.assertReply(c.reply(), 421, "4.7.0")
        self.assertTrue(c.closed())

    def test_helo_reject_is_550(self):
        d = self.start(spec("reject_at", hook="helo", verdict="reject"))
        c = self.client(d)
        self.assertReply(c.ehlo(), 550, "5.7.1")
        # The greeting did not count: MAIL is out of sequence.
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 503)

    def test_mail_reject_is_550(self):
        d = self.start(spec("reject_at", hook="mail", verdict="reject"))
        c = self.greeted(d)
        self.assertReply(c.cmd("MAIL FROM:<a@test.example>"), 550, "5.7.1")
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").code, 503)

    def test_rcpt_reject_is_550_571(self):
        d = self.start(spec("reject_at", hook="rcpt", verdict="reject"))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertReply(c.cmd("RCPT TO:<b@test.example>"), 550, "5.7.1")
        # No valid recipient: DATA is refused.
        self.assertEqual(c.cmd("DATA").code, 554)

    def test_rcpt_tempfail_is_451_471(self):
        d = self.start(spec("reject_at", hook="rcpt", verdict="tempfail"))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertReply(c.cmd("RCPT TO:<b@test.example>"), 451, "4.7.1")
        self.assertEqual(c.cmd("NOOP").code, 250)

    def test_rcpt_disconnect_is_421_470_and_close(self):
        d = self.start(spec("reject_at", hook="rcpt", verdict="disconnect"))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        r = c.cmd("RCPT TO:<b@test.example>")
        self.assertReply(r, 421, "4.7.0")
        self.assertTrue(c.closed())

    def test_data_reject_is_554_571(self):
        d = self.start(spec("reject_at", hook="data", verdict="reject"))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").code, 250)
        self.assertReply(c.cmd("DATA"), 554, "5.7.1")
        # The transaction is over.
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").code, 503)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)

    def test_data_tempfail_is_451_471(self):
        d = self.start(spec("reject_at", hook="data", verdict="tempfail"))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").code, 250)
        self.assertReply(c.cmd("DATA"), 451, "4.7.1")

    def test_eom_reject_is_550_571(self):
        d = self.start(spec("reject_at", hook="eom", verdict="reject"))
        c = self.greeted(d)
        self.assertReply(transaction(c, body=BODY), 550, "5.7.1")

    def test_eom_tempfail_is_451_471(self):
        d = self.start(spec("reject_at", hook="eom", verdict="tempfail"))
        c = self.greeted(d)
        self.assertReply(transaction(c, body=BODY), 451, "4.7.1")

    def test_eom_disconnect_is_421_and_close(self):
        d = self.start(spec("reject_at", hook="eom", verdict="disconnect"))
        c = self.greeted(d)
        self.assertReply(transaction(c, body=BODY), 421, "4.7.0")
        self.assertTrue(c.closed())

    def test_eom_accept_is_250_queued(self):
        # reject_at alone (no sink) takes the message.
        d = self.daemon(*plugins(spec("reject_at", hook="eom", verdict="accept")))
        c = self.greeted(d)
        r = transaction(c, body=BODY)
        self.assertReply(r, 250, "2.0.0")
        self.assertIn("queued as", r.text)

    def test_vrfy_reject_and_accept(self):
        d = self.start(spec("reject_at", hook="vrfy", verdict="reject"))
        c = self.greeted(d)
        self.assertReply(c.cmd("VRFY someone"), 550, "5.1.1")
        d2 = self.start(spec("reject_at", hook="vrfy", verdict="accept"))
        c2 = self.greeted(d2)
        self.assertReply(c2.cmd("VRFY someone"), 250, "2.1.5")
        # Nobody decides: 252 (RFC 5321 §3.5.3).
        d3 = self.start(spec("reject_at", hook="rcpt", verdict="reject"))
        c3 = self.greeted(d3)
        self.assertEqual(c3.cmd("VRFY someone").code, 252)


class CustomReplyTest(VerdictTestCase):
    def test_custom_code_enh_and_text(self):
        d = self.start(spec("reject_at", hook="rcpt", verdict="reject", code=553,
                            enh="5.1.2", text="No such domain"))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        r = c.cmd("RCPT TO:<b@nowhere.example>")
        self.assertEqual(r.lines, ["553 5.1.2 No such domain"])

    def test_custom_text_keeps_default_code(self):
        d = self.start(spec("reject_at", hook="mail", verdict="tempfail", text="Greylisted"))
        c = self.greeted(d)
        r = c.cmd("MAIL FROM:<a@test.example>")
        self.assertEqual(r.lines, ["451 4.7.1 Greylisted"])

    def test_multiline_reply(self):
        d = self.start(spec("reject_at", hook="rcpt", verdict="reject", code=550,
                            enh="5.7.1", text=r"first line\nsecond line\nthird line"))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        r = c.cmd("RCPT TO:<b@test.example>")
        self.assertEqual(r.lines, ["550-5.7.1 first line", "550-5.7.1 second line",
                                   "550 5.7.1 third line"])
        # The session is still in step after a multi-line reply.
        self.assertEqual(c.cmd("NOOP").code, 250)

    def test_multiline_reply_at_eom_after_body(self):
        d = self.start(spec("reject_at", hook="eom", verdict="reject", code=554,
                            enh="5.6.0", text=r"Content refused\nsee policy"))
        c = self.greeted(d)
        r = transaction(c, body=BODY)
        self.assertEqual(r.lines, ["554-5.6.0 Content refused", "554 5.6.0 see policy"])

    def test_custom_accept_text_at_eom(self):
        d = self.daemon(*plugins(spec("reject_at", hook="eom", verdict="accept", code=250,
                                      text="Stored safely")))
        c = self.greeted(d)
        r = transaction(c, body=BODY)
        self.assertEqual(r.lines, ["250 2.0.0 Stored safely"])

    def test_accept_reply_at_mail_and_rcpt(self):
        d = self.start(spec("reject_at", hook="rcpt", verdict="accept", code=251,
                            text="User not local; will forward"),
                       spec("reject_at", hook="mail", verdict="accept", code=250,
                            enh="2.1.0", text="Sender looks fine"))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").lines,
                         ["250 2.1.0 Sender looks fine"])
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").lines,
                         ["251 2.1.5 User not local; will forward"])

    def test_accept_with_5xx_reply_falls_back_to_250(self):
        d = self.start(spec("reject_at", hook="rcpt", verdict="accept", code=550,
                            text="Confused"))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").lines, ["250 2.1.5 Ok"])

    def test_wrong_class_falls_back_to_default(self):
        # 250 on a REJECT: ignored, the default 550 5.7.1 is used.
        d = self.start(spec("reject_at", hook="rcpt", verdict="reject", code=250,
                            text="Fine by me"))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        r = c.cmd("RCPT TO:<b@test.example>")
        self.assertReply(r, 550, "5.7.1")
        self.assertNotIn("Fine by me", r.text)
        self.assertIn("replied 250 to a REJECT verdict", d.log())

    def test_5xx_on_tempfail_falls_back_to_451(self):
        d = self.start(spec("reject_at", hook="rcpt", verdict="tempfail", code=550,
                            text="Permanent?"))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        r = c.cmd("RCPT TO:<b@test.example>")
        self.assertReply(r, 451, "4.7.1")
        self.assertNotIn("Permanent?", r.text)

    def test_enhanced_code_of_wrong_class_is_dropped(self):
        d = self.start(spec("reject_at", hook="rcpt", verdict="reject", code=550,
                            enh="4.1.1", text="Unknown user"))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        r = c.cmd("RCPT TO:<b@test.example>")
        self.assertEqual(r.lines, ["550 5.7.1 Unknown user"])

    def test_tempfail_with_421_closes(self):
        d = self.start(spec("reject_at", hook="rcpt", verdict="tempfail", code=421,
                            text="Going away"))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        r = c.cmd("RCPT TO:<b@test.example>")
        self.assertEqual(r.code, 421, r)
        self.assertIn("Going away", r.text)
        self.assertTrue(c.closed())

    def test_match_decides_only_that_recipient(self):
        d = self.start(spec("reject_at", hook="rcpt", verdict="reject",
                            match="bad@test.example"))
        c = self.greeted(d)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<good@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<BAD@test.example>").code, 550)
        self.assertEqual(c.cmd("RCPT TO:<other@test.example>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(BODY + b".\r\n")
        self.assertEqual(c.reply().code, 250)


class MidBodyTest(VerdictTestCase):
    """header/chunk verdicts: REJECT/TEMPFAIL drain to the end of data and
    are the reply after it; DISCONNECT acts at once."""

    BIG = b"".join(b"line %06d of a long body\r\n" % i for i in range(20000))

    def body_parts(self):
        return [b"Subject: mid body\r\nX-Two: 2\r\n\r\nfirst part\r\n",
                self.BIG, b"last part\r\n.\r\n"]

    def check_drained(self, hook, verdict, want_code, want_enh, **reply):
        d = self.start(spec("reject_at", hook=hook, verdict=verdict, **reply))
        c = self.greeted(d)
        start_data(c)
        parts = self.body_parts()
        c.send(parts[0])
        time.sleep(0.2)
        # SMTP has no reply in the middle of a body.
        self.assertTrue(nothing_pending(c), c.buf)
        send_in_parts(c, parts[1:], pause=0.1)
        r = c.reply()
        self.assertReply(r, want_code, want_enh)
        # The session is usable for the next transaction.
        self.assertEqual(c.cmd("NOOP").code, 250)
        start_data(c, sender="second@test.example")
        c.send(b"Subject: again\r\n\r\nbody\r\n.\r\n")
        self.assertEqual(c.reply().code, want_code)
        self.assertEqual(c.cmd("QUIT").code, 221)
        return r

    def test_chunk_reject_drains_then_550(self):
        self.check_drained("chunk", "reject", 550, "5.7.1")

    def test_chunk_tempfail_drains_then_451(self):
        self.check_drained("chunk", "tempfail", 451, "4.7.1")

    def test_chunk_reject_custom_reply_after_end(self):
        r = self.check_drained("chunk", "reject", 552, "5.3.4", code=552, enh="5.3.4",
                               text="Too big for me")
        self.assertEqual(r.texts[-1], "5.3.4 Too big for me")

    def test_header_reject_drains_then_550(self):
        self.check_drained("header", "reject", 550, "5.7.1")

    def test_header_tempfail_custom_multiline(self):
        r = self.check_drained("header", "tempfail", 452, "4.3.1", code=452, enh="4.3.1",
                               text=r"Header refused\nfor now")
        self.assertEqual(r.lines, ["452-4.3.1 Header refused", "452 4.3.1 for now"])

    def test_chunk_disconnect_closes_at_once(self):
        d = self.start(spec("reject_at", hook="chunk", verdict="disconnect"))
        c = self.greeted(d)
        start_data(c)
        c.send(b"Subject: cut\r\n\r\nfirst part\r\n")
        # No end of data was sent: the 421 comes anyway, then the close.
        r = c.reply()
        self.assertReply(r, 421, "4.7.0")
        self.assertTrue(c.closed())

    def test_header_disconnect_custom_reply(self):
        d = self.start(spec("reject_at", hook="header", verdict="disconnect", code=554,
                            enh="5.7.0", text="Bye now"))
        c = self.greeted(d)
        start_data(c)
        c.send(b"Subject: cut\r\nX-More: yes\r\n")
        r = c.reply()
        self.assertEqual(r.lines, ["554 5.7.0 Bye now"])
        self.assertTrue(c.closed())


if __name__ == "__main__":
    unittest.main()

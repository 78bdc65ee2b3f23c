"""The verdict chain (SPEC §4): plugins are asked in command-line order,
the first verdict other than CONTINUE decides and the rest are not asked;
notifications (reset, disconnect) reach every plugin; all-CONTINUE at eom
is 451 4.3.0; ACCEPT of a chunk or header means "skip me"; reset ends
every transaction that was not accepted, and only those.

The trace test plugin logs "trace NAME HOOK [DETAIL]" for every call; the
tests read the order from the daemon log, per session."""
import os
import time
import unittest

from smtphook_test import DaemonTestCase, transaction
from plugin_helpers import (spec, plugins, traces, hooks_of, session_id, wait_for,
                            send_in_parts, start_data, tmpdir, read_file)

BODY = b"Subject: chain\r\nFrom: a@test.example\r\n\r\nhello\r\n"


class ChainTestCase(DaemonTestCase):
    def session(self, d):
        c = self.client(d)
        return c, session_id(d, c)

    def wait_hook(self, d, sid, name, hook, count=1):
        """Wait until trace NAME logged HOOK count times in session sid."""
        return wait_for(lambda: hooks_of(d.log(), name, sid).count(hook) >= count,
                        what="trace %s %s x%d" % (name, hook, count))


class OrderTest(ChainTestCase):
    def test_plugins_are_asked_in_command_line_order(self):
        d = self.daemon(*plugins(spec("trace", name="A"), spec("trace", name="B"),
                                 spec("trace", name="C", accept="eom")))
        c, sid = self.session(d)
        c.ehlo()
        self.assertEqual(transaction(c, body=BODY).code, 250)
        c.cmd("QUIT")
        self.wait_hook(d, sid, "C", "disconnect")
        seen = [(n, h) for (n, h, _) in traces(d.log(), sid)
                if h in ("connect", "helo", "mail", "rcpt", "data", "eom", "disconnect")]
        expect = []
        for h in ("connect", "helo", "mail", "rcpt", "data", "eom", "disconnect"):
            expect += [("A", h), ("B", h), ("C", h)]
        self.assertEqual(seen, expect)

    def test_headers_and_chunks_go_through_every_plugin(self):
        d = self.daemon(*plugins(spec("trace", name="A"), spec("trace", name="B", accept="eom")))
        c, sid = self.session(d)
        c.ehlo()
        body = b"Subject: s\r\nX-Folded: a\r\n b\r\nTo: t@test.example\r\n\r\nbody\r\n"
        self.assertEqual(transaction(c, body=body).code, 250)
        log = d.log()
        for name in ("A", "B"):
            hdrs = [det for (n, h, det) in traces(log, sid) if n == name and h == "header"]
            self.assertEqual(hdrs, ["Subject", "X-Folded", "To"])
        # Each header goes to A then B before the next header.
        pairs = [(n, det) for (n, h, det) in traces(log, sid) if h == "header"]
        self.assertEqual(pairs, [("A", "Subject"), ("B", "Subject"), ("A", "X-Folded"),
                                 ("B", "X-Folded"), ("A", "To"), ("B", "To")])


class FirstVerdictDecidesTest(ChainTestCase):
    def test_accept_stops_the_chain_for_that_recipient(self):
        d = self.daemon(*plugins(spec("trace", name="A"),
                                 spec("reject_at", hook="rcpt", verdict="accept"),
                                 spec("trace", name="B"),
                                 spec("reject_at", hook="rcpt", verdict="reject"),
                                 spec("trace", name="C", accept="eom")))
        c, sid = self.session(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@test.example>").code, 250)
        log = d.log()
        self.assertIn("rcpt", hooks_of(log, "A", sid))
        self.assertNotIn("rcpt", hooks_of(log, "B", sid))
        self.assertNotIn("rcpt", hooks_of(log, "C", sid))
        # Other hooks still reach everybody.
        self.assertIn("mail", hooks_of(log, "B", sid))
        self.assertIn("mail", hooks_of(log, "C", sid))
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(BODY + b".\r\n")
        self.assertEqual(c.reply().code, 250)

    def test_reject_first_wins_over_later_accept(self):
        d = self.daemon(*plugins(spec("trace", name="A"),
                                 spec("reject_at", hook="rcpt", verdict="reject"),
                                 spec("trace", name="B"),
                                 spec("reject_at", hook="rcpt", verdict="accept")))
        c, sid = self.session(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@test.example>").code, 550)
        log = d.log()
        self.assertEqual(hooks_of(log, "A", sid).count("rcpt"), 1)
        self.assertNotIn("rcpt", hooks_of(log, "B", sid))
        self.assertEqual(log.count("reject_at: rcpt -> accept"), 0)
        self.assertIn("rcpt by plugin reject_at: 550", log)

    def test_each_recipient_walks_the_chain_again(self):
        d = self.daemon(*plugins(spec("reject_at", hook="rcpt", verdict="reject",
                                      match="no@test.example"),
                                 spec("trace", name="B")))
        c, sid = self.session(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<yes@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<no@test.example>").code, 550)
        self.assertEqual(c.cmd("RCPT TO:<also@test.example>").code, 250)
        rcpts = [det for (n, h, det) in traces(d.log(), sid) if h == "rcpt"]
        self.assertEqual(rcpts, ["yes@test.example", "also@test.example"])

    def test_all_continue_at_eom_is_451_430(self):
        d = self.daemon(*plugins(spec("trace", name="A")))
        c, sid = self.session(d)
        c.ehlo()
        r = transaction(c, body=BODY)
        self.assertEqual(r.code, 451, r)
        self.assertEqual(r.enhanced, "4.3.0", r)
        # All-CONTINUE elsewhere allows: a second transaction gets as far.
        self.assertEqual(transaction(c, body=BODY).code, 451)
        hooks = hooks_of(d.log(), "A", sid)
        self.assertEqual(hooks.count("eom"), 2)
        # A message nobody took ends with reset.
        self.assertEqual(hooks.count("reset"), 2)


class NotificationTest(ChainTestCase):
    def test_reset_and_disconnect_reach_plugins_that_were_not_asked(self):
        d = self.daemon(*plugins(spec("trace", name="A"),
                                 spec("reject_at", hook="rcpt", verdict="disconnect"),
                                 spec("trace", name="B")))
        c, sid = self.session(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@test.example>").code, 421)
        self.assertTrue(c.closed())
        self.wait_hook(d, sid, "B", "disconnect")
        log = d.log()
        self.assertNotIn("rcpt", hooks_of(log, "B", sid))
        tail = [(n, h) for (n, h, _) in traces(log, sid) if h in ("reset", "disconnect")]
        self.assertEqual(tail, [("A", "reset"), ("B", "reset"), ("A", "disconnect"),
                                ("B", "disconnect")])

    def test_reset_on_rset(self):
        d = self.daemon(*plugins(spec("trace", name="A"), spec("trace", name="B")))
        c, sid = self.session(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@test.example>").code, 250)
        self.assertEqual(c.cmd("RSET").code, 250)
        log = d.log()
        self.assertEqual(hooks_of(log, "A", sid)[-1], "reset")
        self.assertEqual(hooks_of(log, "B", sid)[-1], "reset")
        # RSET without a transaction resets nothing.
        self.assertEqual(c.cmd("RSET").code, 250)
        self.assertEqual(c.cmd("NOOP").code, 250)
        self.assertEqual(hooks_of(d.log(), "A", sid).count("reset"), 1)

    def test_reset_on_rejected_message(self):
        d = self.daemon(*plugins(spec("trace", name="A"),
                                 spec("reject_at", hook="eom", verdict="reject")))
        c, sid = self.session(d)
        c.ehlo()
        self.assertEqual(transaction(c, body=BODY).code, 550)
        hooks = hooks_of(d.log(), "A", sid)
        self.assertEqual(hooks[-2:], ["eom", "reset"])

    def test_reset_on_rejected_sender(self):
        d = self.daemon(*plugins(spec("trace", name="A"),
                                 spec("reject_at", hook="mail", verdict="reject")))
        c, sid = self.session(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 550)
        self.assertEqual(hooks_of(d.log(), "A", sid)[-2:], ["mail", "reset"])

    def test_reset_on_new_ehlo_mid_transaction(self):
        d = self.daemon(*plugins(spec("trace", name="A")))
        c, sid = self.session(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.ehlo("again.test.example").code, 250)
        self.assertEqual(hooks_of(d.log(), "A", sid)[-2:], ["reset", "helo"])

    def test_reset_on_disconnect_mid_transaction(self):
        d = self.daemon(*plugins(spec("trace", name="A"), spec("trace", name="B")))
        c, sid = self.session(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@test.example>").code, 250)
        c.close()
        self.wait_hook(d, sid, "B", "disconnect")
        tail = [(n, h) for (n, h, _) in traces(d.log(), sid)][-4:]
        self.assertEqual(tail, [("A", "reset"), ("B", "reset"), ("A", "disconnect"),
                                ("B", "disconnect")])

    def test_reset_on_disconnect_mid_body(self):
        d = self.daemon(*plugins(spec("trace", name="A")))
        c, sid = self.session(d)
        c.ehlo()
        start_data(c)
        c.send(b"Subject: cut\r\n\r\nhalf a bo")
        self.wait_hook(d, sid, "A", "chunk")
        c.close()
        self.wait_hook(d, sid, "A", "disconnect")
        self.assertEqual(hooks_of(d.log(), "A", sid)[-2:], ["reset", "disconnect"])

    def test_no_reset_after_accepted_message(self):
        d = self.daemon(*plugins(spec("trace", name="A"), spec("trace", name="B", accept="eom")))
        c, sid = self.session(d)
        c.ehlo()
        self.assertEqual(transaction(c, body=BODY).code, 250)
        self.assertEqual(transaction(c, body=BODY).code, 250)
        self.assertEqual(c.cmd("QUIT").code, 221)
        self.wait_hook(d, sid, "B", "disconnect")
        log = d.log()
        for name in ("A", "B"):
            hooks = hooks_of(log, name, sid)
            self.assertNotIn("reset", hooks)
            self.assertEqual(hooks.count("eom"), 2)
            self.assertEqual(hooks[-1], "disconnect")

    def test_chunk_reject_stops_the_body_and_resets(self):
        d = self.daemon(*plugins(spec("trace", name="A"),
                                 spec("reject_at", hook="chunk", verdict="reject"),
                                 spec("trace", name="B")))
        c, sid = self.session(d)
        c.ehlo()
        start_data(c)
        send_in_parts(c, [b"Subject: x\r\n\r\npart one\r\n", b"part two\r\n",
                          b"part three\r\n.\r\n"], pause=0.2)
        self.assertEqual(c.reply().code, 550)
        log = d.log()
        # A saw the first chunk only; B none; nobody saw eom; both reset.
        self.assertEqual(hooks_of(log, "A", sid).count("chunk"), 1)
        self.assertNotIn("chunk", hooks_of(log, "B", sid))
        self.assertNotIn("eom", hooks_of(log, "A", sid))
        self.assertEqual(hooks_of(log, "A", sid)[-1], "reset")
        self.assertEqual(hooks_of(log, "B", sid)[-1], "reset")


class SkipMeTest(ChainTestCase):
    """ACCEPT of a chunk/header: "I need no more of this message"."""

    def test_chunk_accept_skips_only_that_plugin(self):
        out = os.path.join(tmpdir(self), "msg.eml")
        d = self.daemon(*plugins(spec("trace", name="A", accept="chunk"),
                                 spec("trace", name="B"),
                                 spec("chunk_recorder", file=out)))
        c, sid = self.session(d)
        c.ehlo()
        start_data(c)
        parts = [b"Subject: parts\r\n\r\none\r\n", b"two\r\n", b"three\r\n", b"four\r\n"]
        for i, p in enumerate(parts):
            c.send(p)
            self.wait_hook(d, sid, "B", "chunk", i + 1)
        c.send(b".\r\n")
        r = c.reply()
        self.assertEqual(r.code, 250, r)
        log = d.log()
        a, b = hooks_of(log, "A", sid), hooks_of(log, "B", sid)
        self.assertEqual(a.count("chunk"), 1)
        self.assertEqual(b.count("chunk"), 4)
        # A still gets eom, before B.
        self.assertIn("eom", a)
        order = [(n, h) for (n, h, _) in traces(log, sid) if h == "eom"]
        self.assertEqual(order, [("A", "eom"), ("B", "eom")])
        # The later plugin got every byte.
        data = read_file(out)
        self.assertTrue(data.endswith(b"".join(parts)), data)

    def test_chunk_accept_is_per_message(self):
        d = self.daemon(*plugins(spec("trace", name="A", accept="chunk;eom")))
        c, sid = self.session(d)
        c.ehlo()
        for n in range(2):
            start_data(c)
            c.send(b"Subject: m\r\n\r\nfirst\r\n")
            self.wait_hook(d, sid, "A", "chunk", n + 1)
            c.send(b"second\r\n.\r\n")
            self.assertEqual(c.reply().code, 250)
        # One chunk per message: skipping ended with the message.
        self.assertEqual(hooks_of(d.log(), "A", sid).count("chunk"), 2)

    def test_header_accept_skips_the_other_headers(self):
        d = self.daemon(*plugins(spec("trace", name="A", accept="header"),
                                 spec("trace", name="B", accept="eom")))
        c, sid = self.session(d)
        c.ehlo()
        body = b"Subject: one\r\nFrom: two@test.example\r\nTo: three@test.example\r\n\r\nx\r\n"
        self.assertEqual(transaction(c, body=body).code, 250)
        log = d.log()
        a = [det for (n, h, det) in traces(log, sid) if n == "A" and h == "header"]
        b = [det for (n, h, det) in traces(log, sid) if n == "B" and h == "header"]
        self.assertEqual(a, ["Subject"])
        self.assertEqual(b, ["Subject", "From", "To"])
        # Skipping headers does not skip the body.
        self.assertIn("chunk", hooks_of(log, "A", sid))


if __name__ == "__main__":
    unittest.main()

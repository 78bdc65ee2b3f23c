"""Message edits at eom (ABI 1.1, SPEC section 7) in the real daemon: the
edit_message test plugin inserts, changes and removes header fields and
changes the envelope; a second instance after it sees the result
(sh_tx, sh_tx_header, sh_tx_head_part); maildump with split=rcpt stores
the final message - the edited head byte for byte (unchanged fields as
the client folded them), the body as sent, Return-Path and Delivered-To
of the final envelope - in the final recipients' Maildirs only.  Edits
outside eom return -1 with a warning and change nothing."""
import os
import re
import shutil
import tempfile
import unittest

from smtphook_test import DaemonTestCase, start_data
from plugin_helpers import spec, plugins, session_id, send_in_parts

HEAD = (b"Subject: original\r\n"
        b"X-Drop: one\r\n"
        b"X-Folded:   spaced \r\n\t tab-folded\r\n  and more\r\n"
        b"x-drop: two\r\n"
        b"To: a@test.example\r\n"
        b"\r\n")
BODY = (b"body line\r\n"
        b".a dot line\r\n"
        b"Subject: not a header\r\n"
        b"\r\n"
        b"last\r\n")
# Wire form: every line that starts with a dot gets one more.
WIRE = HEAD + BODY.replace(b"\r\n.", b"\r\n..") + b".\r\n"

FINAL_HEAD = (b"X-New: first\r\n"
              b"Subject: changed\r\n"
              b"X-Folded:   spaced \r\n\t tab-folded\r\n  and more\r\n"
              b"To: a@test.example\r\n"
              b"X-Last: end\r\n"
              b"\r\n")

EDITS = dict(name="first",
             insert="X-New:first@0;X-Last:end",
             change="subject:1:changed",
             remove="X-DROP:2;x-drop:1",
             sender="new@test.example RET=HDRS",
             rcpt_add="c@test.example NOTIFY=NEVER;a@test.example",
             rcpt_remove="b@test.example")


class EditsTest(DaemonTestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="smtphook-edits-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.dir = os.path.join(self.root, "box")

    def start(self, edits, after=True):
        chain = [spec("edit_message", **edits)]
        if after:
            chain.append(spec("edit_message", name="after", dump="yes"))
        chain.append("maildump:dir=%s,split=rcpt" % self.dir)
        return self.daemon(*plugins(*chain))

    def mailboxes(self):
        return sorted(e for e in os.listdir(self.dir) if e not in ("cur", "new", "tmp"))

    def stored(self, mailbox):
        new = os.path.join(self.dir, mailbox, "new")
        names = os.listdir(new)
        self.assertEqual(len(names), 1, names)
        self.assertEqual(os.listdir(os.path.join(self.dir, mailbox, "tmp")), [])
        with open(os.path.join(new, names[0]), "rb") as f:
            return f.read()

    def send(self, d, rcpts=("a@test.example", "b@test.example")):
        c = self.client(d)
        c.ehlo()
        start_data(c, sender="s@test.example", rcpts=rcpts)
        # In pieces, so the header section arrives in several chunks.
        send_in_parts(c, [WIRE[:7], WIRE[7:40], WIRE[40:]], pause=0.1)
        return c, c.reply()

    def test_final_message_stored(self):
        d = self.start(EDITS)
        c, r = self.send(d)
        self.assertEqual(r.code, 250, r)
        # Only the final recipients' Maildirs, b's never made.
        self.assertEqual(self.mailboxes(), ["a@test.example", "c@test.example"])
        data = self.stored("a@test.example")
        self.assertEqual(self.stored("c@test.example"), data)
        envelope = (b"Return-Path: <new@test.example>\r\n"
                    b"Delivered-To: a@test.example\r\n"
                    b"Delivered-To: c@test.example\r\n"
                    b"X-Envelope-From: <new@test.example> RET=HDRS\r\n"
                    b"X-Envelope-To: <c@test.example> NOTIFY=NEVER\r\n")
        self.assertTrue(data.startswith(envelope + b"Received: "), data[:400])
        # The host's Received: (its one trace field) comes first, then
        # the edited section exactly, then the body as sent.
        rest = data[len(envelope):]
        m = re.match(rb"Received: [^\r\n]*(?:\r\n\t[^\r\n]*)*\r\n", rest)
        self.assertIsNotNone(m, rest[:400])
        self.assertEqual(rest[m.end():], FINAL_HEAD + BODY)

        # The edits, in order, each logged with its result; a duplicate
        # recipient is refused.
        sid = session_id(d, c)
        log = d.wait_log("edit after part")
        first = re.findall(r"session %s: plugin edit_message: edit first (.*)" % sid, log)
        self.assertEqual(first, [
            "insert X-New:first@0 rc=0", "insert X-Last:end rc=0",
            "change subject:1:changed rc=0",
            "remove X-DROP:2 rc=0", "remove x-drop:1 rc=0",
            "sender new@test.example RET=HDRS rc=0",
            "rcpt_add c@test.example NOTIFY=NEVER rc=0", "rcpt_add a@test.example rc=-1",
            "rcpt_remove b@test.example rc=0"])
        # The plugin after it sees the final envelope and fields.
        after = re.findall(r"session %s: plugin edit_message: edit after (.*)" % sid, log)
        self.assertEqual([a for a in after if not a.startswith("part ")], [
            "sender <new@test.example>",
            "rcpt <a@test.example>", "rcpt <c@test.example>",
            "header 0 X-New: first", "header 1 Subject: changed",
            "header 2 X-Folded: spaced \\x09 tab-folded  and more",
            "header 3 To: a@test.example", "header 4 X-Last: end",
            "head_edited 1"])
        # The trace block, two texts (inserted, changed), the ranges of
        # the unchanged fields (not touching: x-drop went in between), the
        # inserted last field, the tail: the empty line.
        folded = HEAD.index(b"X-Folded")
        to = HEAD.index(b"To:")
        parts = [a for a in after if a.startswith("part ")]
        self.assertRegex(parts[0], r"^part 0 text \d+$")
        self.assertEqual(parts[1:], [
            "part 1 text %d" % len(b"X-New: first\r\n"),
            "part 2 text %d" % len(b"Subject: changed\r\n"),
            "part 3 range %d %d" % (folded, HEAD.index(b"x-drop: two") - folded),
            "part 4 range %d %d" % (to, len(HEAD) - 2 - to),
            "part 5 text %d" % len(b"X-Last: end\r\n"),
            "part 6 range %d 2" % (len(HEAD) - 2)])

    def test_unedited_message_stored_as_sent(self):
        # No edits at all: the head as it streamed, head_edited 0.
        d = self.start(dict(name="first"))
        c, r = self.send(d, rcpts=("a@test.example",))
        self.assertEqual(r.code, 250, r)
        data = self.stored("a@test.example")
        self.assertTrue(data.endswith(b"\r\n" + HEAD + BODY), data[-300:])
        log = d.wait_log("edit after part 1")
        self.assertIn("edit after head_edited 0", log)
        self.assertRegex(log, r"edit after part 1 range 0 %d\n" % len(HEAD))

    def test_edits_outside_eom_refused(self):
        edits = dict(EDITS, at="rcpt")
        d = self.start(edits)
        c, r = self.send(d)
        self.assertEqual(r.code, 250, r)
        log = d.wait_log("edit after part")
        first = re.findall(r"plugin edit_message: edit first (.*)", log)
        self.assertTrue(first and all(f.endswith(" rc=-1") for f in first), first)
        # Each refusal is a warning naming the plugin and the hook.
        self.assertIn("warn: plugin edit_message: sh_header_insert() in rcpt refused "
                      "(only at eom)", log)
        self.assertIn("warn: plugin edit_message: sh_rcpt_remove() in rcpt refused", log)
        # Nothing changed: both recipients, the head as sent.
        self.assertEqual(self.mailboxes(), ["a@test.example", "b@test.example"])
        data = self.stored("b@test.example")
        self.assertTrue(data.startswith(b"Return-Path: <s@test.example>\r\n"), data[:200])
        self.assertTrue(data.endswith(b"\r\n" + HEAD + BODY))


if __name__ == "__main__":
    unittest.main()

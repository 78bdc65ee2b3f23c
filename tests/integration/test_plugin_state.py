"""What a plugin keeps and sees (SPEC §4, smtphook.h MEMORY): the body as
chunks (chunk_recorder), the trace block with the host's Received: first
and added headers after it (add_header + chunk_recorder), private state
per plugin, connection and transaction with destructors (private_state)."""
import os
import re
import unittest

from smtphook_test import DaemonTestCase, transaction, HOSTNAME, SLOW
from plugin_helpers import (spec, plugins, session_id, wait_for, start_data, tmpdir,
                            read_file, send_in_parts)

MESSAGE = (b"Subject: recorded\r\n"
           b"From: a@test.example\r\n"
           b"X-Folded: first\r\n\tsecond\r\n"
           b"\r\n"
           b"body line\r\n"
           b".starts with a dot\r\n"
           b"..two dots\r\n"
           b"\r\n"
           b"last line\r\n")
# What the client means: one leading dot removed per line.
UNSTUFFED = MESSAGE.replace(b"\r\n.starts", b"\r\nstarts").replace(b"\r\n..two", b"\r\n.two")


def split_trace(data):
    """(trace header lines, message) of a chunk_recorder file: the trace
    block is the Received: field and the added fields before the message."""
    lines = data.split(b"\r\n")
    fields = []
    i = 0
    while i < len(lines) and (lines[i].startswith(b"Received:") or lines[i].startswith(b"\t")
                              or lines[i].startswith(b"X-Test:") or lines[i].startswith(b"X-Other:")):
        if lines[i].startswith(b"\t"):
            fields[-1] += b"\r\n" + lines[i]
        else:
            fields.append(lines[i])
        i += 1
    return fields, b"\r\n".join(lines[i:])


class ChunkRecorderTest(DaemonTestCase):
    def test_records_trace_then_exact_message(self):
        out = os.path.join(tmpdir(self), "msg.eml")
        d = self.daemon(*plugins(spec("chunk_recorder", file=out)))
        c = self.client(d)
        c.ehlo("client.test.example")
        r = transaction(c, rcpts=("one@test.example",), body=MESSAGE)
        self.assertEqual(r.code, 250, r)
        data = read_file(out)
        fields, msg = split_trace(data)
        self.assertEqual(len(fields), 1, fields)
        self.assertTrue(fields[0].startswith(b"Received: from client.test.example "), fields)
        self.assertIn(b"by " + HOSTNAME.encode(), fields[0])
        self.assertIn(b"for <one@test.example>", fields[0])
        self.assertEqual(msg, UNSTUFFED)
        # No temporary file is left behind.
        self.assertEqual(sorted(os.listdir(os.path.dirname(out))), ["msg.eml"])

    def test_records_every_chunk_in_order(self):
        out = os.path.join(tmpdir(self), "msg.eml")
        d = self.daemon(*plugins(spec("chunk_recorder", file=out)))
        c = self.client(d)
        c.ehlo()
        start_data(c)
        body = b"Subject: pieces\r\n\r\n" + b"".join(b"piece %d\r\n" % i for i in range(5000))
        parts = [body[i:i + 7001] for i in range(0, len(body), 7001)]
        send_in_parts(c, parts + [b".\r\n"], pause=0.02)
        self.assertEqual(c.reply().code, 250)
        self.assertEqual(split_trace(read_file(out))[1], body)

    def test_headers_file_has_unfolded_fields(self):
        # Unfolding removes the CRLF and keeps the WSP (RFC 5322 §2.2.3).
        out = os.path.join(tmpdir(self), "msg.eml")
        d = self.daemon(*plugins(spec("chunk_recorder", file=out, headers=1)))
        c = self.client(d)
        c.ehlo()
        self.assertEqual(transaction(c, body=MESSAGE).code, 250)
        hdrs = read_file(out + ".headers").decode()
        self.assertEqual(hdrs.splitlines(), ["Subject: recorded", "From: a@test.example",
                                             "X-Folded: first\tsecond"])

    def test_rejected_message_leaves_no_file(self):
        tmp = tmpdir(self)
        out = os.path.join(tmp, "msg.eml")
        d = self.daemon(*plugins(spec("chunk_recorder", file=out, headers=1)),
                        "-p", spec("reject_at", hook="chunk", verdict="reject"))
        c = self.client(d)
        c.ehlo()
        self.assertEqual(transaction(c, body=MESSAGE).code, 550)
        self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertTrue(c.closed())
        d.stop()
        self.assertEqual(os.listdir(tmp), [])


class AddHeaderTest(DaemonTestCase):
    def record(self, *specs, body=MESSAGE):
        out = os.path.join(tmpdir(self), "msg.eml")
        d = self.daemon(*plugins(*(s.replace("@OUT@", out) for s in specs)))
        c = self.client(d)
        c.ehlo()
        r = transaction(c, body=body)
        return d, r, out

    def test_trace_block_is_received_then_added_headers(self):
        d, r, out = self.record(spec("add_header"), spec("chunk_recorder", file="@OUT@"))
        self.assertEqual(r.code, 250, r)
        fields, msg = split_trace(read_file(out))
        self.assertTrue(fields[0].startswith(b"Received: "), fields)
        self.assertEqual(fields[1:], [b"X-Test: data", b"X-Test: eom"])
        self.assertEqual(msg, UNSTUFFED)
        self.assertIn("add_header: X-Test at data rc=0", d.log())
        self.assertIn("add_header: X-Test at eom rc=0", d.log())

    def test_headers_added_at_header_and_chunk_time(self):
        d, r, out = self.record(spec("add_header", at="header;chunk", name="X-Other"),
                                spec("chunk_recorder", file="@OUT@"))
        self.assertEqual(r.code, 250, r)
        fields, _ = split_trace(read_file(out))
        self.assertEqual(fields[1:], [b"X-Other: header", b"X-Other: chunk"])

    def test_custom_value_and_two_adders_in_chain_order(self):
        d, r, out = self.record(spec("add_header", value="first", at="eom"),
                                spec("add_header", name="X-Other", value="second", at="eom"),
                                spec("chunk_recorder", file="@OUT@"))
        self.assertEqual(r.code, 250, r)
        fields, _ = split_trace(read_file(out))
        self.assertEqual(fields[1:], [b"X-Test: first", b"X-Other: second"])

    def test_plugins_before_the_adder_do_not_see_its_eom_header(self):
        # chunk_recorder decides eom before add_header is asked.
        d, r, out = self.record(spec("chunk_recorder", file="@OUT@"), spec("add_header"))
        self.assertEqual(r.code, 250, r)
        fields, _ = split_trace(read_file(out))
        self.assertEqual(fields[1:], [b"X-Test: data"])
        self.assertNotIn("at eom", d.log())

    def test_add_header_outside_a_message_is_refused(self):
        d, r, out = self.record(spec("add_header", at="rcpt;eom"),
                                spec("chunk_recorder", file="@OUT@"))
        self.assertEqual(r.code, 250, r)
        self.assertIn("add_header: X-Test at rcpt rc=-1", d.log())
        fields, _ = split_trace(read_file(out))
        self.assertEqual(fields[1:], [b"X-Test: eom"])

    def test_bad_header_name_is_refused(self):
        d, r, out = self.record(spec("add_header", name="Bad:Name", at="eom"),
                                spec("chunk_recorder", file="@OUT@"))
        self.assertEqual(r.code, 250, r)
        self.assertIn("add_header: Bad:Name at eom rc=-1", d.log())
        fields, _ = split_trace(read_file(out))
        self.assertEqual(len(fields), 1, fields)


FREE_CONN = re.compile(r"private_state: free conn #(\d+)\.(\d+) messages=(\d+)")


class PrivateStateTest(DaemonTestCase):
    def start(self, **args):
        d = self.daemon(*plugins(spec("private_state", **args)))
        c = self.client(d)
        sid = session_id(d, c)
        m = wait_for(lambda: re.search(r"session %s: plugin private_state: private_state: "
                                       r"connect #(\d+)" % sid, d.log()), what="connect")
        return d, c, sid, int(m.group(1))

    def lines(self, d, pattern):
        return [l for l in d.log().splitlines() if re.search(pattern, l)]

    def index(self, d, needle):
        log = d.log()
        self.assertIn(needle, log)
        return log.index(needle)

    def test_conn_state_counts_messages_and_is_freed_after_disconnect(self):
        d, c, sid, n = self.start()
        c.ehlo()
        for i in range(3):
            self.assertEqual(transaction(c, sender="s%d@test.example" % i).code, 250)
        log = d.log()
        for i in (1, 2, 3):
            self.assertIn("eom conn #%d message %d" % (n, i), log)
        self.assertEqual(c.cmd("QUIT").code, 221)
        d.wait_log("free conn #%d.0 messages=3" % n)
        self.assertLess(self.index(d, "disconnect conn #%d messages=3" % n),
                        self.index(d, "free conn #%d.0 messages=3" % n))

    def test_conn_state_is_per_connection(self):
        d, c1, sid1, n1 = self.start()
        c2 = self.client(d)
        c1.ehlo()
        c2.ehlo()
        self.assertEqual(transaction(c1, sender="one@test.example").code, 250)
        self.assertEqual(transaction(c2, sender="two@test.example").code, 250)
        self.assertEqual(transaction(c2, sender="three@test.example").code, 250)
        c1.cmd("QUIT")
        c2.cmd("QUIT")
        d.wait_log("messages=2\n")
        found = {}
        wait_for(lambda: len(FREE_CONN.findall(d.log())) >= 3, what="conn frees")
        for num, gen, msgs in FREE_CONN.findall(d.log()):
            found[int(num)] = int(msgs)
        self.assertEqual(found[n1], 1)
        self.assertIn(2, found.values())

    def test_tx_state_lives_from_mail_to_eom(self):
        d, c, sid, n = self.start()
        c.ehlo()
        r = transaction(c, sender="keep@test.example",
                        rcpts=("r1@test.example", "r2@test.example"))
        self.assertEqual(r.code, 250)
        log = d.wait_log("free tx sender=<keep@test.example> rcpts=2")
        self.assertIn("rcpt sender=<keep@test.example> rcpts=1", log)
        self.assertIn("rcpt sender=<keep@test.example> rcpts=2", log)
        self.assertLess(log.index("eom conn #%d message 1 sender=<keep@test.example> rcpts=2" % n),
                        log.index("free tx sender=<keep@test.example>"))
        # An accepted message is not reset.
        self.assertNotIn("reset tx=", log)

    def test_tx_state_freed_after_reset_on_rset(self):
        d, c, sid, n = self.start()
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<rset@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@test.example>").code, 250)
        self.assertEqual(c.cmd("RSET").code, 250)
        log = d.wait_log("free tx sender=<rset@test.example> rcpts=1")
        # The reset hook still sees the state; the destructor runs after.
        self.assertLess(log.index("reset tx=rset@test.example"),
                        log.index("free tx sender=<rset@test.example>"))
        # A new transaction starts with fresh state.
        self.assertEqual(transaction(c, sender="next@test.example").code, 250)
        self.assertNotIn("stale tx state", d.log())
        self.assertIn("eom conn #%d message 1 sender=<next@test.example> rcpts=1" % n, d.log())

    def test_tx_and_conn_state_freed_on_disconnect_mid_transaction(self):
        d, c, sid, n = self.start()
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<gone@test.example>").code, 250)
        c.close()
        log = d.wait_log("free conn #%d.0 messages=0" % n)
        order = [log.index(s) for s in ("reset tx=gone@test.example",
                                        "free tx sender=<gone@test.example> rcpts=0",
                                        "disconnect conn #%d messages=0" % n,
                                        "free conn #%d.0 messages=0" % n)]
        self.assertEqual(order, sorted(order))

    def test_tx_state_freed_when_sender_is_rejected(self):
        d = self.daemon(*plugins(spec("private_state"),
                                 spec("reject_at", hook="mail", verdict="reject")))
        c = self.client(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<refused@test.example>").code, 550)
        d.wait_log("free tx sender=<refused@test.example> rcpts=0")
        self.assertEqual(c.cmd("NOOP").code, 250)

    def test_replacing_conn_state_destroys_the_old_value(self):
        d, c, sid, n = self.start(replace=1)
        c.ehlo()
        c.ehlo()
        log = d.log()
        self.assertLess(log.index("free conn #%d.0 messages=0" % n),
                        log.index("helo conn #%d.1" % n))
        self.assertLess(log.index("free conn #%d.1 messages=0" % n),
                        log.index("helo conn #%d.2" % n))
        c.cmd("QUIT")
        d.wait_log("free conn #%d.2 messages=0" % n)

    def test_fini_reports_connections(self):
        d = self.daemon(*plugins(spec("private_state")))
        for _ in range(2):
            c = self.client(d)
            c.ehlo()
            c.cmd("QUIT")
            c.close()
        wait_for(lambda: len(FREE_CONN.findall(d.log())) >= 3, what="three frees")
        d.send_signal(15)
        d.proc.wait(timeout=20 * SLOW)
        # Probe connection + two clients.
        self.assertIn("private_state: fini conns=3", d.log())
        d.stop()  # checks the exit status (and valgrind's verdict)


if __name__ == "__main__":
    unittest.main()

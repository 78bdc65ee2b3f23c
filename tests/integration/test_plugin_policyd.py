"""policyd in the real daemon against a stub policy server written here
(a threaded socketserver on 127.0.0.1 that records every request): every
access(5) action of a reply, PREPEND seen in the message maildump stored,
WARN logged, the request's attributes (instance the same within a message
and new for the next), a garbage reply, a server that closes after each
request, one that never answers, one that is not there; argument errors;
and the real postgrey (Debian package postgrey), started here in the
foreground: greylisted first, accepted with its X-Greylist header after
the delay."""
import mailbox
import os
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import unittest

from smtphook_test import (DaemonTestCase, SLOW, free_port, require_bundled_plugin,
                           require_tool, run_daemon)

DEFAULT = "451 4.3.5 Server configuration problem"


class Stub:
    """A policy server: answer(attrs) gives the action (None: never
    answer); close=True closes the connection after each reply."""

    def __init__(self, answer, close=False):
        self.answer = answer
        self.close = close
        self.requests = []
        self.connections = 0
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        stub = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                with stub.lock:
                    stub.connections += 1
                self.request.settimeout(30 * SLOW)
                while not stub.stop_event.is_set():
                    attrs = {}
                    try:
                        while True:
                            line = self.rfile.readline(10000)
                            if not line:
                                return
                            line = line.decode("utf-8", "replace").rstrip("\n")
                            if line == "":
                                break
                            k, _, v = line.partition("=")
                            attrs[k] = v
                    except OSError:
                        return
                    with stub.lock:
                        stub.requests.append(attrs)
                    a = stub.answer(attrs)
                    if a is None:
                        stub.stop_event.wait(30 * SLOW)
                        return
                    try:
                        self.wfile.write(a.encode() if isinstance(a, str) else a)
                        self.wfile.flush()
                    except OSError:
                        return
                    if stub.close:
                        return

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()


def reply(action):
    return "action=%s\n\n" % action


class PolicydArgsTest(unittest.TestCase):
    def refused(self, args, needle):
        so = require_bundled_plugin("policyd")
        r = run_daemon(["--check", "-p", so + (":" + args if args else "")])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(needle, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)

    def test_errors(self):
        self.refused("", "server= is required")
        self.refused("server=tcp:1.2.3.4:5", "expected inet:HOST:PORT or unix:/path")
        self.refused("server=inet:127.0.0.1:1,at=RCPT;BOGUS", "\"BOGUS\" is not one of")
        self.refused("server=inet:127.0.0.1:1,default_action=FROB", "not an access(5) action")
        self.refused("server=inet:127.0.0.1:1,request_timeout=0", "request_timeout=0")
        self.refused("server=inet:127.0.0.1:1,bogus=1", "bogus")


class PolicydBase(DaemonTestCase):
    """The helpers: a stub, the daemon with policyd then maildump."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="smtphook-policyd-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.box = os.path.join(self.root, "box")

    def stub(self, answer, close=False):
        s = Stub(answer, close)
        self.addCleanup(s.stop)
        return s

    def start(self, server, args="", daemon_args=()):
        so = require_bundled_plugin("policyd")
        md = require_bundled_plugin("maildump")
        spec = so + ":server=" + server + ("," + args if args else "")
        return self.daemon("-p", spec, "-p", md + ":dir=" + self.box, *daemon_args)

    def stored(self):
        box = mailbox.Maildir(self.box, factory=None, create=False)
        return [box.get_bytes(k) for k in box.keys()]

    @staticmethod
    def quit(c):
        """QUIT: what the loop callbacks want logged is logged at the
        session's next hook call, at the latest disconnect."""
        c.cmd("QUIT")
        c.closed()

    def rcpt_reply(self, d, rcpt="rcpt@test.example"):
        c = self.client(d)
        c.ehlo()
        r = c.cmd("MAIL FROM:<sender@test.example>")
        self.assertEqual(r.code, 250, r)
        return c, c.cmd("RCPT TO:<%s>" % rcpt)


class PolicydTest(PolicydBase):
    # ---- actions ----

    def test_actions(self):
        table = {
            "ok": ("OK", 250, None),
            "dunno": ("dunno", 250, None),
            "reject": ("REJECT go away", 554, "5.7.1 go away"),
            "rejectbare": ("reject", 554, "5.7.1 Access denied"),
            "defer": ("DEFER later", 450, "4.7.1 later"),
            "dip": ("DEFER_IF_PERMIT greylisted", 450, "4.7.1 greylisted"),
            "dir": ("DEFER_IF_REJECT maybe", 250, None),
            "n450": ("450 4.2.0 Greylisted", 450, "4.2.0 Greylisted"),
            "n451": ("451 try again", 451, "4.7.1 try again"),
            "n550": ("550 5.1.1 No such user", 550, "5.1.1 No such user"),
            "n553": ("553 4.1.8 class fixed", 553, "5.1.8 class fixed"),
            "hold": ("HOLD", 250, None),
            "frob": ("FROBNICATE", 451, "4.3.5 Server configuration problem"),
        }
        stub = self.stub(lambda a: reply(table[a["recipient"].split("@")[0]][0]))
        d = self.start("inet:127.0.0.1:%d" % stub.port)
        c = self.client(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<sender@test.example>").code, 250)
        for local, (action, code, text) in table.items():
            r = c.cmd("RCPT TO:<%s@test.example>" % local)
            self.assertEqual(r.code, code, (action, r))
            if text is not None:
                self.assertEqual(r.text, text, action)
        self.assertEqual(len(stub.requests), len(table))
        log = d.log()
        self.assertIn("HOLD", log)
        self.assertIn("DEFER_IF_REJECT maybe", log)

    def test_421_disconnects(self):
        stub = self.stub(lambda a: reply("421 4.3.2 going down"))
        d = self.start("inet:127.0.0.1:%d" % stub.port)
        c, r = self.rcpt_reply(d)
        self.assertEqual(r.code, 421, r)
        self.assertTrue(c.closed())

    def test_prepend_and_warn(self):
        def answer(a):
            if a["protocol_state"] == "RCPT":
                return reply("PREPEND X-Policy: first for " + a["recipient"])
            return reply("WARN noted at " + a["protocol_state"])

        stub = self.stub(answer)
        d = self.start("inet:127.0.0.1:%d" % stub.port, "at=RCPT;DATA")
        s = self.smtplib_client(d)
        s.ehlo("client.test.example")
        s.mail("sender@test.example")
        self.assertEqual(s.rcpt("a@test.example")[0], 250)
        self.assertEqual(s.rcpt("b@test.example")[0], 250)
        code, text = s.data(b"Subject: hi\r\n\r\nbody\r\n")
        self.assertEqual(code, 250, text)
        msgs = self.stored()
        self.assertEqual(len(msgs), 1)
        head = msgs[0].split(b"\r\n\r\n", 1)[0]
        lines = head.split(b"\r\n")
        i = [k for k, l in enumerate(lines) if l.startswith(b"X-Policy:")]
        self.assertEqual([lines[k] for k in i], [b"X-Policy: first for a@test.example",
                                                  b"X-Policy: first for b@test.example"], head)
        received = [k for k, l in enumerate(lines) if l.startswith(b"Received:")]
        self.assertTrue(received and received[0] < i[0], head)
        self.assertLess(i[1], lines.index(b"Subject: hi"))
        d.wait_log("WARN noted at DATA")

    # ---- the request ----

    def test_request_attributes_and_instance(self):
        stub = self.stub(lambda a: reply("DUNNO"))
        d = self.start("inet:127.0.0.1:%d" % stub.port,
                       "at=CONNECT;EHLO;MAIL;RCPT;DATA;END-OF-MESSAGE,policy_context=ctx1")
        s = self.smtplib_client(d)
        s.ehlo("client.test.example")
        for n in range(2):
            s.mail("sender@test.example", ["SIZE=20"])
            s.rcpt("rcpt%d@test.example" % n)
            code, _ = s.data(b"Subject: x\r\n\r\nbody\r\n")
            self.assertEqual(code, 250)
        s.quit()
        # the daemon's start-up probe connection is asked at CONNECT too
        port = [r for r in stub.requests if r["protocol_state"] == "EHLO"][0]["client_port"]
        stub.requests = [r for r in stub.requests if r["client_port"] == port]
        states = [r["protocol_state"] for r in stub.requests]
        self.assertEqual(states, ["CONNECT", "EHLO"] +
                         ["MAIL", "RCPT", "DATA", "END-OF-MESSAGE"] * 2, states)
        for r in stub.requests:
            self.assertEqual(r["request"], "smtpd_access_policy")
            self.assertEqual(r["client_address"], "127.0.0.1")
            self.assertEqual(r["client_name"], "unknown")
            self.assertEqual(r["reverse_client_name"], "unknown")
            self.assertTrue(r["client_port"].isdigit())
            self.assertEqual(r["server_address"], "127.0.0.1")
            self.assertEqual(r["server_port"], str(d.port))
            self.assertEqual(r["policy_context"], "ctx1")
            for k in ("sasl_username", "encryption_protocol", "encryption_cipher",
                      "queue_id", "sender", "recipient", "recipient_count", "size",
                      "helo_name", "instance", "protocol_name"):
                self.assertIn(k, r)
        connect, ehlo = stub.requests[:2]
        self.assertEqual(ehlo["helo_name"], "client.test.example")
        self.assertEqual(ehlo["protocol_name"], "ESMTP")
        m1, m2 = stub.requests[2:6], stub.requests[6:10]
        for i, m in enumerate((m1, m2)):
            self.assertEqual(len({r["instance"] for r in m}), 1, m)
            self.assertEqual(m[0]["sender"], "sender@test.example")
            self.assertEqual(m[0]["size"], "20")
            self.assertEqual(m[1]["recipient"], "rcpt%d@test.example" % i)
            self.assertEqual(m[1]["recipient_count"], "0")
            self.assertEqual(m[2]["recipient_count"], "1")
            self.assertEqual(m[3]["recipient_count"], "1")
            self.assertNotEqual(m[1]["queue_id"], "")
            self.assertEqual(m[1]["queue_id"], m[3]["queue_id"])
            self.assertGreater(int(m[3]["size"]), 0)
        self.assertNotEqual(m1[0]["instance"], m2[0]["instance"])
        self.assertNotEqual(m1[1]["queue_id"], m2[1]["queue_id"])

    # ---- failures ----

    def test_garbage_reply_default_action(self):
        stub = self.stub(lambda a: "this is not a policy reply\n\n")
        d = self.start("inet:127.0.0.1:%d" % stub.port)
        c, r = self.rcpt_reply(d)
        self.assertEqual((r.code, r.text), (451, "4.3.5 Server configuration problem"))
        self.quit(c)
        d.wait_log("malformed reply")
        self.assertIn("inet:127.0.0.1:%d" % stub.port, d.log())

    def test_garbage_default_action_dunno(self):
        stub = self.stub(lambda a: "garbage\n\n")
        d = self.start("inet:127.0.0.1:%d" % stub.port, "default_action=DUNNO")
        _, r = self.rcpt_reply(d)
        self.assertEqual(r.code, 250, r)

    def test_server_closes_after_each_request(self):
        stub = self.stub(lambda a: reply("DUNNO"), close=True)
        d = self.start("inet:127.0.0.1:%d" % stub.port)
        c = self.client(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<sender@test.example>").code, 250)
        # with a pause the EOF is seen while idle; without one the next
        # request may go out on the closed connection and is retried
        for i in range(10):
            if i % 2:
                time.sleep(0.05)
            r = c.cmd("RCPT TO:<r%d@test.example>" % i)
            self.assertEqual(r.code, 250, r)
        self.assertEqual(len(stub.requests), 10)
        self.assertGreaterEqual(stub.connections, 10)

    def test_persistent_connection_reused(self):
        stub = self.stub(lambda a: reply("DUNNO"))
        d = self.start("inet:127.0.0.1:%d" % stub.port)
        c = self.client(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<sender@test.example>").code, 250)
        for i in range(5):
            self.assertEqual(c.cmd("RCPT TO:<r%d@test.example>" % i).code, 250)
        self.assertEqual(stub.connections, 1)

    def test_server_never_answers_timeout(self):
        stub = self.stub(lambda a: None)
        d = self.start("inet:127.0.0.1:%d" % stub.port, "request_timeout=1")
        t0 = time.time()
        c, r = self.rcpt_reply(d)
        took = time.time() - t0
        self.assertEqual((r.code, r.text), (451, "4.3.5 Server configuration problem"))
        self.assertLess(took, 5 * SLOW)
        self.assertGreater(took, 0.8)
        self.quit(c)
        d.wait_log("timed out")

    def test_client_gone_while_pending(self):
        def answer(a):
            if a["recipient"].startswith("slow"):
                time.sleep(0.5)
            return reply("DUNNO")

        stub = self.stub(answer)
        d = self.start("inet:127.0.0.1:%d" % stub.port)
        c = self.client(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<sender@test.example>").code, 250)
        c.send("RCPT TO:<slow@test.example>\r\n")
        time.sleep(0.1)
        c.close()
        # the late reply keeps the connection in step: reused afterwards
        _, r = self.rcpt_reply(d)
        self.assertEqual(r.code, 250, r)
        time.sleep(0.6)
        _, r = self.rcpt_reply(d, "again@test.example")
        self.assertEqual(r.code, 250, r)
        self.assertEqual([q["recipient"] for q in stub.requests],
                         ["slow@test.example", "rcpt@test.example", "again@test.example"])
        self.assertLessEqual(stub.connections, 2)

    def test_host_timeout_shorter_than_request_timeout(self):
        stub = self.stub(lambda a: None)
        d = self.start("inet:127.0.0.1:%d" % stub.port, "timeout=1,request_timeout=30")
        t0 = time.time()
        _, r = self.rcpt_reply(d)
        self.assertEqual(r.code, 451, r)
        self.assertEqual(r.enhanced, "4.4.3", r)
        self.assertLess(time.time() - t0, 5 * SLOW)

    def test_unreachable_logged_once(self):
        port = free_port()
        d = self.start("inet:127.0.0.1:%d" % port, "default_action=DEFER no policy")
        for _ in range(3):
            c, r = self.rcpt_reply(d)
            self.assertEqual((r.code, r.text), (450, "4.7.1 no policy"))
            self.quit(c)
        d.wait_log("inet:127.0.0.1:%d" % port)
        self.assertEqual(d.log().count("logged once until it answers"), 1, d.log())

    def test_unix_socket(self):
        path = os.path.join(self.root, "policy.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(4)
        self.addCleanup(srv.close)
        got = []

        def serve():
            srv.settimeout(20 * SLOW)
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\n\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                got.append(data)
                conn.sendall(b"action=REJECT unix says no\n\n")
                time.sleep(0.5)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        d = self.start("unix:" + path)
        _, r = self.rcpt_reply(d)
        self.assertEqual((r.code, r.text), (554, "5.7.1 unix says no"))
        t.join(10 * SLOW)
        self.assertIn(b"protocol_state=RCPT\n", got[0])



class PostgreyTest(PolicydBase):
    DELAY = 2

    def postgrey(self):
        """Start postgrey on a free loopback port (foreground, its own
        database, delay DELAY); returns the port once it listens."""
        exe = require_tool("postgrey", "postgrey")
        import grp
        import pwd
        port = free_port()
        db = os.path.join(self.root, "db")
        os.mkdir(db)
        log = open(os.path.join(self.root, "postgrey.log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen(
            [exe, "--inet=127.0.0.1:%d" % port, "--dbdir=" + db,
             "--delay=%d" % self.DELAY, "--pidfile=" + os.path.join(self.root, "pg.pid"),
             "--user=" + pwd.getpwuid(os.getuid()).pw_name,
             "--group=" + grp.getgrgid(os.getgid()).gr_name, "-v"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

        def stop():
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.addCleanup(stop)
        deadline = time.time() + 20 * SLOW
        while time.time() < deadline:
            if proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return port
            except OSError:
                time.sleep(0.1)
        with open(os.path.join(self.root, "postgrey.log"), "rb") as f:
            raise AssertionError("postgrey did not listen on %d: %r" % (port, f.read()))

    def test_postgrey_greylists_then_passes(self):
        port = self.postgrey()
        d = self.start("inet:127.0.0.1:%d" % port, "default_action=REJECT no policy")
        c, r = self.rcpt_reply(d, "greylisted@test.example")
        self.assertEqual(r.code, 450, r)
        self.assertTrue(r.enhanced.startswith("4."), r)
        self.assertIn("Greylisted", r.text)
        self.quit(c)
        time.sleep(self.DELAY + 1.5)
        s = self.smtplib_client(d)
        s.ehlo("client.test.example")
        s.mail("sender@test.example")
        self.assertEqual(s.rcpt("greylisted@test.example")[0], 250)
        code, text = s.data(b"Subject: after the delay\r\n\r\nbody\r\n")
        self.assertEqual(code, 250, text)
        msgs = self.stored()
        self.assertEqual(len(msgs), 1)
        head = msgs[0].split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        xg = [k for k, l in enumerate(head) if l.startswith(b"X-Greylist: delayed ")]
        rec = [k for k, l in enumerate(head) if l.startswith(b"Received:")]
        self.assertEqual(len(xg), 1, head)
        self.assertLess(rec[0], xg[0])
        self.assertIn(b"by postgrey", head[xg[0]])


if __name__ == "__main__":
    unittest.main()

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
import sys
import tempfile
import threading
import time
import unittest

from smtphook_test import (DaemonTestCase, SLOW, free_port, require_bundled_plugin,
                           require_tool, run_daemon, start_peer)

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
        self.refused("server=tcp:1.2.3.4:5", "expected inet:HOST:PORT, unix:/path or spawn:")
        self.refused("server=inet:127.0.0.1:1,at=RCPT;BOGUS", "\"BOGUS\" is not one of")
        self.refused("server=inet:127.0.0.1:1,default_action=FROB", "not an access(5) action")
        self.refused("server=inet:127.0.0.1:1,request_timeout=0", "request_timeout=0")
        self.refused("server=inet:127.0.0.1:1,bogus=1", "bogus")
        self.refused("server=spawn:bin/policyd-spf", "expected spawn:/path/to/program")
        self.refused("server=spawn:/nonexistent/policyd x", "/nonexistent/policyd: No such file")
        self.refused("server=inet:127.0.0.1:1,try_limit=0", "try_limit=0: expected 1 to 10")
        self.refused("server=inet:127.0.0.1:1,retry_delay=61", "retry_delay=61")
        self.refused("server=inet:127.0.0.1:1,max_ttl=-1", "max_ttl=-1")


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
            "discard": ("DISCARD spam", 250, None),
            "filter": ("FILTER smtp:[127.0.0.1]:10025", 250, None),
            "redirect": ("REDIRECT elsewhere@test.example", 250, None),
            "bcc": ("BCC copy@test.example", 250, None),
            "info": ("INFO looked at it", 250, None),
            "n421ok": ("OK 421 is text here", 250, None),
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
        for logged in ("HOLD", "DEFER_IF_REJECT maybe", "DISCARD spam",
                       "FILTER smtp:[127.0.0.1]:10025", "REDIRECT elsewhere@test.example",
                       "BCC copy@test.example", "INFO looked at it"):
            self.assertIn(logged, log)

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


    def test_many_sessions_wait_their_turn(self):
        """300 sessions ask at once, more than the 8 connections and more
        than the 256 the queue once held (make bench, c: half of 500
        sessions got default_action): every one gets the server's answer."""
        def answer(a):
            time.sleep(0.005)
            return reply("REJECT queued %s" % a["recipient"])

        stub = self.stub(answer)
        d = self.start("inet:127.0.0.1:%d" % stub.port)
        socks = []
        try:
            for i in range(300):
                s = socket.create_connection(("127.0.0.1", d.port), timeout=30 * SLOW)
                socks.append(s)
            for i, s in enumerate(socks):
                s.sendall(b"EHLO many.example\r\nMAIL FROM:<s@test.example>\r\n"
                          b"RCPT TO:<r%d@test.example>\r\n" % i)
            for i, s in enumerate(socks):
                data = b""
                while data.count(b"\r\n554 ") + data.count(b"\r\n451 ") == 0:
                    chunk = s.recv(4096)
                    self.assertTrue(chunk, "session %d closed: %r" % (i, data))
                    data += chunk
                self.assertIn(b"\r\n554 5.7.1 queued r%d@test.example\r\n" % i, data)
        finally:
            for s in socks:
                s.close()
        self.assertLessEqual(stub.connections, 8)
        self.assertEqual(len(stub.requests), 300)

    # ---- attempts, lifetime ----

    def closing_first(self):
        """A server that reads the first connection's request and closes
        it without a reply, then answers REJECT on every later one."""
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        self.addCleanup(srv.close)
        seen = []

        def serve():
            srv.settimeout(20 * SLOW)
            while True:
                try:
                    conn, _ = srv.accept()
                except OSError:
                    return
                seen.append(time.time())
                with conn:
                    data = b""
                    while b"\n\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    if len(seen) > 1:
                        conn.sendall(b"action=REJECT second try\n\n")
                        time.sleep(0.2)

        threading.Thread(target=serve, daemon=True).start()
        return srv.getsockname()[1], seen

    def test_try_limit_and_retry_delay(self):
        port, seen = self.closing_first()
        d = self.start("inet:127.0.0.1:%d" % port, "try_limit=2,retry_delay=0.4")
        _, r = self.rcpt_reply(d)
        self.assertEqual((r.code, r.text), (554, "5.7.1 second try"))
        self.assertEqual(len(seen), 2)
        self.assertGreaterEqual(seen[1] - seen[0], 0.35)

    def test_try_limit_one_no_retry(self):
        port, seen = self.closing_first()
        d = self.start("inet:127.0.0.1:%d" % port, "try_limit=1")
        c, r = self.rcpt_reply(d)
        self.assertEqual((r.code, r.text), (451, "4.3.5 Server configuration problem"))
        self.assertEqual(len(seen), 1)
        self.quit(c)
        d.wait_log("connection closed before the reply")

    def test_back_off_while_down(self):
        """After a failure the server is left alone for 1 s (then 2, 4,
        ...): requests meanwhile get default_action at once, without a
        connection; the first one after the quiet time asks again."""
        port, seen = self.closing_first()
        d = self.start("inet:127.0.0.1:%d" % port, "try_limit=1")
        c, r = self.rcpt_reply(d)
        self.assertEqual(r.code, 451, r)
        self.assertEqual(len(seen), 1)
        t0 = time.time()
        r = c.cmd("RCPT TO:<quiet@test.example>")
        self.assertEqual((r.code, r.text), (451, "4.3.5 Server configuration problem"))
        self.assertLess(time.time() - t0, 0.5)
        self.assertEqual(len(seen), 1, "asked during the quiet time")
        time.sleep(1.2)
        r = c.cmd("RCPT TO:<again@test.example>")
        self.assertEqual((r.code, r.text), (554, "5.7.1 second try"))
        self.assertEqual(len(seen), 2)
        self.quit(c)
        d.wait_log("answering again")

    def test_max_ttl_closes_old_connection(self):
        stub = self.stub(lambda a: reply("DUNNO"))
        d = self.start("inet:127.0.0.1:%d" % stub.port, "max_ttl=0.3")
        c = self.client(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<sender@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r1@test.example>").code, 250)
        time.sleep(0.5)
        for i in (2, 3):
            self.assertEqual(c.cmd("RCPT TO:<r%d@test.example>" % i).code, 250)
        self.assertEqual(len(stub.requests), 3)
        self.assertEqual(stub.connections, 2)

    # ---- spawn: ----

    def test_spawn_child_per_connection(self):
        """spawn: runs the program on a socket pair as stdin/stdout; it
        gets its requests there; the children go when the daemon does."""
        prog = os.path.join(self.root, "policy.py")
        pids = os.path.join(self.root, "pids")
        with open(prog, "w") as f:
            f.write("""#!%s
import os, sys
with open(%r, "a") as f:
    f.write("%%d\\n" %% os.getpid())
attrs = {}
for line in sys.stdin:
    line = line.rstrip("\\n")
    if line:
        attrs.update([line.split("=", 1)])
        continue
    sys.stdout.write("action=REJECT spawned says no to %%s, %%s\\n\\n"
                     %% (attrs["recipient"], os.environ.get("FROM_HOST", "-")))
    sys.stdout.flush()
    attrs = {}
""" % (sys.executable, pids))
        os.chmod(prog, 0o755)
        os.environ["FROM_HOST"] = "env-kept"
        self.addCleanup(os.environ.pop, "FROM_HOST", None)
        d = self.start("spawn:%s" % prog)
        c = self.client(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<sender@test.example>").code, 250)
        for i in range(3):
            r = c.cmd("RCPT TO:<r%d@test.example>" % i)
            self.assertEqual((r.code, r.text),
                             (554, "5.7.1 spawned says no to r%d@test.example, env-kept" % i))
        self.quit(c)
        with open(pids) as f:
            children = [int(x) for x in f.read().split()]
        self.assertEqual(len(children), 1, "one persistent connection, one child")
        d.stop()
        deadline = time.time() + 10 * SLOW
        while time.time() < deadline and any(alive(p) for p in children):
            time.sleep(0.05)
        self.assertFalse(any(alive(p) for p in children), "child outlived the daemon")


def alive(pid):
    """pid runs (a zombie waiting for init to reap it does not count)"""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


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
        start_peer(self, [exe, "--inet=127.0.0.1:%d" % port, "--dbdir=" + db,
                          "--delay=%d" % self.DELAY,
                          "--pidfile=" + os.path.join(self.root, "pg.pid"),
                          "--user=" + pwd.getpwuid(os.getuid()).pw_name,
                          "--group=" + grp.getgrgid(os.getgid()).gr_name, "-v"],
                   os.path.join(self.root, "postgrey.log"), port, "postgrey")
        return port

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


# Points policyd-spf's resolver at the test's dnsmasq, then runs the real
# policyd-spf (its code, its config file) on stdin/stdout.  pyspf uses
# dnspython when it is installed, else pydns: both are pointed.
SPF_WRAPPER = """
import sys
port = int(sys.argv.pop(1))
import spf
try:
    import DNS
    DNS.defaults["server"] = ["127.0.0.1"]
    DNS.defaults["port"] = port
except ImportError:
    pass
try:
    import dns.resolver
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = port
    dns.resolver.default_resolver = r
except ImportError:
    pass
from spf_engine.policyd_spf import main
sys.argv[0] = "policyd-spf"
main()
"""

SPF_CONF = """debugLevel = 1
TestOnly = 1
HELO_reject = Fail
Mail_From_reject = Fail
PermError_reject = False
TempError_Defer = False
skip_addresses = 192.0.2.0/24
"""


class PolicydSpfTest(PolicydBase):
    """The real policyd-spf (Debian postfix-policyd-spf-python), run by
    server=spawn: as Postfix's spawn(8) runs it, asking a dnsmasq on a
    loopback port that serves the SPF records of the test domains."""

    def dnsmasq(self):
        exe = require_tool("dnsmasq", "dnsmasq-base")
        import pwd
        port = free_port()
        log = open(os.path.join(self.root, "dnsmasq.log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen(
            [exe, "--keep-in-foreground", "--no-daemon", "--port=%d" % port,
             "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
             "--no-hosts", "--conf-file=/dev/null", "--pid-file=", "--local=/#/",
             "--user=" + pwd.getpwuid(os.getuid()).pw_name,
             "--txt-record=pass.spf.test,v=spf1 ip4:127.0.0.1 -all",
             "--txt-record=fail.spf.test,v=spf1 -all",
             "--txt-record=soft.spf.test,v=spf1 ~all"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

        def stop():
            proc.terminate()
            proc.wait(10)
        self.addCleanup(stop)
        deadline = time.time() + 20 * SLOW
        query = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                 b"\x04pass\x03spf\x04test\x00\x00\x10\x00\x01")
        while time.time() < deadline and proc.poll() is None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.settimeout(0.2)
                try:
                    u.sendto(query, ("127.0.0.1", port))
                    if b"v=spf1" in u.recv(512):
                        return port
                except OSError:
                    pass
        with open(os.path.join(self.root, "dnsmasq.log"), "rb") as f:
            raise AssertionError("dnsmasq did not answer on %d: %r" % (port, f.read()))

    def spf_server(self):
        exe = require_tool("policyd-spf", "postfix-policyd-spf-python")
        with open(exe, "rb") as f:
            first = f.readline()
        interp = first[2:].decode().split()[0] if first.startswith(b"#!") else sys.executable
        port = self.dnsmasq()
        wrapper = os.path.join(self.root, "spf_wrapper.py")
        conf = os.path.join(self.root, "policyd-spf.conf")
        with open(wrapper, "w") as f:
            f.write(SPF_WRAPPER)
        with open(conf, "w") as f:
            f.write(SPF_CONF)
        return "spawn:%s %s %d %s" % (interp, wrapper, port, conf)

    def send(self, d, sender, rcpts=("rcpt@test.example",)):
        s = self.smtplib_client(d)
        s.ehlo("client.spf.test")
        self.assertEqual(s.mail(sender)[0], 250)
        out = [s.rcpt(r) for r in rcpts]
        if all(code == 250 for code, _ in out):
            code, text = s.data(b"Subject: spf\r\n\r\nbody\r\n")
            self.assertEqual(code, 250, text)
        s.quit()
        return out

    def test_pass_fail_softfail(self):
        d = self.start(self.spf_server(), "default_action=REJECT no policy")
        # pass: accepted, Received-SPF: Pass prepended, for both recipients
        # (policyd-spf answers the second one of the instance from its cache)
        out = self.send(d, "someone@pass.spf.test", ("a@test.example", "b@test.example"))
        self.assertEqual([c for c, _ in out], [250, 250], out)
        # fail: 550 with policyd-spf's own enhanced code and text
        (code, text), = self.send(d, "someone@fail.spf.test")
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith(b"5.7.23 Message rejected due to: SPF fail"), text)
        # softfail: accepted, Received-SPF: Softfail prepended
        (code, _), = self.send(d, "someone@soft.spf.test")
        self.assertEqual(code, 250)
        msgs = self.stored()
        self.assertEqual(len(msgs), 2)
        spf = {}
        for m in msgs:
            head = m.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
            fields = [l for l in head if l.startswith(b"Received-SPF:")]
            self.assertEqual(len(fields), 1, head)
            # first in the message's own header section, after the host's
            # Received: (maildump's Return-Path/Delivered-To come before)
            rec = next(k for k, l in enumerate(head) if l.startswith(b"Received:"))
            after = next(k for k in range(rec + 1, len(head)) if head[k][:1] not in b" \t")
            self.assertTrue(head[after].startswith(b"Received-SPF:"), head)
            spf[fields[0].split()[1]] = fields[0]
        self.assertEqual(sorted(spf), [b"Pass", b"Softfail"], spf)
        self.assertIn(b"envelope-from=someone@soft.spf.test", spf[b"Softfail"])
        self.assertIn(b"client-ip=127.0.0.1", spf[b"Pass"])


if __name__ == "__main__":
    unittest.main()

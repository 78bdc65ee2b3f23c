"""Load tests (issue 5), bounded in count and time, 127.0.0.1 only:

- slowloris: 2,000 connections that drip one octet of a command every
  ~2 s under --timeout 5: the per-command deadline closes every one of
  them with 421 4.4.2, the daemon's RSS stays under 20 MiB, and a normal
  client meanwhile completes transactions with < 0.5 s per command
  (CommandDeadlineTest is its quick, always-run counterpart);
- 1,000 concurrent sessions each delivering 5 messages through the
  default chain (policy, sizefilter, spamfilter, maildump fsync=no): all
  5,000 stored exactly once (Message-IDs compared as sets).

Both are slow; they skip themselves under valgrind (SMTPHOOK_VALGRIND)
and with SMTPHOOK_QUICK=1.  Figures go to stderr ("load: ...").
"""
import asyncio
import email.parser
import os
import resource
import selectors
import shutil
import socket
import sys
import tempfile
import threading
import time
import unittest

from smtphook_test import Client, DaemonTestCase, SOURCE_DIR, VALGRIND

QUICK = os.environ.get("SMTPHOOK_QUICK", "") not in ("", "0")
SANITIZED = bool(os.environ.get("ASAN_OPTIONS"))
SLOW_REASON = "slow load test: skipped under valgrind and with SMTPHOOK_QUICK=1"


def raise_nofile(want):
    """Raise this process's descriptor limit towards want (hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def report(text):
    sys.stderr.write("load: %s\n" % text)
    sys.stderr.flush()


@unittest.skipIf(VALGRIND or QUICK, SLOW_REASON)
class SlowlorisTest(DaemonTestCase):
    CONNS = 2000
    TIMEOUT = 5          # --timeout
    DRIP = 2.0           # seconds between two octets of one connection
    BOUND = 20.0         # the whole drip phase, seconds
    RSS_LIMIT_KIB = 20 * 1024
    LATENCY = 0.5        # per command of the normal client

    def test_slowloris_bounded_memory_timeouts_and_service(self):
        if raise_nofile(self.CONNS + 500) < self.CONNS + 200:
            self.skipTest("RLIMIT_NOFILE too low for %d connections" % self.CONNS)
        d = self.daemon("-p", "sink", "--timeout", str(self.TIMEOUT),
                        "--max-connections", "5000", "--log-format", "text")
        pid = d.proc.pid
        rss0 = vm_rss_kib(pid)
        rss_max = [rss0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    rss_max[0] = max(rss_max[0], vm_rss_kib(pid))
                except OSError:
                    return
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        self.addCleanup(stop.set)

        # Open the connections (blocking connect, then non-blocking).
        sel = selectors.DefaultSelector()
        conns = []
        t_start = time.monotonic()
        for i in range(self.CONNS):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            s.setblocking(False)
            c = {"i": i, "sock": s, "opened": time.monotonic(), "buf": b"",
                 "sent": 0, "closed": None, "next": None}
            conns.append(c)
            sel.register(s, selectors.EVENT_READ, c)
        self.addCleanup(self._close_all, conns)
        t_open = time.monotonic() - t_start
        # Every connection drips "EHLO slow.example..." and never ends the
        # line; first octets spread over one DRIP period.
        payload = b"EHLO slowloris-" + b"x" * 200
        now = time.monotonic()
        for c in conns:
            c["next"] = now + (c["i"] % 100) * self.DRIP / 100

        # The normal client: whole transactions, each command timed.
        latencies = []
        errors = []

        def normal():
            n = 0
            while not stop.is_set():
                try:
                    t0 = time.monotonic()
                    cl = Client(d.port, timeout=5)
                    latencies.append(("connect+greeting", time.monotonic() - t0))
                    for line in ("EHLO normal.test.example", "MAIL FROM:<n@test.example>",
                                 "RCPT TO:<r@test.example>", "DATA"):
                        t0 = time.monotonic()
                        r = cl.cmd(line)
                        latencies.append((line.split()[0], time.monotonic() - t0))
                        if r.code not in (250, 354):
                            errors.append("%s -> %r" % (line, r))
                    t0 = time.monotonic()
                    cl.send(b"Subject: normal %d\r\n\r\nhello\r\n.\r\n" % n)
                    r = cl.reply()
                    latencies.append(("end of data", time.monotonic() - t0))
                    if r.code != 250:
                        errors.append("end of data -> %r" % r)
                    t0 = time.monotonic()
                    r = cl.cmd("QUIT")
                    latencies.append(("QUIT", time.monotonic() - t0))
                    cl.close()
                    n += 1
                except (OSError, EOFError) as e:
                    errors.append("normal client: %r" % e)
                stop.wait(0.5)

        normal_thread = threading.Thread(target=normal, daemon=True)
        normal_thread.start()

        deadline = time.monotonic() + self.BOUND
        open_left = self.CONNS
        while open_left > 0 and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.05):
                c = key.data
                try:
                    chunk = c["sock"].recv(4096)
                except (ConnectionResetError, BlockingIOError):
                    chunk = b"" if c["closed"] is None else None
                if chunk is None:
                    continue
                if chunk:
                    c["buf"] += chunk
                    continue
                c["closed"] = time.monotonic()
                sel.unregister(c["sock"])
                open_left -= 1
            now = time.monotonic()
            for c in conns:
                if c["closed"] is None and now >= c["next"] and c["sent"] < len(payload):
                    try:
                        c["sock"].send(payload[c["sent"]:c["sent"] + 1])
                        c["sent"] += 1
                    except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                        pass
                    c["next"] = now + self.DRIP
        t_drip = time.monotonic() - t_start
        # Let the normal client finish one more round, then stop it.
        stop.set()
        normal_thread.join(15)
        sampler.join(5)
        rss_end = vm_rss_kib(pid)

        still_open = [c["i"] for c in conns if c["closed"] is None]
        lifetimes = sorted(c["closed"] - c["opened"] for c in conns if c["closed"] is not None)
        worst = max((t for _, t in latencies), default=0)
        report("slowloris: %d connections opened in %.1f s, drip every %.1f s, --timeout %d; "
               "VmRSS %d KiB before, max %d KiB (+%.1f KiB/connection), %d KiB after; "
               "all closed after %.1f s; lifetimes %.1f..%.1f s; normal client: %d commands, "
               "worst %.3f s"
               % (self.CONNS, t_open, self.DRIP, self.TIMEOUT, rss0, rss_max[0],
                  (rss_max[0] - rss0) / self.CONNS, rss_end, t_drip,
                  lifetimes[0] if lifetimes else -1, lifetimes[-1] if lifetimes else -1,
                  len(latencies), worst))

        self.assertEqual(errors, [])
        self.assertGreater(len(latencies), 10)
        slow = [(what, round(t, 3)) for what, t in latencies if t >= self.LATENCY]
        self.assertEqual(slow, [], "normal client commands slower than %.1f s" % self.LATENCY)
        # Dripping octets does not extend the per-command deadline: every
        # connection got the greeting, then 421 4.4.2 and was closed.
        self.assertEqual(still_open, [], "%d connections still open after %.0f s"
                         % (len(still_open), self.BOUND))
        for c in conns:
            lines = c["buf"].split(b"\r\n")
            self.assertTrue(lines[0].startswith(b"220 "), c["buf"])
            self.assertTrue(lines[1].startswith(b"421 4.4.2 "), c["buf"])
        # Each was closed within its deadline (plus the loop's lag).
        self.assertLess(lifetimes[-1], self.TIMEOUT + 4, lifetimes[-10:])
        if not SANITIZED:
            self.assertLess(rss_max[0], self.RSS_LIMIT_KIB,
                            "daemon VmRSS peaked at %d KiB" % rss_max[0])
        d.wait_log("timeout")

    @staticmethod
    def _close_all(conns):
        for c in conns:
            try:
                c["sock"].close()
            except OSError:
                pass


class CommandDeadlineTest(DaemonTestCase):
    """The quick check behind the slowloris test (runs under valgrind
    too): --timeout bounds a whole command line, dripped or not, but each
    read of a message body restarts it (RFC 5321 §4.5.3.2)."""

    def test_dripped_command_times_out(self):
        d = self.daemon("-p", "sink", "--timeout", "2")
        c = self.client(d)
        t0 = time.monotonic()
        for ch in b"EHLO drip.test.example":
            try:
                c.send(bytes([ch]))
            except OSError:
                break
            time.sleep(0.25)
            if time.monotonic() - t0 > 8:
                break
        r = c.reply()
        self.assertEqual((r.code, r.enhanced), (421, "4.4.2"), r)
        self.assertTrue(c.closed())
        self.assertLess(time.monotonic() - t0, 2 + 2.5 * (2 if VALGRIND else 1))
        d.wait_log('reason="timeout"')

    def test_dripped_body_does_not_time_out(self):
        d = self.daemon("-p", "sink", "--timeout", "2")
        c = self.client(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<s@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@test.example>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        for i in range(8):                # 4 s of body, 0.5 s apart
            c.send(b"line %d\r\n" % i)
            time.sleep(0.5)
        c.send(b".\r\n")
        self.assertEqual(c.reply().code, 250)
        # Complete commands, each within the timeout, also go on.
        for i in range(3):
            time.sleep(1)
            self.assertEqual(c.cmd("NOOP").code, 250)
        self.assertEqual(c.cmd("QUIT").code, 221)


DEFAULT_CHAIN = [
    "-p", "policy:allow_ip=127.0.0.0/8",
    "-p", "sizefilter:max=10M",
    "-p", "spamfilter:rules=" + os.path.join(SOURCE_DIR, "plugins", "spamfilter", "default.rules"),
]


@unittest.skipIf(VALGRIND or QUICK, SLOW_REASON)
class ManySessionsTest(DaemonTestCase):
    SESSIONS = 1000
    PER_SESSION = 5
    BOUND = 120.0

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="smtphook-load-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.dir = os.path.join(self.root, "box")

    def test_1000_sessions_5000_messages_stored_exactly_once(self):
        if raise_nofile(self.SESSIONS + 500) < self.SESSIONS + 100:
            self.skipTest("RLIMIT_NOFILE too low for %d sessions" % self.SESSIONS)
        d = self.daemon(*(DEFAULT_CHAIN + ["-p", "maildump:dir=%s,fsync=no" % self.dir,
                                           "--max-connections", "1000"]))
        # The start-up probe connection must not count against the limit.
        d.wait_log("disconnect from")
        run = os.urandom(6).hex()
        sent = set()
        for c in range(self.SESSIONS):
            for m in range(self.PER_SESSION):
                sent.add("<load.%s.%d.%d@test.example>" % (run, c, m))

        t0 = time.monotonic()
        results = asyncio.run(asyncio.wait_for(self._run(d.port, run), self.BOUND))
        elapsed = time.monotonic() - t0
        errors = [r for r in results if r is not True]
        report("%d sessions x %d messages through policy, sizefilter, spamfilter, "
               "maildump fsync=no: %.1f s (%.0f messages/s)"
               % (self.SESSIONS, self.PER_SESSION, elapsed,
                  self.SESSIONS * self.PER_SESSION / elapsed))
        self.assertEqual(errors[:5], [], "%d sessions failed" % len(errors))

        new = os.listdir(os.path.join(self.dir, "new"))
        self.assertEqual(len(new), self.SESSIONS * self.PER_SESSION)
        self.assertEqual(os.listdir(os.path.join(self.dir, "tmp")), [])
        parser = email.parser.BytesHeaderParser()
        stored = []
        for name in new:
            with open(os.path.join(self.dir, "new", name), "rb") as f:
                msg = parser.parse(f)
            stored.append(msg["Message-ID"])
            self.assertIsNotNone(msg["X-Spam-Score"], name)
        self.assertEqual(len(stored), len(set(stored)), "a message stored twice")
        self.assertEqual(set(stored), sent)

    async def _run(self, port, run):
        started = asyncio.Event()
        count = [0]

        def tried():
            count[0] += 1
            if count[0] == self.SESSIONS:
                started.set()

        async def session(c):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError as e:
                tried()
                return "session %d: connect: %r" % (c, e)
            tried()
            try:
                # Hold every session open until all 1,000 are connected.
                await self._reply(reader, 220)
                await started.wait()
                writer.write(b"EHLO load%d.test.example\r\n" % c)
                await self._reply(reader, 250)
                for m in range(self.PER_SESSION):
                    # PIPELINING: the envelope in one write.
                    writer.write(b"MAIL FROM:<s%d@test.example>\r\nRCPT TO:<r%d@test.example>\r\n"
                                 b"DATA\r\n" % (c, c))
                    for code in (250, 250, 354):
                        await self._reply(reader, code)
                    body = ("From: s%d@test.example\r\nTo: r%d@test.example\r\n"
                            "Subject: load %d/%d\r\nMessage-ID: <load.%s.%d.%d@test.example>\r\n"
                            "\r\n" % (c, c, c, m, run, c, m)).encode()
                    body += b"line of the body, session %d message %d\r\n" % (c, m) * 20
                    writer.write(body + b".\r\n")
                    await self._reply(reader, 250)
                writer.write(b"QUIT\r\n")
                await self._reply(reader, 221)
                return True
            except Exception as e:  # noqa: BLE001 - reported by the test
                return "session %d: %r" % (c, e)
            finally:
                writer.close()
                try:
                    await writer.wait_closed()
                except OSError:
                    pass

        return await asyncio.gather(*(session(c) for c in range(self.SESSIONS)))

    @staticmethod
    async def _reply(reader, want):
        while True:
            line = await reader.readline()
            if not line:
                raise EOFError("connection closed waiting for %d" % want)
            if len(line) < 4 or line[3:4] != b"-":
                break
        code = int(line[:3])
        if code != want:
            raise AssertionError("expected %d, got %r" % (want, line))


if __name__ == "__main__":
    unittest.main()

"""maildump in the real daemon: Maildir layout read back with Python's
mailbox module, byte-exact tricky bodies, concurrent sessions, a client
killed mid-DATA, path-traversal recipients with split=rcpt, and storage
errors - a file-size limit on the daemon (EFBIG) and, through a small
LD_PRELOAD shim compiled here, ENOSPC/EIO from each system call of the
store path - each answered 452 4.3.1 with nothing left in tmp/ or new/."""
import atexit
import mailbox
import os
import re
import resource
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import smtplib
import unittest

from smtphook_test import (DaemonTestCase, run_daemon, plugin_path, require_c_compiler,
                           transaction, SLOW, VALGRIND)
from plugin_helpers import session_id

# Maildir unique names: time.M<usec>P<pid>Q<counter>.<host>
NAME_RE = re.compile(r"^\d+\.M\d{6}P\d+Q\d+\.[^/:]+$")
STORAGE = "4.3.1 Requested action not taken: insufficient system storage"

TRICKY = [
    b"Subject: dots\r\n\r\n.leading\r\n..two\r\n.\r\n. \r\nend\r\n",
    b"Subject: 8bit\r\nContent-Type: text/plain; charset=latin1\r\n\r\n"
    b"caf\xe9 \xff\xfe\x80 \xc3\xa9\xe2\x82\xac\r\n",
    b"Subject: nul\r\n\r\nbefore\x00after\x00\x00\r\n",
    b"Subject: long\r\n\r\n" + b"x" * 20000 + b"\r\n" + b"." * 999 + b"\r\n",
    b"Subject: no final crlf\r\n\r\nlast line",
    b"Subject: empty lines\r\n\r\n\r\n\r\n\r\n",
]

# The fault-injection shim: while the file named by MD_SHIM_CTL holds
# "OP ERRNO [PREFIX]", calls of OP on descriptors of files below
# MD_SHIM_DIR (whose path below it starts with PREFIX, if given) fail
# with ERRNO.  The daemon's other descriptors are never touched.
SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int
fails(const char *op, int fd)
{
	const char *ctl = getenv("MD_SHIM_CTL"), *dir = getenv("MD_SHIM_DIR");
	char buf[256], name[32], prefix[128] = "", link[64], target[4096];
	int cfd, e, k;
	ssize_t n;

	if (ctl == NULL || dir == NULL || (cfd = open(ctl, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(cfd, buf, sizeof(buf) - 1);
	close(cfd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	k = sscanf(buf, "%31s %d %127s", name, &e, prefix);
	if (k < 2 || strcmp(name, op) != 0)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, target, sizeof(target) - 1)) < 0)
		return 0;
	target[n] = '\0';
	if (strncmp(target, dir, strlen(dir)) != 0)
		return 0;
	if (strncmp(target + strlen(dir), prefix, strlen(prefix)) != 0)
		return 0;
	return e;
}

#define FAIL(op, fd) do { int e_ = fails(op, fd); if (e_) { errno = e_; return -1; } } while (0)
#define REAL(f) static __typeof__(f) *real; if (real == NULL) real = dlsym(RTLD_NEXT, #f)

ssize_t write(int fd, const void *b, size_t n)
{ REAL(write); FAIL("write", fd); return real(fd, b, n); }
ssize_t pwrite(int fd, const void *b, size_t n, off_t o)
{ REAL(pwrite); FAIL("pwrite", fd); return real(fd, b, n, o); }
ssize_t pwrite64(int fd, const void *b, size_t n, off_t o)
{ REAL(pwrite64); FAIL("pwrite", fd); return real(fd, b, n, o); }
ssize_t copy_file_range(int i, loff_t *oi, int o, loff_t *oo, size_t n, unsigned f)
{ REAL(copy_file_range); FAIL("copy_file_range", o); return real(i, oi, o, oo, n, f); }
int fsync(int fd)
{ REAL(fsync); FAIL("fsync", fd); return real(fd); }
int renameat2(int ofd, const char *o, int nfd, const char *n, unsigned f)
{ REAL(renameat2); FAIL("rename", nfd); return real(ofd, o, nfd, n, f); }
int renameat(int ofd, const char *o, int nfd, const char *n)
{ REAL(renameat); FAIL("rename", nfd); return real(ofd, o, nfd, n); }
int linkat(int ofd, const char *o, int nfd, const char *n, int f)
{ REAL(linkat); FAIL("link", nfd); return real(ofd, o, nfd, n, f); }
"""

_shim_lock = threading.Lock()
_shim_path = None


def shim():
    """Build the shim once per run and return its path."""
    global _shim_path
    with _shim_lock:
        if _shim_path is None:
            cc = require_c_compiler()
            d = tempfile.mkdtemp(prefix="maildump-shim-")
            atexit.register(shutil.rmtree, d, True)
            src = os.path.join(d, "shim.c")
            with open(src, "w") as f:
                f.write(SHIM_C)
            out = os.path.join(d, "shim.so")
            r = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", out, src, "-ldl"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise AssertionError("the fault-injection shim did not build:\n" + r.stderr)
            _shim_path = out
        return _shim_path


def files(d):
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


class MaildumpTest(DaemonTestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="smtphook-maildump-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.dir = os.path.join(self.root, "box")

    def start(self, args="", before=(), daemon_args=(), env=None):
        spec = "maildump:dir=" + self.dir + ("," + args if args else "")
        cmd = []
        for b in before:
            cmd += ["-p", b]
        cmd += ["-p", spec] + list(daemon_args)
        return self.daemon(*cmd, env=env)

    def smtp(self, d):
        s = self.smtplib_client(d)
        s.ehlo("client.test.example")
        return s

    def send(self, s, msg, rcpts=("rcpt@test.example",), sender="sender@test.example"):
        """DATA a message; returns (code, text) of the final reply."""
        s.mail(sender)
        for r in rcpts:
            code, text = s.rcpt(r)
            self.assertEqual(code, 250, text)
        return s.data(msg)

    def assert_nothing_left(self, maildir=None):
        maildir = maildir or self.dir
        self.assertEqual(files(os.path.join(maildir, "tmp")), [])
        self.assertEqual(files(os.path.join(maildir, "new")), [])

    def stored(self, maildir=None):
        """{key: bytes} of every message in the Maildir, via mailbox."""
        box = mailbox.Maildir(maildir or self.dir, factory=None, create=False)
        return {k: box.get_bytes(k) for k in box.keys()}

    # ---- start-up ----

    def test_bad_arguments_exit_2(self):
        blocker = os.path.join(self.root, "file")
        open(blocker, "w").close()
        for args, needle in [
            ("", "dir= is required"),
            (":dir=" + self.dir + ",fsync=maybe", "fsync= must be yes or no"),
            (":dir=" + self.dir + ",split=domain", "split= must be none or rcpt"),
            (":dir=" + blocker + "/box", "cannot use Maildir"),
        ]:
            r = run_daemon(["-p", "maildump" + args])
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            lines = r.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertIn("plugin maildump", lines[0])
            self.assertIn(needle, lines[0])

    def test_creates_a_maildir(self):
        self.start()
        for sub in ("", "tmp", "new", "cur"):
            st = os.stat(os.path.join(self.dir, sub))
            self.assertEqual(st.st_mode & 0o7777, 0o700, sub)

    # ---- the stored file ----

    def test_round_trip_read_by_mailbox(self):
        d = self.start()
        s = self.smtp(d)
        for i, body in enumerate(TRICKY):
            code, text = self.send(s, body, rcpts=("a@test.example", "B@Test.Example"))
            self.assertEqual(code, 250, text)
        got = self.stored()
        self.assertEqual(len(got), len(TRICKY))
        self.assertEqual(files(os.path.join(self.dir, "tmp")), [])
        for key, data in got.items():
            self.assertRegex(key, NAME_RE)
            want = [b for b in TRICKY if data.endswith(b if b.endswith(b"\r\n") else b + b"\r\n")]
            self.assertEqual(len(want), 1, data[:300])
            body = want[0] if want[0].endswith(b"\r\n") else want[0] + b"\r\n"
            head = data[:-len(body)]
            # The envelope, one Delivered-To per recipient, the trace.
            self.assertTrue(head.startswith(b"Return-Path: <sender@test.example>\r\n"
                                            b"Delivered-To: a@test.example\r\n"
                                            b"Delivered-To: B@Test.Example\r\n"
                                            b"Received: from client.test.example "), head)
            self.assertTrue(head.endswith(b"\r\n"))
            self.assertNotIn(b"\r\n\r\n", head)
            msg = mailbox.Maildir(self.dir, create=False).get_message(key)
            self.assertEqual(msg["Return-Path"], "<sender@test.example>")
            self.assertEqual(msg.get_all("Delivered-To"), ["a@test.example", "B@Test.Example"])
            self.assertEqual(msg.get_subdir(), "new")

    def test_dsn_envelope_is_stored(self):
        # RFC 3461 parameters travel with the message as X-Envelope-*.
        d = self.start()
        s = self.smtp(d)
        self.assertEqual(s.mail("sender@test.example", ["RET=HDRS", "ENVID=QQ+2B314"])[0], 250)
        self.assertEqual(s.rcpt("a@test.example",
                                ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;a@test.example"])[0], 250)
        self.assertEqual(s.rcpt("b@test.example")[0], 250)
        self.assertEqual(s.data(b"Subject: dsn\r\n\r\nbody\r\n")[0], 250)
        (raw,) = self.stored().values()
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n") if b"\r\n" in raw else \
            raw.split(b"\n\n", 1)[0].split(b"\n")
        self.assertIn(b"X-Envelope-From: <sender@test.example> RET=HDRS ENVID=QQ+2B314", head)
        self.assertIn(b"X-Envelope-To: <a@test.example> NOTIFY=SUCCESS,FAILURE "
                      b"ORCPT=rfc822;a@test.example", head)
        self.assertFalse([h for h in head if h.startswith(b"X-Envelope-To: <b@")])

    def test_dsn_envelope_at_the_limits_stored_byte_for_byte(self):
        # Issue 9 section 3: what MAIL/RCPT accept with 250 is stored whole
        # (ENVID: 100 characters, here 300 octets of xtext; ORCPT: 500
        # octets; 254-octet paths); one octet more is 501 5.5.4 at the
        # command, never a 250 and a cut envelope.
        d = self.start()
        s = self.smtp(d)
        sender = "s" * (254 - len("@test.example")) + "@test.example"
        rcpt = "r" * (254 - len("@test.example")) + "@test.example"
        envid = "".join("+%02X" % (0x21 + i % 90) for i in range(100))
        orcpt = "rfc822;" + "".join(chr(ord("a") + i % 26) for i in range(493))
        self.assertEqual((len(envid), len(orcpt)), (300, 500))

        code, text = s.mail(sender, ["RET=FULL", "ENVID=" + envid + "+41"])
        self.assertEqual(code, 501, text)
        self.assertTrue(text.startswith(b"5.5.4 "), text)
        code, text = s.mail(sender, ["RET=FULL", "ENVID=" + envid])
        self.assertEqual(code, 250, text)
        code, text = s.rcpt(rcpt, ["NOTIFY=DELAY", "ORCPT=" + orcpt + "x"])
        self.assertEqual(code, 501, text)
        self.assertTrue(text.startswith(b"5.5.4 "), text)
        code, text = s.rcpt(rcpt, ["NOTIFY=DELAY", "ORCPT=" + orcpt])
        self.assertEqual(code, 250, text)
        self.assertEqual(s.data(b"Subject: dsn\r\n\r\nbody\r\n")[0], 250)

        (raw,) = self.stored().values()
        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        self.assertEqual(head[:4], [
            b"Return-Path: <" + sender.encode() + b">",
            b"Delivered-To: " + rcpt.encode(),
            b"X-Envelope-From: <" + sender.encode() + b"> RET=FULL ENVID=" +
            envid.encode(),
            b"X-Envelope-To: <" + rcpt.encode() + b"> NOTIFY=DELAY ORCPT=" +
            orcpt.encode(),
        ])
        self.assertEqual(len([h for h in head if h.startswith(b"X-Envelope-To:")]), 1)

    def test_orcpt_of_594_octets_refused_not_dropped(self):
        # The report: 594 octets were answered 250 and silently dropped.
        d = self.start()
        s = self.smtp(d)
        self.assertEqual(s.mail("sender@test.example")[0], 250)
        code, text = s.rcpt("a@test.example", ["ORCPT=rfc822;" + "a" * 581])
        self.assertEqual((code, text[:6]), (501, b"5.5.4 "), text)
        self.assertEqual(s.rcpt("a@test.example", ["ORCPT=rfc822;a@test.example"])[0], 250)
        self.assertEqual(s.data(b"Subject: x\r\n\r\nbody\r\n")[0], 250)
        (raw,) = self.stored().values()
        self.assertIn(b"\r\nX-Envelope-To: <a@test.example> ORCPT=rfc822;a@test.example\r\n",
                      raw)

    def test_no_dsn_no_envelope_headers(self):
        d = self.start()
        s = self.smtp(d)
        self.assertEqual(self.send(s, b"Subject: plain\r\n\r\nbody\r\n")[0], 250)
        (raw,) = self.stored().values()
        self.assertNotIn(b"X-Envelope-", raw)

    def test_large_message_streams_byte_exact(self):
        d = self.start()
        line = bytes(range(33, 127)) * 10 + b"\r\n"
        body = b"Subject: big\r\n\r\n" + line * (12 * 1024 * 1024 // len(line))
        check_rss = not VALGRIND and not os.environ.get("ASAN_OPTIONS")
        if check_rss:
            rss0 = self.rss(d)
        s = self.smtp(d)
        code, text = self.send(s, body)
        self.assertEqual(code, 250, text)
        (data,) = self.stored().values()
        self.assertTrue(data.endswith(body))
        self.assertEqual(len(data) - len(body), data.index(b"Subject: big"))
        if check_rss:
            # Streamed, never buffered: 12 MiB through, a few MiB at most.
            self.assertLess(self.rss(d) - rss0, 6 * 1024)

    @staticmethod
    def rss(d):
        with open("/proc/%d/status" % d.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def test_concurrent_sessions_each_message_once(self):
        d = self.start()
        errors = []

        def client(n):
            try:
                with smtplib.SMTP("127.0.0.1", d.port, timeout=60 * SLOW) as s:
                    for i in range(5):
                        body = ("Subject: c%d-m%d\r\nMessage-ID: <c%d.m%d@test.example>\r\n\r\n"
                                "client %d message %d\r\n" % (n, i, n, i, n, i)).encode()
                        s.sendmail("s%d@test.example" % n, ["r%d@test.example" % n], body)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("client %d: %r" % (n, e))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120 * SLOW)
        self.assertEqual(errors, [])
        names = files(os.path.join(self.dir, "new"))
        self.assertEqual(len(names), 100)
        self.assertEqual(len(set(names)), 100)
        for n in names:
            self.assertRegex(n, NAME_RE)
        self.assertEqual(files(os.path.join(self.dir, "tmp")), [])
        ids = sorted(mailbox.Maildir(self.dir, create=False)[k]["Message-ID"]
                     for k in mailbox.Maildir(self.dir, create=False).keys())
        self.assertEqual(ids, sorted("<c%d.m%d@test.example>" % (n, i)
                                     for n in range(20) for i in range(5)))

    def test_fsync_no_stores(self):
        d = self.start("fsync=no")
        code, _ = self.send(self.smtp(d), b"Subject: fast\r\n\r\nx\r\n")
        self.assertEqual(code, 250)
        self.assertEqual(len(self.stored()), 1)

    # ---- nothing left behind ----

    def test_client_killed_mid_data(self):
        d = self.start()
        c = self.client(d)
        c.ehlo()
        for line in ("MAIL FROM:<s@test.example>", "RCPT TO:<r@test.example>"):
            self.assertEqual(c.cmd(line).code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        sid = session_id(d, c)
        c.send(b"Subject: cut\r\n\r\n" + b"partial body line\r\n" * 5000)
        time.sleep(0.3 * SLOW)
        # The spool is anonymous: nothing shows in tmp/ while it streams.
        self.assert_nothing_left()
        # RST, not FIN: the client vanishes mid-DATA.
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        d.wait_log("session %s: disconnect from" % sid)
        time.sleep(0.2 * SLOW)
        self.assert_nothing_left()
        # And the daemon is fine.
        self.assertEqual(self.send(self.smtp(d), b"Subject: after\r\n\r\nx\r\n")[0], 250)

    def test_rset_mid_transaction(self):
        d = self.start()
        c = self.client(d)
        c.ehlo()
        self.assertEqual(c.cmd("MAIL FROM:<s@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<r@test.example>").code, 250)
        self.assertEqual(c.cmd("RSET").code, 250)
        self.assert_nothing_left()

    def test_rejected_at_eom_by_an_earlier_plugin(self):
        d = self.start(before=[plugin_path("reject_at") + ":hook=eom,verdict=reject"])
        code, _ = self.send(self.smtp(d), b"Subject: no\r\n\r\nx\r\n")
        self.assertEqual(code, 550)
        self.assert_nothing_left()

    def test_rejected_mid_body_by_an_earlier_plugin(self):
        d = self.start(before=[plugin_path("reject_at") + ":hook=chunk,verdict=reject"])
        code, _ = self.send(self.smtp(d), b"Subject: no\r\n\r\n" + b"y" * 100000 + b"\r\n")
        self.assertEqual(code, 550)
        self.assert_nothing_left()

    def test_timeout_while_the_pool_is_busy(self):
        # One pool thread, held 1.5 s by another session's VRFY: our eom
        # job waits past timeout=, the client gets 451 4.4.3, and the job
        # stops before its commit point when it finally runs.
        d = self.start("timeout=0.3",
                       before=[plugin_path("pending_thread") + ":hook=vrfy,ms=1500"],
                       daemon_args=["--pool-threads", "1"])
        hog = self.client(d)
        hog.ehlo()
        hog.send("VRFY someone\r\n")
        time.sleep(0.1)
        code, text = self.send(self.smtp(d), b"Subject: late\r\n\r\nx\r\n")
        self.assertEqual(code, 451, text)
        self.assertIn(b"4.4.3", text)
        hog.reply()
        time.sleep(0.3 * SLOW)
        self.assert_nothing_left()

    # ---- split=rcpt ----

    def test_split_rcpt_traversal_stays_inside(self):
        d = self.start("split=rcpt")
        rcpts = ['"../../etc"@x.test.example', "a/b@c.test.example", '".."@x.test.example',
                 '"../"@x.test.example', "Mixed.Case@Test.Example"]
        c = self.client(d)
        c.ehlo()
        r = transaction(c, rcpts=rcpts, body=b"Subject: t\r\n\r\nx\r\n")
        self.assertEqual(r.code, 250, r)
        self.assertEqual(os.listdir(self.root), ["box"])
        entries = sorted(os.listdir(self.dir))
        self.assertEqual(entries, sorted(["cur", "new", "tmp", "_.__.__etc_@x.test.example",
                                          "a_b@c.test.example", "_.__@x.test.example",
                                          "_.___@x.test.example", "mixed.case@test.example"]))
        inodes = set()
        for e in entries:
            path = os.path.join(self.dir, e)
            self.assertTrue(os.path.isdir(path) and not os.path.islink(path))
            self.assertEqual(os.path.realpath(path), os.path.join(os.path.realpath(self.dir), e))
            if e in ("cur", "new", "tmp"):
                continue
            got = self.stored(path)
            self.assertEqual(len(got), 1)
            (key,) = got
            self.assertTrue(got[key].endswith(b"Subject: t\r\n\r\nx\r\n"))
            inodes.add(os.stat(os.path.join(path, "new", key)).st_ino)
            self.assertEqual(files(os.path.join(path, "tmp")), [])
        # One file, hard-linked into five mailboxes.
        self.assertEqual(len(inodes), 1)
        self.assertEqual(files(os.path.join(self.dir, "tmp")), [])

    # ---- storage errors ----

    def test_file_size_limit_on_the_daemon(self):
        # RLIMIT_FSIZE: write(2) fails with EFBIG, like a full disk; the
        # daemon ignores SIGXFSZ.  Works for any user, on any file system.
        d = self.start()
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.prlimit(d.proc.pid, resource.RLIMIT_FSIZE, (256 * 1024, hard))
        s = self.smtp(d)
        for size in (1024 * 1024, 256 * 1024 - 100):   # mid-stream, then at eom
            code, text = self.send(s, b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * (size // 1000))
            self.assertEqual(code, 452, text)
            self.assertEqual(text.decode(), STORAGE)
            self.assert_nothing_left()
        code, _ = self.send(s, b"Subject: small\r\n\r\nfits\r\n")
        self.assertEqual(code, 250)
        self.assertEqual(len(self.stored()), 1)
        self.assertIn("File too large", d.log())

    def shim_daemon(self, args=""):
        so = shim()
        self.ctl = os.path.join(self.root, "shim.ctl")
        env = {"LD_PRELOAD": so, "MD_SHIM_CTL": self.ctl,
               "MD_SHIM_DIR": os.path.realpath(self.dir)}
        if os.environ.get("ASAN_OPTIONS"):
            # ASan's interceptors come first and call on to the shim.
            env["ASAN_OPTIONS"] = os.environ["ASAN_OPTIONS"] + ":verify_asan_link_order=0"
        return self.start(args, env=env)

    def fail_once(self, rule, args="", rcpts=("r@test.example",), maildir=None):
        """With the shim failing per rule: 452 4.3.1, nothing left; with
        the rule removed, the same session stores the next message."""
        d = self.shim_daemon(args)
        s = self.smtp(d)
        with open(self.ctl, "w") as f:
            f.write(rule)
        code, text = self.send(s, b"Subject: fail\r\n\r\n" + b"body\r\n" * 1000, rcpts=rcpts)
        self.assertEqual(code, 452, text)
        self.assertEqual(text.decode(), STORAGE)
        for m in [self.dir] + [os.path.join(self.dir, x) for x in (maildir or [])]:
            self.assert_nothing_left(m)
        os.unlink(self.ctl)
        self.assertEqual(self.send(s, b"Subject: ok\r\n\r\nx\r\n", rcpts=rcpts)[0], 250)
        return d

    def test_enospc_writing_the_stream(self):
        d = self.fail_once("pwrite 28")
        self.assertIn("No space left on device", d.log())

    def test_enospc_writing_the_header_block(self):
        d = self.fail_once("write 28")
        self.assertIn("message not stored: write of tmp/", d.log())

    def test_eio_copying_the_body(self):
        self.fail_once("copy_file_range 5")

    def test_eio_on_fsync_of_the_file(self):
        d = self.fail_once("fsync 5 /tmp/")
        self.assertIn("message not stored: fsync of tmp/", d.log())

    def test_eio_on_fsync_of_new(self):
        # The file was already renamed into new/: it is taken back.
        d = self.fail_once("fsync 5 /new")
        self.assertIn("fsync of new/", d.log())

    def test_eio_on_rename(self):
        self.fail_once("rename 5")

    def test_split_rcpt_link_failure_undoes_all(self):
        self.fail_once("link 28 /c@test.example", args="split=rcpt",
                       rcpts=("a@test.example", "b@test.example", "c@test.example"),
                       maildir=["a@test.example", "b@test.example", "c@test.example"])


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""run_bench.py - smtphookd against Postfix's smtp-sink, Haraka and nodemailer
smtp-server (make bench, issues 5 and 16)

Every target runs in the same invocation on its own loopback port, and the
runs alternate (smtp-sink, smtphookd/sink, smtphookd/default, ... and again)
so that drift of the machine hits all of them alike; figures are medians,
ratios are medians of the per-round ratios against smtp-sink.

Scenarios (smtp-source from Postfix is the load generator for a-d):
  a  20 sessions, many 2 KiB messages per connection (smtp-source -d)
  b  one connection per 2 KiB message, 20 in parallel
  c  500 parallel sessions, 2 KiB messages, keep-alive
  d  100 KiB messages, 20 sessions, keep-alive
  e  one 100 MiB message from a prepared buffer (bigmsg.py)
  f  10,000 idle connections after greeting + EHLO: RSS per connection
  g  one session, 2,000 RCPTs one at a time (25 per transaction): the
     round trip per recipient, so that policyd's added latency shows

Targets:
  smtp-sink             Postfix's smtp-sink, the reference
  sink                  smtphookd -p sink
  default               policy -> sizefilter -> spamfilter -> maildump fsync=no
  fsync                 the same with maildump fsync=yes (Maildir on disk)
  policyd               the default chain with policyd (after policy)
                        asking policy_stub (build/bench/), a C policy
                        server answering DUNNO; the stub's CPU is not the
                        server's and not counted as noise (a, c, g)
Peers (a-d; optional: npm packages pinned in tests/bench/peers/package.json,
installed by `make bench-peers` into build/bench-peers; included by default
when installed, see --peers):
  haraka                Haraka, one process (smtp.ini nodes=0), plugins
                        bench_accept (every RCPT, rDNS without DNS) and
                        Haraka's queue/discard; log level notice
  haraka-maildir        the same with bench_maildir instead of discard:
                        Maildir on disk (--disk-dir), fsync of each file
  smtp-server           nodemailer smtp-server (tests/bench/peers/
                        smtp_server.js): accepts everything, drains and
                        discards the message
  smtp-server-maildir   the same writing a Maildir on disk, fsync of each file
  No peer fsyncs the Maildir's new/ directory (smtphookd's fsync=yes does).
  Each peer has no AUTH, no STARTTLS, no size, line or connection limit
  below what smtp-source sends, no banner delay and no DNS, and a warm-up
  load (not measured) after each start, for V8's JIT.  Its CPU is the
  node process's (every thread), as for smtphookd, and is the server's, not
  noise.  default and fsync are compared with each peer per round
  ("vs haraka: x3.1 msgs/s" in the notes, ratio_vs_haraka= in BENCH lines);
  fsync also with the best Maildir peer of the round (ratio_vs_best_maildir).

The default chain is the Makefile's (make print-chain: RUN_PLUGINS), with
sizefilter's max= and --max-size raised to 200 MiB so that (e) passes, and
fsync= set on maildump.  Server CPU is the run time of all its threads
before and after each run: /proc/PID/task/*/schedstat (nanoseconds; the
same figure as utime+stime of /proc/PID/stat, without its 10 ms ticks).
Peak RSS is VmHWM, reset before each run through /proc/PID/clear_refs.  Only 127.0.0.1 is used; every run is bounded in
count and time.  Prints a table and one "BENCH ..." line per scenario and
target, then the issue's targets with met / not met.
"""
import argparse
import json
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from bigmsg import BigMessage  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
NODE = shutil.which("node") or "/usr/bin/node"
PEERS_SRC = os.path.join(HERE, "peers")

# scenario -> smtp-source arguments (without the target), messages, octets
# of payload per message; counts sized for about 1.5-4 s per run of the
# sink chain on the 2-core test VM.
SOURCE_SCENARIOS = {
    "a": dict(title="20 sessions x 2 KiB, keep-alive",
              args=["-d", "-s", "20", "-l", "2048"], msgs=40000, size=2048),
    "b": dict(title="1 connection per 2 KiB message, 20 parallel",
              args=["-s", "20", "-l", "2048"], msgs=20000, size=2048),
    "c": dict(title="500 parallel sessions x 2 KiB, keep-alive",
              args=["-d", "-s", "500", "-l", "2048"], msgs=40000, size=2048),
    "d": dict(title="20 sessions x 100 KiB, keep-alive",
              args=["-d", "-s", "20", "-l", "102400"], msgs=5000, size=102400),
}
TITLES = dict({k: v["title"] for k, v in SOURCE_SCENARIOS.items()},
              e="one 100 MiB message (prepared buffer)",
              f="10,000 idle connections after EHLO",
              g="one session, 2,000 RCPTs one at a time")
PEER_TARGETS = ["haraka", "haraka-maildir", "smtp-server",
                "smtp-server-maildir"]
MAILDIR_PEERS = [t for t in PEER_TARGETS if t.endswith("-maildir")]
HOOK_TARGETS = ["smtp-sink", "sink", "default", "fsync", "policyd"]
ALL_TARGETS = HOOK_TARGETS + PEER_TARGETS
BASIC_TARGETS = ["smtp-sink", "sink", "default", "fsync"]
SCENARIO_TARGETS = {
    "a": ALL_TARGETS, "b": BASIC_TARGETS + PEER_TARGETS, "c": ALL_TARGETS,
    "d": BASIC_TARGETS + PEER_TARGETS, "e": BASIC_TARGETS,
    "f": ["smtp-sink", "sink", "default"],
    "g": ["smtp-sink", "default", "policyd"],
}
RCPTS = 2000            # scenario g
RCPTS_PER_TX = 25


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile(n=None):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if n is None else min(n, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def empty_dir(path):
    """Remove what a run stored (outside the timed part)."""
    if not os.path.isdir(path):
        return
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            empty_dir(entry.path)
        else:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass


def proc_cpu(pid):
    """CPU seconds of every thread of pid: the sum of the threads'
    schedstat run times (ns), else utime + stime (clock ticks)."""
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Server:
    """One server process on its own port (and its helper, if any)."""

    def __init__(self, name, argv, port, workdir, maildir=None,
                 companion=None, env=None, kind="smtphookd",
                 accepted_mark=b" accepted by plugin ", keep_maildir=False):
        self.name, self.argv, self.port = name, argv, port
        self.maildir = maildir
        self.env = env                  # extra environment, or None
        self.kind = kind                # server= of the BENCH lines
        # A log line per accepted message (None: not logged; a Maildir is
        # counted instead if there is one, else smtp-source's word is taken).
        self.accepted_mark = accepted_mark
        # A Maildir on disk is emptied only at the end (see after_run).
        self.keep_maildir = keep_maildir
        # Node peers: V8 compiles a function only after it ran often, so a
        # fresh process is slow for its first thousands of messages; they
        # get a warm-up load after each start (warm_up), outside the runs.
        self.warm = kind in ("haraka", "smtp-server")
        self.logpath = os.path.join(workdir, f"{name}.log")
        self.proc = None
        self.companion = companion      # argv of a helper server, or None
        self.cproc = None

    def start(self, timeout=15.0):
        self.logf = open(self.logpath, "ab")
        if self.companion and self.cproc is None:
            self.cproc = subprocess.Popen(
                self.companion, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=self.logf,
                start_new_session=True)
        env = dict(os.environ, **self.env) if self.env else None
        # Haraka logs to stdout: into the log as well (counted, see above).
        out = self.logf if self.kind == "haraka" else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=out,
            stderr=self.logf, cwd=ROOT, start_new_session=True, env=env)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port),
                                              timeout=2) as s:
                    if s.recv(512).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        s.recv(512)
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} does not answer on "
                                   f"port {self.port}")
            time.sleep(0.05)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None
        if self.cproc is not None:
            self.cproc.kill()
            self.cproc.wait(timeout=15)
            self.cproc = None
        self.logf.close()

    def tail(self, n=5):
        try:
            with open(self.logpath, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def companion_cpu(self):
        """CPU seconds of the helper server (0 without one)."""
        return proc_cpu(self.cproc.pid) if self.cproc is not None else 0.0

    def cpu(self):
        """CPU time of every thread of the server, in seconds."""
        return proc_cpu(self.proc.pid)

    def status_kib(self, key):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def reset_hwm(self):
        try:
            with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def truncate_log(self):
        try:
            os.truncate(self.logpath, 0)
        except OSError:
            pass

    def accepted_in_log(self):
        with open(self.logpath, "rb") as f:
            return f.read().count(self.accepted_mark)

    def maildir_count(self):
        try:
            return sum(1 for _ in os.scandir(os.path.join(self.maildir,
                                                          "new")))
        except OSError:
            return 0

    def accepted_before(self):
        """What accepted() compares with: the Maildir's count before a run
        (for a server that does not log its messages)."""
        if self.accepted_mark is None and self.maildir:
            return self.maildir_count()
        return 0

    def accepted(self, before):
        """Messages accepted in the run (None: the server does not tell)."""
        if self.accepted_mark is not None:
            return self.accepted_in_log()
        if self.maildir:
            return self.maildir_count() - before
        return None


# A copy of the Makefile's RUN_PLUGINS, for when make cannot tell us.
FALLBACK_CHAIN = ["-p", "policy:allow_ip=127.0.0.0/8;::1,reject_ip_helo=yes",
                  "-p", "sizefilter:max=50M,max_recipients=100",
                  "-p", "spamfilter:rules=plugins/spamfilter/default.rules,"
                  "tag=5,reject=10",
                  "-p", "maildump:dir=MAILDIR"]


def makefile_chain():
    """The default chain: the -p words of `make print-chain` (the
    Makefile's RUN_ARGS), maildump's dir= as MAILDIR; or the copy above."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    try:
        out = subprocess.run(["make", "-s", "--no-print-directory", "-C", ROOT,
                              "print-chain", "MAILDIR=MAILDIR"], env=env,
                             stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=30)
        words = out.stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        words = []
    chain = []
    for i, w in enumerate(words):
        if w == "-p" and i + 1 < len(words):
            chain += ["-p", words[i + 1]]
    if not any(w.startswith("maildump:") for w in chain):
        return FALLBACK_CHAIN, "built-in copy"
    return chain, "make print-chain"


def bench_chain(chain, maildir, fsync):
    """The default chain for a run: sizefilter lets 200 MiB through (e),
    maildump writes to maildir with fsync=yes|no."""
    out = []
    for w in chain:
        if w.startswith("sizefilter:"):
            w = re.sub(r"(?<=[:,])max=[^,]*", "max=200M", w)
        if w.startswith("maildump:"):
            w = w.replace("dir=MAILDIR", f"dir={maildir}")
            w = re.sub(r",fsync=[^,]*", "", w) + f",fsync={fsync}"
        out.append(w)
    return out


def policyd_chain(chain, stub_port):
    """The default chain with policyd asking the stub, right after the
    policy plugin (where an administrator puts postgrey)."""
    out = list(chain)
    at = next((i + 2 for i in range(0, len(out), 2)
               if out[i + 1].startswith("policy:")), 0)
    out[at:at] = ["-p", f"policyd:server=inet:127.0.0.1:{stub_port}"]
    return out


def peers_installed(peers):
    """The peer targets whose npm package is installed under peers."""
    nm = os.path.join(peers, "node_modules")
    have = []
    if not os.access(NODE, os.X_OK):
        return have
    if os.path.isfile(os.path.join(nm, "Haraka", "bin", "haraka")):
        have += ["haraka", "haraka-maildir"]
    if os.path.isfile(os.path.join(nm, "smtp-server", "package.json")):
        have += ["smtp-server", "smtp-server-maildir"]
    return have


def haraka_root(work, name, port, maildir):
    """A Haraka configuration root for one target: a copy of
    tests/bench/peers/haraka with smtp.ini (the port, one process) and the
    plugin list written here."""
    root = os.path.join(work, "haraka-" + name)
    shutil.rmtree(root, ignore_errors=True)     # from an earlier scenario
    shutil.copytree(os.path.join(PEERS_SRC, "haraka"), root)
    with open(os.path.join(root, "config", "smtp.ini"), "w") as f:
        f.write(f"[main]\nlisten=127.0.0.1:{port}\n"
                "; one process, no cluster\nnodes=0\n"
                "inactivity_timeout=300\nforce_shutdown_timeout=5\n")
    with open(os.path.join(root, "config", "plugins"), "w") as f:
        f.write("bench_accept\n" +
                ("bench_maildir\n" if maildir else "queue/discard\n"))
    return root


def build_targets(args, work, diskdir, chain):
    def hook_argv(build):
        return [os.path.join(build, "bin", "smtphookd"), "-n", "bench.example",
                "--plugin-dir", os.path.join(build, "plugins"),
                "--max-connections", "20000", "--max-size", str(200 << 20)]

    def default_chain(maildir, fsync):
        return bench_chain(chain, maildir, fsync)

    def make(name):
        port = free_port()
        listen = f"127.0.0.1:{port}"
        # NAME@base: the same target with the --baseline build.
        hook = hook_argv(args.baseline if name.endswith("@base")
                         else args.build)
        kind = name.split("@")[0]
        if name == "smtp-sink":
            argv = [SMTP_SINK] + (["-u", "nobody"] if os.geteuid() == 0
                                  else []) + ["-m", "12000", listen, "4096"]
            return Server(name, argv, port, work)
        if kind == "sink":
            return Server(name, hook + ["-l", listen, "-p", "sink"], port,
                          work)
        if kind == "default":
            md = os.path.join(work, "maildir-" + name)
            return Server(name, hook + ["-l", listen] +
                          default_chain(md, "no"), port, work, md)
        if kind == "fsync":
            md = os.path.join(diskdir, "maildir-" + name)
            return Server(name, hook + ["-l", listen] +
                          default_chain(md, "yes"), port, work, md,
                          keep_maildir=True)
        if kind == "policyd":
            md = os.path.join(work, "maildir-" + name)
            sport = free_port()
            stub = os.path.join(args.build, "bench", "bench_policy_stub")
            return Server(name, hook + ["-l", listen] +
                          policyd_chain(default_chain(md, "no"), sport),
                          port, work, md, companion=[stub, str(sport)])
        nm = os.path.join(args.peers, "node_modules")
        if kind in ("haraka", "haraka-maildir"):
            md = (os.path.join(diskdir, "maildir-" + name)
                  if kind.endswith("-maildir") else None)
            root = haraka_root(work, name, port, md)
            env = {"BENCH_MAILDIR": md} if md else \
                {"YES_REALLY_DO_DISCARD": "1"}   # queue/discard's switch
            return Server(name, [NODE, os.path.join(nm, "Haraka", "bin",
                                                    "haraka"), "-c", root],
                          port, work, md, env=env, kind="haraka",
                          accepted_mark=b"[core] queue code=OK",
                          keep_maildir=md is not None)
        if kind in ("smtp-server", "smtp-server-maildir"):
            md = (os.path.join(diskdir, "maildir-" + name)
                  if kind.endswith("-maildir") else None)
            return Server(name, [NODE, os.path.join(PEERS_SRC,
                                                    "smtp_server.js"),
                                 str(port)] + ([md] if md else []),
                          port, work, md, env={"NODE_PATH": nm},
                          kind="smtp-server", accepted_mark=None,
                          keep_maildir=md is not None)
        raise ValueError(name)

    return make


def after_run(srv):
    # The fsync Maildir (on disk) is emptied only at the end: on ext4
    # without a journal the inode allocator skips inodes freed in the last
    # 60-360 s (ialloc.c recently_deleted), so deleting between runs would
    # make every later file creation scan them (3x slower, measured).
    if srv.maildir and not srv.keep_maildir:
        empty_dir(srv.maildir)
    srv.truncate_log()
    os.sync()


def machine_busy():
    """Busy CPU seconds of the whole machine so far (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / CLK_TCK     # minus idle and iowait


def our_cpu():
    """CPU seconds of this process and its reaped children (clients)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def kthreads_cpu():
    """CPU seconds of the kernel's threads (kworkers writing back and
    syncing for the fsync chain, ksoftirqd): work the runs cause."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                v = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(v[6]) & 0x00200000:                  # PF_KTHREAD
            total += int(v[11]) + int(v[12])
    return total / CLK_TCK


class Noise:
    """What the rest of the machine used during a run: busy CPU time minus
    the server's, the client's and the kernel threads', as a share of all
    CPUs.  Above ~0.1 the run shared the machine with something else."""

    def __init__(self, srv):
        self.srv = srv
        self.b0, self.o0, self.s0 = machine_busy(), our_cpu(), srv.cpu()
        self.k0, self.c0 = kthreads_cpu(), srv.companion_cpu()
        self.t0 = time.monotonic()

    def share(self):
        other = (machine_busy() - self.b0) - (our_cpu() - self.o0) - \
            (self.srv.cpu() - self.s0) - (kthreads_cpu() - self.k0) - \
            (self.srv.companion_cpu() - self.c0)
        took = time.monotonic() - self.t0
        if took < 0.5:
            return 0.0          # too short for /proc/stat's 10 ms ticks
        return max(0.0, other / (took * (os.cpu_count() or 1)))


def run_source(srv, sc, msgs, timeout):
    """One smtp-source run against srv; returns a result dict."""
    srv.truncate_log()
    srv.reset_hwm()
    before = srv.accepted_before()
    noise = Noise(srv)
    c0 = srv.cpu()
    t0 = time.monotonic()
    p = subprocess.run([SMTP_SOURCE] + sc["args"] +
                       ["-m", str(msgs), f"127.0.0.1:{srv.port}"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout)
    t1 = time.monotonic()
    c1 = srv.cpu()
    res = dict(elapsed=t1 - t0, msgs=msgs, octets=msgs * sc["size"],
               cpu=c1 - c0, hwm_kib=srv.status_kib("VmHWM"),
               noise=noise.share())
    err = p.stderr.decode("utf-8", "replace").strip()
    if p.returncode != 0 or err:
        res["error"] = f"smtp-source exit {p.returncode}: {err[-300:]}"
    elif srv.name != "smtp-sink":
        n = srv.accepted(before)
        if n is not None and n != msgs:
            res["error"] = f"{n} of {msgs} messages accepted"
    after_run(srv)
    return res


WARM_UP_MSGS = 3000


def warm_up(srv, sc, timeout):
    """A load of the scenario's kind, not measured, for a peer that was just
    started (Server.warm): WARM_UP_MSGS messages (a tenth of that of
    100 KiB)."""
    if not srv.warm or sc not in SOURCE_SCENARIOS:
        return
    p = SOURCE_SCENARIOS[sc]
    n = WARM_UP_MSGS if p["size"] <= 4096 else WARM_UP_MSGS // 10
    try:
        r = run_source(srv, p, n, timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        r = dict(error=str(e))
        after_run(srv)
    if "error" in r:
        log(f"  warm-up of {srv.name}: {r['error']}")


def read_reply(sock, buf):
    """One SMTP reply from sock (buf: octets read ahead); its code."""
    while True:
        end = buf.find(b"\r\n")
        while end >= 0:
            line = bytes(buf[:end])
            del buf[:end + 2]
            if len(line) < 4 or line[3:4] == b" ":
                return int(line[:3] or b"0")
            end = buf.find(b"\r\n")
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("server closed the connection")
        buf += chunk


def run_rcpts(srv, n, timeout):
    """Scenario g: one session, n RCPTs each waiting for its reply,
    RCPTS_PER_TX per transaction (MAIL ... RSET); msgs counts RCPTs."""
    srv.truncate_log()
    noise = Noise(srv)
    buf = bytearray()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        read_reply(s, buf)
        s.sendall(b"EHLO bench.example\r\n")
        read_reply(s, buf)
        c0 = srv.cpu()
        t0 = time.monotonic()
        for i in range(n):
            if i % RCPTS_PER_TX == 0:
                s.sendall(b"MAIL FROM:<sender@bench.example>\r\n")
                if read_reply(s, buf) != 250:
                    raise RuntimeError("MAIL refused")
            s.sendall(b"RCPT TO:<r%d@bench.example>\r\n" % i)
            code = read_reply(s, buf)
            if code != 250:
                raise RuntimeError(f"RCPT answered {code}")
            if i % RCPTS_PER_TX == RCPTS_PER_TX - 1 or i == n - 1:
                s.sendall(b"RSET\r\n")
                read_reply(s, buf)
        t1 = time.monotonic()
        c1 = srv.cpu()
        s.sendall(b"QUIT\r\n")
    res = dict(elapsed=t1 - t0, msgs=n, octets=0, cpu=c1 - c0,
               hwm_kib=srv.status_kib("VmHWM"), noise=noise.share())
    after_run(srv)
    return res


def run_big(srv, big, timeout):
    """Scenario e: one big message; RSS growth over the whole session."""
    srv.truncate_log()
    box = {}

    def connected():
        srv.reset_hwm()
        box["rss0"] = srv.status_kib("VmRSS")
        box["cpu0"] = srv.cpu()

    noise = Noise(srv)
    r = big.deliver(srv.port, on_connected=connected, timeout=timeout)
    c1 = srv.cpu()
    hwm = srv.status_kib("VmHWM")
    res = dict(elapsed=r["elapsed"], msgs=1, octets=r["octets"],
               cpu=c1 - box["cpu0"], hwm_kib=hwm,
               growth_kib=hwm - box["rss0"], noise=noise.share())
    if not 200 <= r["code"] < 300:
        res["error"] = r["reply"]
    after_run(srv)
    return res


def hold_idle(port, n, timeout):
    """Open n connections, read the greeting, EHLO, read its reply; return
    the sockets (all idle now) and the seconds it took."""
    sel = selectors.DefaultSelector()
    done, t0 = [], time.monotonic()
    deadline = t0 + timeout
    batch = 500
    opened = 0
    try:
        while opened < n:
            live = {}
            for _ in range(min(batch, n - opened)):
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                live[s.fileno()] = [s, 0, b""]
                sel.register(s, selectors.EVENT_READ)
                opened += 1
            while live:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"idle: {len(done)} of {n} "
                                       f"connections ready in {timeout}s")
                for key, _ in sel.select(1.0):
                    st = live[key.fd]
                    s = st[0]
                    try:
                        data = s.recv(4096)
                    except BlockingIOError:
                        continue
                    if not data:
                        raise RuntimeError("idle: server closed a connection")
                    st[2] += data
                    # A complete reply: its last line has "NNN " and CRLF.
                    lines = st[2].split(b"\r\n")
                    if len(lines) < 2 or not any(
                            len(x) >= 4 and x[3:4] == b" " for x in lines):
                        continue
                    if st[1] == 0:
                        st[1], st[2] = 1, b""
                        s.sendall(b"EHLO idle.example\r\n")
                    else:
                        sel.unregister(s)
                        del live[key.fd]
                        done.append(s)
    except BaseException:
        for s in done:
            s.close()
        for st in list(locals().get("live", {}).values()):
            st[0].close()
        raise
    finally:
        sel.close()
    return done, time.monotonic() - t0


def run_idle(srv, n, timeout):
    """Scenario f on a fresh server: RSS per idle connection."""
    time.sleep(0.2)
    rss0 = srv.status_kib("VmRSS")
    socks, took = hold_idle(srv.port, n, timeout)
    try:
        time.sleep(0.3)
        rss1 = srv.status_kib("VmRSS")
        hwm = srv.status_kib("VmHWM")
    finally:
        for s in socks:
            s.close()
    return dict(elapsed=took, msgs=0, octets=0, cpu=0.0, hwm_kib=hwm,
                conns=n, per_conn_kib=(rss1 - rss0) / n)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(scenario, runs, pairs):
    """runs: {target: [result...]} -> {target: summary}"""
    out = {}
    ref = runs.get("smtp-sink", [])
    for target, rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        s = dict(runs=len(rs), failed=len(rs) - len(ok),
                 errors=[r["error"] for r in rs if "error" in r][:2],
                 noise_max=max([r.get("noise", 0.0) for r in rs] or [0.0]))
        if ok:
            s["msgs_per_s"] = med([r["msgs"] / r["elapsed"] for r in ok
                                   if r["msgs"]])
            s["mb_per_s"] = med([r["octets"] / r["elapsed"] / 1e6 for r in ok
                                 if r["octets"]])
            s["cpu_us_per_msg"] = med([r["cpu"] / r["msgs"] * 1e6 for r in ok
                                       if r["msgs"]])
            s["peak_rss_kib"] = med([r["hwm_kib"] for r in ok])
            if scenario == "e":
                s["rss_growth_kib"] = med([r["growth_kib"] for r in ok])
            if scenario == "f":
                s["rss_per_conn_kib"] = med([r["per_conn_kib"] for r in ok])
            if scenario == "g":
                s["us_per_rcpt"] = med([r["elapsed"] / r["msgs"] * 1e6 for r in ok])
        # Ratios per round against the smtp-sink run of that round.
        if target != "smtp-sink" and ref:
            rate, cpu, conn = [], [], []
            for i in range(min(len(rs), len(ref))):
                a, b = rs[i], ref[i]
                if "error" in a or "error" in b:
                    continue
                if scenario == "f":
                    if b["per_conn_kib"] > 0:
                        conn.append(a["per_conn_kib"] / b["per_conn_kib"])
                    continue
                rate.append((a["msgs"] / a["elapsed"]) /
                            (b["msgs"] / b["elapsed"]))
                if b["cpu"] > 0:
                    cpu.append((a["cpu"] / a["msgs"]) / (b["cpu"] / b["msgs"]))
            s["ratio_vs_sink"] = med(rate)
            s["cpu_ratio_vs_sink"] = med(cpu)
            if scenario == "f":
                s["rss_ratio_vs_sink"] = med(conn)
        out[target] = s
    # Before/after (--baseline): each target against its @base twin, as
    # medians of the per-round ratios.
    for target, s in out.items():
        base = runs.get(target + "@base")
        if not base or scenario == "f":
            continue
        rate, cpu = [], []
        for a, b in zip(runs[target], base):
            if "error" in a or "error" in b or not a["msgs"]:
                continue
            rate.append((a["msgs"] / a["elapsed"]) / (b["msgs"] / b["elapsed"]))
            if b["cpu"] > 0:
                cpu.append(a["cpu"] / b["cpu"])
        s["ratio_vs_base"] = med(rate)
        s["cpu_ratio_vs_base"] = med(cpu)
    # default and fsync against each peer of the same round (issue 16),
    # and fsync against the best Maildir peer of each round.
    def pair_ratios(xs, ys):
        rate, cpu = [], []
        for a, b in zip(xs, ys):
            if "error" in a or "error" in b or not a["msgs"]:
                continue
            rate.append((a["msgs"] / a["elapsed"]) / (b["msgs"] / b["elapsed"]))
            if b["cpu"] > 0:
                cpu.append((a["cpu"] / a["msgs"]) / (b["cpu"] / b["msgs"]))
        return med(rate), med(cpu)

    if scenario != "f":
        for target in ("default", "fsync"):
            if target not in runs:
                continue
            for peer in PEER_TARGETS:
                if peer in runs:
                    key = "vs_" + peer.replace("-", "_")
                    r, c = pair_ratios(runs[target], runs[peer])
                    out[target]["ratio_" + key] = r
                    out[target]["cpu_ratio_" + key] = c
        mds = [p for p in MAILDIR_PEERS if p in runs]
        if "fsync" in runs and mds:
            best = []
            for i, a in enumerate(runs["fsync"]):
                peers = [runs[p][i] for p in mds if i < len(runs[p])
                         and "error" not in runs[p][i]]
                if "error" in a or not peers or len(peers) < len(mds):
                    continue
                top = max(b["msgs"] / b["elapsed"] for b in peers)
                best.append(a["msgs"] / a["elapsed"] / top)
            out["fsync"]["ratio_vs_best_maildir"] = med(best)
    # policyd against the default chain of the same round: its cost.
    if "policyd" in runs and "default" in runs:
        rate, cpu, lat = [], [], []
        for a, b in zip(runs["policyd"], runs["default"]):
            if "error" in a or "error" in b or not a["msgs"]:
                continue
            rate.append((a["msgs"] / a["elapsed"]) / (b["msgs"] / b["elapsed"]))
            if b["cpu"] > 0:
                cpu.append((a["cpu"] / a["msgs"]) / (b["cpu"] / b["msgs"]))
            lat.append((a["elapsed"] / a["msgs"] - b["elapsed"] / b["msgs"]) * 1e6)
        out["policyd"]["ratio_vs_default"] = med(rate)
        out["policyd"]["cpu_ratio_vs_default"] = med(cpu)
        if scenario == "g":
            out["policyd"]["added_us_per_rcpt"] = med(lat)
    return out


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_table(results, file=sys.stdout, markdown=False):
    head = ["scenario", "target", "msgs/s", "MB/s", "CPU us/msg",
            "peak RSS MiB", "x smtp-sink msgs/s", "x smtp-sink CPU/msg",
            "notes"]
    rows = []
    for sc, per in results.items():
        for target, s in per.items():
            notes = []
            if "rss_growth_kib" in s:
                notes.append(f"RSS growth {s['rss_growth_kib'] / 1024:.2f} MiB")
            if "rss_per_conn_kib" in s:
                notes.append(f"{s['rss_per_conn_kib']:.2f} KiB/conn")
                if s.get("rss_ratio_vs_sink") is not None:
                    notes.append(f"x{s['rss_ratio_vs_sink']:.3f} of smtp-sink")
            if s.get("us_per_rcpt") is not None:
                notes.append(f"{s['us_per_rcpt']:.0f} us per RCPT")
            if s.get("added_us_per_rcpt") is not None:
                notes.append(f"+{s['added_us_per_rcpt']:.0f} us per RCPT vs default")
            if s.get("ratio_vs_default") is not None:
                notes.append(f"vs default: x{s['ratio_vs_default']:.2f} msgs/s, "
                             f"x{s['cpu_ratio_vs_default']:.2f} CPU/msg")
            for peer in PEER_TARGETS:
                key = "vs_" + peer.replace("-", "_")
                if s.get("ratio_" + key) is not None:
                    notes.append(f"vs {peer}: x{s['ratio_' + key]:.2f} "
                                 f"msgs/s" +
                                 (f", x{s['cpu_ratio_' + key]:.2f} CPU/msg"
                                  if s.get("cpu_ratio_" + key) is not None
                                  else ""))
            if s.get("ratio_vs_best_maildir") is not None:
                notes.append(f"vs best Maildir peer: "
                             f"x{s['ratio_vs_best_maildir']:.2f} msgs/s")
            if s.get("cpu_ratio_vs_base") is not None:
                notes.append(f"vs @base: x{s['ratio_vs_base']:.2f} msgs/s, "
                             f"x{s['cpu_ratio_vs_base']:.2f} CPU/msg")
            if s.get("failed"):
                notes.append(f"{s['failed']} failed run(s): "
                             f"{s['errors'][0][:80]}")
            rate = s.get("msgs_per_s")
            rows.append([sc, target, fmt(rate, ".2f" if rate is not None
                                         and rate < 100 else ",.0f"),
                         fmt(s.get("mb_per_s"), ".1f"),
                         fmt(s.get("cpu_us_per_msg"), ",.0f"),
                         fmt(s.get("peak_rss_kib") and
                             s["peak_rss_kib"] / 1024, ".1f"),
                         fmt(s.get("ratio_vs_sink"), ".2f"),
                         fmt(s.get("cpu_ratio_vs_sink"), ".2f"),
                         "; ".join(notes)])
    if markdown:
        print("| " + " | ".join(head) + " |", file=file)
        print("|" + "|".join("---" for _ in head) + "|", file=file)
        for r in rows:
            print("| " + " | ".join(r) + " |", file=file)
        return
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
         for i, h in enumerate(head)]
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(head)), file=file)
    for r in rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)), file=file)


def bench_line(sc, target, s):
    name = target.split("@")[0]
    server = (name if name == "smtp-sink" else
              name.replace("-maildir", "") if name in PEER_TARGETS else
              "smtphookd")
    kv = [f"scenario={sc}", f"chain={name}", f"server={server}"]
    if target.endswith("@base"):
        kv.append("build=baseline")
    for k in ("msgs_per_s", "mb_per_s", "cpu_us_per_msg", "peak_rss_kib",
              "rss_growth_kib", "rss_per_conn_kib", "ratio_vs_sink",
              "cpu_ratio_vs_sink", "rss_ratio_vs_sink", "ratio_vs_base",
              "cpu_ratio_vs_base", "us_per_rcpt", "added_us_per_rcpt",
              "ratio_vs_default", "cpu_ratio_vs_default") + tuple(
                  f"{r}ratio_vs_{p.replace('-', '_')}" for p in PEER_TARGETS
                  for r in ("", "cpu_")) + ("ratio_vs_best_maildir",
                                            "noise_max"):
        if k in s and s[k] is not None:
            kv.append(f"{k}={s[k]:.4g}" if isinstance(s[k], float)
                      else f"{k}={s[k]}")
    kv.append(f"runs={s['runs']}")
    kv.append(f"failed={s['failed']}")
    return "BENCH " + " ".join(kv)


def targets_check(results):
    """The issue's targets: (label, value text, met or None)."""
    out = []

    def get(sc, t, k):
        return results.get(sc, {}).get(t, {}).get(k)

    def add(label, v, ok, shown):
        out.append((label, "-" if v is None else shown,
                    None if v is None else ok(v)))

    for sc in ("a", "b"):
        v = get(sc, "sink", "cpu_ratio_vs_sink")
        add(f"({sc}) sink: CPU/msg <= 0.7x smtp-sink", v, lambda x: x <= 0.7,
            f"{v:.3f}x" if v is not None else "")
    for sc in ("a", "b", "c"):
        v = get(sc, "sink", "ratio_vs_sink")
        add(f"({sc}) sink: msgs/s >= 1.0x smtp-sink", v, lambda x: x >= 1.0,
            f"{v:.3f}x" if v is not None else "")
    v = get("d", "sink", "ratio_vs_sink")
    add("(d) sink: msgs/s >= 2x smtp-sink", v, lambda x: x >= 2.0,
        f"{v:.3f}x" if v is not None else "")
    for sc in ("a", "b"):
        v = get(sc, "default", "ratio_vs_sink")
        add(f"({sc}) default fsync=no: msgs/s >= 0.6x smtp-sink", v,
            lambda x: x >= 0.6, f"{v:.3f}x" if v is not None else "")
    v = get("a", "fsync", "msgs_per_s")
    add("(a) default fsync=yes: >= 2x 1,950 = 3,900 msgs/s", v,
        lambda x: x >= 3900, f"{v:,.0f} msgs/s" if v is not None else "")
    v = get("e", "default", "rss_growth_kib")
    add("(e) default: RSS growth < 2 MiB", v, lambda x: x < 2048,
        f"{v / 1024:.2f} MiB" if v is not None else "")
    v = get("e", "default", "mb_per_s")
    add("(e) default: >= 300 MB/s", v, lambda x: x >= 300,
        f"{v:.0f} MB/s" if v is not None else "")
    for t in ("sink", "default"):
        v = get("f", t, "rss_per_conn_kib")
        add(f"(f) {t}: <= 4 KiB RSS per idle connection", v,
            lambda x: x <= 4.0, f"{v:.2f} KiB" if v is not None else "")
    # Issue 16: against the peers of the same run.
    for sc in ("a", "b", "d"):
        v = get(sc, "default", "ratio_vs_haraka")
        add(f"({sc}) default: msgs/s >= 3x haraka (discard)", v,
            lambda x: x >= 3.0, f"{v:.2f}x" if v is not None else "")
    for sc in ("a", "d"):
        v = get(sc, "default", "ratio_vs_smtp_server")
        add(f"({sc}) default: msgs/s >= 1.0x smtp-server (discard)", v,
            lambda x: x >= 1.0, f"{v:.2f}x" if v is not None else "")
    v = get("a", "default", "cpu_ratio_vs_sink")
    add("(a) default: CPU/msg <= 1.2x smtp-sink", v, lambda x: x <= 1.2,
        f"{v:.3f}x" if v is not None else "")
    for sc in ("a", "c"):
        v = get(sc, "fsync", "ratio_vs_best_maildir")
        add(f"({sc}) fsync=yes: msgs/s >= 2x the best Maildir peer "
            f"(haraka-maildir, smtp-server-maildir)", v, lambda x: x >= 2.0,
            f"{v:.2f}x" if v is not None else "")
    return out


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return dict(nproc=os.cpu_count(), cpu=model, kernel=platform.release())


def main():
    ap = argparse.ArgumentParser(
        description="smtphookd against smtp-sink, Haraka and smtp-server "
        "(issues 5 and 16)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="build directory with bin/ and plugins/")
    ap.add_argument("--pairs", type=int, default=3,
                    help="rounds of alternating runs (default 3)")
    ap.add_argument("--scenarios", default="abcdefg",
                    help="subset of abcdefg (default all)")
    ap.add_argument("--targets",
                    help="comma-separated subset of " + ",".join(ALL_TARGETS)
                    + " (default: all; the peers if installed)")
    ap.add_argument("--peers",
                    help="where make bench-peers installed the npm peers "
                    "(default BUILD/bench-peers)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply message counts (e.g. 0.2 for a quick look)")
    ap.add_argument("--big-mib", type=int, default=100,
                    help="size of the message of scenario e (MiB)")
    ap.add_argument("--idle", type=int, default=10000,
                    help="connections of scenario f")
    ap.add_argument("--disk-dir", default="/var/tmp",
                    help="where the fsync=yes Maildir goes (a real disk)")
    ap.add_argument("--baseline", metavar="BUILD",
                    help="also run the sink and default chains with the "
                    "smtphookd of this build directory (bin/, plugins/) as "
                    "targets sink@base, default@base: before/after in one run")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--markdown", help="also write the table here (Markdown)")
    ap.add_argument("--run-timeout", type=float, default=180.0)
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds of pause before each run (default 0: runs "
                    "follow each other, so that none starts on an idle, "
                    "cold vCPU)")
    ap.add_argument("--max-noise", type=float, default=0.10,
                    help="a round in which other processes used more than "
                    "this share of the CPUs is run again (default 0.10)")
    ap.add_argument("--retries", type=int, default=4,
                    help="extra rounds per scenario for noisy ones (4)")
    a = ap.parse_args()

    for exe in (SMTP_SOURCE, SMTP_SINK,
                os.path.join(a.build, "bin", "smtphookd")):
        if not os.access(exe, os.X_OK):
            log(f"bench: {exe} missing (make build; postfix for smtp-*)")
            return 2
    a.peers = a.peers or os.path.join(a.build, "bench-peers")
    have = peers_installed(a.peers)
    if a.targets is None:
        wanted = HOOK_TARGETS + have
        if len(have) < len(PEER_TARGETS):
            missing = [t for t in PEER_TARGETS if t not in have]
            log(f"bench: peers not installed in {a.peers} (make bench-peers; "
                f"needs node and npm): running without {', '.join(missing)}")
    else:
        wanted = [t for t in a.targets.split(",") if t]
    for t in wanted:
        if t not in ALL_TARGETS:
            log(f"bench: unknown target {t}")
            return 2
        if t in PEER_TARGETS and t not in have:
            log(f"bench: {t} is not installed in {a.peers} "
                f"(make bench-peers; needs node and npm)")
            return 2
    stub = os.path.join(a.build, "bench", "bench_policy_stub")
    if "policyd" in wanted and not os.access(stub, os.X_OK):
        log(f"bench: {stub} missing (make build)")
        return 2
    if "smtp-sink" not in wanted:
        wanted.insert(0, "smtp-sink")
    if a.baseline:
        if not os.access(os.path.join(a.baseline, "bin", "smtphookd"), os.X_OK):
            log(f"bench: {a.baseline}/bin/smtphookd missing")
            return 2
        wanted += [t + "@base" for t in ("sink", "default") if t in wanted]
    nofile = raise_nofile()
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    work = tempfile.mkdtemp(prefix="smtphook-bench-", dir=shm)
    diskdir = tempfile.mkdtemp(prefix="smtphook-bench-", dir=a.disk_dir)
    chain, chain_from = makefile_chain()
    make = build_targets(a, work, diskdir, chain)
    m = machine()
    load0 = loadavg()
    log(f"bench: {m['nproc']} CPUs, {m['cpu']}, Linux {m['kernel']}; "
        f"load {load0:.2f}; pairs {a.pairs}; work dir {work}")
    log(f"bench: default chain ({chain_from}): "
        + " ".join(bench_chain(chain, "DIR", "no")))
    if load0 > 0.5:
        log("bench: warning: the machine is busy (load > 0.5); "
            "figures will be noisy")
    stamp = os.path.join(a.disk_dir, ".smtphook-bench-deleted")
    try:
        ago = time.time() - os.stat(stamp).st_mtime
        if ago < 360 and any(t in wanted for t in ["fsync"] + MAILDIR_PEERS):
            log(f"bench: warning: the last bench deleted its Maildir in "
                f"{a.disk_dir} {ago:.0f} s ago; on ext4 without a journal "
                f"new files are slower to create for up to 6 minutes after "
                f"deletions, so fsync=yes figures may be low")
    except OSError:
        pass
    results, raw = {}, {}
    big = None
    t_start = time.monotonic()
    try:
        for sc in a.scenarios:
            if sc not in TITLES:
                log(f"bench: unknown scenario {sc}")
                return 2
            targets = [t for t in SCENARIO_TARGETS[sc] if t in wanted]
            targets += [t + "@base" for t in SCENARIO_TARGETS[sc]
                        if t + "@base" in wanted]
            log(f"bench: ({sc}) {TITLES[sc]}: {', '.join(targets)}")
            runs = {t: [] for t in targets}
            if sc == "f":
                if nofile < a.idle + 100:
                    log(f"bench: (f) needs {a.idle + 100} descriptors, "
                        f"have {nofile}; skipped")
                    continue
                for rnd in range(a.pairs):
                    for t in targets:
                        srv = make(t)
                        srv.start()
                        try:
                            r = run_idle(srv, a.idle, a.run_timeout)
                        except (RuntimeError, OSError) as e:
                            r = dict(error=str(e), elapsed=1, msgs=0,
                                     octets=0, cpu=0, hwm_kib=0)
                        finally:
                            srv.stop()
                        runs[t].append(r)
                        log(f"  round {rnd + 1} {t}: " + (
                            r.get("error") or
                            f"{r['per_conn_kib']:.2f} KiB/conn"))
                raw[sc] = runs
                results[sc] = summarize(sc, runs, a.pairs)
                continue
            servers = {t: make(t) for t in targets}
            try:
                # In the try: a server that does not start stops the others.
                for srv in servers.values():
                    srv.start()
                for srv in servers.values():
                    warm_up(srv, sc, a.run_timeout)
                if sc == "e" and big is None:
                    big = BigMessage(a.big_mib << 20)
                rnd = extra = 0
                spare = []      # discarded rounds: (noise, results)
                while rnd < a.pairs:
                    got = {}
                    # Each round starts with the next target: a run can
                    # leave the machine warmer or colder for the one after
                    # it (measured in (e): up to 1.5x), so no target always
                    # follows the same other.
                    k = (rnd + extra) % len(targets)
                    for t in targets[k:] + targets[:k]:
                        srv = servers[t]
                        time.sleep(a.settle)
                        try:
                            if sc == "e":
                                r = run_big(srv, big, a.run_timeout)
                            elif sc == "g":
                                r = run_rcpts(srv, max(100, int(RCPTS * a.scale)),
                                              a.run_timeout)
                            else:
                                p = SOURCE_SCENARIOS[sc]
                                n = max(100, int(p["msgs"] * a.scale))
                                r = run_source(srv, p, n, a.run_timeout)
                        except (OSError, RuntimeError,
                                subprocess.TimeoutExpired) as e:
                            r = dict(error=f"{type(e).__name__}: {e}",
                                     elapsed=1, msgs=1, octets=0, cpu=0,
                                     hwm_kib=0)
                            after_run(srv)
                        if not srv.alive():
                            r["error"] = f"server died: {srv.tail()}"
                            srv.start()
                            warm_up(srv, sc, a.run_timeout)
                        got[t] = r
                        log(f"  round {rnd + 1} {t}: " + (
                            r.get("error") or
                            f"{r['msgs'] / r['elapsed']:,.0f} msgs/s, "
                            f"{r['cpu'] / max(r['msgs'], 1) * 1e6:,.0f} "
                            f"us CPU/msg, others used "
                            f"{r.get('noise', 0):.0%} of the CPUs"))
                    # Something else ran meanwhile: this round again
                    # (at most --retries times per scenario).
                    loud = max(r.get("noise", 0.0) for r in got.values())
                    if loud > a.max_noise:
                        spare.append((loud, got))
                        if extra < a.retries:
                            extra += 1
                            log(f"  round {rnd + 1} discarded: others used "
                                f"{loud:.0%} of the CPUs "
                                f"(> {a.max_noise:.0%})")
                            continue
                        # Out of retries: the quietest round seen.
                        spare.sort(key=lambda x: x[0])
                        loud, got = spare.pop(0)
                        log(f"  round {rnd + 1}: no quiet round within "
                            f"--retries; taking one where others used "
                            f"{loud:.0%}")
                    for t in targets:
                        runs[t].append(got[t])
                    rnd += 1
            finally:
                for srv in servers.values():
                    srv.stop()
            raw[sc] = runs
            results[sc] = summarize(sc, runs, a.pairs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if any(os.scandir(diskdir)):
            # Files were made and are deleted now: note when (see above).
            try:
                with open(stamp, "w"):
                    pass
            except OSError:
                pass
        shutil.rmtree(diskdir, ignore_errors=True)
    load1 = loadavg()

    print(f"# smtphook bench: {m['nproc']} CPUs, {m['cpu']}, "
          f"Linux {m['kernel']}; {a.pairs} rounds; medians; "
          f"load {load0:.2f} -> {load1:.2f}; "
          f"{time.monotonic() - t_start:.0f} s")
    print("# default: " + " ".join(bench_chain(chain, "DIR", "no|yes")))
    for sc in results:
        print(f"# ({sc}) {TITLES[sc]}")
    print_table(results)
    noise = max([s.get("noise_max", 0.0) for per in results.values()
                 for s in per.values()] or [0.0])
    print(f"# other processes used at most {noise:.0%} of the CPUs during a "
          f"run" + (" - NOISY, run again on a quiet machine"
                    if noise > 0.10 else ""))
    print()
    for sc, per in results.items():
        for t, s in per.items():
            print(bench_line(sc, t, s))
    print()
    checks = targets_check(results)
    for label, v, ok in checks:
        state = "n/a" if ok is None else "met" if ok else "NOT MET"
        print(f"TARGET {state:7s} {label}: {v}")
    if a.markdown:
        with open(a.markdown, "w") as f:
            print_table(results, file=f, markdown=True)
            print(file=f)
            for label, v, ok in checks:
                state = "n/a" if ok is None else "met" if ok else "**not met**"
                print(f"- {label}: {v} — {state}", file=f)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(machine=m, load=[load0, load1], pairs=a.pairs,
                           results=results, raw=raw), f, indent=1)
    failed = sum(s.get("failed", 0) for per in results.values()
                 for s in per.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

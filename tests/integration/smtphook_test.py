"""Shared helpers for the integration tests: start the real smtphookd on a
free loopback port, talk to it over raw sockets, and check that it exits
cleanly (exit status 0, no signal; under valgrind, no memory error).

Every test keeps its traffic on 127.0.0.1 and bounds every wait.
"""
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("SMTPHOOK_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
BUILD_DIR = os.environ.get("SMTPHOOK_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
DAEMON = os.path.join(BUILD_DIR, "bin", "smtphookd")
PLUGIN_DIR = os.path.join(BUILD_DIR, "plugins")
TEST_PLUGIN_DIR = os.path.join(BUILD_DIR, "tests", "plugins")
VALGRIND = bool(os.environ.get("SMTPHOOK_VALGRIND"))
HOSTNAME = "mx.test.example"
# Waits scale under valgrind, which runs the daemon ~20x slower.
SLOW = 10.0 if VALGRIND else 1.0


def plugin_path(name):
    """Path of a test-only plugin built from tests/plugins/NAME.c."""
    return os.path.join(TEST_PLUGIN_DIR, name + ".so")


class MissingDependency(AssertionError):
    """A tool or build artefact a test needs is absent.  Under `make test`
    that is a failure, never a skip: scripts/deps.sh installs every tool,
    the build makes every artefact, and a test that cannot run is a test
    that did not pass."""


def require_file(path, what):
    """path, or a failure naming the build artefact that is missing."""
    if not os.path.exists(path):
        raise MissingDependency("%s missing: %s (build it with `make build`)" % (what, path))
    return path


def require_plugin(name):
    """Path of test plugin NAME (tests/plugins/NAME.c), which must be built."""
    return require_file(plugin_path(name), "test plugin " + name)


def require_bundled_plugin(name):
    """Path of bundled plugin NAME (plugins/NAME/), which must be built."""
    return require_file(os.path.join(PLUGIN_DIR, name + ".so"), "plugin " + name)


_TOOL_DIRS = ("/usr/sbin", "/usr/lib/postfix", "/usr/lib/postfix/sbin")


def require_tool(name, package):
    """Absolute path of command NAME, or a failure naming its Debian package."""
    path = shutil.which(name) or next(
        (os.path.join(d, name) for d in _TOOL_DIRS
         if os.access(os.path.join(d, name), os.X_OK)), None)
    if path is None:
        raise MissingDependency("%s not found: install the Debian package %s "
                                "(scripts/deps.sh does it as root)" % (name, package))
    return path


_swaks_tls = None


def require_swaks(tls=False):
    """swaks; with tls=True, a swaks that can speak TLS (it needs Net::SSLeay
    from libnet-ssleay-perl, only a Recommends of swaks)."""
    global _swaks_tls
    swaks = require_tool("swaks", "swaks")
    if tls:
        if _swaks_tls is None:
            p = subprocess.run([swaks, "--support"], capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
            _swaks_tls = "=== TLS supported" in p.stdout
        if not _swaks_tls:
            raise MissingDependency("swaks cannot speak TLS: install the Debian package "
                                    "libnet-ssleay-perl (scripts/deps.sh does it as root)")
    return swaks


def require_c_compiler():
    """A C compiler, for tests that build a fault-injection shim."""
    for cc in ("cc", "gcc", "clang"):
        path = shutil.which(cc)
        if path:
            return path
    raise MissingDependency("no C compiler: install the Debian package gcc")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_daemon(args, timeout=30):
    """Run smtphookd to completion (for command-line error cases)."""
    return subprocess.run([DAEMON] + list(args), capture_output=True, text=True,
                          timeout=timeout * SLOW, stdin=subprocess.DEVNULL)


class Daemon:
    """A running smtphookd.  Use as a context manager or call stop()."""

    def __init__(self, *args, port=None, hostname=HOSTNAME, listen=True, env=None):
        self.port = port or free_port()
        self.log_file = tempfile.NamedTemporaryFile(prefix="smtphookd-", suffix=".log", delete=False)
        cmd = [DAEMON]
        if listen:
            cmd += ["-l", "127.0.0.1:%d" % self.port]
        cmd += ["-n", hostname] + list(args)
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        if VALGRIND:
            full_env["SMTPHOOK_NO_DLCLOSE"] = "1"
            cmd = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite"] + cmd
        # The daemon logs "listening on X" for each listener just before its
        # loop runs (signal handlers installed): wait for all of them, so a
        # test neither connects to a listener not yet open nor signals a
        # daemon not yet ready (both matter under valgrind).
        self.listeners = max(1, sum(1 for a in cmd if a in ("-l", "--listen", "--tls-listen")
                                    or a.startswith(("--listen=", "--tls-listen="))))
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=full_env)
        self._wait_listening()

    def _wait_listening(self):
        deadline = time.time() + 10 * SLOW
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("smtphookd exited early with %s:\n%s"
                                     % (self.proc.returncode, self.log()))
            log = self.log()
            if log.count("info: listening on ") + \
                    log.count('"msg":"listening on ') >= self.listeners:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        # Probe connections are logged and closed at once
                        # (tests that count connections rely on it).
                        return
                except OSError:
                    pass
            time.sleep(0.02)
        self.kill()
        raise AssertionError("smtphookd did not listen on %d in time:\n%s"
                             % (self.port, self.log()))

    def log(self):
        with open(self.log_file.name, "r", errors="replace") as f:
            return f.read()

    def wait_log(self, needle, timeout=5):
        """Wait until the daemon's log contains needle; return the log."""
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            text = self.log()
            if needle in text:
                return text
            time.sleep(0.05)
        raise AssertionError("log never contained %r:\n%s" % (needle, self.log()))

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """SIGTERM and require a clean exit (0; no signal; valgrind clean)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("smtphookd did not stop within %ss:\n%s" % (timeout, self.log()))
        if rc != 0:
            raise AssertionError("smtphookd exited with %d:\n%s" % (rc, self.log()))
        os.unlink(self.log_file.name)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.kill()
            return False
        self.stop()
        return False


class Client:
    """A raw SMTP client: send lines or bytes, read whole replies."""

    def __init__(self, port, timeout=10, greeting=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
        self.buf = b""
        self.greeting = self.reply() if greeting else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line):
        """Send one command line (CRLF added) and return its reply."""
        self.send(line + "\r\n")
        return self.reply()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed; buffered %r" % self.buf)
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """Read one (possibly multi-line) reply: (code, [texts], raw lines)."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                break
        code = int(lines[0][:3])
        return Reply(code, [l[4:] for l in lines], lines)

    def closed(self, timeout=5):
        """True when the server closes the connection within timeout."""
        self.sock.settimeout(timeout * SLOW)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def ehlo(self, name="client.test.example"):
        return self.cmd("EHLO " + name)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Reply:
    def __init__(self, code, texts, lines):
        self.code = code
        self.texts = texts
        self.lines = lines

    @property
    def text(self):
        return "\n".join(self.texts)

    @property
    def enhanced(self):
        first = self.texts[0].split(" ", 1)[0] if self.texts else ""
        return first if first[:1].isdigit() and first.count(".") == 2 else None

    def __repr__(self):
        return "Reply(%d, %r)" % (self.code, self.lines)


def start_data(client, sender="sender@test.example", rcpts=("rcpt@test.example",)):
    """MAIL, RCPT..., DATA up to the 354."""
    r = client.cmd("MAIL FROM:<%s>" % sender)
    assert r.code == 250, r
    for rc in rcpts:
        r = client.cmd("RCPT TO:<%s>" % rc)
        assert r.code == 250, r
    r = client.cmd("DATA")
    assert r.code == 354, r


def transaction(client, sender="sender@test.example", rcpts=("rcpt@test.example",),
                body=b"Subject: test\r\n\r\nhello\r\n"):
    """EHLO-less MAIL/RCPT/DATA/body; returns the final reply."""
    start_data(client, sender, rcpts)
    client.send(body + b".\r\n")
    return client.reply()


def start_peer(test, argv, logpath, port, what):
    """Start a real peer server (postgrey, HAProxy, ...) with its output in
    logpath; stopped after the test.  Returns once it accepts on
    127.0.0.1:port, or fails the test with its log."""
    log = open(logpath, "wb")
    test.addCleanup(log.close)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)

    def stop():
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    test.addCleanup(stop)
    deadline = time.time() + 20 * SLOW
    while time.time() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    with open(logpath, "rb") as f:
        raise AssertionError("%s did not listen on %d: %r" % (what, port, f.read()))


class DaemonTestCase(unittest.TestCase):
    """Base class: self.daemon(*args) starts one that is stopped (and
    checked for a clean exit) after the test."""

    def daemon(self, *args, **kw):
        d = Daemon(*args, **kw)
        self.addCleanup(self._stop, d)
        return d

    def _stop(self, d):
        if d.proc.poll() is None:
            d.stop()

    def client(self, d, **kw):
        c = Client(d.port, **kw)
        self.addCleanup(c.close)
        return c

    def smtplib_client(self, d, helo=None):
        """An smtplib.SMTP connected to d (EHLO name helo, else the
        local host's), quitting quietly after the test."""
        s = smtplib.SMTP("127.0.0.1", d.port, local_hostname=helo, timeout=30 * SLOW)
        self.addCleanup(self._quit_quietly, s)
        return s

    @staticmethod
    def _quit_quietly(s):
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            pass

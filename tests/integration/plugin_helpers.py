"""Helpers for the tests that load the ABI test plugins (tests/plugins/*.c)
into the real daemon: plugin specs, reading the trace plugin's lines and
the session ids out of the daemon log, sending a body in pieces."""
import os
import re
import tempfile
import time

from smtphook_test import SLOW, plugin_path, start_data  # noqa: F401 (re-exported)


def spec(_plugin, **args):
    """-p argument for test plugin _plugin with key=value arguments (in order)."""
    s = plugin_path(_plugin)
    if args:
        s += ":" + ",".join("%s=%s" % (k, v) for k, v in args.items())
    return s


def plugins(*specs):
    """["-p", spec1, "-p", spec2, ...]"""
    out = []
    for s in specs:
        out += ["-p", s]
    return out


_TRACE = re.compile(r"session (\w+): plugin trace: trace (\S+) (\S+)(?: (.*))?$", re.M)


def traces(log, sid=None):
    """[(name, hook, detail)] logged by the trace plugin, in log order;
    only session sid when given."""
    return [(m.group(2), m.group(3), m.group(4) or "") for m in _TRACE.finditer(log)
            if sid is None or m.group(1) == sid]


def hooks_of(log, name, sid=None):
    """The hooks trace instance NAME saw, in order."""
    return [h for (n, h, _) in traces(log, sid) if n == name]


def session_id(daemon, client):
    """The daemon's id of the session behind client (from its log)."""
    port = client.sock.getsockname()[1]
    pat = re.compile(r"session (\w+): connect from \[127\.0\.0\.1\]:%d " % port)
    deadline = time.time() + 5 * SLOW
    while time.time() < deadline:
        m = pat.search(daemon.log())
        if m:
            return m.group(1)
        time.sleep(0.02)
    raise AssertionError("no session for client port %d:\n%s" % (port, daemon.log()))


def wait_for(pred, timeout=5, what="condition"):
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for %s" % what)


def send_in_parts(client, parts, pause=0.2):
    """Send each part separately, pausing in between, so the daemon reads
    (and hands to plugins) several chunks."""
    for i, p in enumerate(parts):
        if i:
            time.sleep(pause)
        client.send(p)


def nothing_pending(client, wait=0.3):
    """True when the server has sent nothing within wait seconds."""
    client.sock.settimeout(wait)
    try:
        data = client.sock.recv(65536)
    except (TimeoutError, OSError):
        return True
    finally:
        client.sock.settimeout(10 * SLOW)
    client.buf += data
    return False


def tmpdir(testcase):
    """A temporary directory removed after the test."""
    d = tempfile.TemporaryDirectory(prefix="smtphook-abi-")
    testcase.addCleanup(d.cleanup)
    return d.name


def read_file(path, timeout=5):
    wait_for(lambda: os.path.exists(path), timeout, "file %s" % path)
    with open(path, "rb") as f:
        return f.read()

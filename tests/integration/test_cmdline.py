"""The command line (SPEC §2): --help/--version, errors (exit 2, one line
on stderr naming the option or file, nothing listens), plugins that are
missing or not plugins, plugin arguments, --check, -c config files,
options not supported yet, listeners."""
import os
import re
import socket
import subprocess
import tempfile
import time
import unittest

from smtphook_test import (DAEMON, Client, DaemonTestCase, HOSTNAME,
                           free_port, plugin_path, require_plugin, run_daemon,
                           transaction)



def system_library():
    """A shared library that is certainly not a plugin: the daemon's own libev."""
    out = subprocess.run(["ldd", DAEMON], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"libev\.so\S* => (/\S+)", out)
    if m is None:
        raise AssertionError("ldd %s shows no libev:\n%s" % (DAEMON, out))
    return m.group(1)


def refused(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class CmdlineTestCase(DaemonTestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="smtphook-cmdline-")
        self.addCleanup(self.tmp.cleanup)

    def path(self, name, content=None):
        p = os.path.join(self.tmp.name, name)
        if content is not None:
            with open(p, "w") as f:
                f.write(content)
        return p

    def assertFails(self, args, *needles, port=None):
        """Exit 2, exactly one line on stderr containing every needle,
        nothing on stdout, nothing listening."""
        port = port or free_port()
        full = ["-l", "127.0.0.1:%d" % port] + list(args)
        p = run_daemon(full, timeout=20)
        self.assertEqual(p.returncode, 2, (full, p.stdout, p.stderr))
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, "not one line: %r" % p.stderr)
        self.assertTrue(lines[0].startswith("smtphookd: "), lines)
        for n in needles:
            self.assertIn(n, lines[0])
        self.assertEqual(p.stdout, "")
        self.assertTrue(refused(port), "something listens on %d" % port)
        return lines[0]


class HelpVersionTest(CmdlineTestCase):
    def test_help(self):
        p = run_daemon(["--help"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        out = p.stdout
        for opt in ("--listen", "--hostname", "--plugin", "--plugin-dir",
                    "--max-size", "--max-recipients", "--max-connections",
                    "--max-connections-per-ip", "--timeout", "--no-pipelining",
                    "--bare-lf", "--reject-early-talkers", "--config", "--check",
                    "--verbose", "--log-format", "--version", "--help",
                    "--greet-pause", "--shutdown-timeout", "--max-errors",
                    "--tls-cert", "--tls-key", "--tls-listen", "--require-tls",
                    "--tls-ciphers", "--tls-min-version", "--auth", "--auth-insecure",
                    "--proxy-protocol", "--proxy-trusted", "--xclient"):
            self.assertRegex(out, r"(?m)^\s+(-\w, )?%s\b" % re.escape(opt))
        for absent in ("--workers",):
            self.assertNotRegex(out, r"%s\b" % re.escape(absent))
        # The long names line up in one column.
        cols = {line.index("--") for line in out.splitlines() if line.startswith("  ")}
        self.assertEqual(len(cols), 1, out)

    def test_short_help(self):
        p = run_daemon(["-h"])
        self.assertEqual(p.returncode, 0)
        self.assertIn("--listen", p.stdout)

    def test_version(self):
        p = run_daemon(["--version"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^smtphookd \d+\.\d+")


class OptionErrorTest(CmdlineTestCase):
    def test_unknown_option(self):
        self.assertFails(["--bogus"], "--bogus")
        self.assertFails(["-x"], "-x")
        self.assertFails(["--bogus=1"], "--bogus")
        self.assertFails(["stray"], "stray")

    def test_missing_value(self):
        for opt in ("--timeout", "--listen", "-l", "--max-size", "-s", "--plugin",
                    "-n", "--bare-lf", "--config"):
            with self.subTest(opt=opt):
                p = run_daemon([opt])
                self.assertEqual(p.returncode, 2, p)
                self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
                self.assertIn("needs a value", p.stderr)

    def test_flag_with_value(self):
        self.assertFails(["--no-pipelining=yes"], "--no-pipelining")
        self.assertFails(["--check=1"], "--check")

    def test_bad_listen(self):
        for bad in ("nonsense", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                    "127.0.0.1:port", ":25", "[::1:25", "[::1]25",
                    "no.such.host.invalid:25", "999.1.1.1:25"):
            with self.subTest(listen=bad):
                p = run_daemon(["-l", bad])
                self.assertEqual(p.returncode, 2, (bad, p))
                lines = p.stderr.splitlines()
                self.assertEqual(len(lines), 1, p.stderr)
                self.assertIn("--listen", lines[0])
                self.assertIn(bad, lines[0])

    def test_bad_numbers(self):
        for opt, bad in (("--max-size", "abc"), ("--max-size", "-1"),
                         ("-s", "1k"), ("--max-size", "99999999999999999999999"),
                         ("--timeout", "0"), ("--timeout", "-5"), ("--timeout", "abc"),
                         ("--timeout", "1s"), ("--timeout", "100000"),
                         ("--timeout", "nan"), ("--max-recipients", "0"),
                         ("--max-connections", "x"), ("--max-errors", "0"),
                         ("--shutdown-timeout", "soon"), ("--greet-pause", "61"),
                         ("--bare-lf", "maybe"), ("--log-format", "xml")):
            with self.subTest(opt=opt, value=bad):
                long = {"-s": "--max-size"}.get(opt, opt)
                self.assertFails([opt, bad], long, bad)

    def test_good_numbers_in_other_spellings(self):
        p = run_daemon(["--max-size=100", "-s100", "--timeout", "0.5",
                        "--greet-pause", "0", "--check"])
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_not_supported_yet(self):
        self.assertFails(["--workers", "2"], "--workers", "not supported yet")
        self.assertFails(["-w", "4"], "--workers", "not supported yet")
        # AUTH without TLS is refused (not supported yet, or: it would
        # never be offered without --tls-cert or --auth-insecure).
        self.assertFails(["--auth", "PLAIN"], "--auth")

    def test_one_worker_is_fine(self):
        p = run_daemon(["--workers", "1", "--check"])
        self.assertEqual(p.returncode, 0, p.stderr)


class PluginErrorTest(CmdlineTestCase):
    def test_missing_plugin_by_name(self):
        self.assertFails(["-p", "nosuchplugin"], "--plugin nosuchplugin", "no such plugin")

    def test_missing_plugin_by_path(self):
        missing = self.path("missing.so")
        self.assertFails(["-p", missing], missing, "No such file")

    def test_text_file_is_not_a_plugin(self):
        txt = self.path("text.so", "this is not an ELF file\n")
        self.assertFails(["-p", txt], txt, "not a loadable plugin")
        txt2 = self.path("notes.txt", "hello\n" * 100)
        self.assertFails(["-p", txt2], txt2)

    def test_directory_is_not_a_plugin(self):
        self.assertFails(["-p", self.tmp.name + "/"], "--plugin")

    def test_system_library_is_not_a_plugin(self):
        so = system_library()
        self.assertFails(["-p", so], so, "not an smtphook plugin")

    def test_bad_plugin_name(self):
        self.assertFails(["-p", "../sink"], "--plugin")
        self.assertFails(["-p", "si nk"], "--plugin")
        self.assertFails(["-p", ""], "--plugin")

    def test_unknown_plugin_argument(self):
        self.assertFails(["-p", "sink:foo=1"], "sink", "foo")
        self.assertFails(["-p", "sink:foo"], "sink", "foo")
        self.assertFails(["-p", "sink:=1"], "sink")
        self.assertFails(["-p", "sink:timeout=5,timeout=6"], "timeout", "twice")

    def test_unknown_argument_lists_the_accepted_keys(self):
        line = self.assertFails(["-p", "maildump:dir=/tmp/x,fsnyc=no"], "maildump", "fsnyc")
        self.assertIn("accepted: ", line)
        for key in ("dir", "fsync", "split", "timeout", "on_timeout"):
            self.assertIn(key, line)
        # A plugin that takes no keys still names the reserved ones.
        line = self.assertFails(["-p", "sink:foo=1"], "sink", "foo")
        self.assertIn("accepted: timeout, on_timeout", line)

    def test_empty_arguments_are_refused(self):
        for spec in ("sink:timeout=5,,on_timeout=reject", "sink:timeout=5,", "sink:,timeout=5",
                     "sink:,"):
            with self.subTest(spec=spec):
                self.assertFails(["-p", spec], "sink", "empty argument")
        # No arguments at all is not an empty argument.
        p = run_daemon(["-p", "sink:", "--check"])
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_empty_list_items_are_refused(self):
        for value in ("127.0.0.1;;10.0.0.0/8", "127.0.0.1;", ";127.0.0.1", "127.0.0.1; ;::1"):
            with self.subTest(value=value):
                self.assertFails(["-p", "policy:allow_ip=" + value], "policy", "allow_ip")

    def test_numbers_are_decimal(self):
        for arg in ("timeout=0x10", "timeout=1e2", "timeout=0X1p4", "timeout= 5",
                    "timeout=infinity"):
            with self.subTest(arg=arg):
                self.assertFails(["-p", "sink:" + arg], "sink", "timeout")
        for arg in ("max=0x10", "max=1e6", "max_recipients=0x10"):
            with self.subTest(arg=arg):
                self.assertFails(["-p", "sizefilter:" + arg], "sizefilter", arg.split("=")[0])
        self.assertFails(["--timeout", "0x10", "-p", "sink"], "--timeout")

    def test_bad_reserved_arguments(self):
        for arg in ("timeout=abc", "timeout=0", "timeout=-1", "timeout=100000",
                    "on_timeout=maybe", "on_timeout=", "on_timeout=ACCEPT"):
            with self.subTest(arg=arg):
                self.assertFails(["-p", "sink:" + arg], "sink", arg.split("=")[0])

    def test_good_reserved_arguments(self):
        p = run_daemon(["-p", "sink:timeout=2.5,on_timeout=continue",
                        "-p", "sink:on_timeout=reject", "--check"])
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_plugin_init_refuses(self):
        rec = require_plugin("chunk_recorder")
        self.assertFails(["-p", "sink", "-p", rec], "chunk_recorder", "file=")

    def test_second_plugin_bad_names_it(self):
        line = self.assertFails(["-p", "sink", "-p", "sink:bad=1"], "sink:bad=1")
        self.assertIn("bad", line)


class CheckTest(CmdlineTestCase):
    def test_check_good(self):
        args = ["--check", "-p", "sink"]
        rec = plugin_path("chunk_recorder")
        if os.path.exists(rec):
            args += ["-p", "%s:file=%s" % (rec, self.path("msg"))]
        p = run_daemon(args)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("ok", p.stdout)

    def test_check_does_not_listen(self):
        port = free_port()
        p = run_daemon(["--check", "-p", "sink", "-l", "127.0.0.1:%d" % port])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(refused(port))

    def test_check_bad(self):
        p = run_daemon(["--check", "-p", "sink:nope=1"])
        self.assertEqual(p.returncode, 2)
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        p = run_daemon(["--check", "-p", "nosuchplugin"])
        self.assertEqual(p.returncode, 2)


class ConfigFileTest(CmdlineTestCase):
    def test_config_file_options(self):
        port = free_port()
        cfg = self.path("smtphookd.conf",
                        "# a comment\n"
                        "\n"
                        "listen 127.0.0.1:%d\n"
                        "  hostname   cfg.test.example  \n"
                        "plugin sink\n"
                        "--max-size=5000\n"
                        "no-pipelining\n"
                        "max-recipients 2\r\n" % port)
        d = self.daemon("-c", cfg, port=port, listen=False)
        c = self.client(d)
        self.assertEqual(c.greeting.lines, ["220 cfg.test.example ESMTP smtphook"])
        r = c.ehlo()
        self.assertIn("SIZE 5000", r.texts)
        self.assertNotIn("PIPELINING", r.texts)
        self.assertEqual(c.cmd("MAIL FROM:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<a@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<b@test.example>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<c@test.example>").code, 452)

    def test_command_line_after_config_wins(self):
        port = free_port()
        cfg = self.path("a.conf", "max-size 5000\n")
        d = self.daemon("-p", "sink", "-c", cfg, "-s", "7000", port=port)
        c = self.client(d)
        self.assertIn("SIZE 7000", c.ehlo().texts)

    def test_bad_value_names_file_and_line(self):
        cfg = self.path("bad.conf", "# ok\nplugin sink\nmax-size lots\n")
        self.assertFails(["-c", cfg], "%s:3:" % cfg, "--max-size", "lots")

    def test_unknown_option_names_file_and_line(self):
        cfg = self.path("bad.conf", "plugin sink\n\n\nbogus-option 1\n")
        self.assertFails(["-c", cfg], "%s:4:" % cfg, "bogus-option")

    def test_missing_value_in_file(self):
        cfg = self.path("bad.conf", "timeout\n")
        self.assertFails(["-c", cfg], "%s:1:" % cfg, "--timeout")
        cfg = self.path("bad2.conf", "check yes\n")
        self.assertFails(["-c", cfg], "%s:1:" % cfg, "--check")

    def test_not_supported_in_file(self):
        cfg = self.path("w.conf", "workers 3\n")
        self.assertFails(["-c", cfg], "%s:1:" % cfg, "not supported yet")

    def test_nested_config_refused(self):
        inner = self.path("inner.conf", "plugin sink\n")
        cfg = self.path("outer.conf", "config %s\n" % inner)
        self.assertFails(["-c", cfg], "%s:1:" % cfg)

    def test_missing_config_file(self):
        missing = self.path("missing.conf")
        self.assertFails(["-c", missing], missing)

    def test_bad_plugin_from_config(self):
        cfg = self.path("p.conf", "plugin sink:zzz=1\n")
        self.assertFails(["-c", cfg], "zzz")


class ListenTest(CmdlineTestCase):
    def test_port_in_use(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            p = run_daemon(["-l", "127.0.0.1:%d" % port, "-p", "sink"])
            self.assertEqual(p.returncode, 2, p)
            lines = p.stderr.splitlines()
            self.assertEqual(len(lines), 1, p.stderr)
            self.assertIn("--listen 127.0.0.1:%d" % port, lines[0])
            self.assertIn("in use", lines[0])

    def test_nothing_listens_when_a_later_listener_fails(self):
        free = free_port()
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            p = run_daemon(["-l", "127.0.0.1:%d" % free, "-l", "127.0.0.1:%d" % port,
                            "-p", "sink"])
            self.assertEqual(p.returncode, 2, p)
        self.assertTrue(refused(free))

    def test_nothing_listens_after_plugin_failure(self):
        port = free_port()
        self.assertFails(["-p", "sink", "-p", "nosuchplugin"], "nosuchplugin", port=port)
        self.assertTrue(refused(port))

    def test_two_listeners(self):
        port2 = free_port()
        d = self.daemon("-p", "sink", "-l", "127.0.0.1:%d" % port2)
        for port in (d.port, port2):
            c = Client(port)
            self.addCleanup(c.close)
            self.assertEqual(c.greeting.code, 220)
            self.assertEqual(c.ehlo().code, 250)
            self.assertEqual(transaction(c).code, 250)

    def test_ipv6_listener(self):
        if not have_ipv6_loopback():
            self.skipTest("no IPv6 on loopback")
        port = free_port()
        # The helper probes 127.0.0.1:port; listen there too.
        d = self.daemon("-p", "sink", "-l", "[::1]:%d" % port, port=port)
        with socket.create_connection(("::1", port), timeout=10) as s:
            f = s.makefile("rb")
            self.assertEqual(f.readline(), b"220 %s ESMTP smtphook\r\n" % HOSTNAME.encode())
            s.sendall(b"EHLO [IPv6:::1]\r\nQUIT\r\n")
            lines = []
            while True:
                line = f.readline()
                if not line:
                    break
                lines.append(line)
            self.assertTrue(lines[0].startswith(b"250-"), lines)
            self.assertTrue(lines[-1].startswith(b"221 "), lines)
        d.wait_log("connect from [::1]:")

    def test_ipv6_only_listener(self):
        if not have_ipv6_loopback():
            self.skipTest("no IPv6 on loopback")
        port = free_port()
        # Daemon() probes 127.0.0.1 only: run this one by hand.
        proc = subprocess.Popen([DAEMON, "-n", HOSTNAME, "-p", "sink", "-l", "[::1]:%d" % port],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
        try:
            deadline = time.time() + 10
            while True:
                try:
                    s = socket.create_connection(("::1", port), timeout=2)
                    break
                except OSError:
                    if time.time() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.05)
            with s:
                self.assertTrue(s.recv(100).startswith(b"220 "))
            # IPV6_V6ONLY: no IPv4 listener on the same port.
            self.assertTrue(refused(port))
        finally:
            proc.terminate()
            rc = proc.wait(timeout=20)
        self.assertEqual(rc, 0, proc.stderr.read())


if __name__ == "__main__":
    unittest.main()

"""The plugin ABI at load time (SPEC §2, §4; STYLE §8; smtphook.h): the
descriptor's major/minor/struct_size rule, the one exported symbol,
declared argument keys and the host-reserved ones, init refusing to
start, and the watchdog for hooks that block the loop."""
import os
import re
import socket
import unittest

from smtphook_test import (DaemonTestCase, run_daemon, free_port, transaction, plugin_path,
                           TEST_PLUGIN_DIR)
from plugin_helpers import spec, plugins, tmpdir, read_file


class StartupFailureTest(unittest.TestCase):
    """Refusals: exit status 2, one line naming the plugin and why,
    nothing listens."""

    def refuse(self, *args):
        port = free_port()
        r = run_daemon(["-l", "127.0.0.1:%d" % port, *args])
        self.assertEqual(r.returncode, 2, (r.stdout, r.stderr))
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("smtphookd: "), lines[0])
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return lines[0]

    def test_future_major_is_refused(self):
        line = self.refuse("-p", spec("abi_future_major"))
        self.assertIn("ABI", line)
        self.assertIn("abi_future_major", line)
        self.assertIn("2.", line)  # the plugin's major is named
        self.assertNotIn("must never be called", line)

    def test_future_minor_is_refused(self):
        line = self.refuse("-p", spec("abi_future_minor"))
        self.assertIn("abi_future_minor", line)
        # Both versions are named: the plugin's 1.(N+1) and the host's 1.N.
        m = re.search(r"built for plugin ABI 1\.(\d+), host is 1\.(\d+)", line)
        self.assertIsNotNone(m, line)
        self.assertEqual(int(m.group(1)), int(m.group(2)) + 1, line)
        self.assertIn("needs a newer smtphookd", line)
        self.assertNotIn("must never be called", line)

    def test_no_exported_descriptor_is_refused(self):
        line = self.refuse("-p", spec("no_symbol"))
        self.assertIn("not an smtphook plugin", line)
        self.assertIn("no_symbol", line)

    def test_unknown_argument_is_refused(self):
        line = self.refuse("-p", spec("keys", beta=1))
        self.assertIn("unknown argument", line)
        self.assertIn("beta", line)

    def test_unknown_argument_after_known_one_is_refused(self):
        line = self.refuse("-p", spec("keys", alpha=1, gamma=2))
        self.assertIn("unknown argument 'gamma'", line)

    def test_argument_without_value_is_refused(self):
        line = self.refuse("-p", plugin_path("keys") + ":alpha")
        self.assertIn("alpha", line)

    def test_bad_reserved_timeout_is_refused(self):
        line = self.refuse("-p", spec("keys", timeout="soon"))
        self.assertIn("timeout", line)

    def test_bad_reserved_on_timeout_is_refused(self):
        line = self.refuse("-p", spec("keys", on_timeout="maybe"))
        self.assertIn("on_timeout", line)

    def test_init_failure_reason(self):
        line = self.refuse("-p", spec("init_fail"))
        self.assertIn("plugin init_fail: reason", line)

    def test_init_failure_custom_reason_with_check(self):
        r = run_daemon(["--check", "-p", spec("init_fail", reason="no database configured")])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("plugin init_fail: no database configured", r.stderr)

    def test_init_failure_without_reason(self):
        line = self.refuse("-p", spec("init_fail", silent=1))
        self.assertIn("plugin init_fail:", line)
        self.assertIn("init failed", line)

    def test_init_failure_finalises_the_plugins_before_it(self):
        r = run_daemon(["--check", "-p", spec("trace", name="A"), "-p", spec("init_fail"),
                        "-p", spec("trace", name="C")])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("trace A init", r.stderr)
        self.assertIn("trace A fini", r.stderr)
        # Plugins after the failing one were never initialised.
        self.assertNotIn("trace C", r.stderr)

    def test_plugin_init_error_from_argument_check(self):
        # A plugin's own validation in init (reject_at needs hook=).
        line = self.refuse("-p", spec("reject_at", verdict="reject"))
        self.assertIn("plugin reject_at: hook= is required", line)


class CheckTest(unittest.TestCase):
    def test_declared_key_is_accepted(self):
        r = run_daemon(["--check", "-p", spec("keys", alpha=1)])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("keys: init nargs=1 alpha=1", r.stderr)

    def test_reserved_keys_are_taken_by_the_host(self):
        r = run_daemon(["--check", "-p", spec("keys", timeout=5, alpha=2,
                                             on_timeout="continue")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("keys: init nargs=1 alpha=2", r.stderr)

    def test_no_arguments(self):
        r = run_daemon(["--check", "-p", spec("keys")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("keys: init nargs=0 alpha=(none)", r.stderr)

    def test_bare_name_with_a_path_valued_argument(self):
        # NAME:key=/a/path - the value's '/' is not part of the name.
        out = "/tmp/smtphook-abi-check.eml"
        r = run_daemon(["--check", "--plugin-dir", TEST_PLUGIN_DIR,
                        "-p", "chunk_recorder:file=%s" % out])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run_daemon(["--check", "--plugin-dir", TEST_PLUGIN_DIR,
                        "-p", "chunk_recorder.so:file=/tmp/x:y.eml"])
        self.assertEqual(r.returncode, 0, r.stderr)


class OldMinorTest(DaemonTestCase):
    """A descriptor whose struct_size stops before vrfy (an older minor)."""

    def test_loads_and_hooks_inside_its_size_work(self):
        d = self.daemon("-p", spec("abi_old"))
        c = self.client(d)
        self.assertEqual(c.ehlo().code, 250)
        r = transaction(c)
        self.assertEqual(r.code, 250, r)
        log = d.log()
        self.assertIn("abi_old: init", log)
        self.assertIn("abi_old: connect", log)
        self.assertIn("abi_old: eom", log)

    def test_hooks_beyond_its_size_are_never_called(self):
        d = self.daemon("-p", spec("abi_old"))
        c = self.client(d)
        c.ehlo()
        # Its vrfy pointer would reject; the host must treat it as absent.
        r = c.cmd("VRFY someone")
        self.assertEqual(r.code, 252, r)
        self.assertEqual(c.cmd("QUIT").code, 221)
        self.assertTrue(c.closed())
        c2 = self.client(d)
        c2.cmd("QUIT")
        self.assertTrue(c2.closed())
        d.wait_log("commands=1/1")
        self.assertNotIn("abi_old: disconnect called", d.log())
        self.assertNotIn("abi_old vrfy called", d.log())

    def test_old_plugin_chains_with_current_ones(self):
        out = os.path.join(tmpdir(self), "m.eml")
        d = self.daemon(*plugins(spec("trace", name="A"), spec("abi_old"),
                                 spec("chunk_recorder", file=out)))
        c = self.client(d)
        c.ehlo()
        self.assertEqual(transaction(c).code, 250)
        # abi_old decided eom: chunk_recorder was not asked.
        self.assertFalse(os.path.exists(out))


class SlowHookTest(DaemonTestCase):
    def test_blocking_hook_is_logged_with_plugin_and_hook(self):
        d = self.daemon("-p", spec("slow", ms=150), "-p", "sink")
        c = self.client(d)
        self.assertEqual(c.ehlo().code, 250)
        log = d.wait_log("blocked the loop")
        line = [l for l in log.splitlines() if "blocked the loop" in l][0]
        self.assertIn("plugin slow", line)
        self.assertIn("hook helo", line)
        self.assertEqual(transaction(c).code, 250)

    def test_fast_hook_is_not_logged(self):
        d = self.daemon("-p", spec("slow", ms=5), "-p", "sink")
        c = self.client(d)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(transaction(c).code, 250)
        c.cmd("QUIT")
        d.wait_log("commands=")
        self.assertNotIn("blocked the loop", d.log())

    def test_blocking_rcpt_hook_names_rcpt(self):
        d = self.daemon("-p", spec("slow", hook="rcpt", ms=150), "-p", "sink")
        c = self.client(d)
        c.ehlo()
        self.assertEqual(transaction(c).code, 250)
        line = [l for l in d.wait_log("blocked the loop").splitlines()
                if "blocked the loop" in l][0]
        self.assertIn("plugin slow", line)
        self.assertIn("hook rcpt", line)


if __name__ == "__main__":
    unittest.main()

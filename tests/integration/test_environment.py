"""Every tool and build artefact the integration tests use, checked for the
capability the tests need.  A machine without one fails here with a line
that names the Debian package (scripts/deps.sh installs them all), rather
than some later test failing obscurely, or worse, skipping."""
import os
import ssl
import subprocess
import unittest

from smtphook_test import (DAEMON, require_bundled_plugin, require_c_compiler,
                           require_file, require_plugin, require_swaks, require_tool)

BUNDLED = ("maildump", "sizefilter", "policy", "spamfilter", "authfile", "sink")


class ToolsTest(unittest.TestCase):
    def test_swaks_speaks_tls(self):
        # swaks without Net::SSLeay runs, but fails every --tls test.
        require_swaks(tls=True)

    def test_postfix_test_tools(self):
        for tool in ("smtp-source", "smtp-sink"):
            with self.subTest(tool=tool):
                require_tool(tool, "postfix")

    def test_openssl_makes_certificates_and_hashes(self):
        openssl = require_tool("openssl", "openssl")
        p = subprocess.run([openssl, "passwd", "-6", "x"], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith("$6$"), p.stdout)

    def test_python_has_tls(self):
        self.assertGreaterEqual(ssl.OPENSSL_VERSION_INFO, (1, 1, 1), ssl.OPENSSL_VERSION)

    def test_man_page_tools(self):
        # integration.manpages lints with mandoc and renders with man -l.
        require_tool("mandoc", "mandoc")
        require_tool("man", "man-db")

    def test_c_compiler_for_shims(self):
        require_c_compiler()

    def test_valgrind_when_asked_for(self):
        if os.environ.get("SMTPHOOK_VALGRIND"):
            require_tool("valgrind", "valgrind")


class ArtefactsTest(unittest.TestCase):
    def test_daemon(self):
        self.assertTrue(os.access(require_file(DAEMON, "smtphookd"), os.X_OK), DAEMON)

    def test_bundled_plugins(self):
        for name in BUNDLED:
            with self.subTest(plugin=name):
                require_bundled_plugin(name)

    def test_test_plugins(self):
        for name in ("chunk_recorder", "trace", "reject_at", "pending_timer", "crash"):
            with self.subTest(plugin=name):
                require_plugin(name)


if __name__ == "__main__":
    unittest.main()

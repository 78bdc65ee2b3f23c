"""Declared roles (SPEC §7, smtphook.h sh_role, server/roles.c): what the
daemon makes of the roles its plugins declare, with --check and at a real
start.  A relay with no recipient restriction before it is refused (exit 2,
one line, nothing listens); a chain in which no plugin can accept a
message is warned about, except when a 1.0 plugin (unknown roles) is in
it; an editing plugin after a storing one is warned about; the default
chain of `make run` gets neither."""
import os
import shutil
import socket
import tempfile
import unittest

# The module, not its names: importing the test class would run it here.
import test_default_chain
from smtphook_test import (DaemonTestCase, SOURCE_DIR, free_port, require_bundled_plugin,
                           require_plugin, run_daemon, transaction)
from plugin_helpers import plugins, spec

OPEN_RELAY = ("plugin role_relay relays messages but no plugin before it restricts "
              "recipients (an open relay); put a recipient restriction (e.g. policy) "
              "before it")
NO_TAKER = "warn: no plugin in the chain can accept a message: every message would get 451 4.3.0"


def listens(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class RolesTestCase(unittest.TestCase):
    def setUp(self):
        for name in ("role_relay", "role_restrict", "role_none", "abi_old"):
            require_plugin(name)

    def check(self, *args):
        """smtphookd --check ARGS: (exit status, stdout, stderr lines)."""
        r = run_daemon(["--check", *args])
        return r.returncode, r.stdout, r.stderr.splitlines()

    def refusal(self, rc, lines):
        """Exit 2, exactly one error line (plugins may log at init before
        the chain is judged) and no warning; returns the error line."""
        self.assertEqual(rc, 2, lines)
        errors = [ln for ln in lines if ln.startswith("smtphookd: ")]
        self.assertEqual(len(errors), 1, lines)
        self.assertEqual(self.warnings(lines), [], lines)
        return errors[0]

    def warnings(self, lines):
        return [ln for ln in lines if " warn: " in ln or '"level":"warn"' in ln]


class OpenRelayTest(RolesTestCase):
    def test_relay_alone_is_refused(self):
        rc, out, lines = self.check(*plugins(spec("role_relay")))
        self.assertEqual(rc, 2, lines)
        self.assertEqual(lines, ["smtphookd: " + OPEN_RELAY])
        self.assertEqual(out, "", "no 'configuration ok'")

    def test_relay_alone_is_refused_at_a_real_start(self):
        port = free_port()
        r = run_daemon(["-l", "127.0.0.1:%d" % port, *plugins(spec("role_relay"))])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stderr.splitlines(), ["smtphookd: " + OPEN_RELAY])
        self.assertFalse(listens(port), "something listens on %d" % port)

    def test_restriction_after_the_relay_is_refused(self):
        rc, _, lines = self.check(*plugins(spec("role_relay"), spec("role_restrict")))
        self.assertEqual(self.refusal(rc, lines), "smtphookd: " + OPEN_RELAY)

    def test_a_10_plugin_before_the_relay_does_not_count(self):
        # abi_old may restrict recipients or not: it cannot say.
        rc, _, lines = self.check(*plugins(spec("abi_old"), spec("role_relay")))
        self.assertEqual(self.refusal(rc, lines), "smtphookd: " + OPEN_RELAY)

    def test_restrict_then_relay_passes_without_warning(self):
        rc, out, lines = self.check(*plugins(spec("role_restrict"), spec("role_relay")))
        self.assertEqual(rc, 0, lines)
        self.assertIn("configuration ok (2 plugin(s))", out)
        self.assertEqual(self.warnings(lines), [], lines)

    def test_policy_restricts_recipients(self):
        require_bundled_plugin("policy")
        rc, _, lines = self.check("-p", "policy:rcpt_domains=test.example",
                                  *plugins(spec("role_relay")))
        self.assertEqual(rc, 0, lines)
        self.assertEqual(self.warnings(lines), [], lines)


class NoTakerTest(RolesTestCase):
    def test_role_none_alone_warns(self):
        rc, out, lines = self.check(*plugins(spec("role_none")))
        self.assertEqual(rc, 0, lines)
        self.assertIn("configuration ok (1 plugin(s))", out)
        self.assertEqual(len(self.warnings(lines)), 1, lines)
        self.assertIn(NO_TAKER, self.warnings(lines)[0])

    def test_empty_chain_warns(self):
        rc, _, lines = self.check()
        self.assertEqual(rc, 0, lines)
        self.assertEqual(len(self.warnings(lines)), 1, lines)
        self.assertIn(NO_TAKER, self.warnings(lines)[0])

    def test_a_10_plugin_may_accept_no_warning(self):
        # abi_old's descriptor stops before `roles`: unknown, and it does
        # ACCEPT at eom, so a warning would be wrong.
        rc, _, lines = self.check(*plugins(spec("role_none"), spec("abi_old")))
        self.assertEqual(rc, 0, lines)
        self.assertEqual(self.warnings(lines), [], lines)

    def test_a_store_silences_it(self):
        rc, _, lines = self.check(*plugins(spec("role_none")), "-p", "sink")
        self.assertEqual(rc, 0, lines)
        self.assertEqual(self.warnings(lines), [], lines)


class NoTakerAtStartTest(RolesTestCase, DaemonTestCase):
    def test_warning_at_start_and_it_is_true(self):
        d = self.daemon(*plugins(spec("role_none")))
        self.assertIn(NO_TAKER, d.log())
        c = self.client(d)
        c.ehlo()
        r = transaction(c)
        self.assertEqual((r.code, r.enhanced), (451, "4.3.0"), r)


class RolesBeforeTest(RolesTestCase, DaemonTestCase):
    """sh_roles_before(): a relay learns whether edits may still come at
    eom from the plugins before it."""

    def relay_log(self, *names):
        d = self.daemon(*plugins(*(spec(n) for n in names)))
        c = self.client(d)
        c.ehlo()
        self.assertEqual(transaction(c).code, 250)
        return d.wait_log("role_relay: roles_before=")

    def test_restriction_only(self):
        self.assertIn("role_relay: roles_before=0x8\n",
                      self.relay_log("role_restrict", "role_relay"))

    def test_an_editor_before_the_relay(self):
        require_plugin("edit_message")
        self.assertIn("role_relay: roles_before=0x9\n",
                      self.relay_log("role_restrict", "edit_message", "role_relay"))

    def test_a_10_plugin_counts_as_an_editor(self):
        self.assertIn("role_relay: roles_before=0x9\n",
                      self.relay_log("role_restrict", "abi_old", "role_relay"))


class EditorOrderTest(RolesTestCase):
    def spamfilter(self):
        require_bundled_plugin("spamfilter")
        return "spamfilter:rules=%s/plugins/spamfilter/default.rules" % SOURCE_DIR

    def test_editor_after_store_warns(self):
        require_bundled_plugin("sink")
        rc, _, lines = self.check("-p", "sink", "-p", self.spamfilter())
        self.assertEqual(rc, 0, lines)
        self.assertEqual(len(self.warnings(lines)), 1, lines)
        self.assertIn("warn: plugin spamfilter edits messages after plugin sink stores "
                      "or relays them: sink does not see its edits", self.warnings(lines)[0])

    def test_editor_before_store_is_fine(self):
        require_bundled_plugin("sink")
        rc, _, lines = self.check("-p", self.spamfilter(), "-p", "sink")
        self.assertEqual(rc, 0, lines)
        self.assertEqual(self.warnings(lines), [], lines)


class DefaultChainRolesTest(RolesTestCase):
    def test_default_chain_is_clean(self):
        for name in ("policy", "sizefilter", "spamfilter", "maildump"):
            require_bundled_plugin(name)
        root = tempfile.mkdtemp(prefix="smtphook-roles-")
        self.addCleanup(shutil.rmtree, root, True)
        rc, out, lines = self.check(*test_default_chain.make_run_args(
            os.path.join(root, "maildir")))
        self.assertEqual(rc, 0, lines)
        self.assertIn("configuration ok (4 plugin(s))", out)
        self.assertEqual(self.warnings(lines), [], lines)


if __name__ == "__main__":
    unittest.main()

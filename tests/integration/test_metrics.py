"""Plugin metrics (SDK 1.1, smtphook.h sh_counter_register, server/metrics.c):
a plugin's counters, added on the loop and from the pool, and the host's
numbers per plugin x hook, as the debug lines the daemon logs at shutdown
(-v) and after --check -v."""
import re
import signal
import unittest

from smtphook_test import (SLOW, DaemonTestCase, require_plugin, run_daemon,
                           transaction)
from plugin_helpers import plugins, spec


def metric_lines(log):
    return [m.group(1) for m in re.finditer(r"metrics: (.*)", log)]


class MetricsTest(DaemonTestCase):
    def setUp(self):
        require_plugin("counters")
        require_plugin("reject_at")

    def run_messages(self, n, *extra):
        d = self.daemon("-v", *plugins(*extra, spec("counters")))
        c = self.client(d)
        c.cmd("EHLO client.test")
        for _ in range(n):
            self.assertEqual(transaction(c).code, 250)
        c.cmd("QUIT")
        c.close()
        d.wait_log("disconnect from")
        d.send_signal(signal.SIGTERM)
        d.proc.wait(timeout=20 * SLOW)
        log = d.log()
        d.stop()
        return log

    def test_counters_from_loop_and_pool(self):
        lines = metric_lines(self.run_messages(3))
        self.assertIn("plugin=counters counter=counters_messages value=3", lines)
        self.assertIn("plugin=counters counter=counters_pool_jobs value=3", lines)

    def test_bad_and_late_registrations_refused(self):
        log = self.run_messages(1)
        self.assertIn("counters: bad=NULL dup=NULL", log)
        self.assertIn("counters: late=NULL", log)
        # Refused registrations are not shown.
        self.assertNotIn("counter=counters_late", log)
        self.assertNotIn("counter=9bad", log)

    def test_per_plugin_hook_numbers(self):
        lines = metric_lines(self.run_messages(
            2, spec("reject_at", hook="rcpt", match="nobody@test.example")))
        eom = [ln for ln in lines if ln.startswith("plugin=counters hook=eom ")]
        self.assertEqual(len(eom), 1, lines)
        self.assertIn(" calls=2 ", eom[0])
        self.assertIn(" accept=2 ", eom[0])
        self.assertIn(" pendings=2 ", eom[0])
        self.assertIn(" timeouts=0 ", eom[0])
        rcpt = [ln for ln in lines if ln.startswith("plugin=reject_at hook=rcpt ")]
        self.assertEqual(len(rcpt), 1, lines)
        self.assertIn(" calls=2 continue=2 ", rcpt[0])
        # Notifications are counted too: one disconnect per connection
        # (the daemon's own readiness probe is one more).
        self.assertTrue(any(ln.startswith("plugin=counters hook=connect calls=")
                            for ln in lines), lines)

    def test_check_verbose_shows_registered_counters(self):
        r = run_daemon(["--check", "-v", *plugins(spec("counters"))])
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = metric_lines(r.stderr + r.stdout)
        self.assertIn("plugin=counters counter=counters_messages value=0", lines)
        self.assertIn("plugin=counters counter=counters_pool_jobs value=0", lines)


if __name__ == "__main__":
    unittest.main()

"""Smoke test: the daemon serves one message through the sink plugin."""
import unittest

from smtphook_test import DaemonTestCase, transaction, HOSTNAME


class SmokeTest(DaemonTestCase):
    def test_one_message(self):
        d = self.daemon("-p", "sink")
        c = self.client(d)
        self.assertEqual(c.greeting.code, 220)
        self.assertEqual(c.greeting.lines[0], "220 %s ESMTP smtphook" % HOSTNAME)
        self.assertEqual(c.ehlo().code, 250)
        r = transaction(c)
        self.assertEqual(r.code, 250, r)
        self.assertEqual(c.cmd("QUIT").code, 221)


if __name__ == "__main__":
    unittest.main()

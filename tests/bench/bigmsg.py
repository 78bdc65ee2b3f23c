#!/usr/bin/env python3
"""bigmsg.py - deliver one big message with a prepared buffer (scenario e)

smtp-source formats its message line by line and needs about a core for
it, so with one huge message it, not the server, would be measured.  This
client builds the message once (base64-like lines of 76 characters, as an
attachment has) and hands it to sendall(), which loops in C: the time
from the 354 to the final reply is the server's.

    python3 tests/bench/bigmsg.py [--size BYTES] HOST:PORT

As a module: BigMessage(size).deliver(port, on_connected=None) returns a
dict with the reply and the timings.
"""
import argparse
import socket
import sys
import time

LINE = 76
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def make_message(size):
    """A message of about size octets: a small header, then CRLF lines."""
    head = (b"From: <bench@example.net>\r\nTo: <sink@example.org>\r\n"
            b"Subject: one big message\r\nMessage-ID: <big.1@example.net>\r\n"
            b"MIME-Version: 1.0\r\n\r\n")
    # 64 distinct lines, rotated: no line starts with '.', no stuffing.
    lines = []
    for i in range(64):
        rot = ALPHABET[i:] + ALPHABET[:i]
        lines.append((rot * 2)[:LINE] + b"\r\n")
    block = b"".join(lines)
    body_len = max(0, size - len(head))
    reps = body_len // len(block) + 1
    body = (block * reps)[:body_len]
    # End on a line end so the end marker is "\r\n.\r\n".
    cut = body.rfind(b"\r\n") + 2 if body else 0
    return head + body[:cut]


class SMTPError(Exception):
    pass


class BigMessage:
    def __init__(self, size):
        self.data = make_message(size)

    @staticmethod
    def _reply(f):
        """Read one (possibly multi-line) reply; return (code, text)."""
        lines = []
        while True:
            line = f.readline(4096)
            if not line:
                raise SMTPError("connection closed")
            lines.append(line.decode("latin-1").rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                break
        return int(lines[-1][:3]), "\n".join(lines)

    def deliver(self, port, host="127.0.0.1", on_connected=None,
                on_data=None, timeout=120.0):
        """One session, one message.  on_connected() runs after EHLO,
        on_data() right after the 354 (so a caller can sample the server
        there).  Returns timings and the final reply."""
        s = socket.create_connection((host, port), timeout=timeout)
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            f = s.makefile("rb")

            def cmd(line, want):
                s.sendall(line)
                code, text = self._reply(f)
                if code != want:
                    raise SMTPError(f"{line.strip()!r}: {text}")
                return text

            code, text = self._reply(f)
            if code != 220:
                raise SMTPError(f"greeting: {text}")
            cmd(b"EHLO bench.example\r\n", 250)
            if on_connected is not None:
                on_connected()
            cmd(b"MAIL FROM:<bench@example.net>\r\n", 250)
            cmd(b"RCPT TO:<sink@example.org>\r\n", 250)
            cmd(b"DATA\r\n", 354)
            if on_data is not None:
                on_data()
            t0 = time.monotonic()
            s.sendall(self.data)
            s.sendall(b".\r\n")
            code, text = self._reply(f)
            t1 = time.monotonic()
            try:
                s.sendall(b"QUIT\r\n")
                self._reply(f)
            except (OSError, SMTPError):
                pass
            return {"code": code, "reply": text, "elapsed": t1 - t0,
                    "octets": len(self.data)}
        finally:
            s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=100 << 20)
    ap.add_argument("target", help="HOST:PORT")
    a = ap.parse_args()
    host, _, port = a.target.rpartition(":")
    r = BigMessage(a.size).deliver(int(port), host=host or "127.0.0.1")
    print(f"{r['octets']} octets in {r['elapsed']:.3f} s: "
          f"{r['octets'] / r['elapsed'] / 1e6:.1f} MB/s; {r['reply']}")
    return 0 if 200 <= r["code"] < 300 else 1


if __name__ == "__main__":
    sys.exit(main())

"""The man pages man/smtphookd.8 and man/smtphook-plugin.3: mandoc's lint
finds nothing at warning level or above, man(1) renders them with their
sections, and the OPTIONS section of smtphookd(8) names exactly the options
of `smtphookd --help` (long and short, paired the same way)."""
import os
import re
import subprocess
import unittest

from smtphook_test import DAEMON, SOURCE_DIR, require_file, require_tool

MAN_DIR = os.path.join(SOURCE_DIR, "man")
PAGES = {
    "smtphookd.8": ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "CONFIGURATION FILE",
                    "SIGNALS", "ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES",
                    "SEE ALSO"),
    "smtphook-plugin.3": ("NAME", "SYNOPSIS", "DESCRIPTION", "RETURN VALUES",
                          "HELPERS AND HARNESS", "EXAMPLES", "SEE ALSO"),
}
# Subsections of smtphook-plugin(3) the brief promises (lifecycle, hooks,
# verdicts, PENDING, threads, edits, versioning).
PLUGIN_SUBSECTIONS = ("The descriptor", "Lifecycle and hooks", "Verdicts", "PENDING",
                      "Threads", "Message edits", "Declared roles", "Metrics",
                      "Versioning")


def page(name):
    return require_file(os.path.join(MAN_DIR, name), "man page " + name)


def help_options(text):
    """{(short or None, long)} of the option lines of `smtphookd --help`:
    `  -l, --listen HOST:PORT  ...` or `      --plugin-dir DIR  ...`."""
    opts = set()
    for line in text.splitlines()[1:]:
        m = re.match(r"^  (?:-([A-Za-z0-9]), |    )--([a-z0-9][a-z0-9-]*)(?:\s|$)", line)
        if m is None:
            raise AssertionError("unexpected --help line: %r" % line)
        opts.add((m.group(1), m.group(2)))
    return opts


def manpage_options(source):
    """{(short or None, long)} of the items of the top-level list of the
    OPTIONS section of an mdoc source: `.It Fl l Ar x , Fl Fl listen Ar x`."""
    opts = set()
    in_options = False
    depth = 0
    for line in source.splitlines():
        if line.startswith(".Sh "):
            in_options = line.split(None, 1)[1].strip() == "OPTIONS"
            continue
        if not in_options:
            continue
        if line.startswith(".Bl"):
            depth += 1
        elif line.startswith(".El"):
            depth -= 1
        elif line.startswith(".It") and depth == 1:
            words = line.split()[1:]
            short = long = None
            i = 0
            while i < len(words):
                if words[i] == "Fl" and i + 1 < len(words):
                    if words[i + 1] == "Fl" and i + 2 < len(words):
                        if long is not None:
                            raise AssertionError("two long options in %r" % line)
                        long = words[i + 2]
                        i += 3
                        continue
                    if short is not None:
                        raise AssertionError("two short options in %r" % line)
                    short = words[i + 1]
                    i += 2
                    continue
                i += 1
            if long is None:
                raise AssertionError("OPTIONS item without a long option: %r" % line)
            opts.add((short, long))
    if not opts:
        raise AssertionError("no OPTIONS list found")
    return opts


def flat(opts):
    """The option strings of {(short, long)}: {'-l', '--listen', ...}."""
    out = set()
    for short, long in opts:
        out.add("--" + long)
        if short is not None:
            out.add("-" + short)
    return out


class LintTest(unittest.TestCase):
    def test_mandoc_lint_is_clean(self):
        mandoc = require_tool("mandoc", "mandoc")
        for name in PAGES:
            with self.subTest(page=name):
                p = subprocess.run([mandoc, "-T", "lint", "-W", "warning", page(name)],
                                   capture_output=True, text=True, timeout=60,
                                   stdin=subprocess.DEVNULL)
                out = (p.stdout + p.stderr).strip()
                self.assertEqual(out, "", "mandoc -T lint -W warning %s:\n%s" % (name, out))
                self.assertEqual(p.returncode, 0, "mandoc exit status %d" % p.returncode)


class RenderTest(unittest.TestCase):
    def render(self, name):
        """man -l, as a user reads the page (80 columns, no pager, no tty)."""
        man = require_tool("man", "man-db")
        env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="")
        env.pop("MANPAGER", None)
        env.pop("PAGER", None)
        p = subprocess.run([man, "-l", "-P", "cat", page(name)], capture_output=True,
                           timeout=60, stdin=subprocess.DEVNULL, env=env)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        text = p.stdout.decode("utf-8", errors="replace")
        # Without a tty man(1) prints plain text; strip overstriking anyway.
        return re.sub(r".\x08", "", text)

    def test_pages_render_with_their_sections(self):
        for name, sections in PAGES.items():
            with self.subTest(page=name):
                text = self.render(name)
                title = name.rsplit(".", 1)
                self.assertIn("%s(%s)" % (title[0].upper(), title[1]), text.splitlines()[0])
                for section in sections:
                    self.assertRegex(text, r"(?m)^%s$" % re.escape(section))
                for line in text.splitlines():
                    self.assertLessEqual(len(line), 80, "wider than MANWIDTH: %r" % line)

    def test_plugin_page_covers_the_sdk(self):
        text = self.render("smtphook-plugin.3")
        for sub in PLUGIN_SUBSECTIONS:
            self.assertRegex(text, r"(?m)^   %s$" % re.escape(sub))


def sdk_text(*parts):
    with open(os.path.join(SOURCE_DIR, "sdk", *parts)) as f:
        return f.read()


class PluginPageNamesTest(unittest.TestCase):
    """smtphook-plugin(3) names every function of sdk/smtphook.h in its
    SYNOPSIS, and no function, macro or hook that the SDK does not have."""

    def setUp(self):
        with open(page("smtphook-plugin.3")) as f:
            self.src = f.read()
        self.header = sdk_text("smtphook.h")
        self.all_sdk = self.header + sdk_text("helpers", "sh_helpers.h") + \
            sdk_text("harness", "sh_harness.h")

    def test_synopsis_has_every_wrapper(self):
        synopsis = self.src[self.src.index(".Sh SYNOPSIS"):self.src.index(".Sh DESCRIPTION")]
        in_synopsis = set(re.findall(r"(?m)^\.F[no] (\S+)", synopsis))
        wrappers = set(re.findall(r"(?m)^(sh_[a-z_]+)\(", self.header))
        self.assertGreater(len(wrappers), 20, wrappers)
        self.assertEqual(sorted(wrappers - in_synopsis), [],
                         "sdk/smtphook.h functions missing from the SYNOPSIS")

    def test_no_invented_names(self):
        named = set(re.findall(r"\bF[no] ([A-Za-z_][A-Za-z0-9_]*)", self.src))
        named |= set(re.findall(r"\bDv ((?:SH|RTLD)_[A-Z0-9_]+)", self.src))
        hooks = set(re.findall(r"\(\*([a-z_]+)\)\(sh_ctx", self.header))
        self.assertIn("eom", hooks)
        unknown = []
        for name in sorted(named):
            if name in ("sh_", "SH_"):
                continue        # "the sh_* functions"
            if name.startswith("sh_") or name.startswith("SH_"):
                if not re.search(r"\b%s\b" % re.escape(name), self.all_sdk):
                    unknown.append(name)
            elif name.startswith("RTLD_"):
                continue
            elif name not in hooks:
                unknown.append(name)
        self.assertEqual(unknown, [], "names on the page that the SDK does not have")


class OptionsTest(unittest.TestCase):
    def test_manpage_options_match_help(self):
        p = subprocess.run([require_file(DAEMON, "smtphookd"), "--help"], capture_output=True,
                           text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr)
        from_help = help_options(p.stdout)
        with open(page("smtphookd.8")) as f:
            from_page = manpage_options(f.read())
        a, b = flat(from_help), flat(from_page)
        self.assertEqual(a, b, "options of --help and smtphookd(8) OPTIONS differ:\n"
                         "  only in --help: %s\n  only in the man page: %s"
                         % (" ".join(sorted(a - b)) or "-", " ".join(sorted(b - a)) or "-"))
        # The same short letter for the same long option.
        self.assertEqual(from_help, from_page, "short/long pairs differ:\n"
                         "  --help: %s\n  man page: %s"
                         % (sorted(from_help - from_page, key=str),
                            sorted(from_page - from_help, key=str)))


if __name__ == "__main__":
    unittest.main()

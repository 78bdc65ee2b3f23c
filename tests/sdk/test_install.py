"""test_install.py - the SDK from outside: install, generate, build, test, load

ctest "sdk.install" (CMakeLists.txt; not in sanitizer builds, whose libraries
an ordinary compiler cannot link).  Everything happens in a temporary
directory, with nothing of this source tree on any search path:

1. docs/plugin-guide.md's tested commands (the ```sh blocks after a
   "<!-- guide-test -->" line, and the files of "<!-- guide-test: file NAME -->"
   blocks) run in order in one bash, with HOME in the temporary directory
   and the build tree reachable only as "build" (the checkout the guide's
   first command runs in): cmake --install to a prefix, smtphook-plugin new,
   make && make test (pkg-config), the same with CMake (find_package), the
   installed smtphookd --check, domain_guard.c from the installed examples
   built with -std=c11 -Wall -Wextra -Werror with pkg-config and with CMake.
   The time the guide's path takes is printed.
2. The public headers compile as strict C11 (-pedantic -Werror) and as C++.
3. The installed text files name no path of the source or build tree.
4. The harness finds a NAME without $SMTPHOOK_PLUGIN_DIR (beside the shared
   library), says where it looked when it cannot, and a failed expectation
   names the hook, the expected and the actual reply.
5. The static harness links (libsmtphook-harness.a and its Libs.private).
6. DESTDIR is honoured, and the staged tree works where it lies.

A missing tool (cc, c++, pkg-config, cmake, make) is a failure, never a skip.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

SRC = os.path.abspath(os.environ.get("SMTPHOOK_SOURCE_DIR",
    os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.path.abspath(os.environ.get("SMTPHOOK_BUILD_DIR", os.path.join(SRC, "build")))
GUIDE = os.path.join(SRC, "docs", "plugin-guide.md")
TOOLS = ["cc", "c++", "pkg-config", "cmake", "make", "bash"]
# Variables that could lead a compiler or pkg-config back into this tree.
SCRUB = ["PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "CMAKE_PREFIX_PATH", "CPATH",
    "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "LIBRARY_PATH", "LD_LIBRARY_PATH",
    "SMTPHOOK_PLUGIN_DIR", "SMTPHOOK_SKELETON_DIR", "CFLAGS", "LDFLAGS",
    "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "CMAKE_GENERATOR"]


def guide_script(path=GUIDE):
    """guide_script - the bash script of the guide's tested blocks, in order"""
    out, marker, block, fence = [], None, None, None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if block is not None:
                if line.rstrip() == fence:
                    if marker == "run":
                        out.append("# docs/plugin-guide.md:%d" % start)
                        out.extend(block)
                    else:
                        out.append("cat > '%s' <<'GUIDE_TEST_EOF'" % marker)
                        out.extend(block)
                        out.append("GUIDE_TEST_EOF")
                    block, marker = None, None
                else:
                    block.append(line.rstrip("\n"))
                continue
            m = re.match(r"\s*<!--\s*guide-test(?::\s*file\s+(\S+))?\s*-->", line)
            if m:
                marker = m.group(1) or "run"
                continue
            m = re.match(r"(```+)\w*\s*$", line)
            if m and marker is not None:
                block, fence, start = [], m.group(1), lineno
            elif line.strip() and marker is not None:
                raise ValueError("%s:%d: a guide-test marker must be followed by a "
                    "code block" % (path, lineno))
    return "\n".join(out) + "\n"


def clean_env(home):
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env["HOME"] = home
    env["LC_ALL"] = "C"
    # The system's PATH only: no build tree, no source tree.
    env["PATH"] = ":".join(p for p in env.get("PATH", "/usr/bin:/bin").split(":")
        if p and not os.path.abspath(p).startswith((SRC, BUILD)))
    return env


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            raise AssertionError("sdk.install needs %s on PATH (Debian: apt-get "
                "install build-essential g++ pkg-config cmake); this test does not "
                "skip" % ", ".join(missing))
        cls.tmp = tempfile.mkdtemp(prefix="smtphook-install-")
        cls.home = os.path.join(cls.tmp, "home")
        cls.checkout = os.path.join(cls.tmp, "checkout")
        os.makedirs(cls.home)
        os.makedirs(cls.checkout)
        os.symlink(BUILD, os.path.join(cls.checkout, "build"))
        cls.env = clean_env(cls.home)
        cls.prefix = os.path.join(cls.home, "smtphook")
        # 1. The guide, end to end.
        script = "set -euxo pipefail\n" + guide_script()
        with open(os.path.join(cls.tmp, "guide.sh"), "w") as f:
            f.write(script)
        t0 = time.monotonic()
        r = subprocess.run(["bash", os.path.join(cls.tmp, "guide.sh")],
            cwd=cls.checkout, env=cls.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=500)
        cls.guide_seconds = time.monotonic() - t0
        cls.guide_output = r.stdout
        cls.guide_rc = r.returncode
        print("sdk.install: the plugin guide's path (cmake --install, "
            "smtphook-plugin new, make && make test, CMake build + ctest, "
            "smtphookd --check, domain_guard with pkg-config and with CMake) "
            "took %.1f s" % cls.guide_seconds, flush=True)
        pcs = [os.path.join(d, f) for d, _, fs in os.walk(cls.prefix) for f in fs
            if f == "smtphook.pc"]
        cls.pcdir = os.path.dirname(pcs[0]) if pcs else None

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("SMTPHOOK_KEEP_TMP"):
            print("kept", cls.tmp)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_ok(self, argv, cwd=None, env=None, **kw):
        r = subprocess.run(argv, cwd=cwd or self.tmp, env=env or self.sdk_env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120, **kw)
        self.assertEqual(r.returncode, 0, "%s failed (%d):\n%s%s" % (" ".join(argv),
            r.returncode, r.stdout, r.stderr))
        return r

    def sdk_env(self):
        env = dict(self.env)
        env["PKG_CONFIG_PATH"] = self.pcdir or ""
        env["PATH"] = os.path.join(self.prefix, "bin") + ":" + env["PATH"]
        if self.pcdir:
            env["SMTPHOOK_PLUGIN_DIR"] = os.path.join(os.path.dirname(self.pcdir),
                "smtphook")
        return env

    def pkg(self, *args):
        return self.run_ok(["pkg-config"] + list(args)).stdout.split()

    def test_1_guide(self):
        self.assertEqual(self.guide_rc, 0, "the guide's commands failed:\n" +
            self.guide_output[-6000:])
        self.assertIn("configuration ok", self.guide_output)
        self.assertIn("test_hello: ok (0 failed)", self.guide_output)
        self.assertRegex(self.guide_output, r"100% tests passed")
        for f in ["bin/smtphookd", "bin/smtphook-plugin", "include/smtphook/smtphook.h",
                "include/smtphook/sh_helpers.h", "include/smtphook/sh_harness.h"]:
            self.assertTrue(os.path.exists(os.path.join(self.prefix, f)), f)
        self.assertIsNotNone(self.pcdir, "no smtphook.pc installed")
        libdir = os.path.dirname(self.pcdir)
        for f in ["libsmtphook-helpers.a", "libsmtphook-helpers.so.1",
                "libsmtphook-harness.a", "libsmtphook-harness.so.1",
                "cmake/smtphook/smtphookConfig.cmake", "smtphook/sink.so",
                "pkgconfig/smtphook-harness.pc"]:
            self.assertTrue(os.path.exists(os.path.join(libdir, f)), f)

    def test_2_headers_c11_and_cxx(self):
        self.assertIsNotNone(self.pcdir)
        cflags = self.pkg("--cflags", "smtphook-harness")
        src = os.path.join(self.tmp, "headers")
        with open(src + ".c", "w") as f:
            f.write("#include <smtphook.h>\n#include <sh_helpers.h>\n"
                "#include <sh_harness.h>\nint main(void) { return 0; }\n")
        shutil.copy(src + ".c", src + ".cpp")
        self.run_ok(["cc", "-std=c11", "-pedantic", "-Wall", "-Wextra", "-Werror",
            "-fsyntax-only"] + cflags + [src + ".c"])
        self.run_ok(["c++", "-std=c++17", "-pedantic", "-Wall", "-Wextra", "-Werror",
            "-fsyntax-only"] + cflags + [src + ".cpp"])

    def test_3_no_path_into_the_tree(self):
        for d, _, fs in os.walk(self.prefix):
            for f in fs:
                p = os.path.join(d, f)
                if os.path.islink(p) or not re.search(r"(\.pc|\.cmake|\.h|\.in|\.c|"
                        r"smtphook-plugin)$", f):
                    continue
                with open(p, encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
                for tree in (SRC, BUILD, os.path.realpath(SRC), os.path.realpath(BUILD)):
                    self.assertNotIn(tree, text, "%s names %s" % (p, tree))

    def test_4_harness_lookup_and_failure_output(self):
        hello = os.path.join(self.home, "hello")
        self.assertTrue(os.path.exists(os.path.join(hello, "test_hello")))
        env = self.sdk_env()
        env.pop("SMTPHOOK_PLUGIN_DIR", None)
        # sink by NAME, found beside libsmtphook-harness.so
        self.run_ok(["./test_hello", "./hello.so"], cwd=hello, env=env)
        src = os.path.join(self.tmp, "fails.c")
        with open(src, "w") as f:
            f.write('#include <stdio.h>\n#include <sh_harness.h>\n'
                'int main(int argc, char **argv) { (void)argc;\n'
                ' sh_harness *h = sh_harness_new();\n'
                ' if (sh_harness_load(h, "no_such_plugin") == 0) return 10;\n'
                ' printf("load: %s\\n", sh_harness_error(h));\n'
                ' if (sh_harness_load(h, argv[1]) < 0 || sh_harness_load(h, "sink") < 0)'
                ' { printf("%s\\n", sh_harness_error(h)); return 11; }\n'
                ' sh_harness_connect(h, "192.0.2.1");\n'
                ' sh_harness_expect(h, "EHLO x.example", 250, NULL);\n'
                ' sh_harness_expect(h, "MAIL FROM:<a@example.net>", 250, NULL);\n'
                ' sh_harness_expect(h, "RCPT TO:<b@example.org>", 550, "5.7.1");\n'
                ' int n = sh_harness_failures(h); sh_harness_free(h);\n'
                ' return n == 1 ? 0 : 12; }\n')
        exe = os.path.join(self.tmp, "fails")
        libdir = self.pkg("--variable=libdir", "smtphook-harness")[0]
        self.run_ok(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", exe, src]
            + self.pkg("--cflags", "--libs", "smtphook-harness")
            + ["-Wl,-rpath," + libdir])
        r = self.run_ok([exe, os.path.join(hello, "hello.so") + ":deny=spam.example"],
            env=env)
        self.assertIn("no such plugin", r.stdout)
        self.assertIn("SMTPHOOK_PLUGIN_DIR", r.stdout)
        self.assertRegex(r.stderr, r"fails\.c:\d+: rcpt hook, after \"RCPT TO:<b@example\.org>\":")
        self.assertIn("expected 550 REJECT, reply containing \"5.7.1\"", r.stderr)
        self.assertIn("got      250 CONTINUE or ACCEPT: \"250 ", r.stderr)

    def test_5_static_harness(self):
        hello = os.path.join(self.home, "hello")
        libdir = self.pkg("--variable=libdir", "smtphook-harness")[0]
        libs = [a for a in self.pkg("--static", "--libs", "smtphook-harness")
            if a != "-lsmtphook-harness"]
        exe = os.path.join(self.tmp, "test_hello_static")
        self.run_ok(["cc", "-std=c11", "-o", exe, os.path.join(hello, "test_hello.c")]
            + self.pkg("--cflags", "smtphook-harness")
            + [os.path.join(libdir, "libsmtphook-harness.a")] + libs)
        r = subprocess.run(["readelf", "-d", exe], stdout=subprocess.PIPE, text=True)
        self.assertNotIn("libsmtphook-harness", r.stdout)
        self.run_ok([exe, "./hello.so"], cwd=hello)

    def test_6_destdir(self):
        stage = os.path.join(self.tmp, "stage")
        self.opt_existed = os.path.exists("/opt/smtphook")
        env = dict(self.env)
        env["DESTDIR"] = stage
        self.run_ok(["cmake", "--install", BUILD, "--prefix", "/opt/smtphook"], env=env)
        root = os.path.join(stage, "opt", "smtphook")
        for f in ["bin/smtphookd", "include/smtphook/sh_harness.h"]:
            self.assertTrue(os.path.exists(os.path.join(root, f)), f)
        if not self.opt_existed:
            self.assertFalse(os.path.exists("/opt/smtphook"), "DESTDIR ignored")
        # The staged tree is relocatable: its daemon finds its plugins.
        r = self.run_ok([os.path.join(root, "bin", "smtphookd"), "--check", "-p", "sink"],
            env=env)
        self.assertIn("configuration ok", r.stdout + r.stderr)


if __name__ == "__main__":
    if sys.argv[1:] == ["--print-guide"]:
        sys.stdout.write(guide_script())
    else:
        unittest.main()

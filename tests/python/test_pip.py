"""pip install ./client-lib/python, as documented (docs/python.md, the
README), from a clean copy of the source tree (what a clone has: no build/,
no `make` first) into a fresh virtual environment, offline; its Python then
imports gild and calls a running server."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

from gildproc import ROOT, Gild

# Bounds the install (it compiles libgild: seconds) and the call.
INSTALL_S = 300
CALL_S = 60

CALL = """
import json, sys
import gild, gild._native
with gild.connect(sys.argv[1], timeout=30) as c:
    print(json.dumps({"add": c.call("add", 1, 2),
                      "echo": c.call("echo", [1, 2.5, None], flag=True),
                      "gild": gild.__file__,
                      "native": gild._native.__file__}))
"""


# Where the documented commands make the environment; the test's own
# temporary one replaces it.
DOC_VENV = "~/venvs/gild"


def install_commands(doc):
    """The argv of each line of doc's ```sh block that runs pip install."""
    with open(os.path.join(ROOT, doc)) as f:
        blocks = re.findall(r"```sh\n(.*?)```", f.read(), re.S)
    block = next(b for b in blocks if " install " in b and "pip" in b)
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


def clean_copy(dest):
    """Copies into dest the files a clone of ROOT would have (tracked and
    not ignored, as they are in the working tree, uncommitted edits
    included); outside a git checkout, the tree less its build folders."""
    try:
        out = subprocess.run(
            ["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others",
             "--exclude-standard"], capture_output=True, check=True,
            timeout=60).stdout
    except (OSError, subprocess.CalledProcessError):
        skip = shutil.ignore_patterns(".git", "build", "build-san",
                                      "build-fuzz", "__pycache__")
        shutil.copytree(ROOT, dest, symlinks=True, ignore=skip)
        return
    for rel in out.decode().split("\0"):
        src = os.path.join(ROOT, rel)
        if not rel or not os.path.lexists(src):  # deleted, not committed
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel), follow_symlinks=False)


class DocsTest(unittest.TestCase):
    def test_readme_shows_the_same_commands(self):
        self.assertEqual(install_commands("README.md"),
                         install_commands("docs/python.md"))


class PipInstallTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gild-pip-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.src = os.path.join(self.tmp, "src")
        clean_copy(self.src)
        self.assertFalse(os.path.exists(os.path.join(self.src, "build")))
        # No PYTHONPATH (it would find the checkout's gild), and pip offline
        # for sure: nothing it needs may come from a package index.
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("PYTHON", "PIP_"))}
        self.env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
                        PIP_NO_INPUT="1", PIP_NO_CACHE_DIR="1")

    def run_ok(self, argv, timeout, cwd):
        p = subprocess.run(argv, cwd=cwd, env=self.env, timeout=timeout,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, "%s failed:\n%s"
                         % (" ".join(argv), out[-6000:]))
        return out

    def test_install_and_call(self):
        venv = os.path.join(self.tmp, "venv")
        py = os.path.join(venv, "bin", "python")
        commands = install_commands("docs/python.md")
        self.assertIn("./client-lib/python", commands[-1])
        # As documented, with this test's environment and the system Python
        # (the one the tests run under).
        for argv in commands:
            argv = [a.replace(DOC_VENV, venv) for a in argv]
            if argv[0] == "python3":
                argv[0] = sys.executable
            self.run_ok(argv, INSTALL_S, self.src)
        shutil.rmtree(self.src)  # the installed package must stand alone
        with Gild(workers=1) as g:
            # From the temporary folder: the venv's gild, not a checkout's.
            out = self.run_ok([py, "-c", CALL, g.url], CALL_S, self.tmp)
        got = json.loads(out.strip().splitlines()[-1])
        self.assertEqual(got["add"], 3)
        self.assertEqual(got["echo"], {"args": [[1, 2.5, None]],
                                       "kwargs": {"flag": True}})
        site = os.path.join(venv, "lib")
        self.assertTrue(got["gild"].startswith(site), got["gild"])
        self.assertTrue(got["native"].startswith(site), got["native"])


if __name__ == "__main__":
    unittest.main()

"""Every ```python block of the README and docs/ runs in make test (issue
20, item 8). Pages with tests of their own are left to them: python.md
(test_python.py), actors.md's client blocks (test_actors.py), lifecycle.md
(test_lifecycle.py). Here, the others, each by its kind:

- an excerpt of an example app (its first line `# examples/NAME.py`):
  each of its lines is in that file, in the same order (lines may be left
  out between them), so the page shows code the examples' tests run;
- a client block (it connects to tcp://127.0.0.1:7700): run against a
  server of the page's example app (the file its first excerpt names;
  examples/app.py when it has none), printing what its comments show
  (test_python.py's convention);
- an Exec source (first line `# variables: JSON`): run with those
  variables, its `result` what the comment on that line shows after
  "the reply: ";
- app code (the rest): run as a module is, with the gild package
  importable: its decorators and definitions must hold.
"""
import ast
import glob
import json
import os
import re
import subprocess
import sys
import textwrap
import unittest

from gildproc import ROOT, B, Gild
from test_python import shown_output

SANITIZED = bool(os.environ.get("SANITIZE"))
OWN_TESTS = {"python.md", "lifecycle.md"}
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    [os.path.join(ROOT, "client-lib", "python"), os.path.join(B, "python")]))
URL = "tcp://127.0.0.1:7700"


def pages():
    """(name, text) of the README and every docs page tested here."""
    paths = [os.path.join(ROOT, "README.md")] + sorted(
        glob.glob(os.path.join(ROOT, "docs", "*.md")))
    for path in paths:
        name = os.path.basename(path)
        if name not in OWN_TESTS:
            with open(path) as f:
                yield name, f.read()


def blocks(text):
    """The ```python blocks of a page, dedented (a block may sit in a list
    item)."""
    return [textwrap.dedent(b)
            for b in re.findall(r"^[ \t]*```python\n(.*?)^[ \t]*```", text,
                                re.S | re.M)]


def kind(page, code):
    first = code.split("\n", 1)[0]
    if re.match(r"# examples/\w+\.py$", first):
        return "excerpt"
    if first.startswith("# variables:"):
        return "exec"
    if URL in code:
        return "skip" if page == "actors.md" else "client"
    return "app"


def code_of(line):
    """A line without its comment (the page may annotate a line), on a
    line with code: an approximation that holds for the pages' code,
    which has no # inside strings."""
    if line.lstrip().startswith("#"):
        return line.rstrip()
    return line.split("#", 1)[0].rstrip()


def example_app(text):
    """The example app a page's client blocks call: its first excerpt's."""
    m = re.search(r"```python\n# (examples/\w+\.py)\n", text)
    return os.path.join(ROOT, m.group(1) if m else "examples/app.py")


class DocsTest(unittest.TestCase):
    def test_every_block_has_a_kind(self):
        seen = {}
        for page, text in pages():
            for code in blocks(text):
                seen.setdefault(kind(page, code), []).append(page)
        # Each kind is there, so none of the checks below is empty.
        for k in ("excerpt", "client", "exec", "app"):
            self.assertIn(k, seen)
        print("python blocks: %s" % {k: len(v) for k, v in seen.items()})

    def test_excerpts(self):
        for page, text in pages():
            for code in blocks(text):
                if kind(page, code) != "excerpt":
                    continue
                name = code.split("\n", 1)[0][2:]
                with open(os.path.join(ROOT, name)) as f:
                    lines = [code_of(l) for l in f.read().splitlines()]
                at = 0
                for line in code.splitlines()[1:]:
                    want = code_of(line)
                    if not want.strip():
                        continue
                    while at < len(lines) and lines[at] != want:
                        at += 1
                    self.assertLess(at, len(lines), "%s: %r is not in %s "
                                    "(in that order)" % (page, want, name))
                    at += 1

    def test_app_code(self):
        for page, text in pages():
            for code in blocks(text):
                if kind(page, code) != "app":
                    continue
                ast.parse(code)
                p = subprocess.run([sys.executable, "-c", code], env=ENV,
                                   capture_output=True, text=True,
                                   timeout=60)
                self.assertEqual(p.returncode, 0,
                                 "%s:\n%s\n%s" % (page, code, p.stderr))

    def test_exec_sources(self):
        for page, text in pages():
            for code in blocks(text):
                if kind(page, code) != "exec":
                    continue
                variables = json.loads(code.split("\n", 1)[0]
                                       [len("# variables:"):])
                m = re.search(r"# the reply: (.*)$", code, re.M)
                self.assertIsNotNone(m, "%s: no reply shown" % page)
                ns = dict(variables)
                exec(compile(code, page, "exec"), ns)
                self.assertEqual(ns["result"], ast.literal_eval(m.group(1)),
                                 "%s:\n%s" % (page, code))

    @unittest.skipIf(SANITIZED,
                     "the Python client is tested in the plain build")
    def test_client_blocks(self):
        for page, text in pages():
            codes = [c for c in blocks(text) if kind(page, c) == "client"]
            if not codes:
                continue
            with Gild(app=example_app(text), workers=2) as g:
                for code in codes:
                    p = subprocess.run(
                        [sys.executable, "-c", code.replace(URL, g.url)],
                        env=ENV, capture_output=True, text=True, timeout=120)
                    self.assertEqual(p.returncode, 0,
                                     "%s:\n%s\n%s" % (page, code, p.stderr))
                    self.assertEqual(p.stdout.splitlines(),
                                     shown_output(code),
                                     "the output of %s's\n%s" % (page, code))


if __name__ == "__main__":
    unittest.main()

"""mk/debian-archive.sh (the Debian archive mk/python-ft.sh fetches
CPython's source package from) takes it from this machine's apt
configuration, one-line or deb822, or from GILD_DEBIAN_MIRROR; and no
mirror or package registry address is written anywhere in the repository.
Offline: apt is pointed at sample configurations in a temporary folder
(APT_CONFIG) and only reads them."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from gildproc import ROOT

SCRIPT = os.path.join(ROOT, "mk", "debian-archive.sh")


def codename():
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return ""


@unittest.skipUnless(shutil.which("apt-get") and codename(),
                     "needs apt-get and a VERSION_CODENAME (Debian)")
class ArchiveTest(unittest.TestCase):
    def archive(self, one_line=None, deb822=None, env=None):
        """Runs the script against apt configured with these sources (and
        no downloaded lists); returns (exit code, stdout, stderr)."""
        with tempfile.TemporaryDirectory(prefix="gild-apt-") as d:
            parts = os.path.join(d, "sources.list.d")
            lists = os.path.join(d, "lists")
            os.makedirs(os.path.join(lists, "partial"))
            os.makedirs(parts)
            with open(os.path.join(d, "sources.list"), "w") as f:
                f.write(one_line or "")
            if deb822:
                with open(os.path.join(parts, "debian.sources"), "w") as f:
                    f.write(deb822)
            conf = os.path.join(d, "apt.conf")
            with open(conf, "w") as f:
                f.write('Dir::Etc::SourceList "%s/sources.list";\n'
                        'Dir::Etc::SourceParts "%s";\n'
                        'Dir::State::Lists "%s";\n' % (d, parts, lists))
            e = {k: v for k, v in os.environ.items()
                 if k != "GILD_DEBIAN_MIRROR"}
            e.update(APT_CONFIG=conf, **(env or {}))
            p = subprocess.run([SCRIPT], capture_output=True, text=True,
                               timeout=60, env=e)
            return p.returncode, p.stdout.strip(), p.stderr

    def test_one_line(self):
        rel = codename()
        got = self.archive(one_line=(
            "# a comment\n"
            "deb http://security.example.invalid/debian-security "
            "%s-security main\n"
            "deb-src http://src.example.invalid/debian %s main\n"
            "deb [arch=amd64] http://one.example.invalid/debian %s main "
            "contrib\n"
            "deb http://two.example.invalid/debian %s main\n"
            % (rel, rel, rel, rel)))
        self.assertEqual(got[:2], (0, "http://one.example.invalid/debian/"),
                         got[2])

    def test_deb822(self):
        rel = codename()
        got = self.archive(deb822=(
            "Types: deb\n"
            "URIs: http://security.example.invalid/debian-security\n"
            "Suites: %s-security\n"
            "Components: main\n"
            "\n"
            "Types: deb deb-src\n"
            "URIs: http://822.example.invalid/debian\n"
            "Suites: %s %s-updates\n"
            "Components: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
            % (rel, rel, rel)))
        self.assertEqual(got[:2], (0, "http://822.example.invalid/debian/"),
                         got[2])

    def test_other_repositories_are_not_taken(self):
        """Only an entry for this release with main counts: not another
        release, not a vendor's suite, not deb-src alone."""
        rel = codename()
        got = self.archive(one_line=(
            "deb http://vendor.example.invalid/apt stable main\n"
            "deb http://old.example.invalid/debian oldoldstable-x main\n"
            "deb-src http://src.example.invalid/debian %s main\n"
            "deb http://contrib.example.invalid/debian %s contrib\n"
            % (rel, rel)))
        self.assertEqual(got[0], 1)
        self.assertIn("names no Debian archive for " + rel, got[2])
        self.assertIn("GILD_DEBIAN_MIRROR", got[2])

    def test_override(self):
        got = self.archive(
            one_line="deb http://one.example.invalid/debian %s main\n"
            % codename(),
            env={"GILD_DEBIAN_MIRROR": "http://own.example.invalid/debian/"})
        self.assertEqual(got[:2], (0, "http://own.example.invalid/debian/"))

    def test_python_ft_uses_it(self):
        with open(os.path.join(ROOT, "mk", "python-ft.sh")) as f:
            text = f.read()
        self.assertIn('archive=$("$here/debian-archive.sh")', text)


# Hosts of Debian and Ubuntu archives and of package and image registries.
# (Written with escaped dots: this file does not match itself.)
KNOWN = re.compile(
    r"[a-z0-9.-]*\b(debian\.(org|net)|ubuntu\.com|launchpad\.net|"
    r"pypi\.(org|python\.org)|pythonhosted\.org|npmjs\.(org|com)|"
    r"yarnpkg\.com|golang\.org|goproxy\.[a-z]+|crates\.io|rubygems\.org|"
    r"docker\.(io|com)|ghcr\.io|quay\.io|gcr\.io|anaconda\.(org|com)|"
    r"conda\.io|maven\.org|nuget\.org)\b", re.I)
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://([^/\s\"'<>)`]+)", re.I)
RESERVED = re.compile(r"\.(invalid|example|test|localhost)(:\d+)?$", re.I)


class NoAddressTest(unittest.TestCase):
    def test_git_grep(self):
        """git grep over the tracked files finds no archive or registry
        host, and no URL whose host is a mirror, registry or proxy (the
        reserved .invalid, .example and .test names of the tests
        excepted)."""
        p = subprocess.run(["git", "-C", ROOT, "grep", "-nIi", "-E",
                            "[a-z]://|\\.(org|net|com|io)"],
                           capture_output=True, text=True, timeout=60)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        self.assertGreater(len(p.stdout.splitlines()), 10)  # it searched
        bad = []
        for line in p.stdout.splitlines():
            text = line.split(":", 2)[2]
            if KNOWN.search(text):
                bad.append(line)
                continue
            for host in URL.findall(text):
                if re.search("mirror|registry|proxy|archive|repo", host,
                             re.I) and not RESERVED.search(host):
                    bad.append(line)
        self.assertEqual(bad, [])


if __name__ == "__main__":
    unittest.main()

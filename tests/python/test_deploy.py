"""deploy/: the HAProxy config, the Kubernetes manifests, the systemd unit
and the Dockerfile are checked with the real tools where this machine has
them (haproxy -c, kubectl, systemd-analyze), and the image's build step
(the Dockerfile's `make ... install` line) is run here and its result
served from, as the image would."""
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

import yaml

from gildproc import ROOT, read_until, die_with_parent

DEPLOY = os.path.join(ROOT, "deploy")
K8S = os.path.join(DEPLOY, "k8s")


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=300,
                          **kw)


def drain_timeout(args):
    """The --drain-timeout seconds in a gild command line (30: the default)."""
    args = list(args)
    return float(args[args.index("--drain-timeout") + 1]) \
        if "--drain-timeout" in args else 30.0


def dockerfile_stages():
    """deploy/Dockerfile as [(FROM line, [instructions])], continuation
    lines joined."""
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        text = re.sub(r"\\\n", " ", f.read())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append((line, []))
        else:
            out[-1][1].append(line)
    return out


def image_cmd():
    """The image's CMD (the exec form): gild serve's arguments."""
    _, (_, run_stage) = dockerfile_stages()
    (cmd,) = [l for l in run_stage if l.startswith("CMD ")]
    return json.loads(cmd[4:])


class HaproxyConfigTest(unittest.TestCase):
    path = os.path.join(DEPLOY, "haproxy", "haproxy.cfg")

    def test_haproxy_accepts_it(self):
        """haproxy -c (Debian's haproxy, in the Makefile's DEBS)."""
        p = run(["haproxy", "-c", "-f", self.path])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("Configuration file is valid", p.stdout + p.stderr)

    def test_what_it_says(self):
        words = [l.split("#")[0].split() for l in open(self.path)]
        lines = [" ".join(w) for w in words if w]
        for want in ("mode tcp", "balance leastconn",
                     "option httpchk GET /readyz"):
            self.assertIn(want, lines)
        for want in ("retries ", "option redispatch"):
            self.assertTrue(any(l.startswith(want) for l in lines), want)
        checks = [l for l in lines if l.startswith("default-server")]
        self.assertEqual(len(checks), 1)
        self.assertRegex(checks[0], r"\bcheck port 8080\b")
        # Cutting a draining replica's connections would fail its calls.
        self.assertNotIn("shutdown-sessions", " ".join(lines))
        self.assertEqual(len([l for l in lines if l.startswith("server ")]),
                         3)


class KubernetesTest(unittest.TestCase):
    def docs(self):
        out = {}
        for name in sorted(os.listdir(K8S)):
            with open(os.path.join(K8S, name)) as f:
                for d in yaml.safe_load_all(f):
                    out[d["kind"]] = d
        return out

    def test_structure(self):
        """Offline, always: kinds and API versions, probes, resources,
        a grace period longer than the pause plus the drain timeout."""
        d = self.docs()
        want = {"Deployment": "apps/v1", "Service": "v1",
                "HorizontalPodAutoscaler": "autoscaling/v2",
                "PodDisruptionBudget": "policy/v1"}
        self.assertEqual({k: v["apiVersion"] for k, v in d.items()}, want)
        dep = d["Deployment"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        self.assertEqual(dep["spec"]["selector"]["matchLabels"], labels)
        pod = dep["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertIn("--http", c["args"])
        self.assertTrue(c["args"][c["args"].index("--http") + 1]
                        .endswith(":%d" % ports["http"]))
        self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
        self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")
        for probe in ("readinessProbe", "livenessProbe"):
            self.assertIn(c[probe]["httpGet"]["port"], ("http", ports["http"]))
        for kind in ("requests", "limits"):
            self.assertIn("cpu", c["resources"][kind])
            self.assertIn("memory", c["resources"][kind])
        pause = 0
        if "preStop" in c.get("lifecycle", {}):
            cmd = c["lifecycle"]["preStop"]["exec"]["command"]
            self.assertEqual(cmd[0], "sleep")
            pause = float(cmd[1])
        self.assertGreater(pod["terminationGracePeriodSeconds"],
                           pause + drain_timeout(c["args"]))
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        svc = d["Service"]
        self.assertEqual(svc["spec"]["selector"], labels)
        self.assertEqual({p["targetPort"] for p in svc["spec"]["ports"]},
                         set(ports))
        hpa = d["HorizontalPodAutoscaler"]["spec"]
        self.assertEqual((hpa["scaleTargetRef"]["kind"],
                          hpa["scaleTargetRef"]["name"]),
                         ("Deployment", dep["metadata"]["name"]))
        self.assertLessEqual(hpa["minReplicas"], hpa["maxReplicas"])
        pdb = d["PodDisruptionBudget"]["spec"]
        self.assertEqual(pdb["selector"]["matchLabels"], labels)

    @unittest.skipIf(shutil.which("kubectl") is None,
                     "kubectl is not installed (Debian 12 has no package): "
                     "test_structure checked the manifests")
    def test_kubectl(self):
        """kubectl apply --dry-run=client when a cluster answers (kubectl
        validates against its schema); without one, kubectl's offline
        decoders: every manifest parses as a known kind, and the
        Deployment and the Service decode into their typed Go structs
        unchanged (no unknown field, no value of the wrong type)."""
        p = run(["kubectl", "apply", "--dry-run=client",
                 "--request-timeout=5s", "-f", K8S])
        if p.returncode == 0:
            self.assertEqual(len(p.stdout.strip().splitlines()), 4, p.stdout)
            return
        print("kubectl apply --dry-run=client needs a cluster (%s); "
              "checking offline" % p.stderr.strip().splitlines()[-1][:120])
        p = run(["kubectl", "label", "--local", "-o", "name", "-f", K8S,
                 "checked=yes"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(p.stdout.split()), [
            "deployment.apps/gild",
            "horizontalpodautoscaler.autoscaling/gild",
            "poddisruptionbudget.policy/gild", "service/gild"])
        # Typed decoding drops a field the kind does not have and refuses a
        # value of the wrong type: what comes back must be the manifest.
        d = self.docs()
        dep = self.typed_round_trip("deployment.yaml", "env", "CHECKED=yes")
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        self.assertEqual(c["env"].pop(), {"name": "CHECKED", "value": "yes"})
        self.assertEqual(dep, d["Deployment"])
        sel = ",".join("%s=%s" % kv for kv in
                       d["Service"]["spec"]["selector"].items())
        self.assertEqual(self.typed_round_trip("service.yaml", "selector", sel),
                         d["Service"])

    def typed_round_trip(self, name, what, arg):
        """The manifest after `kubectl set WHAT --local ARG` (which decodes
        it into its Go type), less the empty fields that decoding adds."""
        p = run(["kubectl", "set", what, "--local", "-o", "json", "-f",
                 os.path.join(K8S, name), arg])
        self.assertEqual(p.returncode, 0, p.stderr)
        obj = json.loads(p.stdout)
        obj.pop("status", None)
        for meta in (obj["metadata"],
                     obj["spec"].get("template", {}).get("metadata", {})):
            self.assertIsNone(meta.pop("creationTimestamp", None))
        return obj


class ComposeTest(unittest.TestCase):
    """deploy/compose.yaml through Debian's docker-compose (in the
    Makefile's DEBS), which checks it against the Compose schema with no
    Docker engine: `docker-compose config`."""
    path = os.path.join(DEPLOY, "compose.yaml")

    def config(self, env, path=None):
        """docker-compose config on path (compose.yaml), with the
        environment less GILD_TOKEN, plus env."""
        base = {k: v for k, v in os.environ.items() if k != "GILD_TOKEN"}
        return run(["docker-compose", "-f", path or self.path, "config"],
                   env=dict(base, **env))

    def test_compose_accepts_it(self):
        p = self.config({"GILD_TOKEN": "s3cret"})
        self.assertEqual(p.returncode, 0, p.stderr)
        services = yaml.safe_load(p.stdout)["services"]
        self.assertEqual(set(services), {"gild1", "gild2", "gild3",
                                         "haproxy"})
        cmd = image_cmd()
        for name in ("gild1", "gild2", "gild3"):
            g = services[name]
            self.assertEqual(g["build"]["dockerfile"], "deploy/Dockerfile")
            self.assertEqual(os.path.realpath(g["build"]["context"]), ROOT)
            self.assertEqual(g["environment"]["GILD_TOKEN"], "s3cret")
            grace = g["stop_grace_period"]
            self.assertTrue(grace.endswith("s"), grace)
            self.assertGreater(float(grace[:-1]), drain_timeout(cmd))
            self.assertIn("cpus", g["deploy"]["resources"]["limits"])
        h = services["haproxy"]
        self.assertEqual(set(h["depends_on"]), {"gild1", "gild2", "gild3"})
        self.assertEqual([(pt["published"], pt["target"])
                          for pt in h["ports"]], [(7700, 7700)])
        (vol,) = h["volumes"]
        src, dst = vol.split(":")[:2]
        self.assertEqual(src, HaproxyConfigTest.path)
        self.assertEqual(dst, "/usr/local/etc/haproxy/haproxy.cfg")
        # HAProxy's servers are the three replicas, by service name.
        with open(src) as f:
            servers = [l.split()[1:3] for l in f
                       if l.split()[:1] == ["server"]]
        self.assertEqual(servers, [["gild%d" % i, "gild%d:7700" % i]
                                   for i in (1, 2, 3)])

    def test_token_is_required(self):
        p = self.config({})
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("set GILD_TOKEN", p.stderr)

    def test_schema_is_checked(self):
        """A misspelled option is refused: the check above means something."""
        with tempfile.TemporaryDirectory() as tmp:
            bad = os.path.join(tmp, "compose.yaml")
            with open(self.path) as f, open(bad, "w") as out:
                out.write(f.read().replace("stop_grace_period",
                                           "stop_grace_perod"))
            p = self.config({"GILD_TOKEN": "x"}, bad)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("stop_grace_perod", p.stderr)


class SystemdUnitTest(unittest.TestCase):
    path = os.path.join(DEPLOY, "gild.service")

    def keys(self):
        out, cont = {}, ""
        for line in open(self.path):
            line = cont + line.rstrip("\n")
            if line.endswith("\\"):
                cont = line[:-1]
                continue
            cont = ""
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
        return out

    def test_what_it_says(self):
        k = self.keys()
        # gild speaks sd_notify (tests/python/test_systemd.py): systemd
        # waits for READY=1 and watches the loop.
        self.assertEqual(k["Type"], "notify")
        self.assertEqual(k.get("NotifyAccess", "main"), "main")
        self.assertGreater(float(k["WatchdogSec"]), 0)
        self.assertNotIn(k.get("User", "root"), ("root", "0"))
        self.assertEqual(k["KillSignal"], "SIGTERM")
        self.assertEqual(k["KillMode"], "mixed")
        args = shlex.split(k["ExecStart"])
        self.assertGreater(float(k["TimeoutStopSec"]), drain_timeout(args))
        self.assertIn("--http", args)
        # Embedded CPython needs writable+executable memory for ctypes.
        self.assertNotIn("MemoryDenyWriteExecute", k)

    @unittest.skipIf(shutil.which("systemd-analyze") is None,
                     "systemd-analyze is not installed")
    def test_systemd_analyze_verify(self):
        """systemd-analyze verify, with ExecStart pointed at the built gild
        (it checks that the program exists): no complaint at all."""
        with tempfile.TemporaryDirectory() as tmp:
            unit = os.path.join(tmp, "gild.service")
            with open(self.path) as f, open(unit, "w") as out:
                out.write(f.read().replace(
                    "/usr/local/bin/gild",
                    os.path.abspath(os.path.join(ROOT, "build", "gild"))))
            p = run(["systemd-analyze", "verify", unit])
            self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))


class DockerfileTest(unittest.TestCase):
    def install_line(self):
        """The build stage's `make ... install` command."""
        (_, build), _ = dockerfile_stages()
        (cmd,) = [l[4:] for l in build
                  if l.startswith("RUN make") and " install" in l]
        return cmd

    def run_packages(self):
        _, (_, run_stage) = dockerfile_stages()
        (apt,) = [l for l in run_stage if "apt-get install" in l]
        words = apt.split("apt-get install", 1)[1].split("&&")[0].split()
        return [w for w in words if not w.startswith("-")]

    def test_shape(self):
        (b, build), (r, run_stage) = dockerfile_stages()
        self.assertEqual(b, "FROM debian:bookworm AS build")
        self.assertEqual(r, "FROM debian:bookworm-slim")
        joined = "\n".join(run_stage)
        self.assertIn("STOPSIGNAL SIGTERM", joined)
        self.assertRegex(joined, r"HEALTHCHECK .*/readyz")
        (user,) = [l for l in run_stage if l.startswith("USER ")]
        self.assertNotIn(user.split()[1].split(":")[0], ("root", "0"))
        # Workers follow the container's CPU limit: no fixed --workers.
        self.assertNotIn("--workers", joined)
        self.assertNotIn("gcc", joined)

    def test_image_build_step(self):
        """Runs the Dockerfile's `make ... install` line here (DESTDIR in a
        temporary folder instead of /out), checks that the run stage's
        packages provide every library the installed programs link, then
        serves examples/app.py from the installed tree and asks it
        /readyz with the HEALTHCHECK command and a call with gildctl."""
        if os.environ.get("SANITIZE"):
            self.skipTest("the image is a plain build")
        with tempfile.TemporaryDirectory() as tmp:
            cmd = self.install_line().replace("DESTDIR=/out",
                                              "DESTDIR=" + tmp)
            self.assertIn("DESTDIR=" + tmp, cmd)
            # The environment as make test has it: variables given to
            # make on its command line (CFLAGS=...) reach this make too
            # (MAKEFLAGS), so nothing is rebuilt with other flags.
            p = subprocess.run(["sh", "-c", cmd], cwd=ROOT,
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr)
            prefix = os.path.join(tmp, "usr", "local")
            progs = [os.path.join(prefix, "bin", "gild"),
                     os.path.join(prefix, "bin", "gildctl"),
                     os.path.join(prefix, "libexec", "gild", "gild-worker"),
                     os.path.join(prefix, "lib", "libgild.so.0")]
            self.check_libraries(progs)
            self.serve_installed(prefix)

    def check_libraries(self, progs):
        pkgs = set(self.run_packages())
        allowed = set(pkgs) | {"libc6"}
        for pkg in pkgs:  # what they pull in
            deps = run(["dpkg-query", "-W", "-f", "${Depends}", pkg]).stdout
            allowed |= {d.split()[0].split(":")[0]
                        for alt in deps.split(",") for d in alt.split("|")
                        if d.strip()}
        for prog in progs:
            out = run(["ldd", prog]).stdout
            for m in re.finditer(r"=> (/\S+)", out):
                lib = os.path.realpath(m.group(1))
                owner = run(["dpkg", "-S", lib])
                if owner.returncode != 0:  # usrmerge: /lib vs /usr/lib
                    owner = run(["dpkg", "-S", lib.replace("/usr/lib/",
                                                           "/lib/", 1)])
                self.assertEqual(owner.returncode, 0, lib)
                pkg = owner.stdout.split(":")[0]
                self.assertIn(pkg, allowed,
                              "%s needs %s (%s), not in the image" %
                              (prog, lib, pkg))

    def serve_installed(self, prefix):
        proc = subprocess.Popen(
            [os.path.join(prefix, "bin", "gild"), "serve",
             os.path.join(ROOT, "examples", "app.py"), "--listen",
             "tcp://127.0.0.1:0", "--http", "127.0.0.1:0", "--workers", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent)
        try:
            lines = read_until(proc, "gild: ready")
            url = [l.split()[-1] for l in lines if "listening on" in l][0]
            http = [l.split()[-1] for l in lines
                    if l.startswith("gild: http on")][0]
            port = http.rsplit(":", 1)[1]
            (hc,) = [l for _, st in dockerfile_stages() for l in st
                     if l.startswith("HEALTHCHECK")]
            argv = json.loads(hc[hc.index("CMD") + 3:])  # the exec form
            argv = [a.replace("/8080", "/" + port) for a in argv]
            self.assertEqual(run(argv).returncode, 0, argv)
            p = run([os.path.join(prefix, "bin", "gildctl"), "call", url,
                     "add", "2", "3"])
            self.assertEqual((p.returncode, p.stdout), (0, "5\n"), p.stderr)
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(60), 0)
            proc.stdout.close()


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/python3
"""How fast Python runs depending on how a program links libpython: the
measurements behind the workers' link (docs/runtimes.md, "How the workers
are linked").

    /usr/bin/python3 bench/linkcmp.py [--python-config CFG]... [--rounds R]
        [--reps N] [--fn fib|burn] [--arg N] [--callgrind]

For each pythonX.Y-config (default /usr/bin/python3-config) it links
bench/embed.c (Python's own main, nothing else) three ways: to the shared
libpython when there is one (`--ldflags --embed`, a PIE), to the PIC archive
libpythonX.Y-pic.a when there is one (a PIE, the API exported), and to the
static archive with mk/pylink.sh's flags (what gild-worker and
gild-worker-ft use); plus the interpreter itself (prefix/bin/pythonX.Y).
Then, in R rounds, each program in turn (the order alternating) runs
bench/apps/cpu.py's cpu_time(FN, ARG) N times in one process and reports
the median CPU time; it prints each program's median over the rounds, the
range, and the median of its per-round ratio to the interpreter.

--callgrind counts instructions instead (valgrind --tool=callgrind): the
instructions of one FN(ARG) call, from two runs that differ only in how
many calls they make. Counts do not drift with the machine's load.
"""
import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CODE = """
import sys
sys.path.insert(0, %r)
import cpu
fn, arg, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cpu.cpu_time(fn, arg)
t = sorted(cpu.cpu_time(fn, arg) for _ in range(reps))
print(t[len(t) // 2] * 1e3 if t else 0)
""" % os.path.join(ROOT, "bench", "apps")


def sh(cmd):
    return subprocess.run(cmd, shell=True, check=True, text=True,
                          stdout=subprocess.PIPE).stdout.strip()


def build(config, tmp):
    """[(name, argv prefix)] of the programs for one pythonX.Y-config."""
    cfg = shlex.quote(config)
    prefix = sh("%s --prefix" % cfg)
    version = sh("%s --configdir" % cfg).split("config-")[1].split("-")[0]
    exe = "%s/bin/python%s" % (prefix, version)
    libpl = sh("%s --configdir" % cfg)
    tag = "python" + version
    obj = os.path.join(tmp, tag + "-embed.o")
    sh("cc -O2 %s -c %s -o %s" % (sh("%s --includes" % cfg),
                                  os.path.join(ROOT, "bench", "embed.c"),
                                  obj))
    libs = sh("%s -c 'import sysconfig as s; print(*(s.get_config_var(k) "
              "or \"\" for k in (\"MODLIBS\", \"LIBS\", \"SYSLIBS\")))'"
              % shlex.quote(exe))
    shared = sh("%s -c 'import sysconfig as s; "
                "print(s.get_config_var(\"Py_ENABLE_SHARED\"))'"
                % shlex.quote(exe)) == "1"
    out = []

    def link(name, file, flags):
        path = os.path.join(tmp, "%s-%s" % (tag, file))
        sh("cc -o %s %s %s" % (path, obj, flags))
        out.append(("%s %s" % (tag, name), [path]))

    if shared:
        link("shared", "shared", sh("%s --ldflags --embed" % cfg) +
             ("" if prefix == "/usr" else " -Wl,-rpath,%s/lib" % prefix))
    pic = os.path.join(libpl, "lib%s-pic.a" % tag)
    if os.path.exists(pic):
        link("PIC archive", "pic", "'-Wl,--export-dynamic-symbol=Py*,"
             "--export-dynamic-symbol=_Py*' -Wl,--whole-archive %s "
             "-Wl,--no-whole-archive %s" % (pic, libs))
    link("static (gild's link)", "static", sh("%s %s" % (
        os.path.join(ROOT, "mk", "pylink.sh"), cfg)))
    out.append(("%s interpreter (%s)" % (tag, exe), [exe]))
    return out


def run(argv, fn, arg, reps):
    return float(subprocess.run(argv + ["-c", CODE, fn, str(arg), str(reps)],
                                check=True, text=True,
                                stdout=subprocess.PIPE).stdout)


def instructions(argv, fn, arg, reps):
    """Instructions of one fn(arg) call: (Ir(reps) - Ir(0)) / reps."""
    # A fixed hash seed: the two runs start up alike, and their
    # difference is the calls alone.
    env = dict(os.environ, PYTHONHASHSEED="0")

    def ir(n):
        p = subprocess.run(["valgrind", "--tool=callgrind",
                            "--callgrind-out-file=/dev/null"] + argv +
                           ["-c", CODE, fn, str(arg), str(n)], text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           check=True, env=env)
        for line in p.stderr.splitlines():
            if "Collected :" in line:
                return int(line.split()[-1])
        raise RuntimeError("no callgrind total: " + p.stderr[-500:])
    return (ir(reps) - ir(0)) / reps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python-config", action="append")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--fn", default="fib", choices=("fib", "burn"))
    ap.add_argument("--arg", type=int, default=None)
    ap.add_argument("--callgrind", action="store_true")
    a = ap.parse_args()
    configs = a.python_config or ["/usr/bin/python3-config"]
    arg = a.arg or {"fib": 25, "burn": 200000}[a.fn]
    with tempfile.TemporaryDirectory(prefix="gild-linkcmp-") as tmp:
        for config in configs:
            progs = build(config, tmp)
            ref = progs[-1][0]
            if a.callgrind:
                arg_cg = a.arg or {"fib": 20, "burn": 50000}[a.fn]
                base = None
                print("%s(%d), instructions per call:" % (a.fn, arg_cg))
                for name, argv in reversed(progs):
                    n = instructions(argv, a.fn, arg_cg, 8)
                    base = base or n
                    print("  %-50s %12.0f  %.3f" % (name, n, n / base))
                continue
            ms = {name: [] for name, _ in progs}
            for r in range(a.rounds):
                for name, argv in (progs if r % 2 == 0 else progs[::-1]):
                    ms[name].append(run(argv, a.fn, arg, a.reps))
            print("%s(%d), CPU ms per call (median of %d rounds, range; "
                  "ratio to the interpreter, per round):" % (
                      a.fn, arg, a.rounds))
            for name, _ in progs:
                v = ms[name]
                ratio = [x / y for x, y in zip(v, ms[ref])]
                print("  %-50s %7.3f (%.3f-%.3f)  %.3f (%.3f-%.3f)" % (
                    name, statistics.median(v), min(v), max(v),
                    statistics.median(ratio), min(ratio), max(ratio)))


if __name__ == "__main__":
    sys.exit(main())

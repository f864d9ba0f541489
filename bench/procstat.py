"""What the machine and its tasks did, from /proc and /sys: per-CPU ticks
(steal included), the load average, every task's CPU time, one process's
threads' counters, and the VM's facts that bear on CPU-bound speed. Shared
by bench/speedup.py, bench/vcpus.py and bench/suite.py.
"""
import os


def task_counters(pid):
    """{tid: [comm, cpu ticks, run ns, runnable-wait ns, slices, minflt,
    voluntary, involuntary switches, last CPU]} for every thread of pid."""
    out = {}
    base = "/proc/%d/task" % pid
    try:
        tids = os.listdir(base)
    except OSError:
        return out
    for t in tids:
        d = "%s/%s/" % (base, t)
        try:
            with open(d + "stat", "rb") as f:
                s = f.read()
            with open(d + "schedstat") as f:
                run, wait, slices = (int(x) for x in f.read().split())
            vol = invol = 0
            with open(d + "status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol = int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        invol = int(line.split()[1])
        except OSError:
            continue
        comm = s[s.index(b"(") + 1:s.rindex(b")")].decode(errors="replace")
        f = s[s.rindex(b")") + 2:].split()  # f[i] is field i + 3
        out[int(t)] = [comm, int(f[11]) + int(f[12]), run, wait, slices,
                       int(f[7]), vol, invol, int(f[36])]
    return out


def all_tasks_run_ns():
    """{(pid, tid): (comm, run ns, ppid)} of every task on the machine."""
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            tids = os.listdir("/proc/%s/task" % p)
            with open("/proc/%s/stat" % p, "rb") as f:
                st = f.read()
            ppid = int(st[st.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        for t in tids:
            try:
                with open("/proc/%s/task/%s/schedstat" % (p, t)) as f:
                    run = int(f.read().split()[0])
                with open("/proc/%s/task/%s/comm" % (p, t)) as f:
                    comm = f.read().strip()
            except (OSError, ValueError, IndexError):
                continue
            out[(int(p), int(t))] = (comm, run, ppid)
    return out


def descendants(tasks, root):
    """The pids below root (children, their children...) in tasks."""
    kids = {}
    for (pid, _), (_, _, ppid) in tasks.items():
        kids.setdefault(ppid, set()).add(pid)
    out, todo = set(), [root]
    while todo:
        for c in kids.get(todo.pop(), ()):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def cpu_ticks():
    """[[user+nice, system, irq+softirq, idle+iowait, steal], ...] per CPU."""
    rows = []
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                v = [int(x) for x in line.split()[1:]]
                rows.append([v[0] + v[1], v[2], v[5] + v[6], v[3] + v[4],
                             v[7]])
    return rows


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def vm_facts():
    """What the VM says about itself that bears on CPU-bound speed: the
    transparent huge page mode, the NUMA nodes, whether virtio-balloon
    free page reporting (feature bit 5) hands freed memory to the host."""
    reporting = None
    base = "/sys/bus/virtio/devices"
    for d in (os.listdir(base) if os.path.isdir(base) else []):
        if read(os.path.join(base, d, "device")) == "0x0005":  # balloon
            bits = read(os.path.join(base, d, "features"))
            reporting = len(bits) > 5 and bits[5] == "1"
    nodes = [n for n in (os.listdir("/sys/devices/system/node")
                         if os.path.isdir("/sys/devices/system/node")
                         else []) if n.startswith("node")]
    thp = read("/sys/kernel/mm/transparent_hugepage/enabled")
    return {"thp": thp[thp.find("[") + 1:thp.find("]")] if "[" in thp
            else thp, "numa_nodes": len(nodes),
            "balloon_free_page_reporting": reporting,
            "hypervisor": "hypervisor" in read("/proc/cpuinfo")}

#!/usr/bin/python3
"""A co-runner for bench/lifetimes.py: keeps one CPU busy the way a
memory-hungry neighbour does, until killed.

    /usr/bin/python3 bench/thrash.py [--cpu 1] [--mb 256]
        [--mode copy|random|spin]

copy: copies a --mb MiB buffer into another, over and over (numpy), so
the caches that CPU shares with others keep being refilled from memory;
random: reads bytes at random places of a --mb MiB buffer (numpy
gathers), so every cache level misses;
spin: a pure-Python loop (a busy CPU that touches almost no memory).
"""
import argparse
import os


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpu", type=int, default=1)
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--mode", default="copy",
                    choices=("copy", "random", "spin"))
    a = ap.parse_args()
    os.sched_setaffinity(0, {a.cpu})
    if a.mode == "spin":
        x = 0
        while True:
            x = (x + 1) % 1000003
    import numpy as np
    src = np.ones(a.mb << 20, np.uint8)
    if a.mode == "random":
        idx = np.random.default_rng(1).integers(0, len(src), 1 << 20)
        while True:
            src[idx].sum()
    dst = np.empty_like(src)
    while True:
        np.copyto(dst, src)


if __name__ == "__main__":
    main()

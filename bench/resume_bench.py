#!/usr/bin/python3
"""What a killed-and-resumed build costs, against an uninterrupted one (issue: "a run killed
during the index build and resumed costs at most the remaining work plus 10% of the full run").

For each repeat, on the same data and config (2 ranks, 1 thread each, mpirun --bind-to none):
  full     an uninterrupted `shardforge build`: wall time T_full
  killed   the same build; once the add stage has published --kill-at (a fraction) of its
           pieces, rank 1 gets SIGKILL. t_kill: time from start to the kill; also how long the
           job took to end after it
  resumed  `shardforge build --resume` on the killed run's directory: T_resume
Work is measured two ways:
  CPU seconds (user + sys of mpirun and all ranks: getrusage of the children for runs that
    end normally; /proc/<pid>/stat of mpirun and the ranks just before the kill for the killed
    run, whose killed ranks' usage may never be reported): remaining work = C_full - C_killed
    (what the killed run had done counts as done; the pieces it was adding when killed are
    lost, so redoing them counts against the resume). Target: C_resume <=
    remaining + 0.1 * C_full. Robust to other load on the machine.
  wall seconds: remaining = T_full - t_same, where t_same is when the uninterrupted run had
    published as many pieces as the killed run kept; target T_resume <= remaining + 0.1 *
    T_full. Noisy where other jobs share the machine (the two runs must progress alike).
The resumed index.faiss must be byte-identical to the full run's.

usage: bench/resume_bench.py [--repeats 2] [--factory IVF1024,PQ16np] [--kill-at 0.5]
                             [--binary build/commands/shardforge] [--workdir DIR]
Data: synthetic-1m of bench/ivf_bench.py (1,000,000 x 128), generated once into --workdir.
"""
import argparse
import filecmp
import glob
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import ivf_bench  # noqa: E402  (the synthetic-1m generator)

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def mpirun(binary, args):
    return ["mpirun", "-np", "2", "--bind-to", "none", "-x", "OMP_NUM_THREADS=1", binary] + args


def rank_pid(parent, rank):
    """The pid of MPI rank `rank` among the children of `parent` (mpirun)."""
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
    for pid in out.split():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
            return int(pid)
    return None


def pieces_total(rows, piece_rows, ranks=2, block=1024):
    """How many pieces the add stage publishes (commands/build_job.cc: split_rows per rank)."""
    unit = max(1, -(-piece_rows // block)) * block
    blocks = -(-rows // block)
    total = 0
    for r in range(ranks):
        b0 = r * (blocks // ranks) + min(r, blocks % ranks)
        b1 = b0 + blocks // ranks + (1 if r < blocks % ranks else 0)
        lo, hi = min(rows, b0 * block), min(rows, b1 * block)
        row = lo
        while row < hi:
            row = min((row // unit + 1) * unit, hi)
            total += 1
    return total


def children_cpu():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def proc_cpu(pid):
    """user + sys seconds of one live process (not its children)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stage_seconds(run_dir):
    with open(os.path.join(run_dir, "run.json")) as f:
        stages = json.load(f)["commands"]["build"]["stages"]
    return {s["name"]: max(s["seconds"]) for s in stages}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--factory", default="IVF1024,PQ16np")
    ap.add_argument("--kill-at", type=float, default=0.5)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/commands/shardforge"))
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "sf_resume_bench"))
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    base = os.path.join(args.workdir, "syn1m.fvecs")
    if not os.path.exists(base):
        print(f"generating {base} ...", flush=True)
        ivf_bench.synthetic(base, os.path.join(args.workdir, "syn1m-q.fvecs"))
    rows = os.path.getsize(base) // (4 * 129)
    config = os.path.join(args.workdir, "resume.yaml")
    with open(config, "w") as f:
        f.write(f'input:\n  paths: ["{base}"]\nindex:\n  factory: "{args.factory}"\n'
                f'output:\n  dir: "{args.workdir}/unused"\n')
    piece_rows = 65536
    total_pieces = pieces_total(rows, piece_rows)
    kill_after = max(1, int(args.kill_at * total_pieces))
    print(f"uptime: {open('/proc/loadavg').read().split()[:3]}", flush=True)
    print(f"{rows} rows, {args.factory}, 2 ranks x 1 thread, {total_pieces} pieces of "
          f"{piece_rows} rows; kill rank 1 after {kill_after} pieces", flush=True)

    results = []
    for rep in range(args.repeats):
        full_dir = os.path.join(args.workdir, "full")
        run_dir = os.path.join(args.workdir, "run")
        for d in (full_dir, run_dir):
            shutil.rmtree(d, ignore_errors=True)

        # The uninterrupted run, watched: when it has published as many pieces as the killed
        # run will keep, what is left of it is the remaining work.
        markers_full = os.path.join(full_dir, "checkpoints", "add", "*.json")
        t0, c0 = time.monotonic(), children_cpu()
        proc = subprocess.Popen(mpirun(args.binary, ["build", config, "--set", f"output.dir={full_dir}"]),
                                env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t_same = None
        while proc.poll() is None:
            if t_same is None and len(glob.glob(markers_full)) >= kill_after:
                t_same = time.monotonic() - t0
            time.sleep(0.01)
        if proc.returncode != 0 or t_same is None:
            raise SystemExit(f"full run: exit {proc.returncode}, pieces seen: {t_same is not None}")
        t_full, c_full = time.monotonic() - t0, children_cpu() - c0
        full_stages = stage_seconds(full_dir)

        log = open(os.path.join(args.workdir, f"killed-{rep}.log"), "w")
        t0, c0 = time.monotonic(), children_cpu()
        proc = subprocess.Popen(mpirun(args.binary, ["build", config, "--set", f"output.dir={run_dir}"]),
                                env=ENV, stdout=log, stderr=subprocess.STDOUT)
        markers = os.path.join(run_dir, "checkpoints", "add", "*.json")
        while len(glob.glob(markers)) < kill_after:
            if proc.poll() is not None:
                raise SystemExit("the build ended before the kill")
            time.sleep(0.01)
        pid = rank_pid(proc.pid, 1)
        c_killed = proc_cpu(proc.pid) + proc_cpu(rank_pid(proc.pid, 0)) + proc_cpu(pid)
        t_kill = time.monotonic() - t0
        os.kill(pid, signal.SIGKILL)
        rc = proc.wait(timeout=120)
        t_end = time.monotonic() - t0 - t_kill
        kept = len(glob.glob(markers))

        t0, c0 = time.monotonic(), children_cpu()
        resumed = subprocess.run(mpirun(args.binary, ["build", config, "--set", f"output.dir={run_dir}",
                                                      "--resume"]),
                                 env=ENV, capture_output=True, text=True)
        t_resume, c_resume = time.monotonic() - t0, children_cpu() - c0
        if resumed.returncode != 0:
            raise SystemExit("resume failed:\n" + resumed.stdout + resumed.stderr)
        identical = filecmp.cmp(os.path.join(full_dir, "index.faiss"),
                                os.path.join(run_dir, "index.faiss"), shallow=False)
        remaining = t_full - t_same
        ok = t_resume <= remaining + 0.1 * t_full
        c_remaining = c_full - c_killed
        c_ok = c_resume <= c_remaining + 0.1 * c_full
        r = dict(t_full=t_full, t_same=t_same, t_kill=t_kill, kill_rc=rc, t_end=t_end, kept=kept,
                 t_resume=t_resume, remaining=remaining, ok=ok, identical=identical,
                 c_full=c_full, c_killed=c_killed, c_resume=c_resume, c_remaining=c_remaining,
                 c_ok=c_ok,
                 full_stages=full_stages, resume_stages=stage_seconds(run_dir))
        results.append(r)
        print(f"repeat {rep}: CPU s (all ranks): full {c_full:.1f}, killed run {c_killed:.1f}, "
              f"remaining {c_remaining:.1f}, resumed {c_resume:.1f}, budget "
              f"{c_remaining + 0.1 * c_full:.1f} -> {'MET' if c_ok else 'NOT MET'}", flush=True)
        print(f"repeat {rep}: wall: full {t_full:.1f}s (stages {({k: round(v, 1) for k, v in full_stages.items()})}); "
              f"same pieces at {t_same:.1f}s in the full run; killed at {t_kill:.1f}s with {kept}/{total_pieces} pieces kept, job ended "
              f"{t_end:.1f}s later (exit {rc}); resumed {t_resume:.1f}s "
              f"(stages {({k: round(v, 1) for k, v in r['resume_stages'].items()})}); remaining work "
              f"{remaining:.1f}s; budget {remaining + 0.1 * t_full:.1f}s -> {'MET' if ok else 'NOT MET'}; "
              f"index.faiss {'byte-identical' if identical else 'DIFFERS'}", flush=True)

    med = lambda key: statistics.median(r[key] for r in results)
    print(f"median CPU s: full {med('c_full'):.1f}, killed {med('c_killed'):.1f}, remaining "
          f"{med('c_remaining'):.1f}, resumed {med('c_resume'):.1f}: resumed - remaining = "
          f"{med('c_resume') - med('c_remaining'):.1f} = "
          f"{100 * (med('c_resume') - med('c_remaining')) / med('c_full'):.1f}% of the full run; "
          f"all met: {all(r['c_ok'] for r in results)}", flush=True)
    print(f"median wall: full {med('t_full'):.1f}s, kill at {med('t_kill'):.1f}s, job ended "
          f"{med('t_end'):.1f}s after the kill, resumed {med('t_resume'):.1f}s, remaining "
          f"{med('remaining'):.1f}s, resumed - remaining = {med('t_resume') - med('remaining'):.1f}s "
          f"= {100 * (med('t_resume') - med('remaining')) / med('t_full'):.1f}% of the full run; "
          f"all met: {all(r['ok'] for r in results)}; all identical: {all(r['identical'] for r in results)}",
          flush=True)
    print(f"uptime: {open('/proc/loadavg').read().split()[:3]}", flush=True)


if __name__ == "__main__":
    main()

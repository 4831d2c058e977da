"""Runs `bottleneck-coordinator extract ...` end to end and reports wall time and the workers' peak RSS.

Usage: run_extract.py OUT_JSON -- COMMAND...
Polls /proc for the coordinator's child processes (the local bottleneck-workers) every 50 ms and keeps
the largest VmHWM seen (the kernel's own peak-RSS counter, which only grows). The coordinator's stdout
(JSON progress lines) and stderr (logs) go to OUT_JSON.stdout / OUT_JSON.stderr.
"""
import json
import os
import resource
import subprocess
import sys
import threading
import time


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    out = sys.argv[1]
    command = sys.argv[sys.argv.index("--") + 1:]
    peak = {}
    stamped = []  # (seconds since start, JSON event) of the coordinator's progress lines

    def read(stream, out_file, start):
        for raw in stream:
            out_file.write(raw)
            try:
                stamped.append((time.monotonic() - start, json.loads(raw)))
            except ValueError:
                pass

    with open(out + ".stdout", "wb") as stdout, open(out + ".stderr", "wb") as stderr:
        start = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr)
        reader = threading.Thread(target=read, args=(process.stdout, stdout, start))
        reader.start()
        while process.poll() is None:
            for child in children(process.pid):
                peak[child] = max(peak.get(child, 0), vm_hwm_kib(child))
            time.sleep(0.05)
        seconds = time.monotonic() - start
        reader.join()
    # The coordinator waits for its workers, so their CPU time is in its children's usage, and so in ours.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Steady rate: from the first progress event reporting finished images to the end of the command, i.e.
    # without start-up (workers starting, joining, receiving the weights, preparing kernels).
    first = next(((t, e) for t, e in stamped if e.get("event") == "progress" and e.get("images_done", 0) > 0), None)
    total = next((e.get("images") for _, e in stamped if e.get("event") == "summary"), None)
    steady = None
    if first and total and seconds > first[0]:
        steady = (total - first[1]["images_done"]) / (seconds - first[0])
    summary = None
    with open(out + ".stdout") as handle:
        for line in handle:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "summary":
                summary = event
    result = {
        "exit_status": process.returncode,
        "wall_seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "steady_images_per_second": steady,
        "first_results_seconds": first[0] if first else None,
        "worker_peak_rss_mib": max(peak.values(), default=0) / 1024,
        "workers_seen": len(peak),
        "summary": summary,
    }
    with open(out, "w") as handle:
        json.dump(result, handle)
    sys.exit(process.returncode)


if __name__ == "__main__":
    main()

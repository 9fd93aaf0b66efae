#!/usr/bin/env python3
"""What fsync = segment costs the recorder (BENCHMARKS.md, "Recorder: fsync").

    tests/recorder/fsync_bench.py [BUILD_DIR] [--runs N] [--segment MS] [--dir DIR]

Encodes (once, into DIR) 60 s of 1280x720 30 fps H.264 at 2850 kbit/s
(keyframe every 2 s) and AAC 128 kbit/s, the benchmark publisher's
source, then has rec_tool record it with fsync off and on, alternately,
N times each, as fast as the worker can write (the whole file fits in the
queue, so the time is the worker's). DIR must be on the disk to judge
(not a tmpfs). With strace on PATH, one more run with fsync on times every
fsync call: on a shared machine that is the steadier number, since the
whole-run times move by more than fsync adds. Prints medians, minimums
and the cost per segment.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys


def main():
    args = sys.argv[1:]
    opts = {"--runs": "10", "--segment": "4000", "--dir": "/var/tmp/kebun-fsync-bench"}
    build = "build"
    while args:
        a = args.pop(0)
        if a in opts:
            opts[a] = args.pop(0)
        else:
            build = a
    tool = os.path.join(build, "tests", "recorder", "rec_tool")
    work = opts["--dir"]
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, "src720.flv")
    if not os.path.exists(src):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc2=size=1280x720:rate=30", "-f", "lavfi", "-i",
                        "sine=sample_rate=48000", "-t", "60", "-c:v", "libx264", "-preset",
                        "veryfast", "-b:v", "2850k", "-maxrate", "2850k", "-bufsize", "2850k",
                        "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", src],
                       check=True)
    times = {0: [], 1: []}
    segments = 0
    for _ in range(int(opts["--runs"])):
        for f in (0, 1):
            out = os.path.join(work, "rec%d" % f)
            shutil.rmtree(out, ignore_errors=True)
            subprocess.run(["sync"], check=True)  # start each run with a clean page cache
            p = subprocess.run([tool, "record", out, "bench", "--export", "0", "--segment",
                                opts["--segment"], "--fsync", str(f), src],
                               capture_output=True, text=True, check=True)
            kv = dict(l.split("=", 1) for l in p.stdout.splitlines() if "=" in l)
            times[f].append(int(kv["record.ms"]))
            segments = int(kv["live.segments"]) + 1  # the last one completes at the end
    for f, name in ((0, "off"), (1, "segment")):
        v = sorted(times[f])
        print("fsync = %-7s  %d runs: median %d ms (min %d, max %d)" %
              (name, len(v), statistics.median(v), v[0], v[-1]))
    med = statistics.median(times[1]) - statistics.median(times[0])
    low = min(times[1]) - min(times[0])
    print("%d segments of %s ms: %.1f ms more per segment (medians), %.1f ms (minimums)" %
          (segments, opts["--segment"], med / segments, low / segments))
    if shutil.which("strace"):
        out = os.path.join(work, "rec1")
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(["sync"], check=True)
        trace = os.path.join(work, "strace.txt")
        subprocess.run(["strace", "-f", "-T", "-e", "trace=fsync", "-o", trace, tool, "record",
                        out, "bench", "--export", "0", "--segment", opts["--segment"],
                        "--fsync", "1", src], capture_output=True, check=True)
        with open(trace) as f:
            v = sorted(float(m.group(1)) * 1000
                       for m in re.finditer(r"fsync\(\d+\)\s+= 0 <([0-9.]+)>", f.read()))
        if v:
            print("fsync calls: %d, %.1f ms in all; each: median %.2f ms, p90 %.2f ms, max "
                  "%.2f ms" % (len(v), sum(v), statistics.median(v), v[int(len(v) * 0.9)],
                               v[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""A training run killed (SIGKILL) in the middle of saving its checkpoint
never leaves a corrupt file behind.

The destination starts as a valid checkpoint OLD.  Each trial starts
`fepc train ... --save DEST` and watches the directory; the moment the save
begins — a temp file appears beside DEST, or DEST itself changes (size,
mtime or inode), whichever comes first — the run is killed with SIGKILL.
Afterwards DEST must be byte-identical to OLD or a complete new checkpoint
(its header parses, its tensors tile the data section exactly, `fepc eval`
accepts it).  A writer that truncated DEST in place would be caught by the
"DEST changed" trigger and fail the byte checks.

The test also requires that most trials really hit the window (the temp file
was seen), so it cannot pass by killing too early or too late.
usage: kill_save.py FEPC SOURCE_DIR
"""
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

FEPC, SRC = sys.argv[1], sys.argv[2]
MLP = os.path.join(SRC, "models", "fmnist_mlp.fep")
TRIALS = 12
failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    failures += 0 if cond else 1


def complete_checkpoint(path):
    """'' when PATH is a whole safetensors file, else what is wrong with it."""
    data = open(path, "rb").read()
    if len(data) < 8:
        return "shorter than the 8-byte header length"
    n = struct.unpack("<Q", data[:8])[0]
    if 8 + n > len(data):
        return "header length %d runs past the end (%d bytes)" % (n, len(data))
    try:
        header = json.loads(data[8:8 + n])
    except ValueError as e:
        return "header is not JSON: %s" % e
    spans = sorted(tuple(v["data_offsets"]) for k, v in header.items() if k != "__metadata__")
    at = 0
    for begin, end in spans:
        if begin != at:
            return "tensor data is not contiguous at byte %d" % at
        at = end
    if 8 + n + at != len(data):
        return "data section is %d bytes, tensors need %d" % (len(data) - 8 - n, at)
    return ""


def stat_key(path):
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ino)


with tempfile.TemporaryDirectory() as tmp:
    dest = os.path.join(tmp, "ckpt.safetensors")
    train = [FEPC, "train", MLP, "--epochs", "1", "--limit", "320", "--val", "64", "--save", dest]
    r = subprocess.run(train, capture_output=True, text=True)
    check(r.returncode == 0 and os.path.exists(dest), "a first run writes the checkpoint " + r.stderr.strip())
    if failures:
        sys.exit(1)
    old = open(dest, "rb").read()
    check(complete_checkpoint(dest) == "", "the first checkpoint is complete")

    hit = 0
    for trial in range(TRIALS):
        before = stat_key(dest)
        p = subprocess.Popen(train, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        saw_temp, how = False, "after it exited"
        while p.poll() is None:
            temps = [f for f in os.listdir(tmp) if f.startswith("ckpt.safetensors.tmp.")]
            if temps or stat_key(dest) != before:
                os.kill(p.pid, signal.SIGKILL)
                saw_temp = bool(temps)
                how = "mid-save" if saw_temp else "as the destination changed"
                break
        p.wait()
        hit += saw_temp
        now = open(dest, "rb").read()
        problem = complete_checkpoint(dest)
        check(now == old or problem == "",
              "trial %d (killed %s): checkpoint is the old one or a complete new one %s"
              % (trial, how, problem))
        if now != old:
            r = subprocess.run([FEPC, "eval", MLP, "--params", dest, "--limit", "64"], capture_output=True, text=True)
            check(r.returncode == 0, "trial %d: eval accepts the new checkpoint %s" % (trial, r.stderr.strip()))
            old = now
        for f in os.listdir(tmp):    # a SIGKILLed saver cannot clean up its temp file
            if f.startswith("ckpt.safetensors.tmp."):
                os.unlink(os.path.join(tmp, f))
    check(hit >= TRIALS // 2, "%d of %d kills landed while the temp file existed" % (hit, TRIALS))

print("%d passed, %d failed" % (1 if failures == 0 else 0, failures))
sys.exit(1 if failures else 0)

#!/usr/bin/python3
"""End-to-end test of `fepc plot grid|lines|scatter`: inputs are written with
numpy (and a few lines of safetensors and CSV writing), the PNGs decoded here
with zlib and struct (8-bit grey or RGB, non-interlaced, all five filters)
and checked pixel by pixel.

Checks: grid images are exactly the input values mapped from --range to
0..255 and scaled (.npy [N, H, W], safetensors [N, 1, H, W] with --tensor,
[N, D] with --shape, uint8 with --range 0,255, clipping, --cols, --count,
the default column count) at the documented size; a line chart is 640x480
(or --width x --height), has each series' colour in the plot area and, in
the corner the data leaves free, a legend with both colours and text;
--logy puts 100 halfway between 1 and 10^4 (linear puts it at the bottom)
and drops non-positive values; scatter classes land in their own quadrant
with a legend; and bad inputs (missing column or file, mismatched --shape,
unknown kind, no -o, wrong option for the kind, non-numeric cell, bad
class, ambiguous tensor, colour images, too large a grid, missing output
folder) exit 1 (data) or 2 (usage) naming the problem, and leave neither
an output file nor a temporary one (an existing output stays untouched).

The palette colours and the 2-pixel grid gap are fepc's (tools/plot/).

usage: cli_plot.py FEPC
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

WRAPPER = os.environ.get("FEPC_WRAPPER", "").split()    # e.g. valgrind (the valgrind label)
FEPC = sys.argv[1]
PALETTE = [(31, 100, 190), (235, 110, 20), (30, 150, 60)]   # plot_colour(0..2) in tools/plot/chart.c
GRID_GAP = 2
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def run(*args):
    r = subprocess.run([*WRAPPER, FEPC, "plot", *map(str, args)], capture_output=True, text=True, timeout=600)
    # Under ASan an error report also exits 1, like a data error: look for it.
    check("Sanitizer" not in r.stderr and "runtime error:" not in r.stderr,
          "fepc plot %s: sanitizer report:\n%s" % (" ".join(map(str, args)), r.stderr))
    return r.returncode, r.stderr


# ---- PNG decoding ----

def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def unfilter(kind, line, prev, bpp):
    if kind == 0:
        return line
    if kind == 2:
        return (line + prev).astype(np.uint8)
    out = bytearray(line.tobytes())
    up = prev.tolist()
    for i in range(len(out)):
        left = out[i - bpp] if i >= bpp else 0
        upleft = up[i - bpp] if i >= bpp else 0
        pred = left if kind == 1 else (left + up[i]) // 2 if kind == 3 else paeth(left, up[i], upleft)
        out[i] = (out[i] + pred) & 0xff
    return np.frombuffer(bytes(out), np.uint8)


def read_png(path):
    """Height × width × 3 uint8 array of an 8-bit grey or RGB PNG."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body), "bad CRC"
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (0, 2) and interlace == 0, "unsupported PNG %r" % (header,)
    bpp = 3 if colour == 2 else 1
    raw = np.frombuffer(zlib.decompress(idat), np.uint8)
    stride = width * bpp
    rows, prev = [], np.zeros(stride, np.uint8)
    for y in range(height):
        start = y * (stride + 1)
        prev = unfilter(int(raw[start]), raw[start + 1:start + 1 + stride], prev, bpp)
        rows.append(prev)
    img = np.stack(rows).reshape(height, width, bpp)
    return np.repeat(img, 3, axis=2) if bpp == 1 else img


# ---- input files ----

def write_safetensors(path, tensors):
    codes = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.uint8): "U8"}
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        blob = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": codes[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_csv(path, header, rows):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join("" if v is None else str(v) for v in row) + "\n")


# ---- image analysis ----

def mask_of(img, rgb):
    return np.all(img == np.array(rgb, np.uint8), axis=2)


def frame_of(img):
    """(left, top, right, bottom): the black plot-frame lines (longest black runs)."""
    black = mask_of(img, (0, 0, 0))
    cols, rows = black.sum(axis=0), black.sum(axis=1)
    vertical = np.nonzero(cols >= 0.5 * cols.max())[0]
    horizontal = np.nonzero(rows >= 0.5 * rows.max())[0]
    return vertical.min(), horizontal.min(), vertical.max(), horizontal.max()


def quadrant_counts(img, rgb, frame):
    """Pixels of colour rgb in the plot area's quadrants {tl, tr, bl, br}."""
    left, top, right, bottom = frame
    m = mask_of(img, rgb)[top + 1:bottom, left + 1:right]
    h, w = m.shape
    return {"tl": int(m[:h // 2, :w // 2].sum()), "tr": int(m[:h // 2, w // 2:].sum()),
            "bl": int(m[h // 2:, :w // 2].sum()), "br": int(m[h // 2:, w // 2:].sum())}


# ---- the checks ----

def expected_grid(images, cols, scale, lo, hi):
    n, h, w = images.shape
    rows = -(-n // cols)
    out = np.zeros((GRID_GAP + rows * (h * scale + GRID_GAP), GRID_GAP + cols * (w * scale + GRID_GAP)), np.int64)
    out[:] = -1                                      # the gap: not a grey level
    grey = np.clip(np.round((images.astype(np.float64) - lo) / (hi - lo) * 255), 0, 255)
    for k in range(n):
        y0 = GRID_GAP + (k // cols) * (h * scale + GRID_GAP)
        x0 = GRID_GAP + (k % cols) * (w * scale + GRID_GAP)
        out[y0:y0 + h * scale, x0:x0 + w * scale] = np.kron(grey[k], np.ones((scale, scale)))
    return out


def check_grid(tmp, label, path, images, args, cols, scale, lo=0.0, hi=1.0):
    out = os.path.join(tmp, label + ".png")
    rc, err = run("grid", path, *args, "-o", out)
    check(rc == 0, "%s: exit %d: %s" % (label, rc, err))
    if rc:
        return
    img = read_png(out)
    want = expected_grid(images, cols, scale, lo, hi)
    check(img.shape[:2] == want.shape, "%s: size %s, expected %s" % (label, img.shape[:2], want.shape))
    if img.shape[:2] != want.shape:
        return
    cells = want >= 0
    grey_ok = np.all(img[..., 0][cells] == img[..., 1][cells]) and np.all(img[..., 1][cells] == img[..., 2][cells])
    check(grey_ok, "%s: image pixels are not grey" % label)
    check(np.array_equal(img[..., 0][cells], want[cells]), "%s: pixels differ from the scaled input" % label)
    gap = img[~cells]
    check(not np.any((gap[:, 0] == gap[:, 1]) & (gap[:, 1] == gap[:, 2])), "%s: the gap colour is a grey level" % label)


def grid_tests(tmp):
    # Four 2x3 images; values on exact multiples of 1/255 so rounding is unambiguous.
    images = (np.arange(24, dtype=np.float32).reshape(4, 2, 3) * 10 / 255).astype(np.float32)
    images[3, 0, 0] = -0.5                           # clipped to 0
    images[3, 1, 2] = 1.7                            # clipped to 255
    npy = os.path.join(tmp, "img.npy")
    np.save(npy, images)
    check_grid(tmp, "grid_npy", npy, images, ["--scale", 3], cols=2, scale=3)
    check_grid(tmp, "grid_cols", npy, images, ["--cols", 3, "--scale", 1], cols=3, scale=1)
    check_grid(tmp, "grid_count", npy, images[:3], ["--count", 3], cols=2, scale=2)
    check_grid(tmp, "grid_range", npy, images, ["--range", "0.1,0.5", "--scale", 2], cols=2, scale=2, lo=0.1, hi=0.5)
    st = os.path.join(tmp, "img.safetensors")
    write_safetensors(st, {"labels": np.zeros(4, np.float32), "x": images.reshape(4, 1, 2, 3)})
    check_grid(tmp, "grid_st", st, images, ["--tensor", "x", "--cols", 4], cols=4, scale=2)
    flat = os.path.join(tmp, "flat.npy")
    np.save(flat, images.reshape(4, 6).astype(np.float64))
    check_grid(tmp, "grid_shape", flat, images, ["--shape", "2,3"], cols=2, scale=2)
    levels = np.arange(9 * 16, dtype=np.uint8).reshape(9, 4, 4)
    u8 = os.path.join(tmp, "u8.safetensors")
    write_safetensors(u8, {"digits": levels})
    check_grid(tmp, "grid_u8", u8, levels, ["--range", "0,255", "--scale", 1], cols=3, scale=1, lo=0, hi=255)
    square = os.path.join(tmp, "square.npy")                # [N, 16]: 4x4 images without --shape
    np.save(square, (levels.reshape(9, 16) / 255).astype(np.float32))
    check_grid(tmp, "grid_square", square, (levels / 255).astype(np.float32), [], cols=3, scale=2)


def line_tests(tmp):
    xs = np.linspace(0, 10, 41)
    rows = [(x, 10 * np.exp(-x), None if i % 3 == 1 else 8 * np.exp(-x), "run%d" % i) for i, x in enumerate(xs)]
    path = os.path.join(tmp, "log.csv")
    write_csv(path, ["step", "energy", "val_energy", "note"], rows)
    out = os.path.join(tmp, "lines.png")
    rc, err = run("lines", path, "--x", "step", "--y", "energy,val_energy", "--title", "Energy by step",
                  "--xlabel", "step", "--ylabel", "F", "-o", out)
    check(rc == 0, "lines: exit %d: %s" % (rc, err))
    if rc:
        return
    img = read_png(out)
    check(img.shape == (480, 640, 3), "lines: size %s, expected 480x640" % (img.shape,))
    frame = frame_of(img)
    left, top, right, bottom = frame
    check(right - left > 400 and bottom - top > 300, "lines: plot frame %s is too small" % (frame,))
    for i, name in enumerate(["energy", "val_energy"]):
        q = quadrant_counts(img, PALETTE[i], frame)
        check(q["bl"] + q["br"] > 100, "lines: series %s has no curve in the plot area: %s" % (name, q))
        # Both curves leave the top-right quarter; only the legend can put their colours there.
        check(q["tr"] > 10, "lines: legend swatch of %s missing in the top-right corner: %s" % (name, q))
    tr = mask_of(img, (0, 0, 0))[top + 1:(top + bottom) // 2, (left + right) // 2:right]
    check(tr.sum() > 40, "lines: no legend text in the top-right corner")
    check(mask_of(img, (0, 0, 0))[:top].sum() > 40, "lines: no title above the plot")

    out2 = os.path.join(tmp, "lines_big.png")
    rc, err = run("lines", path, "--x", "step", "--y", "energy", "--width", 900, "--height", 300, "-o", out2)
    check(rc == 0 and read_png(out2).shape == (300, 900, 3), "lines --width 900 --height 300: exit %d %s" % (rc, err))


def logy_tests(tmp):
    rows = [(x, 10.0 ** x) for x in range(5)] + [(5, 0), (6, -3)]    # non-positive: dropped on a log axis
    path = os.path.join(tmp, "pow.csv")
    write_csv(path, ["x", "y"], rows[:5])
    path_np = os.path.join(tmp, "pow_np.csv")
    write_csv(path_np, ["x", "y"], rows)
    for label, src, args, where in [("logy", path_np, ["--logy"], "middle"), ("linear", path, [], "bottom")]:
        out = os.path.join(tmp, label + ".png")
        rc, err = run("lines", src, "--x", "x", "--y", "y", *args, "-o", out)
        check(rc == 0, "%s: exit %d: %s" % (label, rc, err))
        if rc:
            continue
        img = read_png(out)
        left, top, right, bottom = frame_of(img)
        cx = (left + right) // 2                    # x = 2, where y = 100
        column = np.nonzero(mask_of(img, PALETTE[0])[top + 1:bottom, cx - 1:cx + 2].any(axis=1))[0] + top + 1
        if where == "middle":
            mid = (top + bottom) / 2
            ok = column.size and abs(column.mean() - mid) <= 4
        else:
            ok = column.size and column.mean() >= bottom - 0.1 * (bottom - top)
        check(ok, "%s: y=100 at rows %s, expected the %s of the frame %d..%d" % (label, column, where, top, bottom))


def scatter_tests(tmp):
    rng = np.random.default_rng(1)
    centres = {0: (0, 0), 1: (10, 10), 2: (10, 0)}
    rows = [(cx + rng.uniform(-1, 1), cy + rng.uniform(-1, 1), k) for k, (cx, cy) in centres.items() for _ in range(15)]
    path = os.path.join(tmp, "points.csv")
    write_csv(path, ["u", "v", "label"], rows)
    out = os.path.join(tmp, "scatter.png")
    rc, err = run("scatter", path, "--x", "u", "--y", "v", "--color", "label", "--title", "Clusters", "-o", out)
    check(rc == 0, "scatter: exit %d: %s" % (rc, err))
    if rc:
        return
    img = read_png(out)
    check(img.shape == (480, 640, 3), "scatter: size %s" % (img.shape,))
    frame = frame_of(img)
    counts = [quadrant_counts(img, PALETTE[k], frame) for k in range(3)]
    for k, quadrant in [(0, "bl"), (1, "tr"), (2, "br")]:
        total = sum(counts[k].values())
        check(total > 100 and counts[k][quadrant] >= 0.7 * total,
              "scatter: class %d should sit in quadrant %s: %s" % (k, quadrant, counts[k]))
    # The legend: one quadrant holds a marker of every class (and some text).
    shared = [q for q in ["tl", "tr", "bl", "br"] if all(c[q] > 5 for c in counts)]
    check(len(shared) == 1, "scatter: no single quadrant holds the legend's markers: %s" % counts)
    rc, err = run("scatter", path, "--x", "u", "--y", "v", "-o", os.path.join(tmp, "plain.png"))
    check(rc == 0, "scatter without --color: exit %d: %s" % (rc, err))


def expect_error(tmp, label, args, code, words, out=None):
    out = out or os.path.join(tmp, "err_" + label + ".png")
    before = set(os.listdir(os.path.dirname(out))) if os.path.isdir(os.path.dirname(out)) else set()
    existed = os.path.exists(out)
    rc, err = run(*[a if a != "OUT" else out for a in args])
    check(rc == code, "%s: exit %d, expected %d (%s)" % (label, rc, code, err.strip()))
    for w in words:
        check(w in err, "%s: message does not mention %r: %s" % (label, w, err.strip()))
    check("fepc plot: " in err, "%s: message lacks the 'fepc plot: ' prefix: %s" % (label, err.strip()))
    check(existed or not os.path.exists(out), "%s: wrote %s" % (label, out))
    if os.path.isdir(os.path.dirname(out)):
        left = [f for f in set(os.listdir(os.path.dirname(out))) - before if ".tmp." in f]
        check(not left, "%s: left temporary files %s" % (label, left))


def error_tests(tmp):
    csv_path = os.path.join(tmp, "e.csv")
    write_csv(csv_path, ["a", "b", "c"], [(1, 2, 0), (2, "x", 1), (3, 4, 1.5)])
    ragged = os.path.join(tmp, "ragged.csv")
    with open(ragged, "w") as f:
        f.write("a,b\n1,2\n3\n")
    flat = os.path.join(tmp, "flat24.npy")
    np.save(flat, np.zeros((3, 24), np.float32))
    rgb = os.path.join(tmp, "rgb.npy")
    np.save(rgb, np.zeros((2, 3, 4, 4), np.float32))
    two = os.path.join(tmp, "two.safetensors")
    write_safetensors(two, {"x": np.zeros((2, 3, 3), np.float32), "y": np.zeros((2, 3, 3), np.float32)})
    big = os.path.join(tmp, "big.npy")
    np.save(big, np.zeros((4, 100, 100), np.uint8))
    missing = os.path.join(tmp, "nowhere.csv")
    cases = [
        ("missing_column", ["lines", csv_path, "--x", "a", "--y", "nope", "-o", "OUT"], 1, ["nope", csv_path]),
        ("missing_file", ["lines", missing, "--x", "a", "--y", "b", "-o", "OUT"], 1, [missing]),
        ("missing_npy", ["grid", os.path.join(tmp, "none.npy"), "-o", "OUT"], 1, ["none.npy"]),
        ("shape_mismatch", ["grid", flat, "--shape", "5,5", "-o", "OUT"], 1, [flat, "5,5", "24"]),
        ("not_square", ["grid", flat, "-o", "OUT"], 1, [flat, "--shape"]),
        ("unknown_kind", ["pie", csv_path, "-o", "OUT"], 2, ["pie"]),
        ("no_output", ["lines", csv_path, "--x", "a", "--y", "b"], 2, ["-o"]),
        ("no_kind", [], 2, ["kind"]),
        ("wrong_kind_option", ["grid", flat, "--logy", "-o", "OUT"], 2, ["--logy", "grid"]),
        ("unknown_option", ["lines", csv_path, "--x", "a", "--y", "b", "--bogus", "-o", "OUT"], 2, ["--bogus"]),
        ("missing_x", ["lines", csv_path, "--y", "b", "-o", "OUT"], 2, ["--x"]),
        ("bad_range", ["grid", flat, "--shape", "4,6", "--range", "1,1", "-o", "OUT"], 2, ["--range"]),
        ("bad_width", ["lines", csv_path, "--x", "a", "--y", "b", "--width", "abc", "-o", "OUT"], 2, ["--width"]),
        ("non_numeric", ["lines", csv_path, "--x", "a", "--y", "b", "-o", "OUT"], 1, ["'b'", "'x'", csv_path + ":3"]),
        ("bad_class", ["scatter", csv_path, "--x", "a", "--y", "a", "--color", "c", "-o", "OUT"], 1,
         [csv_path + ":4", "'c'", "1.5"]),
        ("ragged", ["lines", ragged, "--x", "a", "--y", "b", "-o", "OUT"], 1, [ragged + ":3", "expected 2 fields"]),
        ("ambiguous_tensor", ["grid", two, "-o", "OUT"], 1, [two, "x", "y", "--tensor"]),
        ("no_such_tensor", ["grid", two, "--tensor", "z", "-o", "OUT"], 1, [two, "'z'"]),
        ("colour_images", ["grid", rgb, "-o", "OUT"], 1, [rgb, "3 channels"]),
        ("too_large", ["grid", big, "--scale", 64, "-o", "OUT"], 1, [big, "8192"]),
        ("unknown_type", ["grid", csv_path, "-o", "OUT"], 1, [csv_path, ".npy"]),
    ]
    for label, args, code, words in cases:
        expect_error(tmp, label, args, code, words)
    # The output folder does not exist: an error naming the output, no crash.
    nodir = os.path.join(tmp, "no", "such", "dir", "f.png")
    expect_error(tmp, "no_output_dir", ["lines", csv_path, "--x", "a", "--y", "a", "-o", nodir], 1, [nodir], out=nodir)
    # A failed plot leaves an existing output exactly as it was.
    keep = os.path.join(tmp, "keep.png")
    with open(keep, "wb") as f:
        f.write(b"old")
    expect_error(tmp, "keeps_old", ["lines", csv_path, "--x", "a", "--y", "nope", "-o", keep], 1, ["nope"], out=keep)
    with open(keep, "rb") as f:
        check(f.read() == b"old", "keeps_old: the existing output was changed")
    # A text column nobody selected does not matter; empty cells are skipped.
    rc, err = run("lines", csv_path, "--x", "a", "--y", "c", "-o", os.path.join(tmp, "ok.png"))
    check(rc == 0, "an unselected non-numeric column broke the plot: %s" % err)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        grid_tests(tmp)
        line_tests(tmp)
        logy_tests(tmp)
        scatter_tests(tmp)
        error_tests(tmp)
    if failures:
        print("%d check(s) failed" % failures)
        sys.exit(1)
    print("cli_plot: all checks passed")


if __name__ == "__main__":
    main()

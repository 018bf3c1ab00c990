#!/usr/bin/python3
"""Cross-checks fepc's tensor files against NumPy, using numpy and the
standard library only (no safetensors package): the 8-byte length and the
JSON header are parsed by hand, exactly as a script reading fepc's params or
dumps would.  test_tensorio --numpy drives it; the expected values below
mirror the ones in tests/test_tensorio.c (keep them in step).

  st_numpy_check.py check-st FILE    verify a safetensors file fepc wrote
  st_numpy_check.py write-st FILE    write a safetensors file for fepc to read
  st_numpy_check.py write-npy DIR    write .npy files (v1/v2/v3, fortran, big-endian)
  st_numpy_check.py check-npy DIR    verify .npy files fepc wrote
Exit status 0 = all checks passed; any failure raises (status 1)."""
import json
import os
import struct
import sys

import numpy as np

ST_DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "I16": "<i2",
             "I8": "i1", "U8": "u1", "BOOL": "?", "F16": "<f2"}


def read_st(path):
    """Returns (ordered [(name, array)] by data offset, metadata, raw header)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    assert 8 + n <= len(blob), "header length past EOF"
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    out, expect = [], 0
    for name, info in entries:
        b, e = info["data_offsets"]
        assert b == expect, f"{name}: gap/overlap at {b}, expected {expect}"
        expect = e
        arr = np.frombuffer(data[b:e], dtype=np.dtype(ST_DTYPES[info["dtype"]]))
        out.append((name, arr.reshape(info["shape"])))
    assert expect == len(data), "data section not fully covered"
    return out, meta, blob[8:8 + n]


def check_st(path):
    tensors, meta, raw = read_st(path)
    assert len(raw) % 8 == 0, "header not padded to 8 bytes"
    names = [n for n, _ in tensors]
    assert names == ["W1", "b", "steps", "scalar", "empty", "half", "mask", 'q"\\\u00e9'], names
    t = dict(tensors)
    np.testing.assert_array_equal(t["W1"], (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3))
    assert t["W1"].dtype == np.float32
    np.testing.assert_array_equal(t["b"], np.array([1 / 3, -2.5e-300, 1e300]))
    np.testing.assert_array_equal(t["steps"], np.array([-(2 ** 62), 2 ** 53 + 1], dtype=np.int64))
    assert t["scalar"].shape == () and t["scalar"] == np.float32(7.25)
    assert t["empty"].shape == (0, 4)
    np.testing.assert_array_equal(t["half"], np.array([1.0, -2.5, 65504.0], dtype=np.float16))
    np.testing.assert_array_equal(t["mask"], np.array([True, False, False, True]))
    np.testing.assert_array_equal(t['q"\\\u00e9'], np.array([200, 7], dtype=np.uint8))
    assert meta == {"format": "pt", "note": 'a "quoted" line\nwith \u00e9'}, meta


def write_st(path):
    """Tensors laid out in a different order than the JSON keys, names needing
    escapes (including a surrogate pair), BF16 as raw bits, metadata."""
    tensors = [
        ("u", np.array([[1, 2], [3, 4]], dtype=np.uint8), "U8"),
        ("a", (np.arange(12, dtype=np.float32) / 4).reshape(3, 4), "F32"),
        ("i", np.array([-1, 2, 3], dtype=np.int32), "I32"),
        ("h", np.array([0.5, -1.5, 2.0 ** -24], dtype=np.float16), "F16"),
        ("bf", np.array([0x3F80, 0xC000, 0x4049], dtype="<u2"), "BF16"),
        ("sp ace/\u00fc\u2603\U0001F600", np.array([7], dtype=np.int64), "I64"),
        ("tab\tname", np.array(2.5, dtype=np.float64), "F64"),
    ]
    header, blobs, off = {}, [], 0
    for name, arr, dt in tensors:
        raw = arr.tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    ordered = dict(reversed(list(header.items())))
    ordered["__metadata__"] = {"source": "numpy", "pi": "3.14"}
    text = json.dumps(ordered, ensure_ascii=True).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_npy(d):
    np.save(os.path.join(d, "f4.npy"), (np.arange(6, dtype="<f4").reshape(2, 3) - 1.5))
    np.save(os.path.join(d, "f8.npy"), np.array([0.1, -2.0, 1e-300, 3.0, 4.5]))
    np.save(os.path.join(d, "i8.npy"), np.array(-(2 ** 40), dtype=np.int64))
    np.save(os.path.join(d, "b1.npy"), np.array([[True, False], [False, True]]))
    np.save(os.path.join(d, "u1.npy"), np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    np.save(os.path.join(d, "i2.npy"), np.array([-32768, 32767], dtype=np.int16))
    np.save(os.path.join(d, "empty.npy"), np.zeros((0, 3), dtype=np.float32))
    np.save(os.path.join(d, "fortran.npy"), np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
    np.save(os.path.join(d, "big.npy"), np.array([1, 2], dtype=">i4"))
    for ver in ((2, 0), (3, 0)):
        with open(os.path.join(d, "v%d.npy" % ver[0]), "wb") as f:
            np.lib.format.write_array(f, np.array([1.5, 2.5], dtype="<f4"), version=ver)


def check_npy(d):
    a = np.load(os.path.join(d, "c_f4.npy"))
    assert a.dtype == np.float32 and a.shape == (2, 3)
    np.testing.assert_array_equal(a, (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3))
    s = np.load(os.path.join(d, "c_scalar.npy"))
    assert s.shape == () and s.dtype == np.int64 and s == -7
    b = np.load(os.path.join(d, "c_bool.npy"))
    np.testing.assert_array_equal(b, np.array([True, False, True]))
    e = np.load(os.path.join(d, "c_empty.npy"))
    assert e.shape == (3, 0) and e.dtype == np.float64


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    mode, target = argv[1], argv[2]
    {"check-st": check_st, "write-st": write_st, "write-npy": write_npy, "check-npy": check_npy}[mode](target)
    print("st_numpy_check: %s %s: ok" % (mode, target))


if __name__ == "__main__":
    main(sys.argv)

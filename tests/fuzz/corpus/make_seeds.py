#!/usr/bin/python3
"""make_seeds.py — writes the binary seed files of the fuzz corpora (tests/fuzz/corpus/):
tiny valid IDX (plain and gzipped), safetensors, NPY and CSV files, made with struct and
json only (no numpy, nothing copied from Fashion-MNIST).  The text seeds (fuzz_frontend,
fuzz_repl) are kept as they are.  Deterministic: re-running rewrites identical bytes.

    /usr/bin/python3 tests/fuzz/corpus/make_seeds.py
"""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- IDX: 0, 0, type code, rank, big-endian u32 dims, big-endian payload ----
def idx(code, dims, payload):
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def gz(data):
    return gzip.compress(data, mtime=0)


u8_images = idx(0x08, [2, 2, 2], bytes(range(0, 80, 10)))          # 2 images of 2x2 u8
u8_labels = idx(0x08, [3], bytes([0, 9, 4]))
f32_vec = idx(0x0D, [3], struct.pack(">3f", 1.5, -2.0, 0.25))
i16_mat = idx(0x0B, [2, 1], struct.pack(">2h", -300, 7))
f64_one = idx(0x0E, [1], struct.pack(">d", 3.125))
put("fuzz_idx", "u8_2x2x2.idx", u8_images)
put("fuzz_idx", "u8_2x2x2.idx.gz", gz(u8_images))
put("fuzz_idx", "u8_labels.idx", u8_labels)
put("fuzz_idx", "f32_3.idx", f32_vec)
put("fuzz_idx", "i16_2x1.idx.gz", gz(i16_mat))
put("fuzz_idx", "f64_1.idx", f64_one)


# ---- safetensors: u64 header length, JSON header, data ----
def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes), laid out in order."""
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


put("fuzz_safetensors", "params.safetensors", safetensors(
    [("W", "F32", [2, 2], struct.pack("<4f", 1, 0.5, -0.5, 1)),
     ("b", "F64", [2], struct.pack("<2d", 0.1, -0.2)),
     ("step", "I64", [], struct.pack("<q", 42))],
    {"format": "fepc", "model": "tiny"}))
put("fuzz_safetensors", "mixed.safetensors", safetensors(
    [("h", "F16", [3], struct.pack("<3e", 1.0, -2.5, 0.0)),
     ("g", "BF16", [2], bytes([0x80, 0x3F, 0x00, 0xC0])),   # 1.0, -2.0
     ("mask", "BOOL", [2, 2], bytes([1, 0, 0, 1])),
     ("i", "I32", [1], struct.pack("<i", -7)),
     ("s", "I16", [2], struct.pack("<2h", 3, -4)),
     ("c", "I8", [1], struct.pack("<b", -1)),
     ("u", "U8", [2], bytes([0, 255])),
     ("empty", "F32", [0, 3], b"")]))
put("fuzz_safetensors", "empty.safetensors", safetensors([]))


# ---- NPY (first byte 'n' for fuzz_csv_npy) ----
def npy(descr, shape, raw, version=1):
    shape_text = "(" + "".join("%d," % d for d in shape) + ")" if len(shape) != 1 else "(%d,)" % shape[0]
    if not shape:
        shape_text = "()"
    text = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_text)
    lenfmt = "<H" if version == 1 else "<I"
    prefix = 6 + 2 + struct.calcsize(lenfmt)
    pad = -(prefix + len(text) + 1) % 64
    text = (text + " " * pad + "\n").encode("latin-1")
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(lenfmt, len(text)) + text + raw


put("fuzz_csv_npy", "f4_2x3.npy", b"n" + npy("<f4", [2, 3], struct.pack("<6f", 1, 2, 3, 4, 5, 6.5)))
put("fuzz_csv_npy", "u1_4.npy", b"n" + npy("|u1", [4], bytes([0, 1, 2, 255])))
put("fuzz_csv_npy", "i8_scalar.npy", b"n" + npy("<i8", [], struct.pack("<q", -9)))
put("fuzz_csv_npy", "f8_v2.npy", b"n" + npy("<f8", [1, 2], struct.pack("<2d", 0.5, -1e300), version=2))
put("fuzz_csv_npy", "b1_2.npy", b"n" + npy("|b1", [2], bytes([1, 0])))
put("fuzz_csv_npy", "f2_2.npy", b"n" + npy("<f2", [2], struct.pack("<2e", 1.5, -0.25)))

# ---- CSV (first byte 'c') ----
put("fuzz_csv_npy", "table.csv", b"c" + b"x,y,label\n0.5,-1,3\n2e-3, 4 ,0\n")
put("fuzz_csv_npy", "quoted.csv", b"c" + b'"a ""q""",b\r\n1,2\r\n\r\n')
put("fuzz_csv_npy", "header_only.csv", b"c" + b"only\n")

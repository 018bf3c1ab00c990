"""The package's declarations of libfep (fep/_native.py) are fep.h's: every
declaration in the cdef appears in runtime/fep.h as written (comments and
spacing aside), and the library reports the API version the package was
written for."""
import os
import re

from conftest import ROOT
from fep import _native


def declarations(text):
    """Top-level C declarations, comments and preprocessor lines removed,
    whitespace normalised."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    text = text.replace('extern "C" {', " ")
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == ";" and depth == 0:
            decl = re.sub(r"\s+", " ", text[start:i + 1]).strip()
            decl = re.sub(r"\s*([(){}\[\],;*])\s*", r"\1", decl)
            if decl != ";":
                out.append(decl.lstrip("};"))
            start = i + 1
    return out


def test_cdef_declarations_are_the_headers():
    with open(os.path.join(ROOT, "runtime", "fep.h")) as f:
        header = set(declarations(f.read()))
    cdef = declarations(_native.CDEF)
    assert len(cdef) > 40
    missing = [d for d in cdef if d not in header]
    assert not missing, "declared in fep/_native.py but not (so) in fep.h: %s" % missing


def test_api_version_matches_header():
    with open(os.path.join(ROOT, "runtime", "fep.h")) as f:
        version = int(re.search(r"#define FEP_API_VERSION (\d+)", f.read()).group(1))
    assert _native.API_VERSION == version == _native.lib.fep_api_version()

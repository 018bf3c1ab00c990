#!/bin/sh
# The fep package's two installs, offline: `cmake --install` into a temporary
# prefix (package and libfep; the installed package must find the installed
# library by itself), and `pip install --no-build-isolation` of python/ (a
# copy, so the checkout stays clean) into a target directory, using libfep
# through FEP_LIBRARY.  Each import runs from an unrelated directory and
# relaxes a model.
# usage: python_install.sh BUILD_DIR SOURCE_DIR PYTHON3
set -eu
build=$1 src=$2 py=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
site=$(ls -d "$tmp"/prefix/lib/python3*/dist-packages)
test -f "$site/fep/__init__.py" && test -f "$site/fep/_install_paths.py"
probe='import fep, sys
m = fep.compile(sys.argv[1])
s = m.session(batch=1)
s["u"], s["o"] = [[1.0]], [[0.1, 0.2, 0.3]]
print(fep.LIBRARY_PATH, s.relax() > 0)'
cd "$tmp"
out=$(env -u FEP_LIBRARY PYTHONPATH="$site" "$py" -c "$probe" "$src/models/kalman.fep")
echo "cmake --install: $out"
case "$out" in "$tmp/prefix/"*" True") ;; *) echo "FAIL: the installed package did not use the installed libfep"; exit 1;; esac

cp -r "$src/python" "$tmp/src"
"$py" -m pip install --quiet --no-build-isolation --no-index --no-deps --target "$tmp/pip" "$tmp/src" \
    > "$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log"; exit 1; }
out=$(FEP_LIBRARY="$tmp/prefix/lib/libfep.so.0" PYTHONPATH="$tmp/pip" "$py" -c "$probe" "$src/models/kalman.fep")
echo "pip install: $out"
case "$out" in "$tmp/prefix/lib/libfep.so.0 True") ;; *) echo "FAIL: pip-installed package"; exit 1;; esac
echo "2 passed, 0 failed"

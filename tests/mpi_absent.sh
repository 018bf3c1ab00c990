#!/bin/sh
# mpi_absent.sh FEPC MODEL — in a build without MPI, fepc started by an MPI
# launcher (here: the environment Open MPI's mpirun gives its ranks) must
# refuse to train, rather than train one independent copy per rank.
fepc="$1" model="$2"
out=$(OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=1 "$fepc" train "$model" --epochs 1 --limit 64 2>&1)
rc=$?
echo "$out"
[ "$rc" = 1 ] || { echo "FAIL: exit $rc, expected 1"; exit 1; }
case "$out" in
  *"built without MPI"*) echo "ok   refused, naming the missing MPI" ;;
  *) echo "FAIL: the message does not say the build lacks MPI"; exit 1 ;;
esac
out=$(OMPI_COMM_WORLD_SIZE=1 "$fepc" train "$model" --epochs 1 --limit 64 2>&1) ||
  { echo "$out"; echo "FAIL: one rank (mpirun -np 1) must train as usual"; exit 1; }
echo "ok   a single rank trains as usual"

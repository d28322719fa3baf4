#!/bin/sh
# Runs a mesh integration program with a single worker (make check runs the
# programs themselves with BROKER_WORKERS=4, so every mesh lands on some
# shard other than the one that read its hello).
#   tests/integration/workers1.sh  -> runs check_mesh, check_durability, check_hook and check_peerstate
# make check runs this from the build directory, where the programs are.
set -e
MESHD_TEST_WORKERS=1
export MESHD_TEST_WORKERS
./tests/integration/check_mesh
./tests/integration/check_durability
./tests/integration/check_hook
./tests/integration/check_peerstate

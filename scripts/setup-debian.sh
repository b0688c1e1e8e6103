#!/usr/bin/env bash
# System packages robust-synth needs on Debian 12 (run as root). LibTorch comes from
# libtorch-dev; Python's torch is used only to export models and for reference checks.
#
# libopenblas0-openmp: Debian's libtorch links the generic libblas.so.3, which is the reference
# BLAS unless an optimized one is installed; installing OpenBLAS switches the alternative
# (update-alternatives --display libblas.so.3-x86_64-linux-gnu). LibTorch sends small
# convolutions (batch 1) and linear layers there: a Fashion-MNIST step at batch 1 runs about 4x
# faster with it (bench/README.md). The OpenMP build shares LibTorch's OpenMP runtime.
# fonts-dejavu-core: text in the benchmark chart (bench/chart.png).
# redis-server: the queue's broker for `robust-synth worker`/`submit`/`status` (BullMQ over Redis,
# docs/queue.md); test/queue.test.ts and bench/queue.ts start their own from this binary (the
# package's own service on 127.0.0.1:6379 is not used by them).
# chromium: the browser test of the web playground (`robust-synth serve`): test/serve.test.ts
# drives /usr/bin/chromium with playwright-core, and fails without it (RS_SKIP_BROWSER=1 skips it).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  libtorch-dev python3-torch python3-torchvision python3-dill dataset-fashion-mnist \
  libopenblas0-openmp fonts-dejavu-core redis-server chromium \
  cmake ninja-build g++ make

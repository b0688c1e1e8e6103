#!/usr/bin/env bash
# System packages robust-synth needs on Debian 12 (run as root). LibTorch comes from
# libtorch-dev; Python's torch is used only to export models and for reference checks.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  libtorch-dev python3-torch python3-torchvision python3-dill dataset-fashion-mnist \
  cmake ninja-build g++ make

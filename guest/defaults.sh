# Shared defaults for the guest scripts (sourced, not run): where the kernel is
# cached and which kernel command line suits wafer's machine.
# shellcheck shell=bash disable=SC2034  # the variables are read by the scripts that source this

# Downloaded kernels live outside the source and build trees so that a clean
# build does not fetch again.
WAFER_CACHE=${WAFER_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/wafer}
WAFER_KERNEL_DIR=${WAFER_KERNEL_DIR:-$WAFER_CACHE/kernel-cloud-amd64}

# console=ttyS0: wafer's COM1. earlyprintk: messages from before the console
# driver starts, which is where a new VMM's boot usually stops. reboot=k:
# restart through the i8042 reset line, which wafer implements. panic=-1:
# a panic reboots at once, so wafer exits with its reboot status instead of
# hanging. No "quiet", so progress shows; no pci= workarounds.
WAFER_DEFAULT_CMDLINE="console=ttyS0 earlyprintk=serial,ttyS0,115200 reboot=k panic=-1"

#!/usr/bin/env bash
# QEMU for run-qemu.sh when a hostile guest runs (QEMU=qemu-hostile.sh).
# QEMU answers each broken virtqueue with an error line on stderr
# ("qemu-system-x86_64: Looped descriptor"); run-qemu.sh takes such lines for
# QEMU itself failing when the guest then exits 0. They are the guest's
# doing and expected: they stay on stderr, marked
# "qemu-system-x86_64 (hostile guest): ...". A real QEMU failure still fails
# the test: the guest's final line never appears.
# Environment: HOSTILE_QEMU (default qemu-system-x86_64).
set -u
q=${HOSTILE_QEMU:-qemu-system-x86_64}
name=${q##*/}
exec "$q" "$@" 2> >(exec sed -u "s/^$name: /$name (hostile guest): /" >&2)

#!/bin/sh
# autogen.sh: create configure from a git checkout.
set -e
cd "$(dirname "$0")"
mkdir -p build-aux m4
# automake's TAP driver is not installed by --add-missing: copy it
cp -f "$(automake --print-libdir)/tap-driver.sh" build-aux/tap-driver.sh
autoreconf -fi

#!/usr/bin/env bash
# Fetch the two manuals of benchmarks/questions/unseen_debian.json from Debian's archive
# (a package registry, so it works offline of everything else): gputils-doc 1.4.0 (a PIC
# assembler's manual, 52 pages, tables ruled with images) and ngspice-doc 39.3 (a circuit
# simulator's manual, 715 pages, schematics). Usage: benchmarks/fetch_unseen.sh DIR
set -euo pipefail
dir=${1:?usage: benchmarks/fetch_unseen.sh DIR}
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download gputils-doc ngspice-doc >/dev/null)
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
zcat "$work/x/usr/share/doc/gputils-doc/gputils.pdf.gz" > "$dir/gputils.pdf"
zcat "$work/x/usr/share/doc/ngspice-doc/manual.pdf.gz" > "$dir/ngspice_manual.pdf"
ls -l "$dir"

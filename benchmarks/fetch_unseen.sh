#!/usr/bin/env bash
# Fetch the manuals of benchmarks/questions/unseen_*.json from Debian's archive (a package
# registry, so it works offline of everything else): gputils-doc 1.4.0 (a PIC assembler's
# manual, 52 pages, tables ruled with images), ngspice-doc 39.3 (a circuit simulator's
# manual, 715 pages, schematics) and expeyes-doc-en 4.3 (the expEYES Junior user's manual, a
# lab device's: 65 pages, panel photos, circuit drawings, measurement tables).
# Usage: benchmarks/fetch_unseen.sh DIR
set -euo pipefail
dir=${1:?usage: benchmarks/fetch_unseen.sh DIR}
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download gputils-doc ngspice-doc expeyes-doc-en >/dev/null)
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
zcat "$work/x/usr/share/doc/gputils-doc/gputils.pdf.gz" > "$dir/gputils.pdf"
zcat "$work/x/usr/share/doc/ngspice-doc/manual.pdf.gz" > "$dir/ngspice_manual.pdf"
cp "$work/x/usr/share/expeyes/doc/en-eyesj.pdf" "$dir/expeyes_junior.pdf"
ls -l "$dir"

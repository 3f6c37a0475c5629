#!/usr/bin/env bash
# Fetch the manuals of benchmarks/questions/unseen_*.json from Debian's archive (a package
# registry, so it works offline of everything else): gputils-doc 1.4.0 (a PIC assembler's
# manual, 52 pages, tables ruled with images), ngspice-doc 39.3 (a circuit simulator's
# manual, 715 pages, schematics), expeyes-doc-en 4.3 (the expEYES Junior user's manual, a
# lab device's: 65 pages, panel photos, circuit drawings, measurement tables) and
# freedombox-doc-en 23.6.2 (a home server's user guide: 303 pages, screenshots, port tables,
# printed page numbers 25 less than the PDF's).
# Usage: benchmarks/fetch_unseen.sh DIR
set -euo pipefail
dir=${1:?usage: benchmarks/fetch_unseen.sh DIR}
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download gputils-doc ngspice-doc expeyes-doc-en freedombox-doc-en >/dev/null)
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
zcat "$work/x/usr/share/doc/gputils-doc/gputils.pdf.gz" > "$dir/gputils.pdf"
zcat "$work/x/usr/share/doc/ngspice-doc/manual.pdf.gz" > "$dir/ngspice_manual.pdf"
cp "$work/x/usr/share/expeyes/doc/en-eyesj.pdf" "$dir/expeyes_junior.pdf"
cp "$work/x/usr/share/freedombox/manual/en/freedombox-manual.pdf" "$dir/freedombox_manual.pdf"
ls -l "$dir"

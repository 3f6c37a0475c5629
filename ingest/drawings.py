"""Vector figures: which clusters of line-art on a page are diagrams.

``page.cluster_drawings()`` joins every path that touches another, so what it returns
mixes diagrams with rules, page borders, boxes around notes and table grids. This
module keeps the diagrams and says which boxes are only frames around text (a frame
is a figure only when the manual captions it, as NEETS does for its boxed "Figure 1C"
lists).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pymupdf

# Items closer than this to a cluster's edge are its frame, not its content (points).
EDGE_BAND = 8.0
# A cluster spanning this share of the page in both directions is a page border.
PAGE_SCALE = 0.8
# Share of a cluster covered by a detected table above which the cluster is that table.
TABLE_OVERLAP = 0.6
_TOLERANCE = 3.0  # cluster_drawings' default neighbourhood


@dataclass(frozen=True, slots=True)
class VectorRegion:
    rect: pymupdf.Rect
    frame: bool = False  # only a box around text: kept when captioned


def _visible(path: dict[str, Any]) -> bool:
    """White fills without a stroke are knock-outs behind images, not drawing."""
    if path.get("type") == "f":
        fill = path.get("fill") or (0, 0, 0)
        if min(fill) > 0.95 or (path.get("fill_opacity") or 1.0) < 0.05:
            return False
    if path.get("type") == "s":
        color = path.get("color") or (0, 0, 0)
        if min(color) > 0.95:
            return False
    return True


def _item_rects(path: dict[str, Any]) -> list[tuple[str, pymupdf.Rect]]:
    """Each line, curve or rectangle of a path with its own box: one path may hold a frame
    and everything inside it, so frames are told apart item by item."""
    out: list[tuple[str, pymupdf.Rect]] = []
    for item in path.get("items", ()):
        kind = item[0]
        if kind == "re":
            rect = pymupdf.Rect(item[1])
        elif kind == "qu":
            rect = pymupdf.Quad(item[1]).rect
        else:  # "l" and "c": points
            points = [pymupdf.Point(p) for p in item[1:]]
            rect = pymupdf.Rect(points[0], points[0])
            for point in points[1:]:
                rect |= point
        rect.normalize()
        out.append((kind, rect))
    return out or [("re", pymupdf.Rect(path["rect"]))]


def _on_edge(kind: str, rect: pymupdf.Rect, box: pymupdf.Rect) -> bool:
    band = EDGE_BAND
    if (rect.x1 <= box.x0 + band or rect.x0 >= box.x1 - band
            or rect.y1 <= box.y0 + band or rect.y0 >= box.y1 - band):
        return True
    # An outline or background rectangle the size of the cluster frames it.
    return kind in ("re", "qu") and all(
        abs(a - b) <= band
        for a, b in ((rect.x0, box.x0), (rect.y0, box.y0), (rect.x1, box.x1), (rect.y1, box.y1))
    )


def _clusters(page: pymupdf.Page, rects: list[pymupdf.Rect]) -> list[pymupdf.Rect]:
    fake = [{"rect": r} for r in rects]  # cluster_drawings only reads "rect"
    return [pymupdf.Rect(r) for r in page.cluster_drawings(drawings=fake)]


def _drawn(box: pymupdf.Rect, min_side: float) -> bool:
    """Content worth a figure: a row of boxes counts, a separator rule or an icon does not."""
    return max(box.width, box.height) >= min_side and min(box.width, box.height) >= min_side / 3


def _classify(page: pymupdf.Page, box: pymupdf.Rect, items: list[tuple[str, pymupdf.Rect]],
              min_side: float, nested: bool = False) -> list[VectorRegion]:
    inner = [(k, r) for k, r in items if not _on_edge(k, r, box)]
    inner_boxes = _clusters(page, [r for _, r in inner]) if inner else []
    page_rect = page.rect
    page_scale = box.width >= PAGE_SCALE * page_rect.width and box.height >= PAGE_SCALE * page_rect.height
    if page_scale and not nested:
        # A border around the whole page: what it holds is judged on its own.
        out = []
        for sub in inner_boxes:
            if min(sub.width, sub.height) >= min_side:
                members = [(k, r) for k, r in inner if r in sub + (-1, -1, 1, 1)]
                out.extend(_classify(page, sub, members, min_side, nested=True))
        return out
    if len(inner) < len(items) and not any(_drawn(b, min_side) for b in inner_boxes):
        # Only a frame (perhaps with a small icon inside): a note box or a boxed list.
        return [VectorRegion(box, frame=True)]
    return [VectorRegion(box)]


def vector_regions(page: pymupdf.Page, min_side: float) -> list[VectorRegion]:
    """Diagram-sized clusters of line-art, without rules, borders, icons or table grids."""
    paths = [p for p in page.get_drawings() if _visible(p)]
    if not paths:
        return []
    items = [item for p in paths for item in _item_rects(p)]
    regions: list[VectorRegion] = []
    for box in _clusters(page, [r for _, r in items]):
        if min(box.width, box.height) < min_side:  # rules, underlines, icons
            continue
        members = [(k, r) for k, r in items if r in box + (-1, -1, 1, 1)]
        regions.extend(_classify(page, box, members, min_side))
    if not regions:
        return []
    return _drop_tables(page, regions)


def _drop_tables(page: pymupdf.Page, regions: list[VectorRegion]) -> list[VectorRegion]:
    """Table grids are chunked as text by the page stage; they are not figures."""
    # The line-strategy finder without the layout model: ~0.03 s a page instead of ~0.4 s.
    try:
        tables = [pymupdf.Rect(t.bbox) for t in page.find_tables(strategy="lines", use_layout=False).tables]
    except Exception:  # noqa: BLE001 - a finder failure must not cost the page its figures
        tables = []
    kept = []
    for region in regions:
        area = max(region.rect.get_area(), 1.0)
        covered = max((abs(region.rect & t) for t in tables), default=0.0)
        if covered / area < TABLE_OVERLAP:
            kept.append(region)
    return kept

"""What a PDF carries besides its pages: scripts, actions that start programs, attached files.

manualrag never runs or extracts any of it (PyMuPDF reads pages without running
scripts, and nothing here opens an attachment). It only says so in the ingest report,
so support staff know a file arrived with more than a manual in it. Counts only: the
names inside a hostile file are not worth repeating.
"""

from __future__ import annotations

import pymupdf

# Keys and names in an object's dictionary that mark each kind of active content.
_SCRIPT = ("/JavaScript", "/JS ", "/JS(", "/JS<")
_LAUNCH = ("/Launch",)
_ATTACHMENT = ("/EmbeddedFile",)  # the file's own stream, attached to the document or to a note


def active_content(doc: pymupdf.Document) -> list[str]:
    """One warning per kind of active content found; empty for a plain manual."""
    scripts = launches = attachments = 0
    for xref in range(1, doc.xref_length()):
        try:
            text = doc.xref_object(xref, compressed=True)  # the dictionary only, never a stream
        except Exception:  # noqa: BLE001 - a broken object is the page readers' problem
            continue
        scripts += any(key in text for key in _SCRIPT)
        launches += any(key in text for key in _LAUNCH)
        attachments += any(key in text for key in _ATTACHMENT)
    warnings = []
    if scripts:
        warnings.append(f"the PDF contains JavaScript ({scripts} objects): ignored, never run")
    if launches:
        warnings.append(f"the PDF has {launches} launch actions (they start programs): ignored")
    if attachments:
        warnings.append(f"the PDF carries {attachments} attached files: not extracted or indexed")
    return warnings

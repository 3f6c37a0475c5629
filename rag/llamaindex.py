"""manualrag's hybrid retrieval as a llama-index retriever.

Applications built on llama-index (query engines, agents, routers) can use a
manualrag library as a source: text chunks come back as ``TextNode``, figures as
``ImageNode`` with the cropped PNG path, each with manual, page and figure label.

Why the store itself does not go through llama-index's ``ChromaVectorStore``: it
writes a ``_node_content`` JSON copy of every node's metadata and relationships
into each Chroma record, deletes only by ``ref_doc_id``, and has no notion of a
generation that becomes visible in one step, which is what keeps a crashed ingest
invisible (rag/library.py). The keyword side needs our own index either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import ImageNode, NodeWithScore, QueryBundle, TextNode

from manualrag.types import Hit


def hit_to_node(hit: Hit) -> NodeWithScore:
    metadata = {"manual": hit.manual, "page": hit.page, "kind": hit.kind, "figure": hit.figure, "section": hit.section}
    if hit.kind == "figure" and hit.image:
        node: TextNode = ImageNode(id_=hit.id, text=hit.text, image_path=hit.image, metadata=metadata)
    else:
        node = TextNode(id_=hit.id, text=hit.text, metadata=metadata)
    # Page and manual are for citing, not for the LLM to read as content.
    node.excluded_llm_metadata_keys = ["kind", "section"]
    node.excluded_embed_metadata_keys = list(metadata)
    return NodeWithScore(node=node, score=hit.score)


class ManualragRetriever(BaseRetriever):
    """Hybrid (dense + BM25) search over a manualrag library, figures included."""

    def __init__(self, engine, manuals: Sequence[str] | None = None, k: int | None = None) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self._engine = engine
        self._manuals = list(manuals) if manuals else None
        self._k = k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        result = self._engine.search(query_bundle.query_str, self._manuals, self._k)
        return [hit_to_node(hit) for hit in result.hits]

"""Documents: text from files, chunks, a knowledge index (SQLite FTS5, optional vectors), the
background indexer, attachments for a message, and numbered citations. No Qt, no torch.

The API the window calls (see ARCHITECTURE.md, "Documents and knowledge folders"):
- attach:  read_attachment(path, count, reader) -> Attachment (.chip for the chip, .text to save);
           prepare_attachments(attachments, question, budget, count) -> PreparedAttachments
           (.prompt to send, .chips, .sources for the reply's citations)
- folders: KnowledgeIndex(default_index_path()) .add_folder / .remove_folder / .folders /
           .file_statuses / .search; IndexJob(path, on_progress=...).start() / pause / resume / cancel
- knowledge passages for a message: retrieve_knowledge(index, question, budget, count, folder_ids)
- replies: link_citations(reply, sources), cited_numbers(reply, sources)
"""
from .attachments import (Attachment, AttachmentChip, PreparedAttachments, prepare_attachments, read_attachment,
                          retrieve_knowledge, whole_text)
from .chunking import chunk_passages
from .citations import Source, build_prompt, cited_numbers, link_citations
from .extract import extract, kind_of
from .index import Folder, IndexUnusable, KnowledgeIndex, default_index_path
from .indexer import IndexJob, IndexProgress, IndexSummary
from .ranking import reciprocal_rank_fusion
from .reader import ReaderProcess
from .tokens import approx_tokens
from .types import Chunk, Extraction, FileStatus, Hit, Passage
from .vectors import Embedder

__all__ = [
    "Attachment", "AttachmentChip", "Chunk", "Embedder", "Extraction", "FileStatus", "Folder", "Hit", "IndexJob",
    "IndexProgress", "IndexSummary", "IndexUnusable", "KnowledgeIndex", "Passage", "PreparedAttachments",
    "ReaderProcess", "Source",
    "approx_tokens", "build_prompt", "chunk_passages", "cited_numbers", "default_index_path", "extract", "kind_of",
    "link_citations", "prepare_attachments", "read_attachment", "reciprocal_rank_fusion", "retrieve_knowledge",
    "whole_text",
]

"""Attachments for a message (whole or retrieved within a budget), the prompt with numbered
sources, and [n] citations in a reply turned into links (issue 32)."""
from __future__ import annotations

from pathlib import Path

from chatgui.documents import (IndexJob, KnowledgeIndex, Source, approx_tokens, build_prompt, cited_numbers,
                               link_citations, prepare_attachments, read_attachment, retrieve_knowledge)
from fact_corpus import FactCorpus
from pdf_maker import write_pdf


def words(text: str) -> int:
    """A stand-in for a model's token counter: one token per word."""
    return len(text.split())


def test_chip_of_an_attachment(tmp_path):
    pdf = write_pdf(tmp_path / "report.pdf", [["Revenue grew in spring."], ["Costs fell in autumn."]])
    attachment = read_attachment(pdf, words)
    chip = attachment.chip
    assert (chip.name, chip.kind, chip.pages, chip.mode, chip.error) == ("report.pdf", "pdf", 2, "whole", None)
    assert chip.tokens == words(attachment.text) > 0
    assert "[page 2]" in attachment.text  # the model can name the page of a whole PDF
    assert chip.to_dict()["tokens"] == chip.tokens
    assert type(chip).from_dict(chip.to_dict()) == chip


def test_small_files_go_in_whole(tmp_path):
    a = tmp_path / "a.md"
    a.write_text("# Plan\n\nShip the release on Friday.\n")
    b = tmp_path / "b.txt"
    b.write_text("The budget is 40 thousand.\n")
    attachments = [read_attachment(a, words), read_attachment(b, words)]
    prepared = prepare_attachments(attachments, "When do we ship?", budget_tokens=500, count_tokens=words)
    assert [c.mode for c in prepared.chips] == ["whole", "whole"]
    assert [s.number for s in prepared.sources] == [1, 2] and all(s.whole for s in prepared.sources)
    assert "[1] a.md:\n# Plan\n\nShip the release on Friday." in prepared.prompt
    assert prepared.prompt.rstrip().endswith("Question: When do we ship?")
    assert prepared.tokens <= 500


def test_a_large_pdf_gives_the_relevant_passages_within_the_budget(tmp_path):
    pages, facts = FactCorpus(seed=21).pages(30, n_facts=3, lines_per_page=60)
    pdf = write_pdf(tmp_path / "manual.pdf", pages)
    attachment = read_attachment(pdf, words)
    assert attachment.chip.tokens > 5000
    fact = facts[1]
    prepared = prepare_attachments([attachment], fact.question, budget_tokens=1000, count_tokens=words)
    chip = prepared.chips[0]
    assert chip.mode == "retrieved" and 1 <= chip.passages == len(prepared.sources)
    assert prepared.tokens <= 1000
    assert sum(words(s.text) for s in prepared.sources) <= 1000
    best = prepared.sources[0]
    assert best.page == fact.page and fact.value in best.text and best.number == 1
    assert f"[1] manual.pdf, page {fact.page}:" in prepared.prompt


def test_small_whole_large_retrieved_and_failures_noted(tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("The office opens at nine.")
    pages, facts = FactCorpus(seed=4).pages(20, n_facts=2, lines_per_page=60)
    big = write_pdf(tmp_path / "big.pdf", pages)
    empty = tmp_path / "empty.csv"
    empty.touch()
    attachments = [read_attachment(p, words) for p in (small, big, empty)]
    prepared = prepare_attachments(attachments, facts[0].question, budget_tokens=800, count_tokens=words)
    assert [c.mode for c in prepared.chips] == ["whole", "retrieved", "failed"]
    assert prepared.notes == ["empty.csv: the file is empty"]
    assert prepared.sources[0].whole and prepared.sources[0].name == "small.txt"
    assert any(s.page == facts[0].page and facts[0].value in s.text for s in prepared.sources[1:4])
    assert prepared.tokens <= 800


def test_no_question_gives_the_start_of_the_document(tmp_path):
    lines = [f"Line {i} of the long document with several words." for i in range(2000)]
    f = tmp_path / "long.txt"
    f.write_text("\n".join(lines))
    prepared = prepare_attachments([read_attachment(f, words)], "", budget_tokens=300, count_tokens=words)
    assert prepared.chips[0].mode == "retrieved"
    assert prepared.sources[0].line_start == 1
    assert "Question: summarise these sources." in prepared.prompt


def test_knowledge_passages_are_numbered_after_attachments(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_text("# Holidays\n\nStaff get 25 days of paid holiday each year.\n")
    index = KnowledgeIndex(tmp_path / "k.sqlite3")
    index.add_folder(docs)
    IndexJob(index.path, separate_reader=False).run()
    knowledge = retrieve_knowledge(index, "How many holiday days do staff get?", 500, words)
    assert [s.name for s in knowledge] == ["handbook.md"] and knowledge[0].line_start == 1
    note = tmp_path / "note.txt"
    note.write_text("Ask HR about holiday carry-over.")
    prepared = prepare_attachments([read_attachment(note, words)], "holiday days?", 500, words,
                                   extra_sources=knowledge)
    assert [(s.number, s.name) for s in prepared.sources] == [(1, "note.txt"), (2, "handbook.md")]
    assert "[2] handbook.md, lines 1-3:" in prepared.prompt


def test_default_token_estimate():
    assert approx_tokens("") == 0
    assert approx_tokens("abcd" * 25) == 25
    assert approx_tokens("漢字かな") == 4  # one per CJK character, not one per four


# -- citations --------------------------------------------------------------------------------

SOURCES = [Source(1, "/docs/report.pdf", "Revenue grew.", page=4),
           Source(2, "/docs/notes.md", "Costs fell.", line_start=10, line_end=12),
           Source(3, "/docs/plan.txt", "Whole plan.", whole=True)]


def test_source_labels_and_links():
    assert [s.label() for s in SOURCES] == ["report.pdf, page 4", "notes.md, lines 10-12", "plan.txt"]
    assert SOURCES[0].uri() == "file:///docs/report.pdf#page=4"
    assert SOURCES[2].uri() == "file:///docs/plan.txt"
    assert Source.from_dict(SOURCES[1].to_dict()) == SOURCES[1]
    odd = Source(1, "/docs/my report (final).pdf", "x", page=2)
    assert " " not in odd.uri() and "(" not in odd.uri()  # safe inside a Markdown link


def test_prompt_numbers_sources_and_asks_for_citations():
    prompt = build_prompt("What changed?", SOURCES)
    assert "cite it with its number in square brackets, like [1]" in prompt
    assert prompt.index("[1] report.pdf, page 4:\nRevenue grew.") < prompt.index("[2] notes.md, lines 10-12:")
    assert prompt.endswith("Question: What changed?")
    assert build_prompt("Plain question", []) == "Plain question"


def test_citations_become_links():
    reply = "Revenue grew [1] while costs fell [2, 3]. Both [1-2] agree [1][2]."
    linked = link_citations(reply, SOURCES, href=lambda s: f"source:{s.number}")
    assert linked == ("Revenue grew [\\[1\\]](source:1) while costs fell [\\[2\\]](source:2)[\\[3\\]](source:3). "
                      "Both [\\[1\\]](source:1)[\\[2\\]](source:2) agree [\\[1\\]](source:1)[\\[2\\]](source:2).")
    assert cited_numbers(reply, SOURCES) == [1, 2, 3]


def test_what_is_not_a_citation_is_left_alone():
    reply = "See [9] and x[1] and `a[2]` and [link](http://x) and [1](http://already).\n```\nb[1] = [2]\n```\nok [3]"
    linked = link_citations(reply, SOURCES, href=lambda s: f"source:{s.number}")
    assert linked == reply.replace("ok [3]", "ok [\\[3\\]](source:3)")
    assert cited_numbers(reply, SOURCES) == [3]


def test_default_link_is_the_file_at_its_page():
    assert link_citations("Grew [1].", SOURCES) == "Grew [\\[1\\]](file:///docs/report.pdf#page=4)."
    assert Path(SOURCES[0].path).name == SOURCES[0].name


def test_whole_text_keeps_blank_lines(tmp_path):
    code = "def a():\n    return 1\n\n\ndef b():\n    return 2\n"
    f = tmp_path / "m.py"
    f.write_text(code)
    assert read_attachment(f).text == code.rstrip("\n")


def test_attachment_read_in_a_reader_process(tmp_path):
    from chatgui.documents.reader import ReaderProcess

    pdf = write_pdf(tmp_path / "r.pdf", [["first page"], ["second page"]])
    broken = tmp_path / "b.pdf"
    broken.write_bytes(b"%PDF-1.4 nothing else")
    reader = ReaderProcess(200, 40)
    try:
        attachment = read_attachment(pdf, words, reader=reader)
        assert (attachment.chip.pages, attachment.chip.mode) == (2, "whole")
        assert attachment.text == "[page 1]\nfirst page\n[page 2]\nsecond page"
        failed = read_attachment(broken, words, reader=reader)
        assert failed.chip.mode == "failed" and failed.chip.error.startswith("this PDF is damaged")
    finally:
        reader.close()

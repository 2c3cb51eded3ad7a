"""Generated documents with facts stated once, for retrieval tests and benchmarks/bench_documents.py.

Filler pages are sentences of made-up words mixed with the words questions use: every entity
asked about also appears on other pages with other attributes, every attribute appears on
other pages with decoy entities ("The launch code of Belmora is ..."), so a retriever that
matches one word finds many pages; only the page that states the fact has the entity and the
attribute together. Deterministic for a given seed.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

ATTRIBUTES = ["launch code", "head engineer", "storage capacity", "founding year", "harbour depth",
              "signal frequency", "reactor temperature", "archive location", "patrol route", "mineral yield",
              "orbital period", "ferry schedule", "vault password", "crop rotation", "bridge clearance",
              "census count", "tide table", "cargo manifest", "budget ceiling", "relay station",
              "antenna height", "water ration", "border marker", "library quota"]
_SYLLABLES = ["bel", "mor", "tan", "vik", "sol", "dra", "quen", "lor", "zam", "pel", "rud", "kis", "ober", "alt",
              "ven", "gor", "ist", "hal", "mun", "tre", "fay", "nox", "ul", "ceb"]
_COMMON = ("the of and to in a is that for it as was with on by this be are from at or an which had not "
           "were but all their would there when been has more if will one about into than other two them some "
           "time could these may then do first any like now people its over such only new also after well "
           "report survey council district station committee season measure record northern valley").split()


@dataclass(frozen=True)
class Fact:
    entity: str
    attribute: str
    value: str
    page: int  # 1-based

    @property
    def sentence(self) -> str:
        return f"The {self.attribute} of {self.entity} is {self.value}."

    @property
    def question(self) -> str:
        return f"What is the {self.attribute} of {self.entity}?"


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def _value(rng: random.Random) -> str:
    return f"{rng.choice(['K', 'R', 'T', 'M'])}-{rng.randint(1000, 9999)}-{rng.choice(['alpha', 'delta', 'sigma'])}"


def _names() -> tuple[list[str], list[str]]:
    """Entities that questions may ask about, and decoys that no question names: the same for
    every corpus, so that no seed's decoy is another seed's entity."""
    rng = random.Random(2024)
    names: list[str] = []
    while len(names) < 80:
        name = _name(rng)
        if name not in names:
            names.append(name)
    return names[:40], names[40:]


ENTITIES, DECOYS = _names()
MAX_FACTS = len(ENTITIES)


class FactCorpus:
    def __init__(self, seed: int = 7):
        self.rng = random.Random(seed)
        self.filler_words = ["".join(self.rng.choice(_SYLLABLES) for _ in range(self.rng.randint(1, 3)))
                             for _ in range(1500)] + _COMMON * 6
        self.names = ENTITIES

    def _filler_sentence(self, entities: list[str]) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.12 and entities:  # an entity asked about, with an attribute other than its fact's
            i = rng.randrange(len(entities))
            other = rng.choice([a for a in ATTRIBUTES if a != ATTRIBUTES[i % len(ATTRIBUTES)]])
            return f"The {other} plans of {entities[i]} were discussed by the council."
        if roll < 0.2:  # a decoy statement: an attribute with an entity no question names
            return f"The {rng.choice(ATTRIBUTES)} of {rng.choice(DECOYS)} is {_value(rng)}."
        words = [rng.choice(self.filler_words) for _ in range(rng.randint(8, 16))]
        return " ".join(words).capitalize() + "."

    def pages(self, n_pages: int, n_facts: int = 0, must_pages: tuple[int, ...] = (),
              lines_per_page: int = 40) -> tuple[list[list[str]], list[Fact]]:
        """(pages of text lines, the facts placed on them, one per page)."""
        rng = self.rng
        fact_pages = list(dict.fromkeys(p for p in must_pages if 1 <= p <= n_pages))
        candidates = [p for p in range(1, n_pages + 1) if p not in fact_pages]
        fact_pages += rng.sample(candidates, max(0, n_facts - len(fact_pages)))
        assert n_facts <= MAX_FACTS
        entities = self.names[:n_facts]
        facts = [Fact(entities[i], ATTRIBUTES[i % len(ATTRIBUTES)], _value(rng), page)
                 for i, page in enumerate(fact_pages[:n_facts])]
        by_page = {f.page: f for f in facts}
        pages = []
        for number in range(1, n_pages + 1):
            sentences = [self._filler_sentence(entities) for _ in range(lines_per_page // 2)]
            if number in by_page:
                sentences.insert(rng.randrange(len(sentences) + 1), by_page[number].sentence)
            lines, line = [], ""
            for sentence in sentences:  # wrap into lines of about 90 characters, as a page shows them
                for word in sentence.split():
                    if len(line) + len(word) > 90:
                        lines.append(line)
                        line = word
                    else:
                        line = f"{line} {word}" if line else word
            lines.append(line)
            pages.append(lines)
        return pages, facts

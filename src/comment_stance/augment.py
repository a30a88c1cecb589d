"""Names in comments: mask them, or swap them among targets, so that a model learns how people
argue rather than which countries, leaders or pacts an article names.

Both model families take ``names = "keep" | "mask" | "swap"`` and call this module:

- ``"keep"`` (the default): comments are read as written.
- ``"mask"``: at training *and* prediction time the names of the :class:`NameLexicon` are
  replaced by neutral placeholders: a comment's own target's parties become ``Party A``,
  ``Party B``... (in the order the target names them), a capitalised pact name ``the Pact``, and
  every other name of the lexicon ``Name``. The lexicon is saved in the model folder, so
  prediction masks exactly as training did.
- ``"swap"``: at training time one copy of every comment is added with its target's names
  replaced, consistently in the comment, its parent and the target, by the names of another
  target (party by party, name by name in order of frequency); prediction reads comments as
  written.

The lexicon is built from the training data alone (:func:`build_lexicon`), for any dataset with
a target column; for each target:

- **parties**: the target is split on dashes and " and " (``"Iran–Iraq security agreement
  (2023)"`` gives ``Iran`` and ``Iraq security agreement``); each part's leading run of
  capitalised words is cut to its longest start that at least two of the target's comments
  write (``"Papua New Guinea Defence Cooperation Agreement"`` gives ``Papua New Guinea`` when
  the comments write it); when none is written, a run of at most three words followed by
  lower-case words is the party (``South Korea`` in ``"South Korea arms framework agreement"``),
  and any other run its first word;
- **pact name**: what is left of the target after its parties and a year in brackets, kept only
  when it holds a capital (``"Reciprocal Access Agreement"``; a plain ``"security agreement"``
  is how people talk, not a name);
- **names**: capitalised words of the target's comments that occur in at least ``min_count``
  of them, in at least ``concentration`` of all the comments that write them, and are not
  more often written in lower case (so ``However`` or ``Border`` at a sentence start are not
  names); only when the data has two targets or more.

A party matches its own inflections (``Iran`` also masks ``Iranian``, ``Kenya`` ``Kenyan``:
the name, less a final vowel when it has five letters or more, followed by any letters).

>>> lexicon = build_lexicon(["Iran–Iraq security agreement (2023)"] * 2 + ["Kenya–Haiti pact"] * 2,
...                         ["Tehran says Iran and Iraq agree.", "Iranian troops in Tehran.",
...                          "Kenyan police to Haiti.", "Haiti waits for Kenya."], min_count=2)
>>> lexicon.targets["Iran–Iraq security agreement (2023)"]["parties"]
['Iran', 'Iraq']
>>> lexicon.targets["Iran–Iraq security agreement (2023)"]["names"]
['Tehran']
>>> lexicon.mask_text("Tehran backs Iraq; Kenyans doubt it.", "Iran–Iraq security agreement (2023)")
'Name backs Party B; Name doubt it.'
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .errors import ModelError

#: values of the ``names`` hyper-parameter
NAMES_CHOICES = ("keep", "mask", "swap")
#: placeholders of ``names="mask"``
PARTY_PLACEHOLDERS = tuple(f"Party {c}" for c in "ABCDEFGH")
PACT_PLACEHOLDER = "the Pact"
NAME_PLACEHOLDER = "Name"

_SPLIT = re.compile(r"\s*[–—]\s*|(?<=\w)-(?=[A-Z])|\s+-\s+|\s+and\s+|\s*/\s*")
_YEAR = re.compile(r"\s*\(\s*\d{4}\s*\)\s*")
_WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ][\w'’.-]*")
_CAPITAL = re.compile(r"(?<![\w'’-])[A-ZÀ-ÖØ-Þ][\w-]*")
_CONNECTORS = {"of", "de", "du", "la", "al", "el"}


def check_names(value: Any) -> str:
    """``value`` when it is a valid ``names`` setting; otherwise a :class:`ModelError`.

    >>> check_names("mask")
    'mask'
    >>> check_names("hide")
    Traceback (most recent call last):
    ...
    comment_stance.errors.ModelError: names='hide' is not a names setting (use names='keep' (read comments as written), 'mask' (placeholders at training and prediction) or 'swap' (swapped copies at training))
    """
    if value not in NAMES_CHOICES:
        raise ModelError(f"names={value!r} is not a names setting",
                         "use names='keep' (read comments as written), 'mask' (placeholders at training and "
                         "prediction) or 'swap' (swapped copies at training)")
    return value


@dataclass
class NameLexicon:
    """The names each target's comments use: ``targets[target] = {"parties", "pact", "names"}``."""

    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: compiled replacers by (target, partner); built on first use
    _replacers: dict[tuple[str | None, str | None], Any] = field(default_factory=dict, repr=False, compare=False)

    # -- persistence ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"targets": {t: {"parties": list(e["parties"]), "pact": e["pact"], "names": list(e["names"])}
                            for t, e in sorted(self.targets.items())}}

    @classmethod
    def from_json(cls, data: Any, where: str = "config.json") -> "NameLexicon":
        targets = data.get("targets") if isinstance(data, dict) else None
        if not isinstance(targets, dict) or not all(
                isinstance(e, dict) and isinstance(e.get("parties"), list) and isinstance(e.get("names"), list)
                and all(isinstance(n, str) and n for n in e["parties"] + e["names"])
                and (e.get("pact") is None or isinstance(e.get("pact"), str)) for e in targets.values()):
            raise ModelError(f"{where}: the names lexicon is damaged", "retrain the model")
        return cls({str(t): {"parties": e["parties"], "pact": e.get("pact"), "names": e["names"]}
                    for t, e in targets.items()})

    # -- what a target's entry is, known or not ------------------------------------------------
    def entry(self, target: str | None) -> dict[str, Any]:
        """The lexicon entry of ``target``; for a target not seen in training, parties and pact from its name alone."""
        if not target:
            return {"parties": [], "pact": None, "names": []}
        if target not in self.targets:
            return target_entry(target, [])
        return self.targets[target]

    def all_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for entry in self.targets.values():
            for name in entry["parties"] + entry["names"] + ([entry["pact"]] if entry["pact"] else []):
                seen.setdefault(name, None)
        return list(seen)

    # -- masking ----------------------------------------------------------------------------------
    def mask_text(self, text: str | None, target: str | None) -> str | None:
        """``text`` with the lexicon's names replaced by placeholders, parties as ``target`` orders them."""
        if not text:
            return text
        return self.replacer(target, None)(text)

    def mask(self, texts: Sequence[str], targets: Sequence[str | None],
             parents: Sequence[str | None]) -> tuple[list[str], list[str | None], list[str | None]]:
        """Masked comments, targets and parents (the target is masked by its own entry too)."""
        def sub(value, target):
            return self.replacer(target, None)(value) if value else value

        return ([sub(x, t) for x, t in zip(texts, targets)], [sub(t, t) for t in targets],
                [sub(p, t) for p, t in zip(parents, targets)])

    # -- swapping ---------------------------------------------------------------------------------
    def swap_partners(self, targets: Sequence[str | None], seed: int) -> list[str | None]:
        """For each comment, another known target whose names replace its own (``None``: no swap)."""
        known = sorted(self.targets)
        rng = np.random.default_rng(seed)
        out: list[str | None] = []
        for target in targets:
            if target not in self.targets or len(known) < 2:
                out.append(None)
                continue
            others = [t for t in known if t != target]
            out.append(others[int(rng.integers(len(others)))])
        return out

    def swap_text(self, text: str | None, target: str | None, partner: str | None) -> str | None:
        """``text`` with ``target``'s names replaced by ``partner``'s (parties by position, names by rank)."""
        if not text or partner is None:
            return text
        return self.replacer(target, partner)(text)

    def replacer(self, target: str | None, partner: str | None):
        """The compiled replacement function of ``(target, partner)`` (``partner=None``: masking)."""
        key = (target, partner)
        if key not in self._replacers:
            if len(self._replacers) > 10_000:  # targets seen at prediction are unbounded
                self._replacers.clear()
            self._replacers[key] = _replacer(self, target, partner)
        return self._replacers[key]


def target_entry(target: str, comments: Sequence[str]) -> dict[str, Any]:
    """Parties and pact name of one target, from its name and (to cut long runs) its comments.

    >>> target_entry("US–Papua New Guinea Defence Cooperation Agreement (2023)",
    ...              ["Papua New Guinea gains.", "Papua New Guinea loses."])
    {'parties': ['US', 'Papua New Guinea'], 'pact': 'Defence Cooperation Agreement', 'names': []}
    """
    bare = _YEAR.sub(" ", target).strip()
    parties: list[str] = []
    for part in _SPLIT.split(bare):
        words = part.split()
        run: list[str] = []
        for word in words:
            if word[:1].isupper() or (run and word in _CONNECTORS):
                run.append(word)
            else:
                break
        while run and run[-1] in _CONNECTORS:
            run.pop()
        if not run:
            continue
        # the longest start of the run that the comments write; else a short run followed by
        # lower-case words is the whole party ("South Korea" in "South Korea arms agreement"),
        # and a longer one, which may end in a capitalised pact name, its first word
        short = len(run) < len(words) and len([w for w in run if w not in _CONNECTORS]) <= 3
        cut = len(run) if short else 1
        for j in range(len(run), 1, -1):
            phrase = " ".join(run[:j])
            if sum(1 for c in comments if phrase in c) >= 2:
                cut = j
                break
        name = " ".join(run[:cut])
        if name not in parties:
            parties.append(name)
    rest = bare
    for name in parties:
        rest = rest.replace(name, " ", 1)
    rest = " ".join(_SPLIT.sub(" ", rest).split()).strip(" -–—,/")
    rest = re.sub(r"^(?:and|of)\s+", "", rest).strip()
    pact = rest if rest and any(w[:1].isupper() for w in rest.split()) else None
    return {"parties": parties, "pact": pact, "names": []}


def build_lexicon(targets: Sequence[str | None], texts: Sequence[str], *, min_count: int = 3,
                  concentration: float = 0.8, max_names: int = 30) -> NameLexicon:
    """The :class:`NameLexicon` of a training set (see the module docstring for the rules).

    ``targets`` and ``texts`` are parallel; comments without a target count for the names of no
    target but do count as "elsewhere". At most ``max_names`` names per target (the most frequent).
    """
    by_target: dict[str, list[str]] = defaultdict(list)
    for text, target in zip(texts, targets):
        if target:
            by_target[target].append(text)
    capital_docs: dict[str, Counter] = defaultdict(Counter)  # word -> target -> comments with it capitalised
    lower_docs: Counter = Counter()                          # word -> comments with it in lower case
    for text, target in zip(texts, targets):
        words = set(_CAPITAL.findall(text))
        for word in words:
            capital_docs[_strip_possessive(word)][target or ""] += 1
        for word in {w for w in _WORD.findall(text) if w[:1].islower()}:
            lower_docs[word] += 1
    lexicon = NameLexicon()
    for target in sorted(by_target):
        entry = target_entry(target, by_target[target])
        if len(by_target) >= 2:
            taken = set(entry["parties"]) | set((entry["pact"] or "").split())
            found = []
            for word, per_target in capital_docs.items():
                here, total = per_target[target], sum(per_target.values())
                if (here >= min_count and here >= concentration * total and word not in taken
                        and lower_docs[word.lower()] < total and len(word) >= 2
                        and not any(_party_pattern(p).fullmatch(word) for p in entry["parties"])):
                    found.append((-here, word))
            entry["names"] = [w for _, w in sorted(found)[:max_names]]
        lexicon.targets[target] = entry
    return lexicon


# -- fit/predict helpers shared by the model families ---------------------------------------------
def training_inputs(names: str, texts: list[str], targets: list[str | None], parents: list[str | None],
                    labels: np.ndarray, seed: int):
    """What a model trains on under ``names``: ``(texts, targets, parents, labels, lexicon)``.

    ``lexicon`` is ``None`` for ``"keep"``. ``"swap"`` returns the original comments followed by
    one swapped copy of each comment whose target has a partner (same labels).
    """
    check_names(names)
    if names == "keep":
        return texts, targets, parents, labels, None
    lexicon = build_lexicon(targets, texts)
    if names == "mask":
        return (*lexicon.mask(texts, targets, parents), labels, lexicon)
    partners = lexicon.swap_partners(targets, seed)
    index = [i for i, p in enumerate(partners) if p is not None]
    new_texts = [lexicon.swap_text(texts[i], targets[i], partners[i]) for i in index]
    new_targets = [lexicon.swap_text(targets[i], targets[i], partners[i]) for i in index]
    new_parents = [lexicon.swap_text(parents[i], targets[i], partners[i]) for i in index]
    labels = np.concatenate([labels, labels[index]]) if index else labels
    return texts + new_texts, targets + new_targets, parents + new_parents, labels, lexicon


def prediction_inputs(names: str, lexicon: NameLexicon | None, texts: list[str], targets: list[str | None],
                      parents: list[str | None]):
    """What a model reads at prediction time under ``names`` (masked only for ``"mask"``)."""
    if names != "mask" or lexicon is None:
        return texts, targets, parents
    return lexicon.mask(texts, targets, parents)


# -- the replacement machinery -----------------------------------------------------------------------
def _strip_possessive(word: str) -> str:
    return re.sub(r"['’]s$", "", word)


def _party_pattern(name: str) -> re.Pattern:
    stem = name[:-1] if len(name) >= 5 and name[-1] in "aeiou" and " " not in name else name
    body = r"\s+".join(re.escape(w) for w in stem.split())
    return re.compile(rf"(?<!\w){body}[a-zà-ÿ]*(?![\w])")


def _name_pattern(name: str) -> str:
    body = r"\s+".join(re.escape(w) for w in name.split())
    return rf"(?<!\w){body}(?![\w])"


def _replacer(lexicon: NameLexicon, target: str | None, partner: str | None):
    """A function replacing names in a text in one pass (longest names first, nothing replaced twice).

    ``partner=None``: masking (own parties -> Party A..., own pact -> the Pact, any other name of
    the lexicon -> Name). Otherwise swapping: only ``target``'s own names, by ``partner``'s.
    """
    own = lexicon.entry(target)
    rules: list[tuple[str, str]] = []  # (regex, replacement)
    names: list[str] = []  # what the rules match, for their first letters
    if partner is None:
        for i, party in enumerate(own["parties"]):
            rules.append((_party_pattern(party).pattern, PARTY_PLACEHOLDERS[min(i, len(PARTY_PLACEHOLDERS) - 1)]))
            names.append(party)
        if own["pact"]:
            rules.append((_name_pattern(own["pact"]), PACT_PLACEHOLDER))
            names.append(own["pact"])
        taken = set(own["parties"]) | {own["pact"]}
        for entry in lexicon.targets.values():
            for party in entry["parties"]:
                if party not in taken:
                    rules.append((_party_pattern(party).pattern, NAME_PLACEHOLDER))
                    names.append(party)
                    taken.add(party)
        for name in lexicon.all_names():
            if name not in taken:
                rules.append((_name_pattern(name), NAME_PLACEHOLDER))
                names.append(name)
                taken.add(name)
    else:
        other = lexicon.entry(partner)
        if other["parties"]:
            for i, party in enumerate(own["parties"]):
                rules.append((_party_pattern(party).pattern, other["parties"][i % len(other["parties"])]))
                names.append(party)
        if own["pact"] and other["pact"]:
            rules.append((_name_pattern(own["pact"]), other["pact"]))
            names.append(own["pact"])
        if other["names"]:
            for i, name in enumerate(own["names"]):
                rules.append((_name_pattern(name), other["names"][i % len(other["names"])]))
                names.append(name)
    if not rules:
        return lambda text: text
    # longer patterns first, so that "Papua New Guinea" wins over "Papua"
    order = sorted(range(len(rules)), key=lambda k: (-len(rules[k][0]), k))
    # every alternative is tried only where a name can start (a fast first-letter check)
    firsts = "".join(sorted({re.escape(name[0]) for name in names}))
    pattern = re.compile(f"(?=[{firsts}])(?:" + "|".join(f"(?P<n{k}>{rules[k][0]})" for k in order) + ")")
    replacement = {f"n{k}": rules[k][1] for k in order}
    return lambda text: pattern.sub(lambda m: replacement[m.lastgroup], text)

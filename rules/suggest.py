"""Category suggestion from a resident's free-text description (no network model).

The suggester scores every category of a :class:`~rules.responsibility_list.ResponsibilityList`
against the text with four signals, strongest first:

1. the category's Chinese name (or a part of it, e.g. ``劳资纠纷`` of ``劳资纠纷(欠薪)``) appearing in
   the text;
2. a keyword appearing in the text; a longer keyword weighs more. English keywords match
   case-insensitively on word boundaries (runs of ASCII letters and digits, with a plural ``s``
   tolerated);
3. a Chinese keyword of three or more characters appearing with up to :data:`MAX_GAP` extra
   characters inside it (``树倒了`` in ``树被吹倒了``, ``拖欠工资`` in ``拖欠工人工资``), at a reduced weight;
4. a weak fallback: the character bigrams the text shares with the category's name and keywords,
   each weighted by how rare it is across the list (so ``垃圾没人清`` still ranks ``暴露垃圾``, whose
   keyword ``垃圾没人收`` shares ``垃圾``, ``圾没`` and ``没人``), plus the words of the English name.

Everything that depends only on the list is precomputed in ``__init__``; a suggestion looks up the
text's bigrams and characters in those indexes, so it takes a few tens of microseconds for a typical
description (a text of :data:`MAX_TEXT_CHARS` characters takes one to a few milliseconds).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rules.responsibility_list import ResponsibilityList

#: Longer texts are cut to this many characters before scoring.
MAX_TEXT_CHARS = 2000

#: Weight of a (part of a) category's Chinese name found in the text: ``NAME_BONUS + length``.
NAME_BONUS = 3.0
#: Weight of a Chinese keyword found in the text: ``KEYWORD_BASE + KEYWORD_PER_CHAR * length``.
KEYWORD_BASE = 1.5
KEYWORD_PER_CHAR = 1.0
#: Weight of an English keyword found in the text.
ENGLISH_KEYWORD_WEIGHT = 3.0
#: A gapped match counts this fraction of the exact match's weight.
GAPPED_FACTOR = 0.6
#: At most this many extra characters inside a gapped match.
MAX_GAP = 2
#: Gapped matching only for Chinese terms of at least this many characters.
GAPPED_MIN_CHARS = 3
#: Weight of a shared bigram, times its inverse document frequency (normalised to 1 for the rarest)
#: and ``1 + ln(n)`` where n counts the category's terms holding the bigram (its name counting twice).
BIGRAM_WEIGHT = 0.6
#: The weak signals (bigrams, English name words) of a category saturate towards this value, so they
#: reorder near-synonyms but never outweigh a keyword found in the text.
FALLBACK_CAP = 2.5
#: Weight of a word of the English name found in the text, times its normalised rarity.
ENGLISH_NAME_WEIGHT = 1.2

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RUN = re.compile(f"[{_CJK}]+")
_WORD = re.compile(r"[a-z0-9]+")
_ENGLISH_STOPWORDS = frozenset(
    "a an and or the of on in at for to by with from during around into its their not no".split()
)
#: Bigrams that say when or how often, not what: residents write them everywhere ("晚上广场舞太吵"),
#: and as a weak signal they ranked whichever category has such a word in a keyword (在建违建's
#: 晚上偷建). They still count inside a keyword found whole in the text (半夜施工).
_UNINFORMATIVE_BIGRAMS = frozenset(
    "晚上 早上 上午 下午 中午 半夜 夜里 凌晨 白天 每天 天天 整天 一直 经常 总是 好几 几天 已经 还在".split()
)


@dataclass(frozen=True)
class Suggestion:
    """One suggested category: its score and the terms of the list that matched the text."""

    code: str
    name_zh: str
    name_en: str
    score: float
    matched: tuple[str, ...]


@dataclass(frozen=True)
class _Term:
    """A Chinese term (name part or keyword) of one category, with its weight."""

    category: int
    text: str
    weight: float
    chars: frozenset[str]


def _normalise(text: str) -> str:
    """Full-width to half-width (NFKC) and lower case."""
    return unicodedata.normalize("NFKC", text).lower()


def _stem(word: str) -> str:
    """A crude English singular: ``cables`` → ``cable``, ``bodies`` → ``body``."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _words(text: str) -> list[str]:
    """Stemmed ASCII words of an already normalised text."""
    return [_stem(w) for w in _WORD.findall(text)]


def _bigrams(text: str) -> set[str]:
    """Character bigrams within runs of Chinese characters (never across punctuation), without the
    uninformative ones (:data:`_UNINFORMATIVE_BIGRAMS`)."""
    grams: set[str] = set()
    for run in _CJK_RUN.findall(text):
        grams.update(run[i : i + 2] for i in range(len(run) - 1))
    return grams - _UNINFORMATIVE_BIGRAMS


def _idf(document_frequency: int, documents: int) -> float:
    """Inverse document frequency normalised to (0, 1]: 1 for a feature of a single category."""
    return math.log(1 + documents / document_frequency) / math.log(1 + documents)


def _gapped_in(term: str, text: str) -> bool:
    """Whether ``term``'s characters occur in order in ``text`` within ``len(term) + MAX_GAP`` chars.

    Each start of the first character is extended greedily (earliest next character), which gives
    the shortest occurrence from that start, so trying every start is exact.
    """
    first, rest = term[0], term[1:]
    start = text.find(first)
    while start != -1:
        end = start + len(term) + MAX_GAP
        pos = start
        for ch in rest:
            pos = text.find(ch, pos + 1, end)
            if pos == -1:
                break
        else:
            return True
        start = text.find(first, start + 1)
    return False


class CategorySuggester:
    """Suggests categories of a responsibility list for a free-text description.

    Build one per list version (building takes a few milliseconds) and call :meth:`suggest`.
    Instances are immutable after construction and safe to share between threads.
    """

    def __init__(self, responsibility_list: ResponsibilityList) -> None:
        """Precompute the term indexes, bigram weights and English words of ``responsibility_list``."""
        self.version = responsibility_list.version
        categories = list(responsibility_list.categories)
        self._codes = [c.code for c in categories]
        self._names_zh = [c.name_zh for c in categories]
        self._names_en = [c.name_en for c in categories]
        count = len(categories)

        # Chinese terms of two or more characters, indexed by their first two characters.
        self._by_prefix: dict[str, list[_Term]] = defaultdict(list)
        # Single-character terms (e.g. 坑), indexed by the character.
        self._single_char: dict[str, list[_Term]] = defaultdict(list)
        # Terms long enough for gapped matching, indexed by their first character.
        self._gapped_by_first: dict[str, list[_Term]] = defaultdict(list)
        # English keywords (stemmed word tuples) per category.
        english: dict[tuple[str, ...], list[tuple[int, str]]] = defaultdict(list)
        bigram_counts: list[dict[str, int]] = []
        name_words: list[set[str]] = []

        for index, category in enumerate(categories):
            terms: dict[str, bool] = {}  # normalised term -> is a name part
            for part in _CJK_RUN.findall(_normalise(category.name_zh)):
                if len(part) >= 2:
                    terms[part] = True
            for keyword in category.keywords:
                norm = _normalise(keyword).strip()
                if _CJK_RUN.search(norm):
                    terms.setdefault(norm, False)
                else:
                    phrase = tuple(_words(norm))
                    if phrase:
                        english[phrase].append((index, keyword))
            for text, is_name in terms.items():
                length = len(text)
                weight = NAME_BONUS + length if is_name else KEYWORD_BASE + KEYWORD_PER_CHAR * length
                gappable = length >= GAPPED_MIN_CHARS and _CJK_RUN.fullmatch(text) is not None
                term = _Term(index, text, weight, frozenset(text))
                if length == 1:
                    self._single_char[text].append(term)
                else:
                    self._by_prefix[text[:2]].append(term)
                if gappable:
                    self._gapped_by_first[text[0]].append(term)
            grams: dict[str, int] = defaultdict(int)
            for text, is_name in terms.items():
                for gram in _bigrams(text):
                    grams[gram] += 2 if is_name else 1
            bigram_counts.append(grams)
            name_words.append({w for w in _words(_normalise(category.name_en)) if w not in _ENGLISH_STOPWORDS})

        holders: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for index, grams in enumerate(bigram_counts):
            for gram, n in grams.items():
                holders[gram].append((index, n))
        # bigram -> ((category index, weight), ...)
        self._bigram_index: dict[str, tuple[tuple[int, float], ...]] = {
            gram: tuple((index, BIGRAM_WEIGHT * _idf(len(held), count) * (1 + math.log(n))) for index, n in held)
            for gram, held in holders.items()
        }

        word_frequency: dict[str, int] = defaultdict(int)
        for name in name_words:
            for word in name:
                word_frequency[word] += 1
        # word -> ((category index, weight), ...)
        self._name_word_index: dict[str, tuple[tuple[int, float], ...]] = {
            word: tuple(
                (index, ENGLISH_NAME_WEIGHT * _idf(df, count))
                for index, name in enumerate(name_words)
                if word in name
            )
            for word, df in word_frequency.items()
        }

        self._single_english: dict[str, list[tuple[int, str]]] = {}
        self._multi_english: list[tuple[tuple[str, ...], list[tuple[int, str]]]] = []
        for phrase, owners in english.items():
            if len(phrase) == 1:
                self._single_english[phrase[0]] = owners
            else:
                self._multi_english.append((phrase, owners))

    def __len__(self) -> int:
        """Number of categories the suggester knows."""
        return len(self._codes)

    def suggest(self, text: str, limit: int = 5) -> list[Suggestion]:
        """The best ``limit`` categories for ``text``, best first (score descending, then code).

        Empty or whitespace-only text gives ``[]``; text longer than :data:`MAX_TEXT_CHARS` is cut.
        Only categories with a positive score are returned, so the list may be shorter than ``limit``.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if not text or not text.strip():
            return []
        norm = _normalise(text[:MAX_TEXT_CHARS])
        scores: dict[int, float] = defaultdict(float)
        weak: dict[int, float] = defaultdict(float)
        matched: dict[int, dict[str, float]] = defaultdict(dict)

        self._score_chinese_terms(norm, scores, matched)
        self._score_english(norm, scores, weak, matched)
        for gram in _bigrams(norm):
            for index, weight in self._bigram_index.get(gram, ()):
                weak[index] += weight
        for index, raw in weak.items():
            scores[index] += FALLBACK_CAP * (1.0 - math.exp(-raw / FALLBACK_CAP))

        ranked = sorted(
            ((round(score, 4), self._codes[index], index) for index, score in scores.items() if score > 0),
            key=lambda item: (-item[0], item[1]),
        )
        return [
            Suggestion(
                code=code,
                name_zh=self._names_zh[index],
                name_en=self._names_en[index],
                score=score,
                matched=tuple(t for t, _ in sorted(matched[index].items(), key=lambda kv: (-kv[1], kv[0]))),
            )
            for score, code, index in ranked[:limit]
        ]

    # ------------------------------------------------------------------ signals
    def _score_chinese_terms(
        self, norm: str, scores: dict[int, float], matched: dict[int, dict[str, float]]
    ) -> None:
        """Exact and gapped matches of Chinese names and keywords."""
        found: dict[int, dict[str, _Term]] = defaultdict(dict)
        by_prefix = self._by_prefix
        for prefix in {norm[i : i + 2] for i in range(len(norm) - 1)}:
            for term in by_prefix.get(prefix, ()):
                if term.text in norm:
                    found[term.category][term.text] = term
        chars = set(norm)
        for ch in chars:
            for term in self._single_char.get(ch, ()):
                found[term.category][term.text] = term
        exact = {(index, t) for index, terms in found.items() for t in terms}
        gapped: dict[int, dict[str, _Term]] = defaultdict(dict)
        for ch in chars:
            for term in self._gapped_by_first.get(ch, ()):
                if (term.category, term.text) not in exact and term.chars <= chars and _gapped_in(term.text, norm):
                    gapped[term.category][term.text] = term

        # A term inside another matched term of the same category adds nothing new (an exact match
        # is only outweighed by another exact match; a gapped match by any).
        for index in found.keys() | gapped.keys():
            terms = found.get(index, {})
            near = gapped.get(index, {})
            for text, term in terms.items():
                if _contained(text, terms):
                    continue
                scores[index] += term.weight
                matched[index][text] = term.weight
            for text, term in near.items():
                if _contained(text, terms) or _contained(text, near):
                    continue
                weight = GAPPED_FACTOR * term.weight
                scores[index] += weight
                matched[index][text] = weight

    def _score_english(
        self, norm: str, scores: dict[int, float], weak: dict[int, float], matched: dict[int, dict[str, float]]
    ) -> None:
        """English keywords (whole words) and, as a weak signal, words of the English names."""
        words = _words(norm)
        if not words:
            return
        present = set(words)
        for word in present:
            for index, keyword in self._single_english.get(word, ()):
                scores[index] += ENGLISH_KEYWORD_WEIGHT
                matched[index][keyword] = ENGLISH_KEYWORD_WEIGHT
            for index, weight in self._name_word_index.get(word, ()):
                weak[index] += weight
        if self._multi_english:
            joined = " " + " ".join(words) + " "
            for phrase, owners in self._multi_english:
                if " " + " ".join(phrase) + " " in joined:
                    for index, keyword in owners:
                        scores[index] += ENGLISH_KEYWORD_WEIGHT
                        matched[index][keyword] = ENGLISH_KEYWORD_WEIGHT


def _contained(text: str, others: Iterable[str]) -> bool:
    """Whether ``text`` is a proper substring of one of ``others``."""
    return any(text != other and text in other for other in others)

"""The languages a knowledge base is written in: their codes, stemmers, stop words, and telling them apart.

A knowledge base speaks the languages its entries use (or the ones its settings declare). Every language
the Snowball project has a stemmer for can be used: stems come from PyStemmer (Snowball's own C code),
stop words from the `stop-words` package where it has the language. Text is folded before anything else
(lower case, accents off, æ→ae, ø→o, å/aa→a) so that "på", "paa" and "pa" are one word.

Language detection picks among the knowledge base's own languages only, from the words that mark each
one (its stop words and the words its examples use much more than the other languages' examples) and
the letters only it has. `lingua-language-detector` was measured for this: loading its models for two
languages takes about 0.8 s on the development machine, more than `policybot ask` may take in all.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache

import Stemmer  # PyStemmer: Snowball's stemmers

# ISO 639-1 code -> Snowball algorithm name. "no"/"nn" are read as Norwegian bokmål (see normalise).
SNOWBALL: dict[str, str] = {
    "ar": "arabic",
    "hy": "armenian",
    "eu": "basque",
    "ca": "catalan",
    "cs": "czech",
    "da": "danish",
    "nl": "dutch",
    "en": "english",
    "eo": "esperanto",
    "et": "estonian",
    "fi": "finnish",
    "fr": "french",
    "de": "german",
    "el": "greek",
    "hi": "hindi",
    "hu": "hungarian",
    "id": "indonesian",
    "ga": "irish",
    "it": "italian",
    "lt": "lithuanian",
    "ne": "nepali",
    "nb": "norwegian",
    "fa": "persian",
    "pl": "polish",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "es": "spanish",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}
LANGUAGE_NAMES: dict[str, str] = {code: name.capitalize() for code, name in SNOWBALL.items()}
LANGUAGE_NAMES["nb"] = "Norwegian (nb)"
_ALIASES = {
    "no": "nb",
    "nn": "nb",
    "nob": "nb",
    "nno": "nb",
    "eng": "en",
    "swe": "sv",
    "deu": "de",
    "ger": "de",
}

# Letters that only some languages use (after lower-casing, before folding): a strong hint in chat text.
LETTERS: dict[str, str] = {
    "nb": "æøå",
    "da": "æøå",
    "sv": "åäö",
    "fi": "äö",
    "de": "äöüß",
    "fr": "éèêàçùœ",
    "es": "ñáéíóú¿¡",
    "pt": "ãõçáéíóú",
    "it": "àèéìòù",
    "pl": "ąćęłńóśźż",
    "cs": "ěščřžýáíéůú",
    "tr": "ğışçöü",
}

# Chat filler beyond the stop-word lists: words people add to any question ("ok", "pls", "wanna").
CHAT_FILLERS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "a an the i me my mine im i'm we us our you your yours he him his she her it its they them their "
        "is am are was were be been being do does did doing have has had having can could should would "
        "will shall may might must to of in on at for from with about as by into over under and or but "
        "if so than then that this these those there here what which who whom whose when where why "
        "not no yes ok okay just also still very really too any some all anything something someone "
        "get got let lets please hi hello hey thanks thank up out off again ever even only allowed "
        "allow fine alright right wrong want wanna make know think tell keep now one someone something "
        "thing things stuff lot kind sort guess maybe actually basically dont don isnt isn cant wont won "
        "doesnt doesn didnt didn ll ve re would'nt guys anyone".split()
    ),
    "nb": frozenset(
        "jeg meg min mitt mine vi oss vår vårt våre du deg din ditt dine han ham hans hun henne hennes "
        "den det de dem deres seg sin sitt sine er var vært være blir ble bli har hadde ha kan kunne "
        "skal skulle vil ville må måtte bør burde får fikk få og eller men om at som til fra med på i "
        "av for hos ved under over etter før en ei et noe noen nå da så her der hva hvem hvilken hvilke "
        "hvor hvorfor når ikke ja nei bare også jo vel litt mye lov lø greit ok okei hei takk "
        "dette disse denne kanskje egentlig sånn slik man gjøre gjør gjorde ting veldig hvis lyst igjen "
        "nok liksom typ altså mest noen noe".split()
    ),
}

_FOLD = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "ä": "ae", "ö": "o", "ß": "ss"})
TOKEN = re.compile(r"[^\W_]+")  # runs of letters and digits, in any script
_APART = "\x00"  # between texts folded together: no letter, no case, never in a chat text
_TOKEN_OR_APART = re.compile(r"[^\W_]+|\x00")
_FOLD_LETTERS = tuple((chr(letter), ascii_letters) for letter, ascii_letters in _FOLD.items())


def fold(text: str) -> str:
    """Lower-case and fold æøå (and other accents) to ASCII; "aa" is how å is typed without it."""
    text = text.lower().translate(_FOLD)
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.replace("aa", "a")


def tokens(text: str) -> list[str]:
    return TOKEN.findall(fold(text))


def tokens_of_many(texts: list[str]) -> tuple[list[str], list[int]]:
    """The `tokens` of every text, one text after the other, and how many each has: folded and read in
    one pass over them all (an index build reads 100 000 texts)."""
    joined = _APART.join(texts)
    if not texts or joined.count(_APART) != len(texts) - 1:  # a text holds the separator itself
        each = [tokens(text) for text in texts]
        return [w for words in each for w in words], [len(words) for words in each]
    folded = joined.lower()
    for letter, ascii_letters in _FOLD_LETTERS:  # (`str.translate` reads a long text char by char)
        folded = folded.replace(letter, ascii_letters)
    if folded.isascii():
        folded = folded.replace("aa", "a")
    else:  # accents: those texts one by one, as `fold` reads them
        parts = folded.split(_APART)
        folded = _APART.join(
            part.replace("aa", "a") if part.isascii() else fold(text)
            for part, text in zip(parts, texts, strict=True)
        )
    found = _TOKEN_OR_APART.findall(folded)
    apart = [i for i, word in enumerate(found) if word == _APART]
    counts = [b - a - 1 for a, b in zip([-1, *apart], [*apart, len(found)], strict=True)]
    return [word for word in found if word != _APART], counts


def normalise(code: str | None) -> str | None:
    """A language code as HR or a platform writes it ("nb-NO", "no", "sv_SE", "EN") -> "nb", "sv", "en";
    None when it is not a language policybot can analyse."""
    if not code:
        return None
    short = str(code).strip().lower().replace("_", "-").split("-")[0]
    short = _ALIASES.get(short, short)
    return short if short in SNOWBALL and short in available() else None


@cache
def available() -> frozenset[str]:
    """The codes whose Snowball stemmer this PyStemmer build has."""
    algorithms = set(Stemmer.algorithms())
    return frozenset(code for code, name in SNOWBALL.items() if name in algorithms)


@cache
def _stemmer(lang: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(SNOWBALL[lang])


@lru_cache(maxsize=400_000)
def stem(token: str, lang: str = "en") -> str:
    """The Snowball stem of a folded word in `lang`; digits and one-letter words stay as they are."""
    if len(token) < 3 or token.isdigit():
        return token
    return str(_stemmer(lang).stemWord(token))


def stems_of(words: list[str], lang: str) -> dict[str, str]:
    """`stem` of each of many words, stemmed together (and not kept in `stem`'s cache)."""
    stemmed = _stemmer(lang).stemWords(words)
    return {w: w if len(w) < 3 or w.isdigit() else str(s) for w, s in zip(words, stemmed, strict=True)}


@cache
def stop_words(lang: str) -> frozenset[str]:
    """Folded stop words of `lang`: the `stop-words` package's list plus the chat filler above."""
    from stop_words import LANGUAGE_MAPPING, get_stop_words  # reads one small file per language

    words: set[str] = set(CHAT_FILLERS.get(lang, ()))
    if lang in LANGUAGE_MAPPING:
        words.update(get_stop_words(lang))
    return frozenset(fold(w) for w in words)


def detect(
    text: str,
    languages: tuple[str, ...],
    hint: str | None,
    language_words: Mapping[str, frozenset[str]] | None = None,
) -> str:
    """Which of `languages` `text` is written in: marker words and letters; the hint breaks ties, then
    the first language (the knowledge base's main one)."""
    if len(languages) == 1:
        return languages[0]
    lowered = text.lower()
    words = TOKEN.findall(fold(lowered))
    score: dict[str, float] = {}
    for lang in languages:
        marks = _markers(lang)
        own = language_words.get(lang, frozenset()) if language_words else frozenset()
        score[lang] = sum(w in marks for w in words) + 0.5 * sum(w in own for w in words)
        score[lang] += 2 * sum(lowered.count(c) for c in LETTERS.get(lang, ""))
    ordered = sorted(languages, key=lambda lang: -score[lang])
    if score[ordered[0]] > score[ordered[1]]:
        return ordered[0]
    hinted = normalise(hint)
    if hinted in languages and score[hinted] == score[ordered[0]]:
        return hinted
    return next(lang for lang in languages if score[lang] == score[ordered[0]])


@cache
def _markers(lang: str) -> frozenset[str]:
    """Short function words: the stop words of up to 4 letters (longer ones are often topic words)."""
    return frozenset(w for w in stop_words(lang) if len(w) <= 4)


def stop_words_of(languages: Iterable[str]) -> frozenset[str]:
    out: set[str] = set()
    for lang in languages:
        out |= stop_words(lang)
    return frozenset(out)

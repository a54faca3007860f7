"""How a request wants its text written out, the same in every result it gets (Recognize, a
stream's interims and finals, a job's chunks): profane words masked (`profanity_filter`) and
words without the punctuation around them (`bare_words`). The transcript keeps its
punctuation; masking is judged on the bare word, so the transcript and the words agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from stt.v1 import stt_pb2

from services.core.profanity import ProfanityFilter, for_language
from services.core.words import bare_word


@dataclass(frozen=True)
class TextForm:
    profanity: ProfanityFilter | None = None
    bare_words: bool = False

    def transcript(self, text: str) -> str:
        return self.profanity.mask_text(text) if self.profanity is not None else text

    def word(self, text: str) -> str:
        """The word as the word list carries it; "" for one to leave out (punctuation alone)."""
        if self.bare_words:
            text = bare_word(text)
        return self.profanity.mask_word(text) if self.profanity is not None and text else text


PLAIN = TextForm()


def text_form(config: stt_pb2.RecognitionConfig, language: str) -> TextForm:
    """The form `config` asks for, for text in `language` (its profanity list)."""
    if not (config.profanity_filter or config.bare_words):
        return PLAIN
    profanity = for_language(language) if config.profanity_filter else None
    return TextForm(profanity, config.bare_words)


def make_words_bare(results) -> None:
    """Strips the words of stt.v1 results in place, dropping those of punctuation alone: for
    words asked with their punctuation, so that results split by speaker keep it in their
    transcripts (which are joined from the words)."""
    for result in results:
        for alternative in result.alternatives:
            kept = []
            for word in alternative.words:
                bare = bare_word(word.word)
                if bare:
                    copy = stt_pb2.WordInfo()
                    copy.CopyFrom(word)
                    copy.word = bare
                    kept.append(copy)
            del alternative.words[:]
            alternative.words.extend(kept)

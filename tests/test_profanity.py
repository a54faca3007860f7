"""The profanity filter (`services.core.profanity`): Google's masking, on glin-profanity's lists."""

from __future__ import annotations

from services.core import profanity


def test_masks_all_but_the_first_letter_keeping_its_case():
    english = profanity.for_language("en-US")
    assert english.mask_word("fuck") == "f***"
    assert english.mask_word("Shit") == "S***"
    assert english.mask_word("FUCK") == "F***"


def test_punctuation_around_a_masked_word_is_kept():
    english = profanity.for_language("en")
    assert english.mask_word('"Shit,"') == '"S***,"'
    assert english.mask_word("fuckin'") == "f*****'"
    assert english.mask_text("Fuck! What the shit?") == "F***! What the s***?"


def test_clean_words_and_words_that_contain_a_profane_one_are_left_alone():
    english = profanity.for_language("en")
    text = "assess the class at Scunthorpe, then analyse the cocktail"
    assert english.mask_text(text) == text
    assert not english.is_profane("Essex")
    assert english.is_profane("bullshit")


def test_transcript_and_words_are_masked_alike():
    english = profanity.for_language("en")
    transcript = 'He said, "Fuck this shit." Then he left.'
    words = transcript.split()
    masked = english.mask_text(transcript)
    assert masked == 'He said, "F*** this s***." Then he left.'
    assert [english.mask_word(w) for w in words] == masked.split()


def test_spacing_is_kept():
    assert profanity.for_language("en").mask_text(" fuck  it\n") == " f***  it\n"


def test_a_language_uses_its_own_list_and_english():
    german = profanity.for_language("de-DE")
    assert german.lists == ("english", "german")
    assert german.mask_text("Scheiße, what the fuck") == "S******, what the f***"
    assert profanity.for_language("en").mask_word("Scheiße") == "Scheiße"


def test_a_language_without_a_list_gets_english():
    assert profanity.for_language("ha").lists == ("english",)
    assert profanity.for_language("").lists == ("english",)
    assert profanity.for_language("ha-NG").mask_word("shit") == "s***"


def test_one_filter_per_set_of_lists_however_the_code_is_written():
    assert profanity.for_language("en-US") is profanity.for_language("EN_gb")
    assert profanity.for_language("es-419") is profanity.for_language("es")

"""The bare word of a recogniser's word entry (`services.core.words.bare_word`)."""

from __future__ import annotations

import pytest

from services.core.words import bare_word


@pytest.mark.parametrize(
    ("token", "bare"),
    [
        ("Bridge?", "Bridge"),
        ('"Hello,', "Hello"),
        (" Hello", "Hello"),
        ("“Hello,”", "Hello"),
        ("'Hello'", "Hello"),
        ("(laughs)", "laughs"),
        ("[Music]", "Music"),
        ("...and", "and"),
        ("well-", "well"),
        ("¿Qué", "Qué"),
        ("بيت؟", "بيت"),
        ("「こんにちは」", "こんにちは"),
    ],
)
def test_punctuation_around_a_word_goes(token, bare):
    assert bare_word(token) == bare


@pytest.mark.parametrize(
    "token",
    [
        "don't",
        "don’t",
        "well-known",
        "U.S.",
        "e.g.",
        "3.5",
        "1,000",
        "-3",
        "$5.50",
        "50%",
        "5€",
        "students'",
        "'90s",
        "C++",
    ],
)
def test_what_belongs_to_a_word_stays(token):
    assert bare_word(token) == token


@pytest.mark.parametrize(
    ("token", "bare"),
    [
        ("U.S.?", "U.S."),
        ("e.g.,", "e.g."),
        ("3.5.", "3.5"),
        ("$5.50,", "$5.50"),
        ("50%,", "50%"),
        ("don't.", "don't"),
        ("'students'", "students"),
        ('"students\'"', "students'"),
    ],
)
def test_inner_marks_stay_when_outer_ones_go(token, bare):
    assert bare_word(token) == bare


@pytest.mark.parametrize("token", ["—", "-", "...", "♪", "?!", "", "  "])
def test_punctuation_alone_leaves_no_word(token):
    assert bare_word(token) == ""

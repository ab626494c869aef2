"""Variable substitution as moby's shell lexer does it."""

from __future__ import annotations

import pytest
from berth_builder.shell_lex import SubstitutionError, env_map, process_word, process_words

ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": "", "TWO": "d e"}


@pytest.mark.parametrize(
    ("word", "want"),
    [
        ("hello", "hello"),
        ("he'll'o", "hello"),
        ("he\\'llo", "he'llo"),
        ("he\\\\llo", "he\\llo"),
        ("'hello\\'", "hello\\"),
        ('"hello"', "hello"),
        ('"he\\"llo"', 'he"llo'),
        ('"a\\b"', "a\\b"),  # in double quotes the escape only escapes " $ and itself
        ("abc\\$def", "abc$def"),
        ("$PWD", "/home"),
        ("${PWD}", "/home"),
        ("${PWD}x", "/homex"),
        ("$PWDx", ""),
        ("$KOREAN", "한국어"),
        ("'$PWD'", "$PWD"),
        ('"$PWD"', "/home"),
        ('"${PWD:-x} y"', "/home y"),
        ("${NOPE:-x}", "x"),
        ("${NULL:-x}", "x"),
        ("${NOPE-x}", ""),  # `-` without `:` is not a modifier moby knows: see the error case
        ("${PWD:+x}", "x"),
        ("${NOPE:+x}", ""),
        ("${NULL:+x}", ""),
        ("${NOPE:-$SHELL}", "bash"),
        ("${NOPE:-'a b'}", "a b"),
        ("$", "$"),
        ("a$", "a$"),
        ("$1", ""),
        ("${PWD?}", "/home"),
    ],
)
def test_process_word(word: str, want: str) -> None:
    if word == "${NOPE-x}":
        with pytest.raises(SubstitutionError, match="missing ':' in substitution"):
            process_word(word, ENV)
        return
    assert process_word(word, ENV) == want


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("he'llo", "unexpected end of statement while looking for matching single-quote"),
        ('he"llo', "unexpected end of statement while looking for matching double-quote"),
        ("${", "syntax error: missing '}'"),
        ("${}", "syntax error: bad substitution"),
        ("${:-x}", "syntax error: bad substitution"),
        ("${PWD:-x", "syntax error: missing '}'"),
        ("${NOPE?}", "NOPE: is not allowed to be unset"),
        ("${NOPE?gone}", "NOPE: gone"),
        ("${NULL:?}", "NULL: is not allowed to be empty"),
        ("${NULL:?say so}", "NULL: say so"),
        ("${PWD:=x}", "unsupported modifier (=) in substitution"),
    ],
)
def test_errors(word: str, message: str) -> None:
    with pytest.raises(SubstitutionError) as caught:
        process_word(word, ENV)
    assert str(caught.value).startswith('failed to process "')
    assert str(caught.value).endswith(": " + message)


def test_words_split_after_substitution_but_not_inside_quotes() -> None:
    assert process_words('"a b" c $TWO', ENV) == ["a b", "c", "d", "e"]
    assert process_words("'x y'z \\ w", ENV) == ["x yz", " w"]


def test_backtick_escape_token() -> None:
    assert process_word("a`$b", ENV, escape="`") == "a$b"
    assert process_word("c:\\dir", ENV, escape="`") == "c:\\dir"


def test_env_map() -> None:
    assert env_map(["A=b=c", "D"]) == {"A": "b=c", "D": ""}

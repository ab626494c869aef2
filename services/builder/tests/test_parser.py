"""The Dockerfile parser against cases derived from moby's parser test corpus, and the corpus
itself when BERTH_MOBY_PARSER_CORPUS names a checkout of moby's builder/dockerfile/parser/testfiles
(each case a Dockerfile and the `result` dump of moby's AST)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from berth_builder.parser import ParseError, parse

CASES = {
    # flags: `--x=y` words before the arguments, `--` ends them and is dropped
    "flags": (
        "FROM scratch\nCOPY --user=me --doit=true foo /tmp/\nCOPY --doit=true -- foo /tmp/\n"
        "COPY -- foo /tmp/\nCMD --doit [ \"a\", \"b\" ]\nCMD --doit -- [ ]\n",
        '(from "scratch")\n(copy ["--user=me" "--doit=true"] "foo" "/tmp/")\n(copy ["--doit=true"] "foo" "/tmp/")\n'
        '(copy "foo" "/tmp/")\n(cmd ["--doit"] "a" "b")\n(cmd ["--doit"])\n',
    ),
    # JSON (exec) form, shell form when it is not a JSON array, whitespace and escapes in JSON
    "json": (
        'CMD []\nCMD [""]\nCMD ["a"]\nCMD ["a","b"]\nCMD [ "a", "b" ]\nCMD\t[\t"a",\t"b"\t]\t\n'
        'CMD ["abc 123", "\\u2665", "\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0000"]\nCMD [ "a", "b" ] trailing\n'
        "RUN [not json\n",
        '(cmd)\n(cmd "")\n(cmd "a")\n(cmd "a" "b")\n(cmd "a" "b")\n(cmd "a" "b")\n'
        '(cmd "abc 123" "♥" "\\" \\\\ / \\b \\f \\n \\r \\t \\x00")\n(cmd "a" "b")\n(run "[not json")\n',
    ),
    # line continuations (comments and blank lines inside them), leading whitespace
    "continuations": (
        "FROM busybox\nRUN echo hello \\\n    world \\\n# a comment inside\n    goodbye\\\n  world\n"
        "  \t LABEL a=b\nRUN echo \\\n\n  after-empty\nRUN \\\n",
        '(from "busybox")\n(run "echo hello     world     goodbye  world")\n(label "a" "b")\n'
        '(run "echo   after-empty")\n(run)\n',
    ),
    # ENV/LABEL: `name value` (the rest of the line) or name=value pairs with quotes kept
    "env": (
        'ENV name value\nENV name=value\nENV name=value name2=value2\nENV name="value value1"\n'
        "ENV name=value\\ value2\nENV name=\"a\\\"b\" name2='c d'\nENV name value name2 value2\n"
        'LABEL "k 1"=v2 k3=x\n',
        '(env "name" "value")\n(env "name" "value")\n(env "name" "value" "name2" "value2")\n'
        '(env "name" "\\"value value1\\"")\n(env "name" "value\\\\ value2")\n'
        '(env "name" "\\"a\\\\\\"b\\"" "name2" "\'c d\'")\n(env "name" "value name2 value2")\n'
        '(label "\\"k 1\\"" "v2" "k3" "x")\n',
    ),
    # HEALTHCHECK: type then the command in either form; NONE; flags
    "health": (
        "HEALTHCHECK\nHEALTHCHECK --interval=5s --timeout=3s --retries=3 \\\n  CMD /app/check.sh --quiet\n"
        'HEALTHCHECK CMD\nHEALTHCHECK   CMD   a b\nHEALTHCHECK CMD ["x", "y"]\nHEALTHCHECK NONE\n',
        '(healthcheck)\n(healthcheck ["--interval=5s" "--timeout=3s" "--retries=3"] "CMD" "/app/check.sh --quiet")\n'
        '(healthcheck "CMD")\n(healthcheck "CMD" "a b")\n(healthcheck "CMD" "x" "y")\n(healthcheck "NONE")\n',
    ),
    # ONBUILD nests the triggered instruction; FROM/EXPOSE/ARG word lists; unknown kept for later
    "misc": (
        "FROM busybox AS build\nONBUILD RUN echo hi\nONBUILD ADD . /app/src\nEXPOSE 80  443/udp\n"
        "ARG A=1 B\nVOLUME /a /b\nVOLUME [\"/c\"]\nMAINTAINER Jane Doe <jd@example.com>\nNOSUCH thing\n",
        '(from "busybox" "AS" "build")\n(onbuild (run "echo hi"))\n(onbuild (add "." "/app/src"))\n'
        '(expose "80" "443/udp")\n(arg "A=1" "B")\n(volume "/a" "/b")\n(volume "/c")\n'
        '(maintainer "Jane Doe <jd@example.com>")\n(nosuch "")\n',
    ),
    # the escape directive: backtick continues lines and escapes; a backslash is a plain char
    "escape": (
        "# escape=`\n\nFROM image\nLABEL maintainer foo@bar.com\nENV GOPATH \\go\nRUN dir `\n    c:\\windows\n",
        '(from "image")\n(label "maintainer" "foo@bar.com")\n(env "GOPATH" "\\\\go")\n(run "dir     c:\\\\windows")\n',
    ),
    # a directive after anything else is a comment; directive names are case-insensitive
    "directives": (
        "# syntax=docker/dockerfile:1\n# ESCAPE=`\nFROM a\n# escape=\\\nRUN a `\n b\n",
        '(from "a")\n(run "a  b")\n',
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_parse_matches_moby_dump(name: str) -> None:
    source, want = CASES[name]
    assert parse(source).dump() == want


def test_directives_and_escape_token_are_reported() -> None:
    result = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM a\n")
    assert result.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert result.escape_token == "`"
    assert parse("\ufeffFROM a\n").dump() == '(from "a")\n'  # a byte-order mark is skipped


def test_lines_of_each_instruction() -> None:
    result = parse("\n# c\nFROM a\n\nRUN a \\\n  b \\\n\n  c\nCMD x\n")
    assert [(c.start_line, c.end_line) for c in result.children] == [(3, 3), (5, 8), (9, 9)]
    assert result.warnings[0].startswith("[WARNING]: Empty continuation line found in:")


@pytest.mark.parametrize(
    ("source", "message", "line"),
    [
        ("FROM busybox\n\nENV PATH\n", "ENV must have two arguments", 3),
        ('FROM a\nCMD [ "echo", [ "nested json" ] ]\n', "when using JSON array syntax, arrays must be comprised of strings only", 2),
        ("FROM a\nLABEL a=b c\n", 'Syntax error - can\'t find = in "c". Must be of the form: name=value', 2),
        ("# escape=x\nFROM a\n", "invalid escape token 'x' does not match ` or \\", 0),
        ("# escape=``\nFROM a\n", "invalid escape token '``' does not match ` or \\", 0),
        ("# escape=\\\n# escape=`\nFROM a\n", "only one escape parser directive can be used", 1),
        ("# only a comment\n\n", "file with no instructions", 2),
        ("", "file with no instructions", 0),
    ],
)
def test_errors_use_mobys_words(source: str, message: str, line: int) -> None:
    with pytest.raises(ParseError) as caught:
        parse(source)
    assert caught.value.message == message
    assert caught.value.line == line


def test_overlong_line_is_refused() -> None:
    with pytest.raises(ParseError, match="dockerfile line greater than max allowed size of 65535"):
        parse("FROM a\nLABEL x=" + "a" * 70000 + "\n")


CORPUS = os.environ.get("BERTH_MOBY_PARSER_CORPUS", "")
# moby 20.10's parser (the reference) refuses this old case: `# escape = ``` is not one character.
REFUSED_BY_20_10 = {"escape-nonewline"}


@pytest.mark.skipif(not CORPUS, reason="BERTH_MOBY_PARSER_CORPUS not set")
def test_moby_corpus() -> None:
    cases = sorted(p for p in Path(CORPUS).iterdir() if (p / "result").exists())
    assert cases, f"no cases under {CORPUS}"
    for case in cases:
        source = (case / "Dockerfile").read_bytes()
        if case.name in REFUSED_BY_20_10:
            with pytest.raises(ParseError):
                parse(source)
            continue
        assert parse(source).dump() == (case / "result").read_text(), case.name

"""Variable substitution as moby's shell lexer does it (buildkit frontend/dockerfile/shell).

`$V`, `${V}`, `${V:-x}`, `${V:+x}`, `${V?msg}`, `${V:?msg}`, quotes and the escape token. The
classic builder runs it on the arguments of ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL,
USER, VOLUME, WORKDIR, ONBUILD-less ARG defaults, and the flags --from/--chown.
"""

from __future__ import annotations

from collections.abc import Mapping

from berth_builder.parser import go_quote

_EOF = ""
_SPECIAL = "@*#?-$!0"


class SubstitutionError(Exception):
    pass


class _Words:
    def __init__(self) -> None:
        self.word = ""
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word, self.in_word = "", False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def get(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word, self.in_word = "", False
        return self.words


class _ShellWord:
    def __init__(self, source: str, env: Mapping[str, str], escape: str) -> None:
        self.src = source
        self.pos = 0
        self.env = env
        self.escape = escape

    def peek(self) -> str:
        return self.src[self.pos] if self.pos < len(self.src) else _EOF

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def process_stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        while self.peek() != _EOF:
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result), words.get()
            if ch in "'\"$":
                text = {"'": self.single_quote, '"': self.double_quote, "$": self.dollar}[ch]()
                result.append(text)
                if ch == "$":
                    words.add_string(text)
                else:
                    words.add_raw(text)
                continue
            ch = self.next()
            if ch == self.escape:
                ch = self.next()
                if ch == _EOF:
                    break
                words.add_raw(ch)
            else:
                words.add_char(ch)
            result.append(ch)
        if stop:
            raise SubstitutionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.get()

    def single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if ch == _EOF:
                raise SubstitutionError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if ch == _EOF:
                raise SubstitutionError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                following = self.peek()
                if following == _EOF:
                    continue
                if following in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        out = ""
        while self.peek() != _EOF:
            ch = self.peek()
            if not out and ch.isdigit():
                while self.peek() != _EOF and self.peek().isdigit():
                    out += self.next()
                return out
            if not out and ch in _SPECIAL:
                return self.next()
            if not (ch.isalpha() or ch.isdigit() or ch == "_"):
                break
            out += self.next()
        return out

    def lookup(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            return self.env[name], True
        return "", False

    def _word_to_brace(self) -> str:
        try:
            word, _ = self.process_stop_on("}")
        except SubstitutionError:
            if self.peek() == _EOF:
                raise SubstitutionError("syntax error: missing '}'") from None
            raise
        return word

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            return self.lookup(name)[0] if name else "$"
        self.next()
        if self.peek() == _EOF:
            raise SubstitutionError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise SubstitutionError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.lookup(name)[0]
        if ch == "?":
            word = self._word_to_brace()
            value, found = self.lookup(name)
            if not found:
                raise SubstitutionError(f"{name}: {word or 'is not allowed to be unset'}")
            return value
        if ch == ":":
            modifier = self.next()
            word = self._word_to_brace()
            value, found = self.lookup(name)
            if modifier == "+":
                return word if value else value
            if modifier == "-":
                return value or word
            if modifier == "?":
                if not found:
                    raise SubstitutionError(f"{name}: {word or 'is not allowed to be unset'}")
                if not value:
                    raise SubstitutionError(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            raise SubstitutionError(f"unsupported modifier ({modifier}) in substitution")
        raise SubstitutionError("missing ':' in substitution")


def _run(word: str, env: Mapping[str, str], escape: str) -> tuple[str, list[str]]:
    try:
        return _ShellWord(word, env, escape).process_stop_on("")
    except SubstitutionError as exc:
        raise SubstitutionError(f"failed to process {go_quote(word)}: {exc}") from None


def process_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One word, quotes removed and variables replaced (ENV values, WORKDIR, USER, ...)."""
    return _run(word, env, escape)[0]


def process_words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Several words: split on unquoted blanks after substitution (EXPOSE, VOLUME, COPY args)."""
    return _run(word, env, escape)[1]


def env_map(env: list[str]) -> dict[str, str]:
    """moby's BuildEnvs: ["A=b", "C"] → {"A": "b", "C": ""}."""
    out: dict[str, str] = {}
    for entry in env:
        key, _, value = entry.partition("=")
        out[key] = value
    return out

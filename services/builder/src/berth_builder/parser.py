"""The Dockerfile parser of the classic builder: moby 20.10's (buildkit's frontend/dockerfile/parser).

Lines → one Node per instruction: directives (`escape`, `syntax`) before anything else, comments,
line continuations with the escape token, and each instruction's arguments split as moby's
dispatch table says (JSON or shell form, name=value pairs, whitespace lists, HEALTHCHECK,
ONBUILD's sub-instruction). Errors use moby's words; `ParseError.line` is where it happened.

Why not a PyPI parser: `dockerfile` (moby's Go parser, newer buildkit) agrees with the corpus,
but its errors carry no line, it does not expose the escape token the shell lexer needs, and it
accepts heredocs, which the classic builder does not; `dockerfile-parse` keeps each
instruction's value as one raw string.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

MAX_LINE = 65535  # bufio.MaxScanTokenSize - 1
_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_COMMENT = re.compile(r"^#.*$")
_HEREDOC = re.compile(r"<<-?\s*[\"']?([A-Za-z_][A-Za-z0-9_]*)")
VALID_DIRECTIVES = ("escape", "syntax")
_NOT_STRINGS = "when using JSON array syntax, arrays must be comprised of strings only"


class ParseError(Exception):
    """A Dockerfile the parser refuses; `message` in moby's words, `line` 1-based (0: none)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class Node:
    value: str = ""  # the instruction (lower case) on a top node, else one argument
    next: list[Node] = field(default_factory=list)  # the arguments (moby's Next chain)
    children: list[Node] = field(default_factory=list)  # ONBUILD's sub-instruction
    json: bool = False  # the arguments came from a JSON array (exec form)
    original: str = ""
    flags: list[str] = field(default_factory=list)
    start_line: int = 0
    end_line: int = 0

    def dump(self) -> str:
        """moby's Node.Dump(), used by its parser tests: `(copy ["--from=a"] "x" "/y")`."""
        out = self.value
        if self.flags:
            out += " [" + " ".join(go_quote(f) for f in self.flags) + "]"
        for child in self.children:
            out += "(" + child.dump() + ")\n"
        for arg in self.next:
            out += " " + (arg.dump() if arg.children else go_quote(arg.value))
        return out.strip()

    def args(self) -> list[str]:
        """moby's nodeArgs: the arguments, ONBUILD's sub-instruction flattened."""
        out: list[str] = []
        for arg in self.next:
            if not arg.children:
                out.append(arg.value)
            elif len(arg.children) == 1:
                out.append(arg.children[0].value)
                out.extend(arg.children[0].args())
        return out


@dataclass
class Result:
    children: list[Node]
    escape_token: str
    directives: dict[str, str]
    warnings: list[str]

    def dump(self) -> str:
        return "".join("(" + c.dump() + ")\n" for c in self.children)


def go_quote(s: str) -> str:
    """Go's strconv.Quote for the strings a Dockerfile holds."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable() and code > 0x7F:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class _Directives:
    def __init__(self) -> None:
        self.escape_token = "\\"
        self.continuation = self._continuation_regex("\\")
        self.done = False
        self.seen: dict[str, str] = {}

    @staticmethod
    def _continuation_regex(token: str) -> re.Pattern[str]:
        t = re.escape(token)
        return re.compile(rf"([^{t}]){t}[ \t]*$|^{t}[ \t]*$")

    def set_escape_token(self, token: str) -> None:
        if token not in ("`", "\\"):
            raise ParseError(f"invalid escape token '{token}' does not match ` or \\")
        self.escape_token = token
        self.continuation = self._continuation_regex(token)

    def possible_directive(self, line: str) -> None:
        if self.done:
            return
        match = _DIRECTIVE.match(line)
        if match is None or match.group(1).lower() not in VALID_DIRECTIVES:
            self.done = True
            return
        key = match.group(1).lower()
        if key in self.seen:
            raise ParseError(f"only one {key} parser directive can be used")
        self.seen[key] = match.group(2)
        if key == "escape":
            self.set_escape_token(match.group(2))

    def trim_continuation(self, line: str) -> tuple[str, bool]:
        if self.continuation.search(line):
            return self.continuation.sub(r"\1", line), False
        return line, True


def _is_space(ch: str) -> bool:
    return ch.isspace()


def parse_words(rest: str, escape: str) -> list[str]:
    """moby's parseWords: split on blanks outside quotes, keeping quotes and escapes."""
    words: list[str] = []
    in_spaces, in_word, in_quote = 0, 1, 2
    phase, word, quote, blank_ok = in_spaces, "", "", False
    pos, n = 0, len(rest)
    while pos <= n:
        ch = rest[pos] if pos < n else ""
        if phase == in_spaces:
            if pos == n:
                break
            if _is_space(ch):
                pos += 1
                continue
            phase = in_word
        if phase in (in_word, in_quote) and pos == n:
            if blank_ok or word:
                words.append(word)
            break
        if phase == in_word:
            if _is_space(ch):
                phase = in_spaces
                if blank_ok or word:
                    words.append(word)
                word, blank_ok = "", False
                pos += 1
                continue
            if ch in "'\"":
                quote, blank_ok, phase = ch, True, in_quote
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue
                word += ch
                pos += 1
                ch = rest[pos]
            word += ch
            pos += 1
            continue
        if ch == quote:
            phase = in_word
        if ch == escape and quote != "'":
            if pos + 1 == n:
                phase = in_word
                pos += 1
                continue
            pos += 1
            word += ch
            ch = rest[pos]
        word += ch
        pos += 1
    return words


def _name_val(rest: str, key: str, escape: str) -> list[Node]:
    words = parse_words(rest, escape)
    if not words:
        return []
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise ParseError(f"{key} must have two arguments")
        return [Node(parts[0]), Node(parts[1])]
    nodes: list[Node] = []
    for word in words:
        if "=" not in word:
            raise ParseError(f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value")
        name, value = word.split("=", 1)
        nodes += [Node(name), Node(value)]
    return nodes


def _whitespace_list(rest: str) -> list[Node]:
    return [Node(s) for s in _WHITESPACE.split(rest)] if rest else []


def _json(rest: str) -> list[Node] | None:
    """The JSON form, or None when `rest` is not a JSON array (moby then takes the shell form).

    Like Go's json.Decoder, only the first value counts; what follows it is ignored."""
    rest = rest.lstrip()
    if not rest.startswith("["):
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(rest)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise ParseError(_NOT_STRINGS)
    return [Node(v) for v in value]


def _maybe_json(rest: str) -> tuple[list[Node], bool]:
    if not rest:
        return [], False
    nodes = _json(rest)
    return (nodes, True) if nodes is not None else ([Node(rest)], False)


def _maybe_json_list(rest: str) -> tuple[list[Node], bool]:
    nodes = _json(rest)
    return (nodes, True) if nodes is not None else (_whitespace_list(rest), False)


def _health(rest: str) -> tuple[list[Node], bool]:
    sep = 0
    while sep < len(rest) and not rest[sep].isspace():
        sep += 1
    if sep == 0:
        return [], False
    following = sep
    while following < len(rest) and rest[following].isspace():
        following += 1
    cmd, is_json = _maybe_json(rest[following:])
    return [Node(rest[:sep]), *cmd], is_json


_MAYBE_JSON = ("cmd", "entrypoint", "run", "shell")
_MAYBE_JSON_LIST = ("add", "copy", "volume")
_STRING = ("maintainer", "stopsignal", "user", "workdir")


def _split_command(line: str) -> tuple[str, list[str], str]:
    from berth_builder.flagsplit import extract_builder_flags

    parts = _WHITESPACE.split(line.strip(), maxsplit=1)
    cmd = parts[0].lower()
    args, flags = "", list[str]()
    if len(parts) == 2:
        args, flags = extract_builder_flags(parts[1])
    return cmd, flags, args.strip()


def node_from_line(line: str, escape: str) -> Node:
    cmd, flags, rest = _split_command(line)
    args: list[Node] = []
    children: list[Node] = []
    is_json = False
    if cmd in _MAYBE_JSON:
        args, is_json = _maybe_json(rest)
    elif cmd in _MAYBE_JSON_LIST:
        args, is_json = _maybe_json_list(rest)
    elif cmd in ("env", "label"):
        args = _name_val(rest, cmd.upper(), escape)
    elif cmd == "arg":
        args = [Node(w) for w in parse_words(rest, escape)]
    elif cmd in ("expose", "from"):
        args = _whitespace_list(rest)
    elif cmd in _STRING:
        args = [Node(rest)] if rest else []
    elif cmd == "healthcheck":
        args, is_json = _health(rest)
    elif cmd == "onbuild":
        if rest:
            children = [node_from_line(rest, escape)]
            args = [Node(children=children)]
            children = []
    else:
        args = [Node()]  # moby's parseIgnore: an unknown instruction, refused later
    return Node(value=cmd, next=args, children=children, json=is_json, original=line, flags=flags)


def parse(text: str | bytes) -> Result:
    """Parse a Dockerfile; raises ParseError with moby's words."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.removeprefix("\ufeff")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # bufio.ScanLines: a final newline ends the last line, no empty line after
    d = _Directives()
    children: list[Node] = []
    warnings: list[str] = []
    i = 0
    current = 0

    def read(raw: str, strip: bool) -> str:
        raw = raw.removesuffix("\r")
        if len(raw) > MAX_LINE:
            raise ParseError(f"dockerfile line greater than max allowed size of {MAX_LINE}", current)
        token = raw.lstrip() if strip else raw
        try:
            d.possible_directive(token)
        except ParseError as exc:
            raise ParseError(exc.message, current) from None
        return _COMMENT.sub("", token)

    while i < len(lines):
        raw = lines[i]
        i += 1
        processed = read(raw, True)
        current += 1
        start = current
        line, end_of_line = d.trim_continuation(processed)
        if end_of_line and line == "":
            continue
        empty_continuation = False
        while not end_of_line and i < len(lines):
            raw = lines[i]
            i += 1
            processed = read(raw, False)
            current += 1
            if _COMMENT.match(raw.lstrip()):
                continue
            if not processed.strip():
                empty_continuation = True
                continue
            more, end_of_line = d.trim_continuation(processed)
            line += more
        if empty_continuation:
            warnings.append("[WARNING]: Empty continuation line found in:\n    " + line)
        try:
            child = node_from_line(line, d.escape_token)
        except ParseError as exc:
            raise ParseError(exc.message, start) from None
        child.start_line, child.end_line = start, current
        children.append(child)
    if warnings:
        warnings.append("[WARNING]: Empty continuation lines will become errors in a future release.")
    if not children:
        raise ParseError("file with no instructions", current)
    return Result(children, d.escape_token, dict(d.seen), warnings)


def heredoc_in(node: Node) -> str:
    """The heredoc word of a RUN/COPY/ADD in shell form (`RUN <<EOF`), or ""."""
    if node.json or node.value not in ("run", "copy", "add"):
        return ""
    match = _HEREDOC.search(" ".join(a.value for a in node.next))
    return match.group(1) if match else ""

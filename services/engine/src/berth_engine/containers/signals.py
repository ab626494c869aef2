"""Signal names as the Docker API accepts them: "KILL", "SIGKILL" or "9"."""

from __future__ import annotations

import signal

from berth_contracts.errors import InvalidParameter

# Linux x86-64 numbers, from moby/sys/signal's SignalMap (names without "SIG").
SIGNALS: dict[str, int] = {
    "ABRT": 6, "ALRM": 14, "BUS": 7, "CHLD": 17, "CLD": 17, "CONT": 18, "FPE": 8, "HUP": 1,
    "ILL": 4, "INT": 2, "IO": 29, "IOT": 6, "KILL": 9, "PIPE": 13, "POLL": 29, "PROF": 27,
    "PWR": 30, "QUIT": 3, "SEGV": 11, "STKFLT": 16, "STOP": 19, "SYS": 31, "TERM": 15,
    "TRAP": 5, "TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23, "USR1": 10, "USR2": 12,
    "VTALRM": 26, "WINCH": 28, "XCPU": 24, "XFSZ": 25,
}  # fmt: skip
for _n in range(1, 31):
    SIGNALS[f"RTMIN+{_n}"] = signal.SIGRTMIN + _n
    SIGNALS[f"RTMAX-{_n}"] = signal.SIGRTMAX - _n
SIGNALS["RTMIN"] = signal.SIGRTMIN
SIGNALS["RTMAX"] = signal.SIGRTMAX

SIGKILL = 9
SIGTERM = 15


def parse_signal(raw: str) -> int:
    """moby's signal.ParseSignal: a number, or a name with or without "SIG"."""
    text = raw.strip()
    if text.isdigit():
        number = int(text)
        if number == 0 or number > signal.SIGRTMAX:
            raise InvalidParameter(f"Invalid signal: {raw}")
        return number
    name = text.upper()
    if name.startswith("SIG"):
        name = name[3:]
    number = SIGNALS.get(name, 0)
    if number == 0:
        raise InvalidParameter(f"Invalid signal: {raw}")
    return number

"""Reading a raw command line before LightningCLI parses it (``--flag=value`` or ``--flag value``).

Used where one argument decides what the rest of the command line must hold, e.g. the
``--ckpt_path`` of an evaluation fixing the model's architecture.
"""

from __future__ import annotations


def flag_given(args: list[str], flag: str) -> bool:
    """Whether ``flag`` appears in ``args`` (either spelling)."""
    return any(a == flag or a.startswith(flag + "=") for a in args)


def flag_value(args: list[str], flag: str) -> str | None:
    """The value of the last ``flag`` in ``args``, or None."""
    value = None
    for i, a in enumerate(args):
        if a.startswith(flag + "="):
            value = a.split("=", 1)[1]
        elif a == flag and i + 1 < len(args):
            value = args[i + 1]
    return value


def drop_flag(args: list[str], flag: str) -> list[str]:
    """``args`` without ``flag`` and its value."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        elif not a.startswith(flag + "="):
            out.append(a)
    return out


def keys_given(args: list[str], prefix: str) -> list[str]:
    """The names after ``prefix`` of the flags in ``args`` (``--model.`` → ``["lr", ...]``)."""
    return [a[len(prefix) :].split("=", 1)[0] for a in args if a.startswith(prefix) and a != prefix]


def subcommand(args: list[str]) -> str | None:
    """The first positional argument (``fit``, ``validate``, ``test``, ``predict``)."""
    return next((a for a in args if not a.startswith("-")), None)

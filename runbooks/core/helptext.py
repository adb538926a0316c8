"""``--help`` that helps: every option says what it means, its default, and whether it is
required; every command ends with its exit codes. One formatter for the runbooks, the drill and
``python -m sandbox``, and one check (``problems``) that the tests run over every parser."""

from __future__ import annotations

import argparse


def exit_codes(*codes: tuple[int, str]) -> str:
    """The epilog every command ends its --help with: one line per exit code."""
    return "exit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in codes)


RUNBOOK_EXIT_CODES = exit_codes(
    (0, "done (also: nothing to do)"), (1, "failed: a rerun continues from the journal"),
    (2, "bad input: nothing changed"), (3, "refused by a gate or by another run's lock: nothing changed"),
    (4, "declined at the prompt: nothing changed"), (130, "interrupted: a rerun continues from the journal"))
BACKUP_EXIT_CODES = exit_codes(
    (0, "done (also: nothing to do)"), (1, "failed, or the verification failed: a rerun continues from the journal"),
    (2, "bad input: nothing changed"), (4, "declined at the prompt: nothing changed"),
    (130, "interrupted: a rerun continues from the journal"))


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Adds ``(required)`` and ``(default: X)`` where the help text does not already say them."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.help is argparse.SUPPRESS:
            return text
        if getattr(action, "required", False) and action.option_strings and "required" not in text:
            text += " (required)"
        default = action.default
        if action.option_strings and "default" not in text and _shows(action, default):
            text += " (default: %(default)s)"
        return text


def _shows(action: argparse.Action, default) -> bool:
    if default is None or default is argparse.SUPPRESS or default is False or default == [] or default == "":
        return False
    return not isinstance(action, (argparse._HelpAction, argparse._VersionAction))


def problems(parser: argparse.ArgumentParser, where: str = "") -> list[str]:
    """What a reader of ``--help`` would miss: an option without a meaning, an option with a
    default whose help does not give it, a parser without its exit codes (subcommands too)."""
    where = where or parser.prog
    out = []
    if "exit codes:" not in (parser.epilog or ""):
        out.append(f"{where}: --help does not list the exit codes")
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += problems(sub, f"{where} {name}")
            continue
        name = "/".join(action.option_strings) or action.dest
        rendered = parser._get_formatter()._get_help_string(action) if isinstance(parser._get_formatter(), Formatter) \
            else (action.help or "")
        if not action.help:
            out.append(f"{where}: {name} has no help")
        elif _shows(action, action.default) and "default" not in rendered:
            out.append(f"{where}: {name}'s help does not give its default ({action.default!r})")
    return out

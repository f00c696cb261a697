"""Write hobguard's words into the Home Assistant blueprints.

The notification blueprint (homeassistant/blueprints/automation/hobguard/
notify.yaml) says what a cut, a warning or a fault means in the same words
as the command line, the demo and the scenario timelines: the tables of
``hobguard.words``. This tool copies those tables into the blueprint's
``variables`` between two marker lines; ``tests/test_blueprints.py`` fails
when a blueprint's copy is not what this tool writes, and renders the
blueprint against ``hobguard.words.notification``.

    python tools/blueprint_words.py            # rewrite the blocks
    python tools/blueprint_words.py --check    # exit 1 if one is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "host"), str(REPO / "firmware")]

from hobguard import words  # noqa: E402

BLUEPRINTS = REPO / "homeassistant" / "blueprints" / "automation" / "hobguard"
BEGIN = "# -- words: generated from hobguard.words by tools/blueprint_words.py; do not edit --"
END = "# -- end of generated words --"

# blueprint variable -> the table or text of hobguard.words it holds
TABLES = {
    "cut_words": words.CUT_REASON_WORDS,
    "warning_words": words.WARNING_WORDS,
    "fault_words": words.FAULT_WORDS,
    "sign_words": words.SIGN_WORDS,
    "warning_advice": words.WARNING_ADVICE,
    "fault_advice": words.FAULT_ADVICE,
    "quiet_cuts": list(words.QUIET_CUTS),
    "flame_lost_detail": words.FLAME_LOST_DETAIL,
    "flame_lost_calm": words.FLAME_LOST_CALM,
}


def block(indent: str) -> list[str]:
    """The generated lines (markers included), at `indent`. Strings are
    written as JSON strings, which YAML reads as double-quoted scalars."""
    lines = [indent + BEGIN]
    for name, value in TABLES.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{name}:")
            lines += [f"{indent}  {key}: {json.dumps(text)}" for key, text in value.items()]
        elif isinstance(value, list):
            lines.append(f"{indent}{name}: {json.dumps(value)}")
        else:
            lines.append(f"{indent}{name}: {json.dumps(value)}")
    lines.append(indent + END)
    return lines


def updated(text: str) -> str:
    """`text` with its generated block rewritten (unchanged if it has none)."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if line.strip() == BEGIN]
    if not starts:
        return text
    if len(starts) > 1:
        raise ValueError("more than one generated block")
    start = starts[0]
    try:
        end = next(i for i in range(start, len(lines)) if lines[i].strip() == END)
    except StopIteration:
        raise ValueError(f"the block that starts at line {start + 1} has no end marker") from None
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    return "\n".join(lines[:start] + block(indent) + lines[end + 1 :])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a blueprint is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path in sorted(BLUEPRINTS.glob("*.yaml")):
        text = path.read_text()
        new = updated(text)
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new)
    for path in stale:
        verb = "out of date" if args.check else "rewritten"
        print(f"{path.relative_to(REPO)}: {verb}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())

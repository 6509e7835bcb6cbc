"""The rule catalogue as Markdown, generated from the registry so the docs cannot drift.

``python -m validator.rule_catalog > docs/validation-rules.md`` (``make docs``); a test
checks the committed page is current.
"""

from __future__ import annotations

from contracts import Category

from .field_mapping import CANONICAL
from .rules import AGENTS
from .validation import IMPORT_RULES, rules_of


def render() -> str:
    lines = [
        "# Validation rules",
        "",
        "Generated from the validator's rule registry (`python -m validator.rule_catalog`); do not edit by hand.",
        "An *error* makes its row invalid (reported, not enriched); a *warning* is reported and the row goes on.",
        "Import-level rules (" + ", ".join(f"`{r.rule_id}`" for r in IMPORT_RULES) + ") apply to every category.",
        "",
    ]
    import_level = {r.rule_id for r in IMPORT_RULES}
    for category in Category:
        lines += [f"## {category.value}", "",
                  "Canonical columns: " + ", ".join(f"`{c}`" for c in CANONICAL[category]) + ".", "",
                  "Agents, in run order: " + ", ".join(f"`{a}`" for a in AGENTS[category]) + ".", "",
                  "| rule | agent | severity | what it checks |", "|---|---|---|---|"]
        rules = [r for r in rules_of(category).values() if r.rule_id not in import_level]
        for r in sorted(rules, key=lambda r: (AGENTS[category].index(r.agent) if r.agent in AGENTS[category]
                                              else 99, r.rule_id)):
            lines.append(f"| `{r.rule_id}` | {r.agent} | {r.severity} | {r.description.replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")

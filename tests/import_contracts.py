"""An import-linter contract type the built-in ones cannot express: "these modules
never import a *submodule* of an external package" (``aiohttp.web``: the domain may
use aiohttp's HTTP client, never its server side). import-linter squashes external
packages to their top name, so the import's source line is checked. Named in
``setup.cfg`` (``contract_types``); run by ``lint-imports`` and tests/test_layers.py."""

from __future__ import annotations

import re

import grimp
from importlinter import Contract, ContractCheck, fields, output


class ForbiddenSubmoduleContract(Contract):
    type_name = "forbidden_submodule"

    source_modules = fields.ListField(subfield=fields.ModuleField())
    forbidden_modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        sources = [m.name for m in self.source_modules]  # type: ignore[attr-defined]
        forbidden = list(self.forbidden_modules)  # type: ignore[call-overload]
        found = []
        for target in forbidden:
            top, _, rest = target.partition(".")
            patterns = [re.compile(rf"^\s*from\s+{re.escape(target)}(\.|\s)"),
                        re.compile(rf"^\s*import\s+{re.escape(target)}(\.|\s|$)")]
            if rest:
                last = rest.split(".")[-1]
                parent = target.rsplit(".", 1)[0]
                patterns.append(re.compile(rf"^\s*from\s+{re.escape(parent)}\s+import\s+.*\b{re.escape(last)}\b"))
            if top not in graph.modules:
                continue
            for importer in sorted(graph.find_modules_that_directly_import(top)):
                if not any(importer == s or importer.startswith(s + ".") for s in sources):
                    continue
                for detail in graph.get_import_details(importer=importer, imported=top):
                    if any(p.search(detail["line_contents"]) for p in patterns):
                        found.append((importer, target, detail["line_number"], detail["line_contents"]))
        return ContractCheck(kept=not found, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, target, line, text in check.metadata["found"]:
            output.print_error(f"{importer} is not allowed to import {target} (l.{line}: {text.strip()})")
            output.new_line()

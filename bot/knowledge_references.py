"""Checks across the files of a knowledge folder, once all of them are read.

Related entries and tips must name entries that exist (a missing one most likely was renamed: the fix
points at the renamed entry), the folder must have entries, problems inside an entry whose id is a
duplicate are blamed on that id, and texts missing in a language of the knowledge base are warnings.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rapidfuzz import process

from bot.knowledge_sections import SectionReader
from bot.yaml_fields import closest_id


class KnowledgeReader(SectionReader):
    """The whole reader: every section of every file, then the checks that span files."""

    def cross_check(self, unreadable: bool) -> None:
        """Checks that span files; skipped where an unreadable file would only cause follow-on noise."""
        if unreadable:
            return
        referenced = {str(n.value).strip() for _, _, n in (*self.related_nodes, *self.tip_entry_nodes)}
        for file, owner, node in self.related_nodes:
            self.file = file
            rid = str(node.value).strip()
            if rid not in self.entries:
                self.add(node, owner, f"related id '{rid}' does not exist", self._cause(rid, referenced))
            elif rid == owner:
                self.add(node, owner, "an entry cannot be related to itself", "remove this line")
        for file, owner, node in self.tip_entry_nodes:
            self.file = file
            rid = str(node.value).strip()
            if rid not in self.entries:
                self.add(
                    node,
                    owner,
                    f"the tip refers to entry '{rid}', which does not exist",
                    self._cause(rid, referenced),
                )
        if not self.entries:
            self.file = "(all files)"
            self.add(
                None, None, "the knowledge base has no entries", "add at least one entry under 'entries:'"
            )
        self._blame_duplicates()
        self.check_translations()

    def _cause(self, wrong: str, referenced: set[str]) -> str:
        """Why a referenced id is missing: an entry nobody refers to with a close id was most likely
        renamed (point at it); otherwise the reference itself has a typo."""
        orphans = [i for i in self.entries if i not in referenced]
        guess = process.extractOne(wrong, orphans, score_cutoff=60)
        if guess is not None:
            entry = self.entries[str(guess[0])]
            return (
                f"caused by line {entry.line} of {Path(entry.file).name}: that entry is now called "
                f"'{entry.id}'; if you renamed '{wrong}', write the new id here too (or rename it back)"
            )
        return closest_id(wrong, self.entries)

    def _blame_duplicates(self) -> None:
        """Problems inside an entry whose id is a duplicate follow from that id: say so."""
        for entry_id, file, id_line, first, last in self.duplicates:
            for number, problem in enumerate(self.problems):
                inside = problem.file == file and problem.line is not None and first <= problem.line <= last
                if inside and problem.entry_id == entry_id and problem.line != id_line:
                    self.problems[number] = replace(
                        problem,
                        fix=f"caused by line {id_line}: the duplicate id '{entry_id}'; fix that first",
                    )

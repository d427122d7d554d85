"""Aligning the reference's columns with the candidate's.

Policy:

* A column in both, with the same role, is compared.
* A column in both whose roles differ is compared under the **reference's** role when
  the candidate's type can carry it (an integer code column inferred ``numeric`` on one
  side and ``categorical`` on the other, say); otherwise it is a conflict.
* A column in only one of them is left out of the comparison and named in
  ``reference_only`` / ``candidate_only``, so the report can say so. With
  ``strict=True`` it is an error instead.
* Conflicts, and an empty set of shared columns, are always a
  :class:`~collapse_callbacks.errors.SchemaMismatchError` listing every problem at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from collapse_callbacks.data.roles import ColumnRole, role_fits
from collapse_callbacks.errors import SchemaMismatchError


@dataclass(frozen=True)
class SchemaAlignment:
    roles: dict[str, ColumnRole]
    reference_only: tuple[str, ...] = ()
    candidate_only: tuple[str, ...] = ()
    role_changes: tuple[str, ...] = ()
    # Shared columns left out as identifiers (data.roles.identifier_columns).
    identifiers: tuple[str, ...] = ()
    # The reference's Arrow type of each shared date, time, timestamp or duration
    # column: profiles hold their values as counts of units; reports show them as dates.
    temporal: dict[str, pa.DataType] = dataclasses.field(default_factory=dict)

    def without_identifiers(self, identifiers: Iterable[str]) -> SchemaAlignment:
        """The alignment with the shared columns among ``identifiers`` left out, unless
        that would leave nothing to compare."""
        found = tuple(name for name in self.roles if name in set(identifiers))
        if not found or len(found) == len(self.roles):
            return self
        roles = {name: role for name, role in self.roles.items() if name not in found}
        return dataclasses.replace(self, roles=roles, identifiers=found)

    def notes(self) -> list[str]:
        """Sentences for the report about what was not compared as inferred."""
        notes = []
        if self.reference_only:
            notes.append(f"not in the candidate, not compared: {', '.join(self.reference_only)}")
        if self.candidate_only:
            notes.append(f"not in the reference, not compared: {', '.join(self.candidate_only)}")
        notes.extend(self.role_changes)
        if self.identifiers:
            names = ", ".join(f"`{name}`" for name in self.identifiers)
            notes.append(
                f"{names}: a different value in every sampled row (an identifier), not "
                "compared; give the column a role (--role COL=ROLE, roles= in Python) to compare it"
            )
        return notes


def align_schemas(
    reference_schema: pa.Schema,
    reference_roles: dict[str, ColumnRole],
    candidate_schema: pa.Schema,
    candidate_roles: dict[str, ColumnRole],
    *,
    strict: bool = False,
) -> SchemaAlignment:
    shared = [name for name in reference_roles if name in candidate_roles]
    reference_only = tuple(name for name in reference_roles if name not in candidate_roles)
    candidate_only = tuple(name for name in candidate_roles if name not in reference_roles)
    problems = []
    if strict and reference_only:
        problems.append(f"the candidate lacks: {', '.join(reference_only)}")
    if strict and candidate_only:
        problems.append(f"the reference lacks: {', '.join(candidate_only)}")
    roles: dict[str, ColumnRole] = {}
    changes = []
    for name in shared:
        wanted, found = reference_roles[name], candidate_roles[name]
        if wanted == found:
            roles[name] = wanted
        elif role_fits(candidate_schema.field(name).type, wanted):
            roles[name] = wanted
            changes.append(
                f"'{name}' is {found.value} in the candidate, compared as {wanted.value}"
            )
        else:
            problems.append(
                f"'{name}' is {wanted.value} ({reference_schema.field(name).type}) in the reference "
                f"but {found.value} ({candidate_schema.field(name).type}) in the candidate"
            )
    if not shared:
        problems.append(
            "no column in common (reference: "
            f"{', '.join(reference_roles)}; candidate: {', '.join(candidate_roles)})"
        )
    if problems:
        raise SchemaMismatchError("; ".join(problems))
    temporal = {
        name: reference_schema.field(name).type
        for name in roles
        if pa.types.is_temporal(reference_schema.field(name).type)
    }
    return SchemaAlignment(roles, reference_only, candidate_only, tuple(changes), temporal=temporal)

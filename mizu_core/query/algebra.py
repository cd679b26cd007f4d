"""The query algebra every front-end compiles to (SPARQL's, in miniature).

Terms are the byte strings of `mizu_core.terms`; variables are `Var`. Graph patterns and
expressions are frozen dataclasses, so a parsed query is a value that can be printed,
compared in tests and cached.
"""

from __future__ import annotations

from dataclasses import dataclass

from mizu_core.terms import Term


@dataclass(frozen=True)
class Var:
    name: str  # without the leading "?"

    def __str__(self) -> str:
        return "?" + self.name


Slot = Term | Var


@dataclass(frozen=True)
class TriplePattern:
    s: Slot
    p: Slot
    o: Slot

    def variables(self) -> set[str]:
        return {x.name for x in (self.s, self.p, self.o) if isinstance(x, Var)}


# -- expressions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Const:
    term: Term


@dataclass(frozen=True)
class Call:
    """An operator or function: `op` is a json-rql operator without "@" (`gt`, `regex`…)."""

    op: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Exists:
    pattern: Pattern
    negated: bool = False


@dataclass(frozen=True)
class Aggregate:
    """`count`, `sum`, `min`, `max`, `avg`, `groupConcat` or `sample`; arg None is `*`."""

    op: str
    arg: Expr | None
    distinct: bool = False
    separator: str = " "


Expr = Var | Const | Call | Exists | Aggregate


# -- graph patterns ------------------------------------------------------------------------


@dataclass(frozen=True)
class BGP:
    triples: tuple[TriplePattern, ...]


@dataclass(frozen=True)
class Join:
    left: Pattern
    right: Pattern


@dataclass(frozen=True)
class LeftJoin:
    """OPTIONAL: `expr`, if any, must hold on the joined solution (SPARQL's LeftJoin)."""

    left: Pattern
    right: Pattern
    expr: Expr | None = None


@dataclass(frozen=True)
class Minus:
    """SPARQL MINUS: drop left solutions compatible with a right one sharing a variable."""

    left: Pattern
    right: Pattern


@dataclass(frozen=True)
class Union:
    left: Pattern
    right: Pattern


@dataclass(frozen=True)
class Filter:
    expr: Expr
    inner: Pattern


@dataclass(frozen=True)
class Extend:
    inner: Pattern
    var: Var
    expr: Expr


@dataclass(frozen=True)
class Values:
    variables: tuple[Var, ...]
    rows: tuple[tuple[Term | None, ...], ...]  # None: UNDEF


@dataclass(frozen=True)
class Group:
    """GROUP BY `keys` (no keys: one group), computing each aggregate into its variable."""

    inner: Pattern
    keys: tuple[Expr, ...]
    aggregates: tuple[tuple[Var, Aggregate], ...]


@dataclass(frozen=True)
class SubSelect:
    select: Select


Pattern = BGP | Join | LeftJoin | Minus | Union | Filter | Extend | Values | Group | SubSelect


@dataclass(frozen=True)
class OrderKey:
    expr: Expr
    descending: bool = False


@dataclass(frozen=True)
class Select:
    """A SELECT query: `projection` None means `*`."""

    pattern: Pattern
    projection: tuple[Var, ...] | None
    distinct: bool = False
    order_by: tuple[OrderKey, ...] = ()
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class Construct:
    """Subjects shaped like `template`, one per subject term, merged over all solutions.

    `shaped` is json-rql's reading (m-ld's): an anonymous template node is one node across
    all solutions, and nested template subjects are embedded in their parents. Without it
    (SPARQL), a template blank node is fresh in each solution and subjects are flat.
    """

    template: tuple[TriplePattern, ...]
    select: Select  # the solutions that fill the template (its modifiers apply)
    shaped: bool = False


@dataclass(frozen=True)
class Describe:
    """The direct properties of each resource: IRIs given, or bound to `variables`."""

    resources: tuple[Term, ...]
    variables: tuple[Var, ...]
    select: Select | None


Query = Select | Construct | Describe

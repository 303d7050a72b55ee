"""What the data map says about a collection, and which rights follow, in the person's words.

Everything here is read from :class:`dsar.datamap.schema.DataMap`: labels, the Art. 15(1)
information (collection info over system info), the data categories of columns, and the
controller. Collections the map does not describe still get a readable label and empty info,
so a bundle is never refused for a missing description.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dsar.bundles.labels import category_label, name_label
from dsar.datamap.schema import Art15Info, DataMap, SystemBase
from dsar.kinds import kind_of
from dsar.locale import N_
from dsar.memo import DerivedFrom

SystemModel = SystemBase


@dataclass(frozen=True)
class Category:
    code: str
    label: str
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class CollectionFacts:
    """The description of one ``(system, collection)`` as the report and data.json show it."""

    system: str
    collection: str
    system_label: str
    label: str
    info: Art15Info
    categories: tuple[Category, ...] = ()
    column_labels: dict[str, str] = field(default_factory=dict)
    money: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Columns the map formats as money: ``{column: (format, currency)}``."""


def _system(datamap: DataMap, name: str) -> SystemModel | None:
    try:
        return datamap.system(name)
    except KeyError:
        return None


def _spec(system: SystemModel, collection: str) -> object | None:
    """The map's entry for ``collection``, as the system's kind finds it."""
    return kind_of(system).spec(system, collection)


_FACTS: DerivedFrom[CollectionFacts] = DerivedFrom(limit=4096)


def describe(datamap: DataMap, system: str, collection: str) -> CollectionFacts:
    """Labels, merged Art. 15 info and categories for one collection (worked out once per
    loaded data map, while it lives; the facts are shared, not to be changed)."""
    return _FACTS.get((datamap,), (system, collection),
                      lambda: _describe(datamap, system, collection))


def _describe(datamap: DataMap, system: str, collection: str) -> CollectionFacts:
    sys_model = _system(datamap, system)
    if sys_model is None:
        return CollectionFacts(system, collection, name_label(system), name_label(collection),
                               Art15Info())
    spec = _spec(sys_model, collection)
    own: Art15Info | None = getattr(spec, "info", None)
    info = (own or Art15Info()).merged_over(sys_model.info)
    by_code: dict[str, list[str]] = {}
    column_labels: dict[str, str] = {}
    money: dict[str, tuple[str, str]] = {}
    for column, col_spec in (getattr(spec, "columns", None) or {}).items():
        by_code.setdefault(col_spec.category, []).append(column)
        column_labels[column] = col_spec.label or category_label(col_spec.category)
        if col_spec.format and col_spec.currency:
            money[column] = (col_spec.format, col_spec.currency)
    if spec is not None and getattr(spec, "category", None):
        by_code.setdefault(spec.category, [])
    categories = tuple(
        Category(code, category_label(code), tuple(cols)) for code, cols in by_code.items()
    )
    return CollectionFacts(
        system=system,
        collection=collection,
        system_label=sys_model.label or name_label(system),
        label=(getattr(spec, "label", None) or name_label(collection)),
        info=info,
        categories=categories,
        column_labels=column_labels,
        money=money,
    )


def order_key(datamap: DataMap, system: str, collection: str) -> tuple[int, int, str, str]:
    """Sort key: systems and collections in data map order, unknown ones after, by name."""
    names = [s.name for s in datamap.systems]
    sys_index = names.index(system) if system in names else len(names)
    sys_model = _system(datamap, system)
    specs = kind_of(sys_model).collections(sys_model) if sys_model is not None else []
    col_index = specs.index(collection) if collection in specs else len(specs)
    return sys_index, col_index, system, collection


@dataclass(frozen=True)
class Right:
    title: str
    article: str
    text: str


BASES = {
    "consent": ("6(1)(a)", "9(2)(a)", "consent"),
    "contract": ("6(1)(b)", "contract"),
    "public": ("6(1)(e)", "public task", "public interest"),
    "legitimate": ("6(1)(f)", "legitimate interest"),
}


def _bases(infos: list[Art15Info]) -> set[str]:
    found: set[str] = set()
    for info in infos:
        text = (info.legal_basis or "").lower().replace(" ", "")
        for name, needles in BASES.items():
            if any(n.replace(" ", "") in text for n in needles):
                found.add(name)
    return found


def rights(infos: list[Art15Info]) -> list[Right]:
    """The rights to list: always rectification, erasure, restriction; the others where a
    legal basis makes them relevant (all of them when no basis is recorded)."""
    bases = _bases(infos)
    unknown = not bases
    out = [
        Right(N_("Correct your data"), "Art. 16",
              N_("You can ask us to correct data about you that is wrong or incomplete.")),
        Right(N_("Have your data erased"), "Art. 17",
              N_("You can ask us to delete your data; we tell you if a legal duty makes us "
                 "keep some of it, and for how long.")),
        Right(N_("Restrict processing"), "Art. 18",
              N_("You can ask us to stop using your data, other than storing it, while a "
                 "question about it is settled.")),
    ]
    if unknown or bases & {"legitimate", "public"}:
        out.append(Right(N_("Object to processing"), "Art. 21",
                         N_("Where we rely on legitimate interests or a public task you can "
                            "object; we then stop unless we have compelling grounds. You can "
                            "always object to direct marketing.")))
    if unknown or bases & {"consent", "contract"}:
        out.append(Right(N_("Take your data elsewhere"), "Art. 20",
                         N_("Data you gave us under consent or a contract is in this bundle in "
                            "machine-readable form (data.json and CSV) to reuse elsewhere.")))
    if unknown or "consent" in bases:
        out.append(Right(N_("Withdraw consent"), "Art. 7(3)",
                         N_("Where we rely on your consent you can withdraw it at any time; "
                            "this does not affect what we did before.")))
    return out

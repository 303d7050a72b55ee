"""The data map file format, as pydantic models.

A data map is YAML. Its top level names the controller and lists ``systems``; each system has a
``kind`` (``sql``, ``s3`` or ``saas``) and the collections inside it. Names used for identities
and keys are shared across systems: ``email`` and ``phone`` come from the request, any other name
(``customer_id``) is either given in the request (``--id customer_id=42``) or *provided* by a
collection that found it, and then feeds every collection that looks subjects up by that name.

Validation is strict (unknown fields are errors) so that a typo never silently widens or
narrows what is searched. :mod:`dsar.datamap.loader` turns validation errors into messages that
name the place in the file and what to write instead.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
KEY_NAME = r"^[a-z][a-z0-9_]*$"
PERIOD = re.compile(r"^(\d+)\s*(day|days|month|months|year|years)$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Transfer(Strict):
    """A transfer to a third country or an international organisation (Art. 15(2)): where to,
    and the safeguard it relies on (Art. 46: "Standard Contractual Clauses", an adequacy
    decision under Art. 45, ...)."""

    to: str = Field(min_length=2)
    safeguards: str = Field(min_length=3)


class Art15Info(Strict):
    """What Art. 15(1) and 15(2) require the controller to tell the subject about a collection.

    ``automated_decisions`` (Art. 15(1)(h)): automated decision-making, including profiling,
    with the logic involved and its significance and consequences; unset means none is made.
    ``transfers`` (Art. 15(2)): transfers to third countries and their safeguards."""

    purposes: list[str] = Field(default_factory=list)
    legal_basis: str | None = None
    recipients: list[str] = Field(default_factory=list)
    retention: str | None = None
    source: str | None = None
    automated_decisions: str | None = None
    transfers: list[Transfer] = Field(default_factory=list)

    def merged_over(self, parent: Art15Info | None) -> Art15Info:
        """This info with blanks filled from ``parent`` (table info over system info)."""
        if parent is None:
            return self
        return Art15Info(
            purposes=self.purposes or parent.purposes,
            legal_basis=self.legal_basis or parent.legal_basis,
            recipients=self.recipients or parent.recipients,
            retention=self.retention or parent.retention,
            source=self.source or parent.source,
            automated_decisions=self.automated_decisions or parent.automated_decisions,
            transfers=self.transfers or parent.transfers,
        )


class MaskRule(Strict):
    """How one column is masked: ``null``, a ``fixed`` value, a keyed ``hash`` or ``random``."""

    strategy: Literal["null", "fixed", "hash", "random"]
    value: str | int | float | bool | None = None

    @model_validator(mode="after")
    def _fixed_needs_value(self) -> MaskRule:
        if self.strategy == "fixed" and self.value is None:
            raise ValueError("strategy 'fixed' needs a 'value' (the text written in its place)")
        return self


def parse_period(text: str) -> tuple[int, str]:
    """``"10 years"`` -> ``(10, "years")``; raises ValueError naming the accepted form."""
    match = PERIOD.match(text.strip().lower())
    if not match:
        raise ValueError(f"period {text!r} is not of the form '<number> days|months|years'")
    unit = match.group(2).rstrip("s") + "s"
    return int(match.group(1)), unit


class RetainRule(Strict):
    """Keep the rows under a stated legal ground (e.g. Art. 17(3)(b)) for a stated period."""

    ground: str = Field(min_length=3)
    period: str

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        parse_period(value)
        return value


class ErasureSpec(Strict):
    """What erasure does to a collection: delete it, mask columns, retain it under a legal
    ground, or ``none``: the collection holds no personal data of its own (a product
    catalogue, a lookup table) and is only walked through, collected for access and never
    changed by erasure."""

    action: Literal["delete", "mask", "retain", "none"]
    mask: dict[Annotated[str, Field(pattern=IDENT)], MaskRule] = Field(default_factory=dict)
    retain: RetainRule | None = None
    keep: dict[Annotated[str, Field(pattern=IDENT)], Annotated[str, Field(min_length=3)]] = \
        Field(default_factory=dict)
    """With ``mask``: identity or key columns deliberately left as they are, each with the
    reason (``{email: "needed to honour the opt-out list"}``). The row stays findable by them:
    the recount leaves those look-ups out and the evidence counts the rows (``kept_findable``)."""

    @model_validator(mode="after")
    def _consistent(self) -> ErasureSpec:
        if self.action == "mask" and not self.mask:
            raise ValueError("action 'mask' needs 'mask: {column: {strategy: ...}}'")
        if self.action == "retain" and self.retain is None:
            raise ValueError("action 'retain' needs 'retain: {ground: ..., period: ...}'")
        if self.action != "mask" and self.mask:
            raise ValueError(f"'mask' is only read with action 'mask', not {self.action!r}")
        if self.action != "mask" and self.keep:
            raise ValueError(f"'keep' is only read with action 'mask', not {self.action!r}")
        if both := sorted(set(self.keep) & set(self.mask)):
            raise ValueError(f"column {both[0]!r} is both masked and kept; choose one")
        return self


class ColumnSpec(Strict):
    """A column that holds personal data, with its data category (e.g. ``contact.email``).

    ``format: money`` shows the column's amounts as money in ``currency`` (ISO 4217, e.g.
    ``EUR``); ``money_minor`` when they are stored in minor units (cents: 1999 is 19.99)."""

    category: str
    label: str | None = None
    format: Literal["money", "money_minor"] | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None

    @model_validator(mode="after")
    def _currency(self) -> ColumnSpec:
        if self.format and not self.currency:
            raise ValueError(f"format {self.format!r} needs a currency (an ISO 4217 code: EUR)")
        return self


class Reference(Strict):
    """A link from this table's ``columns`` to ``table``'s ``to`` columns.

    ``direction`` says which way the planner may follow it:

    - ``inbound``: rows of *this* table are found from the referenced table's rows
      (``invoice.customer_id -> customer.id``: the subject's invoices hang off their customer row);
    - ``outbound``: rows of the *referenced* table are found from this table's rows
      (``customer.address_id -> address.id``: the address the subject's row owns);
    - ``none``: known for ordering and checks, never followed
      (``customer.support_rep_id -> employee.id``: the employee is another person).
    """

    columns: list[Annotated[str, Field(pattern=IDENT)]] = Field(min_length=1)
    table: str
    to: list[Annotated[str, Field(pattern=IDENT)]] = Field(min_length=1)
    direction: Literal["inbound", "outbound", "none"]

    @model_validator(mode="after")
    def _same_arity(self) -> Reference:
        if len(self.columns) != len(self.to):
            raise ValueError("'columns' and 'to' must name the same number of columns")
        return self


class SqlTable(Strict):
    """One table: how the subject's rows are found, what they hold, and what erasure does."""

    name: str
    db_schema: str | None = Field(default=None, alias="schema")
    primary_key: list[Annotated[str, Field(pattern=IDENT)]] = Field(default_factory=list)
    identities: dict[Annotated[str, Field(pattern=KEY_NAME)], str | list[str]] = Field(
        default_factory=dict)
    provides: dict[Annotated[str, Field(pattern=KEY_NAME)], str] = Field(default_factory=dict)
    references: list[Reference] = Field(default_factory=list)
    columns: dict[Annotated[str, Field(pattern=IDENT)], ColumnSpec] = Field(default_factory=dict)
    erasure: ErasureSpec = Field(default_factory=lambda: ErasureSpec(action="delete"))
    erase_after: list[str] = Field(default_factory=list)
    info: Art15Info | None = None
    label: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("identities", mode="before")
    @classmethod
    def _identity_columns(cls, value: object) -> object:
        """Each key names one column or a non-empty list of distinct columns."""
        if not isinstance(value, dict):
            return value  # pydantic names the type error
        for key, columns in value.items():
            listed = columns if isinstance(columns, list) else [columns]
            if not listed or not all(isinstance(c, str) and c for c in listed):
                raise ValueError(f"identity {key!r} must name a column or a list of columns "
                                 f"(e.g. {key}: [email, alt_email])")
            if len(set(listed)) != len(listed):
                raise ValueError(f"identity {key!r} lists a column twice; list each once")
        return value

    def identity_columns(self, key: str) -> tuple[str, ...]:
        """The columns a subject is looked up in by ``key`` (empty when none): a key may be
        held in several columns (``email`` and ``alt_email``); a row matches if any holds it."""
        columns = self.identities.get(key, ())
        return (columns,) if isinstance(columns, str) else tuple(columns)

    def identity_items(self) -> list[tuple[str, str]]:
        """Every ``(key, column)`` pair, in map order: one per column of each identity."""
        return [(key, column) for key in self.identities
                for column in self.identity_columns(key)]

    def known_columns(self) -> set[str]:
        """Every column this entry names: key, identities, provides, references, columns."""
        names = set(self.primary_key) | {column for _, column in self.identity_items()}
        names |= set(self.provides.values()) | set(self.columns)
        for ref in self.references:
            names |= set(ref.columns)
        return names


class SystemBase(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
    label: str | None = None
    info: Art15Info | None = None
    max_concurrent_tasks: int = Field(default=4, ge=1, le=256)


class SqlSystem(SystemBase):
    """A SQL database reached through SQLAlchemy; the URL comes from ``url_env``."""

    kind: Literal["sql"]
    url_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
    statement_timeout_seconds: float = Field(default=30.0, gt=0)
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    email_match: Literal["case_insensitive", "exact"] = "case_insensitive"
    tables: list[SqlTable] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_tables(self) -> SqlSystem:
        seen: set[str] = set()
        for table in self.tables:
            if table.name in seen:
                raise ValueError(f"table {table.name!r} is listed twice; list each table once")
            seen.add(table.name)
        return self

    def table(self, name: str) -> SqlTable:
        """The entry for table ``name``; KeyError if the map has none."""
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)


class S3ObjectSpec(Strict):
    """Objects that belong to one subject: a ``key`` or a ``prefix`` template, e.g.
    ``avatars/{customer_id}.png`` or ``uploads/{customer_id}/``."""

    name: Annotated[str, Field(pattern=IDENT)]
    key: str | None = None
    prefix: str | None = None
    category: str
    label: str | None = None
    erasure: ErasureSpec = Field(default_factory=lambda: ErasureSpec(action="delete"))
    info: Art15Info | None = None

    @model_validator(mode="after")
    def _one_template(self) -> S3ObjectSpec:
        if (self.key is None) == (self.prefix is None):
            raise ValueError("give exactly one of 'key' or 'prefix'")
        if self.erasure.action in ("mask", "none"):
            raise ValueError(f"objects cannot take action {self.erasure.action!r}; "
                             "use 'delete' or 'retain'")
        return self


class S3SharedSpec(Strict):
    """Shared files holding many people's records, scanned for the subject's records.

    ``format: parquet`` needs the ``lake`` extra (pyarrow); its ``match`` names columns (dotted
    for struct fields) and ``compression`` is ignored (Parquet compresses per column chunk).
    ``format: delta`` is a Delta Lake table whose root is ``prefix``; ``format: iceberg`` is
    an Iceberg table at ``prefix``, named ``table`` (``namespace.name``) in the SQL catalog
    named ``catalog`` at the URL in ``catalog_url_env``. Both match top-level columns (docs/s3.md).
    """

    name: Annotated[str, Field(pattern=IDENT)]
    prefix: str
    format: Literal["jsonl", "csv", "json", "parquet", "delta", "iceberg"]
    table: str | None = None
    catalog: Annotated[str, Field(min_length=1)] = "default"
    catalog_url_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] | None = None
    compression: Literal["none", "gzip", "auto"] = "auto"
    match: dict[Annotated[str, Field(pattern=KEY_NAME)], str] = Field(min_length=1)
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    label: str | None = None
    erasure: ErasureSpec = Field(default_factory=lambda: ErasureSpec(action="delete"))
    info: Art15Info | None = None

    @model_validator(mode="after")
    def _no_mask(self) -> S3SharedSpec:
        if self.erasure.action in ("mask", "none"):
            raise ValueError("records in shared files are removed or retained: use 'delete' "
                             f"or 'retain', not {self.erasure.action!r}")
        if self.format == "iceberg" and not (self.table and self.catalog_url_env):
            raise ValueError("an iceberg collection needs 'table' (namespace.name) and "
                             "'catalog_url_env' (the variable holding its SQL catalog's URL)")
        if self.format != "iceberg" and (self.table or self.catalog_url_env):
            raise ValueError("'table' and 'catalog_url_env' belong to format: iceberg only")
        return self


class S3System(SystemBase):
    """An S3 bucket (or an S3-compatible store at ``endpoint_url_env``)."""

    kind: Literal["s3"]
    bucket: str
    endpoint_url_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] | None = None
    region: str | None = None
    objects: list[S3ObjectSpec] = Field(default_factory=list)
    shared: list[S3SharedSpec] = Field(default_factory=list)


class SaaSRateLimit(Strict):
    """The account's own limit when it differs from the vendor's default: ``calls`` per
    ``seconds``, shared by every worker."""

    calls: int = Field(ge=1)
    seconds: float = Field(gt=0)


class SaaSSystem(SystemBase):
    """A SaaS account reached over its HTTP API (docs/saas.md).

    ``vendor`` names a vendor definition (``connectors/saas/vendors/<vendor>.yaml``, or the
    file at ``vendor_file`` for a vendor dsar does not ship); ``region``
    picks its base URL where the vendor has several, and ``base_url_env`` overrides it (a
    sandbox, an emulator). Secrets come from ``token_env`` (API key, bearer token, basic or
    OAuth2 client secret) and ``client_id_env`` (basic user, OAuth2 client id). ``identities``
    maps a key name to the vendor's lookup (``email``, ``phone``, ``id``); ``provides`` lists
    key names the vendor's items provide to other systems (``stripe_customer_id``).
    ``resources`` are the vendor resources collected and erased, each one a collection (all
    of them when empty, then reported as one collection named after the vendor).
    ``erasure``: ``delete`` uses the vendor's erasure (delete or privacy-deletion endpoint);
    ``retain`` keeps everything under the stated ground; ``none`` never changes anything.
    """

    kind: Literal["saas"]
    vendor: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    vendor_file: str | None = None
    region: str | None = None
    base_url_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] | None = None
    token_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
    client_id_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] | None = None
    identities: dict[Annotated[str, Field(pattern=KEY_NAME)], str] = Field(
        default_factory=lambda: {"email": "email"})
    provides: list[Annotated[str, Field(pattern=KEY_NAME)]] = Field(default_factory=list)
    resources: list[Annotated[str, Field(pattern=KEY_NAME)]] = Field(default_factory=list)
    rate_limit: SaaSRateLimit | None = None
    erasure: ErasureSpec = Field(default_factory=lambda: ErasureSpec(action="delete"))

    @model_validator(mode="after")
    def _saas_erasure(self) -> SaaSSystem:
        if self.erasure.action == "mask":
            raise ValueError("a SaaS system cannot take action 'mask'; use 'delete' (the "
                             "vendor's erasure), 'retain' or 'none'")
        if len(set(self.resources)) != len(self.resources):
            raise ValueError("a resource is listed twice in 'resources'; list each once")
        return self

    def collection_names(self) -> list[str]:
        """The collections this system reports: its resources, or the vendor's name."""
        return list(self.resources) or [self.vendor]


System = Annotated[SqlSystem | S3System | SaaSSystem, Field(discriminator="kind")]


class Controller(Strict):
    """Who answers the request, and where the subject may complain (Art. 15(1)(f))."""

    name: str
    contact: str | None = None
    dpo: str | None = None
    supervisory_authority: str | None = None
    supervisory_authority_url: str | None = None


class DataMap(Strict):
    """The whole file."""

    version: Literal[1] = 1
    controller: Controller | None = None
    systems: list[System] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> DataMap:
        seen: set[str] = set()
        for system in self.systems:
            if system.name in seen:
                raise ValueError(f"system name {system.name!r} is used twice; names must be unique")
            seen.add(system.name)
        return self

    def system(self, name: str) -> SqlSystem | S3System | SaaSSystem:
        for system in self.systems:
            if system.name == name:
                return system
        raise KeyError(name)

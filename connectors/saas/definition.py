"""The vendor definition format: one YAML file per SaaS vendor, as strict pydantic models.

A definition says how to reach a vendor (base URL per region, auth, rate limit, retries) and,
per *resource* (``customers``, ``charges``, ``members`` …), how the subject's items are found,
listed and erased. :mod:`connectors.saas.runtime` interprets it; nothing vendor-specific lives
in Python. docs/saas.md documents every field.

Models validate on construction (pydantic raises); :mod:`connectors.saas.loading` reads a file
into a :class:`VendorDefinition` and turns a failure into one ``file:line`` error.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME = r"^[a-z][a-z0-9_]*$"
PLACEHOLDER = re.compile(r"\{([a-z_][A-Za-z0-9_.]*)(?:\|([a-z0-9_]+))?\}")
ROOTS = ("value", "each", "parent", "item", "job")
JOB_ID_ROOTS = ("answer", "item", "parent")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paging(_Strict):
    """How a list continues past its first page.

    - ``none``: one page;
    - ``starting_after``: Stripe style; ``has_more`` path says more follow, the next request
      passes the last item's ``id_field`` as ``param``;
    - ``cursor``: the next cursor is at ``next`` in the body, passed as ``param``; ends when
      it is missing or empty;
    - ``offset``: ``param`` (offset) grows by ``size`` (sent as ``size_param``); ends on a
      short page or when ``total`` (a body path) is reached;
    - ``page``: ``param`` counts pages from ``first_page``; ends on a short page;
    - ``link``: the ``Link`` header's ``rel="next"`` URL is fetched as is; with ``next``, the
      URL (absolute, or a path on the base URL's host) is read from that body path instead,
      and a ``has_more`` path whose value is ``false`` ends the list too (Zendesk's
      ``links.next`` with ``meta.has_more``, Salesforce's ``nextRecordsUrl``).

    With ``location: body`` (a search sent as POST) ``param`` and ``size_param`` are dotted
    paths in the JSON body instead of query parameters (Intercom's
    ``pagination.starting_after``).
    """

    style: Literal["none", "starting_after", "cursor", "offset", "page", "link"] = "none"
    param: str | None = None
    size_param: str | None = None
    size: int = Field(default=100, ge=1, le=10_000)
    has_more: str = "has_more"
    id_field: str = "id"
    next: str | None = None
    total: str | None = None
    first_page: int = 1
    location: Literal["query", "body"] = "query"

    @model_validator(mode="after")
    def _complete(self) -> Paging:
        needs_param = self.style in ("starting_after", "cursor", "offset", "page")
        if needs_param and not self.param:
            raise ValueError(f"paging style {self.style!r} needs 'param' (the query parameter)")
        if self.style == "cursor" and not self.next:
            raise ValueError("paging style 'cursor' needs 'next' (the body path of the cursor)")
        if self.location == "body" and self.style in ("none", "link"):
            raise ValueError(f"paging style {self.style!r} has no parameter to put in the body")
        return self


class Call(_Strict):
    """One HTTP request. ``path`` and ``params`` values are templates: ``{value}`` (the
    subject's key value), ``{each.f}``, ``{parent.f}``, ``{item.f}`` (fields of the item
    being iterated, the parent item, the item itself), optionally filtered: ``{value|md5_lower}``.
    Path values are percent-encoded whole, so a value can never add a path segment.
    A ``single`` call's ``items``, if any, is where the one item is in the body
    (Zendesk's ``{"user": {…}}``)."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str = Field(pattern=r"^/")
    params: dict[str, str] = Field(default_factory=dict)
    json_body: dict[str, Any] | None = Field(default=None, alias="json")
    form: dict[str, str] | None = None
    items: str | None = None
    single: bool = False
    paging: Paging = Field(default_factory=Paging)
    skip_when: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _shape(self) -> Call:
        if self.single and self.paging.style != "none":
            raise ValueError("a 'single' call returns one item: drop 'paging'")
        for text in [self.path, *self.params.values(), *(self.form or {}).values(),
                     *_strings(self.json_body)]:
            for root, filt in PLACEHOLDER.findall(text):
                if root.split(".")[0] not in ROOTS:
                    raise ValueError(f"unknown placeholder {{{root}}}: use one of "
                                     "{value}, {each.<field>}, {parent.<field>}, {item.<field>}, "
                                     "{job.id}")
                if filt and filt not in FILTERS:
                    raise ValueError(f"unknown filter {filt!r}: use one of {', '.join(FILTERS)}")
        return self


def _strings(value: Any) -> list[str]:
    """Every string inside a JSON value (the templates of a ``json`` body)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


class Finder(Call):
    """How items are found by one lookup (``email``, ``phone``, ``id``). With ``each``, the
    call runs once per item of that list (Mailchimp: once per audience). With ``confirm``,
    each hit is fetched again by a consistent ``single`` call on ``{item.<field>}`` and kept
    only if that finds it (a search index that lags deletions)."""

    each: Call | None = None
    confirm: Call | None = None
    missing: list[int] = Field(default_factory=lambda: [404])

    @model_validator(mode="after")
    def _confirm_single(self) -> Finder:
        if self.confirm is not None and not self.confirm.single:
            raise ValueError("'confirm' fetches one item: give it 'single: true'")
        return self


class Settle(_Strict):
    """The vendor applies the erasure call later than it answers (Braze queues deletions): a
    recount that still finds items is repeated, waiting 1, 2, 4 … seconds (at most ``every``)
    between passes, until nothing is left or ``within`` seconds of waiting have passed."""

    within: float = Field(gt=0, le=900)
    every: float = Field(default=10.0, gt=0)


class KeptAfterDelete(_Strict):
    """The erasure call moves items to a place where the vendor keeps them ``days`` days before
    purging them (Salesforce's Recycle Bin): evidence reports them deleted from the live data
    and retained, on ``ground``, until the date the vendor purges them."""

    ground: str = Field(min_length=3)
    days: int = Field(ge=1, le=3650)


class Given(_Strict):
    """A lookup the vendor does not offer: the subject's key values are the items themselves
    (``{id_field: value}``), nothing is read. Segment's regulations take a user id and have no
    read API. Such a resource is never collected or recounted; its erasure must be a ``job``,
    whose final status is the proof."""

    given: Literal[True]


class Job(_Strict):
    """An erasure the vendor finishes later: the erase calls submit a job, polled until the
    vendor says it ended.

    - ``id``: a template for the job id, from the last erase call's JSON answer
      (``{answer.data.regulateId}``) or from the item (``{item.id}``: the job is the item's own
      deletion, polled until it is gone);
    - ``poll``: the call that asks how the job stands, templated on ``{job.id}``;
    - ``status``: the body path of the vendor's status; ``done``, ``failed`` and ``pending``
      list what each status means (a status in none of them counts as pending, and is shown);
      without ``status`` any 2xx answer means pending;
    - ``missing``: what a 404 answer to ``poll`` means (``done`` for a deletion polled until
      the record is gone);
    - ``every``: seconds between polls the vendor suggests (the fleet's bounds apply).
    """

    id: str
    poll: Call
    status: str | None = None
    done: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)
    pending: list[str] = Field(default_factory=list)
    missing: Literal["done", "failed", "pending"] = "failed"
    every: float = Field(default=60.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _complete(self) -> Job:
        roots = [root.split(".")[0] for root, _ in PLACEHOLDER.findall(self.id)]
        if not roots or any(r not in JOB_ID_ROOTS for r in roots):
            raise ValueError("a job 'id' is a template on the erase call's answer or the item: "
                             "{answer.<path>} or {item.<field>}")
        if self.status is not None and not self.done:
            raise ValueError("a job with 'status' needs 'done' (the statuses that mean the "
                             "vendor finished)")
        if self.status is None and (self.done or self.failed or self.pending):
            raise ValueError("'done', 'failed' and 'pending' need 'status' (the body path of "
                             "the vendor's status)")
        named = [*self.done, *self.failed, *self.pending]
        if len(set(named)) != len(named):
            raise ValueError("a job status is listed twice in 'done', 'failed' or 'pending'")
        if self.missing != "done" and self.status is None:
            raise ValueError("a job without 'status' is polled until it is gone: write "
                             "'missing: done'")
        return self

    @property
    def id_from_item(self) -> bool:
        """Whether the job id is the id of the person's record at the vendor (not an id the
        vendor made for the job): records then show a keyed hash of it, never the id."""
        return any(root.split(".")[0] != "answer" for root, _ in PLACEHOLDER.findall(self.id))


class Erase(_Strict):
    """What erasure does to a resource's items. Exactly one of:

    - ``call``: a request per item (delete, an anonymising update, a privacy-deletion
      endpoint); a 404 answer means already gone;
    - ``with_parent: true``: removed by the vendor when the parent item is erased; the recount
      checks it;
    - ``retained_by_vendor``: the vendor keeps it for its own legal duties (the text is the
      ground shown in evidence), so nothing is asked and nothing is expected gone.

    ``then`` (with ``call``) are further requests per item, sent in order after ``call``
    succeeds: Zendesk's permanent deletion of a soft-deleted user (404: already gone).
    ``settle`` and ``kept_after_delete`` (with ``call``) say what the vendor does after it
    answers: :class:`Settle`, :class:`KeptAfterDelete`. ``job`` (with ``call``): the last of
    the calls submits a job the vendor finishes later (:class:`Job`).
    """

    call: Call | None = None
    then: list[Call] = Field(default_factory=list)
    with_parent: bool = False
    retained_by_vendor: str | None = Field(default=None, min_length=3)
    kind: Literal["delete", "anonymise", "privacy_delete"] = "delete"
    settle: Settle | None = None
    kept_after_delete: KeptAfterDelete | None = None
    job: Job | None = None

    @model_validator(mode="after")
    def _one(self) -> Erase:
        chosen = [self.call is not None, self.with_parent, self.retained_by_vendor is not None]
        if sum(chosen) != 1:
            raise ValueError("give exactly one of 'call', 'with_parent: true' or "
                             "'retained_by_vendor: <ground>'")
        for name in ("then", "settle", "kept_after_delete", "job"):
            if getattr(self, name) and self.call is None:
                raise ValueError(f"'{name}' follows a 'call': give the 'call' first")
        return self


class Resource(_Strict):
    """One kind of vendor object. A root resource has ``find`` (by lookup name); a related
    one has ``parent`` and ``list`` (a call templated on ``{parent.<field>}``)."""

    label: str | None = None
    category: str = "saas.record"
    id_field: str = "id"
    find: dict[Annotated[str, Field(pattern=NAME)], Finder | list[Finder] | Given] = Field(
        default_factory=dict)
    parent: str | None = None
    list_call: Call | None = Field(default=None, alias="list")
    provides: dict[Annotated[str, Field(pattern=NAME)], str] = Field(default_factory=dict)
    erase: Erase
    opt_in: bool = False  # only when the data map lists it in `resources`

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _root_or_child(self) -> Resource:
        if bool(self.find) == bool(self.parent):
            raise ValueError("give either 'find' (a root resource) or 'parent' and 'list'")
        if self.parent and self.list_call is None:
            raise ValueError("a resource with 'parent' needs 'list' (how its items are listed)")
        if self.erase.with_parent and not self.parent:
            raise ValueError("'with_parent' needs a 'parent'")
        if self.given and self.erase.job is None and self.erase.retained_by_vendor is None:
            raise ValueError("a resource found by 'given: true' cannot be recounted: its "
                             "erasure needs a 'job' whose final status proves it")
        return self

    @property
    def given(self) -> bool:
        """Whether the items are the subject's key values, not read from the vendor."""
        return any(isinstance(f, Given) for f in self.find.values())


class Auth(_Strict):
    """``bearer`` (``Authorization: Bearer <token>``), ``basic`` (``username`` or the client id
    variable as user, the token as password; an empty password with ``token_as: username``),
    ``api_key_header`` (the token in ``header``), ``oauth2_client_credentials`` (client id and
    secret exchanged at ``token_url`` for a bearer token, refreshed before it expires and once
    on a 401)."""

    type: Literal["bearer", "basic", "api_key_header", "oauth2_client_credentials"]
    header: str = "Authorization"
    username: str | None = None
    token_as: Literal["password", "username"] = "password"
    token_url: str | None = None
    scope: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Auth:
        if self.type == "oauth2_client_credentials" and not self.token_url:
            raise ValueError("oauth2_client_credentials needs 'token_url'")
        return self


class RateLimit(_Strict):
    calls: int = Field(ge=1)
    seconds: float = Field(gt=0)


class Retries(_Strict):
    attempts: int = Field(default=6, ge=1, le=20)
    backoff: float = Field(default=0.5, ge=0)
    max_wait: float = Field(default=30.0, gt=0)


class VendorDefinition(_Strict):
    """The whole file."""

    name: Annotated[str, Field(pattern=NAME)]
    label: str
    docs: str | None = None
    base_url: str = Field(pattern=r"^https?://")
    regions: dict[str, Annotated[str, Field(pattern=r"^https?://")]] = Field(default_factory=dict)
    region_from_credential: str | None = None
    auth: Auth
    check: Call
    rate_limit: RateLimit
    retries: Retries = Field(default_factory=Retries)
    idempotency_header: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)  # sent on every call (a version)
    resources: dict[Annotated[str, Field(pattern=NAME)], Resource] = Field(min_length=1)

    @model_validator(mode="after")
    def _parents(self) -> VendorDefinition:
        for name, res in self.resources.items():
            if res.parent is not None and res.parent not in self.resources:
                raise ValueError(f"resource {name!r} has unknown parent {res.parent!r}")
        if self.region_from_credential is not None:
            try:
                pattern = re.compile(self.region_from_credential)
            except re.error as exc:
                raise ValueError(f"region_from_credential is not a regular expression: {exc}") \
                    from None
            if "region" not in pattern.groupindex:
                raise ValueError("region_from_credential needs a (?P<region>...) group")
        return self

    def lookups(self) -> set[str]:
        """Every lookup name a root resource can find items by."""
        return {name for res in self.resources.values() for name in res.find}

    def order(self, wanted: list[str] | None = None) -> list[str]:
        """Resource names, parents before children; restricted to ``wanted`` and their
        ancestors (a child cannot be listed without its parent's items)."""
        names = list(self.resources) if not wanted else list(wanted)
        closed: list[str] = []
        for name in names:
            chain = []
            while name is not None and name not in closed and name not in chain:
                chain.append(name)
                name = self.resources[name].parent  # type: ignore[assignment]
            closed += reversed(chain)
        return [n for n in self.resources if n in closed]


FILTERS = ("md5_lower", "lower", "escape_quotes", "soql")

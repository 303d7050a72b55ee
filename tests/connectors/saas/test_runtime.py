"""The runtime's parts: the vendor format's errors, templates, paging styles, OAuth2 refresh,
rate-limit headers, and a limit shared by worker processes through Redis."""

from __future__ import annotations

import hashlib
import multiprocessing
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.base import ConnectorContext
from connectors.saas.connector import SaaSConnector
from connectors.saas.loading import known_vendors, parse_definition, vendor_definition
from connectors.saas.paging import render
from connectors.saas.ratelimit import AccountLimiter, storage_url
from connectors.saas.runtime import wait_from_headers
from dsar.datamap.schema import SaaSSystem
from dsar.errors import ConnectorError, DataMapError
from interfaces.demo.emulators.stripe import StripeEmulator
from tests.connectors.saas.acme_emulator import ACME_YAML, AcmeEmulator
from tests.connectors.saas.harness import RecordingSink
from tests.services import REDIS_URL

# -- the format ---------------------------------------------------------------------------------


def test_shipped_vendors_load() -> None:
    assert {"hubspot", "mailchimp", "stripe", "zendesk"} <= set(known_vendors())
    for name in known_vendors():
        assert vendor_definition(name).name == name


@pytest.mark.parametrize(("edit", "line", "says"), [
    (("  notes:\n    parent: users", "  notes:\n    parent: userz"), 25, "unknown parent 'userz'"),
    (("size: 3, total", "size: 0, total"), 30, "greater than or equal to 1"),
    (('"/users/{item.id}"', '"/users/{thing.id}"'), 23, "unknown placeholder {thing.id}"),
    (('{email: "{value}"}', '{email: "{value|sha1}"}'), 12, "unknown filter 'sha1'"),
    (("type: oauth2_client_credentials, token_url: /oauth/token", "type: oauth2"), 4,
     "'bearer', 'basic', 'api_key_header' or 'oauth2_client_credentials'"),
    (("style: link}", "style: link}\n      bogus: 1"), 45, "Extra inputs are not permitted"),
])
def test_a_malformed_vendor_file_names_its_line(edit: tuple[str, str], line: int,
                                                 says: str) -> None:
    text = ACME_YAML.replace(*edit)
    assert text != ACME_YAML
    with pytest.raises(DataMapError) as err:
        parse_definition(text, "acme.yaml")
    assert err.value.problem.startswith(f"acme.yaml:{line}: "), err.value.problem
    assert says in err.value.problem and "docs/saas.md" in (err.value.fix or "")


def test_broken_yaml_names_its_line() -> None:
    with pytest.raises(DataMapError, match=r"^acme\.yaml:3: vendor file is not valid YAML"):
        parse_definition("name: acme\nlabel: [x\nbase_url: y\n", "acme.yaml")


@given(st.text(min_size=1, max_size=40))
def test_a_value_never_adds_a_path_segment(value: str) -> None:
    try:
        path = render("/v1/customers/{value}/payment_methods", {"value": value}, path=True)
    except ValueError:
        assert value.strip() in ("", ".", "..")
        return
    assert path.count("/") == 4 and "?" not in path and "#" not in path


def test_filters() -> None:
    md5 = hashlib.md5(b"ada@example.com").hexdigest()
    assert render("{value|md5_lower}", {"value": " Ada@Example.com"}, path=False) == md5
    assert render("{value|lower}", {"value": "Ada"}, path=False) == "ada"
    assert render("email:'{value|escape_quotes}'", {"value": "o'brien\\x@y"}, path=False) \
        == "email:'o\\'brien\\\\x@y'"
    assert render("/m/{each.id}", {"each": {"id": "a/b"}}, path=True) == "/m/a%2Fb"


@pytest.mark.parametrize(("headers", "wait"), [
    ({"retry-after": "7"}, 7.0),
    ({"retry-after": "Thu, 01 Jan 2037 00:00:10 GMT"}, 10.0),
    ({"x-ratelimit-reset": str(2_114_380_805)}, 5.0),
    ({"ratelimit-reset": "3"}, 3.0),
    ({}, None),
])
def test_wait_headers(headers: dict[str, str], wait: float | None) -> None:
    now = 2_114_380_800.0  # 2037-01-01T00:00:00Z
    assert wait_from_headers(headers, now) == wait


# -- Acme: OAuth2, the other paging styles, phone, anonymise -------------------------------------


@pytest.fixture
def acme(tmp_path: Path) -> Iterator[tuple[AcmeEmulator, SaaSConnector]]:
    emulator = AcmeEmulator()
    url = emulator.start()
    vendor_file = tmp_path / "acme.yaml"
    vendor_file.write_text(ACME_YAML)
    system = SaaSSystem(name="helpdesk", kind="saas", vendor="acme", vendor_file=str(vendor_file),
                        token_env="ACME_SECRET", client_id_env="ACME_CLIENT", base_url_env="U",
                        identities={"email": "email", "phone": "phone"},
                        resources=["users", "notes", "tickets", "events"])
    env = {"ACME_SECRET": "acme-secret", "ACME_CLIENT": "acme-client", "U": url,
           "DSAR_RATE_LIMIT_URL": "memory://"}
    with SaaSConnector(system, ConnectorContext(hash_key=b"k" * 32, environ=env)) as conn:
        yield emulator, conn
    emulator.stop()


def test_every_paging_style_and_oauth2(acme: tuple[AcmeEmulator, SaaSConnector]) -> None:
    emulator, conn = acme
    for _ in range(3):  # three users with the email: two cursor pages
        emulator.add_user("ada@example.com", "+4930123", notes=7, tickets=5, events=5)
    emulator.add_user("bob@example.com", "+4930999")
    sink = RecordingSink()
    result = conn.collect({"email": frozenset({"ada@example.com"})}, sink)
    assert {e.collection: e.found for e in result.evidence} == {
        "users": 3, "notes": 21, "tickets": 15, "events": 15}
    assert len(result.discovered["acme_user_id"]) == 3
    assert emulator.issued == 1  # one token for every call
    emulator.expire_tokens()
    by_phone = conn.count({"phone": frozenset({"+4930999"})})
    assert {e.collection: e.found for e in by_phone.evidence}["users"] == 1
    assert emulator.issued == 2  # renewed once on the 401


def test_anonymise_delete_and_retained(acme: tuple[AcmeEmulator, SaaSConnector]) -> None:
    emulator, conn = acme
    uid = emulator.add_user("ada@example.com", "+4930123")
    keys = {"email": frozenset({"ada@example.com"})}
    result = {e.collection: e for e in conn.erase(keys).evidence}
    assert result["users"].counts == {"anonymise": 1} and result["users"].remaining == 0
    assert result["notes"].deleted == 4 and result["notes"].remaining == 0
    assert result["tickets"].counts == {"erased_with_parent": 3}
    assert result["events"].retained == 5 and result["events"].action == "retain"
    assert emulator.users[uid]["email"] is None and not emulator.tickets[uid]
    assert emulator.users[uid]["name"] == f"anonymous {uid}"  # a template in the JSON body
    writes = [p for m, p in emulator.log if m in ("PATCH", "DELETE")]
    assert len(writes) == 5
    again = conn.erase(keys)
    assert sum(e.deleted for e in again.evidence) == 0


def test_wrong_client_secret_needs_attention(acme: tuple[AcmeEmulator, SaaSConnector]) -> None:
    emulator, conn = acme
    emulator.secret = "rotated"
    with pytest.raises(ConnectorError) as err:
        conn.count({"email": frozenset({"ada@example.com"})})
    assert err.value.code == "saas_refused_credential"
    assert "ACME_CLIENT and ACME_SECRET" in str(err.value)


def test_a_zero_remaining_header_pauses_the_account(
        acme: tuple[AcmeEmulator, SaaSConnector]) -> None:
    emulator, conn = acme
    emulator.add_user("ada@example.com", "+4930123", notes=0, tickets=0, events=0)
    emulator.remaining_header = 0
    started = time.monotonic()
    conn.count({"email": frozenset({"ada@example.com"})})
    assert time.monotonic() - started >= 0.9  # waited for the announced reset


# -- the limit is shared by processes -------------------------------------------------------------


def _worker(url: str, account: str, calls: int) -> None:
    from connectors.saas.definition import RateLimit

    limiter = AccountLimiter(url, account, RateLimit(calls=5, seconds=1))
    for _ in range(calls):
        limiter.acquire()


@pytest.mark.usefixtures("redis_server")
def test_redis_shares_the_limit_between_processes() -> None:
    assert storage_url({"DSAR_BROKER_URL": REDIS_URL}) == REDIS_URL
    assert storage_url({"DSAR_BROKER_URL": "amqp://x"}) == "memory://"
    assert storage_url({"DSAR_RATE_LIMIT_URL": "memory://", "DSAR_BROKER_URL": REDIS_URL}) \
        == "memory://"
    account = f"test:{uuid.uuid4().hex}"
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=_worker, args=(REDIS_URL, account, 6)) for _ in range(2)]
    started = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    # 12 calls at 5 per second: the third batch of five cannot start before 2 s have passed
    # (with one process each, each would have needed a little over 1 s)
    assert time.monotonic() - started >= 2.0


@pytest.mark.usefixtures("redis_server")
def test_a_vendor_retry_after_is_shared(tmp_path: Path) -> None:
    emulator = StripeEmulator("sk_test_pause")
    url = emulator.start()
    try:
        emulator.add_customer("ada@example.com")
        env = {"K": "sk_test_pause", "U": url, "DSAR_RATE_LIMIT_URL": REDIS_URL}
        system = SaaSSystem(name="pay", kind="saas", vendor="stripe", token_env="K",
                            base_url_env="U", resources=["customers"])
        first = SaaSConnector(system, ConnectorContext(hash_key=b"p" * 32, environ=env))
        second = SaaSConnector(system, ConnectorContext(hash_key=b"p" * 32, environ=env))
        first.client.limiter.pause(1.0)  # as a 429 with Retry-After: 1 seen by another worker
        started = time.monotonic()
        second.count({"email": frozenset({"ada@example.com"})})
        assert time.monotonic() - started >= 0.9
        first.close()
        second.close()
    finally:
        emulator.stop()


def test_the_documented_vendor_format_is_valid() -> None:
    import re

    doc = (Path(__file__).resolve().parents[3] / "docs" / "saas.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    definition = parse_definition(blocks[1], "docs/saas.md")
    assert set(definition.resources) == {"users", "notes", "tickets", "events"}
    from dsar.datamap.loader import parse_datamap

    datamap = parse_datamap("systems:\n" + blocks[0], "docs/saas.md")
    vendors = [s.vendor for s in datamap.systems]  # type: ignore[union-attr]
    assert vendors == ["stripe", "mailchimp", "segment"]
    import yaml

    from connectors.saas.definition import Erase

    (job,) = [b for b in blocks if "job:" in b and "regulateId" in b]  # the jobs example
    erase = Erase.model_validate(yaml.safe_load(job)["erase"])
    assert erase.job is not None and erase.job.done == ["FINISHED"]


# -- where the account is, and writes ---------------------------------------------------------


def _base(vendor: str, token: str, **fields: str) -> str:
    from connectors.saas.session import base_url, credentials

    system = SaaSSystem(name="s", kind="saas", vendor=vendor, token_env="T", **fields)
    context = ConnectorContext(hash_key=b"k" * 32, environ={"T": token, "U": "http://u"})
    definition = vendor_definition(vendor)
    return base_url(definition, system, context, credentials(definition, system, context))


def test_the_base_url_per_region() -> None:
    assert _base("mailchimp", "abc-us6") == "https://us6.api.mailchimp.com"
    assert _base("mailchimp", "abc", region="eu1") == "https://eu1.api.mailchimp.com"
    assert _base("mailchimp", "abc-us6", base_url_env="U") == "http://u"
    assert _base("stripe", "sk_test_x") == "https://api.stripe.com"
    with pytest.raises(ConnectorError) as err:
        _base("mailchimp", "abc")
    assert err.value.code == "saas_no_region" and "T" in str(err.value)
    with pytest.raises(ConnectorError):
        _base("mailchimp", "abc", region="us6.evil.example/")


def test_writes_carry_a_stable_idempotency_key() -> None:
    emulator = StripeEmulator("sk_test_idem")
    url = emulator.start()
    seen: list[str] = []
    original = emulator.handle

    def recording(req: Any) -> Any:
        if req.method == "DELETE":
            seen.append(req.headers.get("idempotency-key", ""))
        return original(req)

    emulator.handle = recording  # type: ignore[method-assign]
    try:
        emulator.add_customer("ada@example.com")
        emulator.fail_every = 2  # the delete is retried after a 500
        env = {"K": "sk_test_idem", "U": url, "DSAR_RATE_LIMIT_URL": "memory://"}
        system = SaaSSystem(name="pay", kind="saas", vendor="stripe", token_env="K",
                            base_url_env="U", resources=["customers"])
        with SaaSConnector(system, ConnectorContext(hash_key=b"i" * 32, environ=env),
                           sleep=lambda s: None) as conn:
            result = conn.erase({"email": frozenset({"ada@example.com"})})
        assert result.evidence[0].deleted == 1
        assert len(seen) >= 1 and len(set(seen)) == 1 and len(seen[0]) == 40
    finally:
        emulator.stop()


@given(st.integers(0, 250), st.integers(1, 40),
       st.sampled_from(["starting_after", "offset", "page", "cursor"]))
def test_every_paging_style_visits_each_item_once(n: int, size: int, style: str) -> None:
    from connectors.saas.definition import Paging
    from connectors.saas.paging import Pager

    items = [{"id": f"obj_{k}"} for k in range(n)]
    paging = Paging(style=style, param="p", size_param="limit", size=size,  # type: ignore[arg-type]
                    next="next" if style == "cursor" else None,
                    total="total" if style == "offset" else None)
    pager = Pager(paging, {"email": "a@example.com"})
    seen: list[dict[str, str]] = []
    for _ in range(n + 2):
        params = pager.params
        assert params["email"] == "a@example.com" and params["limit"] == str(size)
        if style == "starting_after":
            ids = [i["id"] for i in items]
            start = ids.index(params["p"]) + 1 if "p" in params else 0
        elif style == "page":
            start = (int(params["p"]) - 1) * size
        else:
            start = int(params.get("p") or 0)
        page = items[start:start + size]
        more = start + size < n
        body = {"has_more": more, "total": n, "next": str(start + size) if more else None}
        seen += page
        if not pager.advance(body, page, None):
            break
    assert seen == items

"""The official Python clients of the second slice's vendors drive their emulators: ``zenpy``
(Zendesk), ``simple-salesforce`` (Salesforce) and ``python-intercom`` (Intercom). What the
clients write, dsar finds and erases; what dsar erased, the clients no longer see."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceResourceNotFound
from zenpy import Zenpy
from zenpy.lib.exception import APIException

from tests.connectors.saas.harness import Harness
from tests.connectors.saas.harness_vendors import HARNESSES

EMAIL = "ada@example.com"


@pytest.fixture
def zendesk(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Harness, Zenpy]]:
    harness = HARNESSES["zendesk"]()
    # zenpy's own switches for a non-Zendesk host (it builds https://<subdomain>.zendesk.com)
    monkeypatch.setenv("ZENPY_FORCE_SCHEME", "http")
    monkeypatch.setenv("ZENPY_FORCE_NETLOC", harness.url.removeprefix("http://"))
    client = Zenpy(subdomain="example", email="ops@example.com", token=harness.token)
    client.disable_caching()  # every read goes to the emulator
    yield harness, client
    harness.emulator.stop()


def test_zenpy_searches_lists_and_deletes_for_good(zendesk: tuple[Harness, Zenpy]) -> None:
    harness, client = zendesk
    uid = harness.emulator.add_user("Ada@Example.com", tickets=3)
    harness.emulator.add_user("max@example.com", tickets=1)
    found = list(client.users.search(query='email:"ada@example.com"'))
    assert [u.id for u in found] == [uid] and found[0].email == "Ada@Example.com"
    user = client.users(id=uid)
    assert user.name == "Jenny Rosen" and user.active
    tickets = list(client.users.requested(user))
    assert len(tickets) == 3 and {t.requester_id for t in tickets} == {uid}
    with harness.connector() as conn:
        result = conn.erase({"email": frozenset({EMAIL})})
    assert {e.collection: e.deleted for e in result.evidence} == {"users": 1, "tickets": 3}
    assert list(client.users.search(query='email:"ada@example.com"')) == []
    with pytest.raises(APIException):
        client.users(id=uid)


def test_zenpy_deletes_in_two_steps_as_dsar_does(zendesk: tuple[Harness, Zenpy]) -> None:
    harness, client = zendesk
    uid = harness.emulator.add_user(EMAIL, tickets=1)
    user = client.users(id=uid)
    client.users.delete(user)  # soft: out of search, in deleted users
    assert harness.emulator.users[uid]["active"] is False
    assert list(client.users.search(query=f'email:"{EMAIL}"')) == []
    client.users.permanently_delete(user)
    assert uid in harness.emulator.purged
    with harness.connector() as conn:  # the ticket is left: dsar finds no user, so none
        result = conn.count({"email": frozenset({EMAIL})})
    assert {e.collection: e.found for e in result.evidence} == {"users": 0, "tickets": 0}


def test_zenpy_sees_a_refused_token(zendesk: tuple[Harness, Zenpy]) -> None:
    harness, client = zendesk
    harness.emulator.refuse = True
    with pytest.raises(APIException) as err:
        list(client.users.search(query=f'email:"{EMAIL}"'))
    assert err.value.response.status_code == 401


@pytest.fixture
def salesforce() -> Iterator[tuple[Harness, Salesforce]]:
    harness = HARNESSES["salesforce"]()
    em = harness.emulator
    token = em.handle(_token_request(em.client_id, em.secret))[1]["access_token"]
    client = Salesforce(instance_url=f"https://{INSTANCE}", session_id=token, version="62.0",
                        session=_ToEmulator(harness.url))
    yield harness, client
    harness.emulator.stop()


INSTANCE = "example.my.salesforce.com"


class _ToEmulator(requests.Session):
    """simple-salesforce builds https:// URLs on the org's host (also from nextRecordsUrl):
    the one place a test can point it at the emulator is the HTTP session."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def request(self, method: str, url: str, *args: Any, **kw: Any) -> requests.Response:
        return super().request(method, url.replace(f"https://{INSTANCE}", self.url), *args,
                               **kw)


def _token_request(client_id: str, secret: str) -> object:
    from urllib.parse import urlencode

    from interfaces.demo.emulators.server import Req

    body = urlencode({"grant_type": "client_credentials", "client_id": client_id,
                      "client_secret": secret}).encode()
    return Req("POST", "/services/oauth2/token", {}, {}, body)


def test_simple_salesforce_queries_pages_and_deletes(
        salesforce: tuple[Harness, Salesforce]) -> None:
    harness, client = salesforce
    harness.emulator.batch = 50
    cid = harness.emulator.add_contact("Ada@Example.com", cases=120)
    harness.emulator.add_contact("max@example.com", cases=1)
    got = client.query(f"SELECT Id, Email FROM Contact WHERE Email = '{EMAIL}'")
    assert got["totalSize"] == 1 and got["records"][0]["Id"] == cid
    cases = client.query_all(f"SELECT Id, Subject FROM Case WHERE ContactId = '{cid}'")
    assert len(cases["records"]) == 120  # followed nextRecordsUrl twice
    assert client.Contact.get(cid)["Email"] == "Ada@Example.com"
    with harness.connector() as conn:
        result = conn.erase({"email": frozenset({EMAIL})})
    assert {e.collection: e.deleted for e in result.evidence} == {
        "contacts": 1, "leads": 1, "cases": 120}
    assert client.query(f"SELECT Id FROM Contact WHERE Email = '{EMAIL}'")["totalSize"] == 0
    with pytest.raises(SalesforceResourceNotFound) as err:
        client.Contact.get(cid)
    assert err.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"
    assert client.query("SELECT Id FROM Contact WHERE Email = 'max@example.com'")[
        "totalSize"] == 1


def test_simple_salesforce_deletes_as_dsar_does(salesforce: tuple[Harness, Salesforce]) -> None:
    harness, client = salesforce
    cid = harness.emulator.add_contact(EMAIL, cases=0, lead=False)
    assert client.Contact.delete(cid) == 204
    with harness.connector() as conn:
        result = conn.count({"email": frozenset({EMAIL})})
    assert {e.collection: e.found for e in result.evidence}["contacts"] == 0


def test_intercom_client_searches_pages_and_deletes() -> None:
    from intercom import Intercom, SingleFilterSearchRequest, StartingAfterPaging
    from intercom.core.api_error import ApiError

    harness = HARNESSES["intercom"]()
    em = harness.emulator
    try:
        client = Intercom(token=harness.token, base_url=harness.url)
        cid = em.add_contact("Ada@Example.com", conversations=5)
        em.add_contact("max@example.com", conversations=1)
        by_email = SingleFilterSearchRequest(field="email", operator="=", value=EMAIL)
        assert [c.id for c in client.contacts.search(query=by_email)] == [cid]
        assert client.contacts.find(contact_id=cid).email == "Ada@Example.com"
        # python-intercom 5.0.1's pager resends the first page's request (it drops the
        # cursor), so the pages are followed here as the API documents
        ids, after = [], None
        for _ in range(5):
            page = client.conversations.search(
                query=SingleFilterSearchRequest(field="contact_ids", operator="=", value=cid),
                pagination=StartingAfterPaging(per_page=2, starting_after=after)).response
            ids += [c.id for c in page.conversations]
            after = page.pages.next.starting_after if page.pages.next else None
            if after is None:
                break
        assert len(set(ids)) == 5 and sum(p == "/conversations/search" for _, p in em.log) == 3
        with harness.connector() as conn:
            result = conn.erase({"email": frozenset({EMAIL})})
        assert {e.collection: e.deleted for e in result.evidence} == {
            "contacts": 1, "conversations": 5}
        assert list(client.contacts.search(query=by_email)) == []
        with pytest.raises(ApiError) as err:
            client.contacts.find(contact_id=cid)
        assert err.value.status_code == 404
        em.refuse = True
        with pytest.raises(ApiError) as err:
            client.contacts.find(contact_id=cid)
        assert err.value.status_code == 401
    finally:
        em.stop()

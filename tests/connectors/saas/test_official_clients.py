"""The vendors' own Python clients drive the emulators: the emulators speak what real clients
speak (paths, encodings, auth, payload and error shapes), and dsar sees what they wrote."""

from __future__ import annotations

from collections.abc import Iterator

import mailchimp_marketing
import pytest
import stripe
from mailchimp_marketing.api_client import ApiClientError

from connectors.base import ConnectorContext
from connectors.saas.connector import SaaSConnector
from dsar.datamap.schema import SaaSSystem
from interfaces.demo.emulators.mailchimp import MailchimpEmulator, subscriber_hash
from interfaces.demo.emulators.stripe import StripeEmulator

KEY = "sk_test_official"
MC_KEY = "ffeeddccbbaa99887766554433221100-us6"


@pytest.fixture
def stripe_api() -> Iterator[tuple[StripeEmulator, stripe.StripeClient]]:
    emulator = StripeEmulator(KEY)
    url = emulator.start()
    client = stripe.StripeClient(KEY, base_addresses={"api": url}, max_network_retries=0)
    yield emulator, client
    emulator.stop()


def test_stripe_client_lists_searches_and_deletes(
        stripe_api: tuple[StripeEmulator, stripe.StripeClient]) -> None:
    emulator, client = stripe_api
    created = client.v1.customers.create(params={"email": "ada@example.com", "name": "Ada"})
    assert created.id.startswith("cus_") and created.email == "ada@example.com"
    for i in range(3):
        client.v1.customers.create(params={"email": f"n{i}@example.com"})
    listed = client.v1.customers.list(params={"email": "ada@example.com"})
    assert [c.id for c in listed.data] == [created.id] and listed.has_more is False
    pages = client.v1.customers.list(params={"limit": 2})
    assert len(pages.data) == 2 and pages.has_more
    assert len(list(pages.auto_paging_iter())) == 4  # follows starting_after
    found = client.v1.customers.search(params={"query": "email:'ADA@example.com'"})
    assert [c.id for c in found.data] == [created.id]
    gone = client.v1.customers.delete(created.id)
    assert gone.deleted is True
    assert client.v1.customers.retrieve(created.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.delete(created.id)
    assert err.value.http_status == 404 and err.value.code == "resource_missing"
    assert created.id in emulator.deleted


def test_stripe_client_sees_a_refused_key_and_rate_limits(
        stripe_api: tuple[StripeEmulator, stripe.StripeClient]) -> None:
    emulator, client = stripe_api
    emulator.refuse = True
    with pytest.raises(stripe.AuthenticationError):
        client.v1.customers.list()
    emulator.refuse, emulator.rate_limit = False, (1, 60.0)
    client.v1.customers.list()
    with pytest.raises(stripe.RateLimitError):
        client.v1.customers.list()


def test_what_the_stripe_client_wrote_dsar_erases(
        stripe_api: tuple[StripeEmulator, stripe.StripeClient]) -> None:
    emulator, client = stripe_api
    created = client.v1.customers.create(params={"email": "ada@example.com"})
    url = f"http://127.0.0.1:{emulator._server.server_address[1]}"  # type: ignore[union-attr]
    system = SaaSSystem(name="pay", kind="saas", vendor="stripe", token_env="K",
                        base_url_env="U", resources=["customers"])
    context = ConnectorContext(hash_key=b"k" * 32,
                               environ={"K": KEY, "U": url, "DSAR_RATE_LIMIT_URL": "memory://"})
    with SaaSConnector(system, context) as conn:
        result = conn.erase({"email": frozenset({"ada@example.com"})})
    assert result.evidence[0].deleted == 1
    assert client.v1.customers.retrieve(created.id).deleted is True


@pytest.fixture
def mailchimp() -> Iterator[tuple[MailchimpEmulator, mailchimp_marketing.Client]]:
    emulator = MailchimpEmulator(MC_KEY)
    url = emulator.start()
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": MC_KEY, "server": "us6"})
    client.api_client.host = f"{url}/3.0"
    yield emulator, client
    emulator.stop()


def test_mailchimp_client_reads_and_deletes_permanently(
        mailchimp: tuple[MailchimpEmulator, mailchimp_marketing.Client]) -> None:
    emulator, client = mailchimp
    assert client.ping.get() == {"health_status": "Everything's Chimpy!"}
    list_id = emulator.add_list("Newsletter")
    member = client.lists.add_list_member(list_id, {"email_address": "Ada@Example.com",
                                                    "status": "subscribed"})
    h = subscriber_hash("ada@example.com")
    assert member["id"] == h
    assert client.lists.get_list_member(list_id, h)["email_address"] == "Ada@Example.com"
    lists = client.lists.get_all_lists(count=10, offset=0)
    assert lists["total_items"] == 1 and lists["lists"][0]["id"] == list_id
    assert client.lists.get_list_member_activity(list_id, h)["email_id"] == h
    client.lists.delete_list_member_permanent(list_id, h)
    with pytest.raises(ApiClientError) as err:
        client.lists.get_list_member(list_id, h)
    assert err.value.status_code == 404
    with pytest.raises(ApiClientError) as err:  # a forgotten member cannot be re-imported
        client.lists.add_list_member(list_id, {"email_address": "ada@example.com",
                                               "status": "subscribed"})
    assert err.value.status_code == 400


def test_mailchimp_client_sees_a_refused_key(
        mailchimp: tuple[MailchimpEmulator, mailchimp_marketing.Client]) -> None:
    emulator, client = mailchimp
    emulator.refuse = True
    with pytest.raises(ApiClientError) as err:
        client.ping.get()
    assert err.value.status_code == 401


def test_hubspot_client_reads_searches_and_gdpr_deletes() -> None:
    from hubspot import HubSpot
    from hubspot.crm.contacts import (
        ApiException,
        PublicGdprDeleteInput,
        PublicObjectSearchRequest,
        SimplePublicObjectInputForCreate,
    )

    from tests.connectors.saas.hubspot_emulator import HubSpotEmulator

    emulator = HubSpotEmulator("pat-eu1-official")
    url = emulator.start()
    try:
        client = HubSpot(access_token="pat-eu1-official", host=url)
        contacts = client.crm.contacts
        made = contacts.basic_api.create(SimplePublicObjectInputForCreate(
            properties={"email": "Ada@Example.com", "phone": "+4930123"}))
        got = contacts.basic_api.get_by_id(contact_id="ada@example.com", id_property="email",
                                           properties=["email", "phone"])
        assert got.id == made.id and got.properties["email"] == "ada@example.com"
        found = contacts.search_api.do_search(public_object_search_request=(
            PublicObjectSearchRequest(filter_groups=[{"filters": [
                {"propertyName": "phone", "operator": "EQ", "value": "+4930123"}]}])))
        assert [c.id for c in found.results] == [made.id]
        contacts.basic_api.purge(public_gdpr_delete_input=PublicGdprDeleteInput(
            object_id=made.id))
        with pytest.raises(ApiException) as err:
            contacts.basic_api.get_by_id(contact_id=made.id)
        assert err.value.status == 404
        with pytest.raises(ApiException) as err:  # the address is blocklisted
            contacts.basic_api.create(SimplePublicObjectInputForCreate(
                properties={"email": "ada@example.com"}))
        assert err.value.status == 400
        emulator.refuse = True
        with pytest.raises(ApiException) as err:
            contacts.basic_api.get_page()
        assert err.value.status == 401
    finally:
        emulator.stop()

"""Identities: validation and normalisation of emails, phone numbers and named identifiers."""

from __future__ import annotations

import contextlib

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.provisional import domains

from dsar.errors import InvalidInput
from dsar.identities import (
    Identity,
    normalise_email,
    normalise_phone,
    parse_identities,
    parse_named_id,
    subject_keys,
)

# -- examples ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("jane@example.com", "jane@example.com"),
    ("  Jane.Doe@Example.COM \n", "jane.doe@example.com"),
    ("JANE+tag@EXAMPLE.co.uk", "jane+tag@example.co.uk"),
    ("user@bücher.de", "user@xn--bcher-kva.de"),
    ("user@BÜCHER.de", "user@xn--bcher-kva.de"),
    ("user@xn--bcher-kva.de", "user@xn--bcher-kva.de"),
])
def test_email_normalised(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected


@pytest.mark.parametrize("raw", [
    "", "   ", "jane", "jane@", "@example.com", "jane@@example.com", "jane@example",
    "jane doe@example.com", "jane@exa mple.com", "jane..doe@example.com", "jane@-example.com",
    "a" * 300 + "@example.com",
])
def test_malformed_email_refused_with_fix(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        normalise_email(raw)
    assert repr(raw) in err.value.problem
    assert "not a valid email address" in err.value.problem
    assert err.value.fix == "give the address as name@example.com"


@pytest.mark.parametrize(("raw", "expected"), [
    ("+4930123456", "+4930123456"),
    ("+49 30 123456", "+4930123456"),
    ("  +49 (30) 123-456 ", "+4930123456"),
    ("004930123456", "+4930123456"),
    ("+1 650-253-0000", "+16502530000"),
    ("+44 20 7946 0958", "+442079460958"),
])
def test_phone_normalised_to_e164(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


def test_phone_without_country_code_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        normalise_phone("030 123456")
    assert "no country code" in err.value.problem
    assert "+4930123456" in (err.value.fix or "")


@pytest.mark.parametrize("raw", ["+49", "+49 1", "+999 123456", "+1 555", "+abc", "00", "+",
                                 "+49 30 12345678901234567890"])
def test_malformed_phone_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        normalise_phone(raw)
    assert repr(raw) in err.value.problem
    assert "country code" in (err.value.fix or "")


@pytest.mark.parametrize(("raw", "name", "value"), [
    ("customer_id=42", "customer_id", "42"),
    ("  customer_id =  42 ", "customer_id", "42"),
    ("account=a=b", "account", "a=b"),
    ("u=Jane Doe", "u", "Jane Doe"),
    ("x9_=ü", "x9_", "ü"),
])
def test_named_identifier_parsed(raw: str, name: str, value: str) -> None:
    assert parse_named_id(raw) == Identity("id", name, value)


@pytest.mark.parametrize(("raw", "words"), [
    ("customer_id", "has no value"),
    ("customer_id=", "has no value"),
    ("customer_id=   ", "has no value"),
    ("=42", "not usable"),
    ("Customer=42", "not usable"),
    ("9lives=1", "not usable"),
    ("customer-id=1", "not usable"),
    ("email=jane@example.com", "not usable"),
    ("phone=+4930123456", "not usable"),
    ("c" * 64 + "=1", "not usable"),
    ("customer_id=" + "9" * 257, "too long"),
    ("customer_id=4\x002", "control characters"),
    ("customer_id=4\x7f2", "control characters"),
    ("customer_id=4\x852", "control characters"),
    ("customer_id=4\udcff", "control characters"),
])
def test_bad_named_identifier_refused(raw: str, words: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_named_id(raw)
    assert words in err.value.problem
    assert err.value.fix


def test_parse_identities_needs_one() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_identities()
    assert "at least one identity" in err.value.problem
    assert "--email" in (err.value.fix or "")


def test_parse_identities_normalises_dedups_and_sorts() -> None:
    found = parse_identities(
        emails=["Jane@Example.com", " jane@example.COM"],
        phones=["+49 30 123456", "004930123456"],
        ids=["customer_id=42", "customer_id = 42", "account=7"],
    )
    assert found == [
        Identity("email", "email", "jane@example.com"),
        Identity("id", "account", "7"),
        Identity("id", "customer_id", "42"),
        Identity("phone", "phone", "+4930123456"),
    ]
    assert subject_keys(found) == {
        "email": frozenset({"jane@example.com"}), "account": frozenset({"7"}),
        "customer_id": frozenset({"42"}), "phone": frozenset({"+4930123456"}),
    }


def test_masked_hides_the_value() -> None:
    assert Identity("email", "email", "jane@example.com").masked() == "j***@example.com"
    assert Identity("phone", "phone", "+4930123456").masked() == "+49***56"
    assert Identity("id", "customer_id", "4242").masked() == "customer_id=4***"
    assert Identity("id", "customer_id", "4").masked() == "customer_id=*"


# -- properties --------------------------------------------------------------------------------

# Domains email-validator accepts (no special-use names such as .local or .test).
valid_emails = st.emails(domains=domains()).filter(lambda e: _is_valid_email(e))


def _is_valid_email(email: str) -> bool:
    try:
        normalise_email(email)
    except InvalidInput:
        return False
    return True


whitespace = st.text(alphabet=" \t\r\n", max_size=3)


@settings(max_examples=100, suppress_health_check=[HealthCheck.filter_too_much])
@given(valid_emails, st.data(), whitespace, whitespace)
def test_email_case_and_whitespace_do_not_matter(email: str, data: st.DataObject, before: str,
                                                 after: str) -> None:
    flips = data.draw(st.lists(st.booleans(), min_size=len(email), max_size=len(email)))
    variant = "".join(c.swapcase() if flip else c for c, flip in zip(email, flips, strict=True))
    assert normalise_email(before + variant + after) == normalise_email(email)
    assert normalise_email(email) == email.lower()


@settings(max_examples=100, suppress_health_check=[HealthCheck.filter_too_much])
@given(valid_emails)
def test_email_normalisation_idempotent(email: str) -> None:
    once = normalise_email(email)
    assert normalise_email(once) == once
    assert once == once.strip().lower()


unicode_local = st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=20)


@settings(max_examples=200)
@given(unicode_local, st.sampled_from(["example.com", "bücher.de", "ÉCOLE.fr", "例え.jp"]))
def test_internationalised_email_normalisation_idempotent(local: str, domain: str) -> None:
    try:
        once = normalise_email(f"{local}@{domain}")
    except InvalidInput:
        assume(False)
    assert normalise_email(once) == once
    assert normalise_email(once.upper()) == once or not once.isascii()


PHONE_TYPES = [phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
               phonenumbers.PhoneNumberType.TOLL_FREE, phonenumbers.PhoneNumberType.VOIP]
EXAMPLE_NUMBERS = sorted({
    phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
    for region in phonenumbers.SUPPORTED_REGIONS
    for kind in PHONE_TYPES
    if (n := phonenumbers.example_number_for_type(region, kind)) is not None
    and phonenumbers.is_valid_number(n)
})


def test_example_numbers_cover_many_regions() -> None:
    assert len(EXAMPLE_NUMBERS) > 400


@settings(max_examples=200)
@given(st.sampled_from(EXAMPLE_NUMBERS),
       st.sampled_from(["e164", "international", "00", "spaced"]), whitespace, whitespace)
def test_phone_normalisation_idempotent(e164: str, form: str, before: str, after: str) -> None:
    number = phonenumbers.parse(e164, None)
    text = {
        "e164": e164,
        "international": phonenumbers.format_number(
            number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        "00": "00" + e164[1:],
        "spaced": " ".join(e164),
    }[form]
    once = normalise_phone(before + text + after)
    assert once == e164
    assert normalise_phone(once) == once


# Any code point, lone surrogates included: an undecodable byte in argv arrives as one.
any_text = st.text(st.characters(exclude_categories=[]))


@settings(max_examples=500)
@given(any_text)
def test_random_text_raises_only_invalid_input(text: str) -> None:
    for parse in (normalise_email, normalise_phone, parse_named_id):
        try:
            result = parse(text)
        except InvalidInput as err:
            assert err.problem and err.fix
        else:
            value = result.value if isinstance(result, Identity) else result
            value.encode("utf-8")  # storable: the value is encrypted as UTF-8


@settings(max_examples=300)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_@.+=- \t", max_size=40))
def test_near_miss_text_raises_only_invalid_input(text: str) -> None:
    for parse in (normalise_email, normalise_phone, parse_named_id):
        with contextlib.suppress(InvalidInput):
            parse(text)


names = st.from_regex(r"\A[a-z][a-z0-9_]{0,62}\Z").filter(lambda n: n not in {"email", "phone"})
values = st.text(alphabet=st.characters(exclude_categories=["Cc", "Cs"]), min_size=1,
                 max_size=256).filter(lambda v: v.strip() == v and v != "")


@settings(max_examples=150)
@given(names, values, whitespace, whitespace)
def test_named_id_round_trip(name: str, value: str, before: str, after: str) -> None:
    parsed = parse_named_id(f"{before}{name}{after}={before}{value}{after}")
    assert parsed == Identity("id", name, value)
    assert parse_named_id(f"{parsed.name}={parsed.value}") == parsed
    assert parse_identities(ids=[f"{name}={value}"]) == [parsed]

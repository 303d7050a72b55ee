"""The demo company's SaaS accounts: Stripe (payments) and Mailchimp (newsletter), each on a
local emulator (:mod:`interfaces.demo.emulators`) that the demo starts on 127.0.0.1 and stops.

Both hold a few customers from the shop, the data subject among them, so a request reaches the
database, the bucket and the two vendors together. The API keys are made up for the emulators.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from interfaces.demo.emulators.mailchimp import MailchimpEmulator
from interfaces.demo.emulators.stripe import StripeEmulator

STRIPE_KEY = "sk_test_northwind_demo"
MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us6"
AUDIENCES = ("Northwind newsletter", "Northwind product news")


@dataclass(frozen=True)
class SaaSEndpoints:
    stripe: str
    mailchimp: str

    def environment(self) -> dict[str, str]:
        """The variables the demo data map names (``base_url_env`` and ``token_env``)."""
        return {"DSAR_DEMO_STRIPE_URL": self.stripe, "DSAR_DEMO_STRIPE_KEY": STRIPE_KEY,
                "DSAR_DEMO_MAILCHIMP_URL": self.mailchimp,
                "DSAR_DEMO_MAILCHIMP_KEY": MAILCHIMP_KEY}


@contextmanager
def saas_emulators(people: list[dict], customers: int = 5) -> Iterator[SaaSEndpoints]:
    """Start Stripe and Mailchimp emulators holding the first ``customers`` of ``people``
    (the subject is the first); stopped on exit."""
    stripe, mailchimp = StripeEmulator(STRIPE_KEY), MailchimpEmulator(MAILCHIMP_KEY)
    for i, person in enumerate(people[:customers]):
        name = f"{person['first_name']} {person['last_name']}"
        stripe.add_customer(person["email"], name, charges=2 + i % 2)
    lists = [mailchimp.add_list(name) for name in AUDIENCES]
    for i, person in enumerate(people[:customers]):
        for list_id in lists[: 1 + (i == 0)]:
            mailchimp.add_member(list_id, person["email"], events=2)
    with ExitStack() as stack:
        for emulator in (stripe, mailchimp):
            stack.callback(emulator.stop)
        yield SaaSEndpoints(stripe.start(), mailchimp.start())

"""Local emulators of SaaS vendor APIs (Stripe, Mailchimp) over real HTTP on 127.0.0.1.

They live in the package, not under tests/, because ``dsar demo`` starts them itself; the
SaaS tests (tests/connectors/saas/) drive the same emulators. :mod:`.server` is the shared
HTTP server with rate limits and fault injection; :mod:`.stripe` and :mod:`.mailchimp` follow the
vendors' documented endpoints, payloads and errors for what dsar uses.
"""

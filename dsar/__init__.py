"""dsar: GDPR subject-rights automation.

The domain package: requests and their lifecycle, legal regimes and deadlines, identities, the
data map and planning, evidence and completion records, persistence and settings.
"""

__version__ = "0.1.0"

"""SaaS connectors: vendor definitions (YAML) interpreted by one HTTP runtime on httpx.

:mod:`~connectors.saas.definition` is the format, :mod:`~connectors.saas.runtime` the HTTP
interpreter (retries, rate limits, error mapping), :mod:`~connectors.saas.connector` the
``kind: saas`` connector. Vendors ship as ``vendors/<name>.yaml``; docs/saas.md documents them.
"""

from connectors.saas.connector import SaaSConnector
from connectors.saas.definition import known_vendors, vendor_definition

__all__ = ["SaaSConnector", "known_vendors", "vendor_definition"]

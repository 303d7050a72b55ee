"""SaaS connectors: vendor definitions (YAML) interpreted by one HTTP runtime on httpx.

:mod:`~connectors.saas.definition` is the format (read by :mod:`~connectors.saas.loading`),
:mod:`~connectors.saas.runtime` the HTTP interpreter (retries, rate limits, error mapping),
:mod:`~connectors.saas.connector` the ``kind: saas`` connector, :mod:`~connectors.saas.jobs`
the erasures a vendor finishes later. Vendors ship as ``vendors/<name>.yaml``; docs/saas.md
documents them.
"""

from connectors.saas.connector import SaaSConnector
from connectors.saas.loading import known_vendors, vendor_definition

__all__ = ["SaaSConnector", "known_vendors", "vendor_definition"]

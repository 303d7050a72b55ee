"""The OpenAPI 3.1 document of ``/api/v1``, served at ``/api/v1/openapi.json``.

Written out here rather than generated, so the contract is read in one place; the request
body's schema comes from the pydantic model the API validates with, so the two cannot drift.
``tests/interfaces/portal/test_portal_api_schema.py`` runs schemathesis against the app with it.
"""

from __future__ import annotations

from typing import Any

from interfaces.portal.places import PLACES

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": PROBLEM}}}


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


COMMON = {"401": _problem("no token, or a token that is unknown or revoked"),
          "429": _problem("too many calls with this token; wait and try again")}
REQUEST_ID = {"name": "request_id", "in": "path", "required": True,
              "schema": {"type": "string", "pattern": "^dsr_[0-9a-f]{12}$"}}


def document(new_request_schema: dict[str, Any]) -> dict[str, Any]:
    """The whole document; ``new_request_schema`` is the JSON Schema of the intake body."""
    new_request_schema = {**new_request_schema}
    new_request_schema["properties"] = {**new_request_schema["properties"]}
    new_request_schema["properties"]["place"] = {
        **new_request_schema["properties"]["place"],
        "enum": [p.code for p in PLACES] + ["other"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "dsar subject-rights API", "version": "1",
                 "description": "Authorised agents file GDPR/CCPA requests for the people they "
                                "act for, follow them and fetch the data. The person confirms "
                                "their email address before any work starts, as on the web "
                                "form. Tokens are issued by the privacy team "
                                "(`dsar agents issue NAME`)."},
        "servers": [{"url": "/"}],
        "security": [{"agentToken": []}],
        "paths": {
            "/api/v1/requests": {"post": {
                "operationId": "fileRequest",
                "summary": "File a request for a person",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/NewRequest"}}}},
                "responses": {
                    "201": {**_json("filed; the person is emailed to confirm it", "Request"),
                            "headers": {"Location": {"schema": {"type": "string"}}}},
                    "400": _problem("the body is not a JSON object"),
                    "413": _problem("the body is larger than 16 KiB"),
                    "415": _problem("the body is not application/json"),
                    "422": _problem("a field is missing or wrong; `errors` names each one"),
                    "503": _problem("the data map cannot find people by email yet"),
                    **COMMON}}},
            "/api/v1/requests/{request_id}": {"get": {
                "operationId": "getRequest",
                "summary": "Where a request this agent filed stands",
                "parameters": [REQUEST_ID],
                "responses": {"200": _json("the request", "Request"),
                              "404": _problem("no request with this id filed by this agent"),
                              **COMMON}}},
            "/api/v1/requests/{request_id}/download-links": {"post": {
                "operationId": "issueDownloadLink",
                "summary": "A new download link for a completed access or export request",
                "parameters": [REQUEST_ID],
                "responses": {"201": _json("a link, on the request's audit trail", "Link"),
                              "404": _problem("no request with this id filed by this agent"),
                              "409": _problem("nothing to download (yet): see the state"),
                              **COMMON}}},
        },
        "components": {
            "securitySchemes": {"agentToken": {"type": "http", "scheme": "bearer",
                                               "description": "dsar_agent_… token"}},
            "schemas": {
                "NewRequest": new_request_schema,
                "Request": {"type": "object", "additionalProperties": False,
                            "required": ["request_id", "kind", "regime", "state", "received_at",
                                         "due", "completed_at", "download_available"],
                            "properties": {
                                "request_id": {"type": "string"},
                                "kind": {"enum": ["access", "export", "erasure"]},
                                "regime": {"type": "string"},
                                "state": {"type": "string"},
                                "received_at": {"type": "string", "format": "date-time"},
                                "due": {"type": "string", "format": "date"},
                                "completed_at": {"type": ["string", "null"],
                                                 "format": "date-time"},
                                "download_available": {"type": "boolean"}}},
                "Link": {"type": "object", "additionalProperties": False,
                         "required": ["url", "expires_at"],
                         "properties": {"url": {"type": "string"},
                                        "expires_at": {"type": "string", "format": "date-time"}}},
                "Problem": {"type": "object", "required": ["title", "status", "detail"],
                            "properties": {
                                "type": {"type": "string"}, "title": {"type": "string"},
                                "status": {"type": "integer"}, "detail": {"type": "string"},
                                "errors": {"type": "object",
                                           "additionalProperties": {"type": "string"}}}},
            },
        },
    }

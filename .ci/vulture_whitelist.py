"""Names vulture cannot see used: called by a framework, by the standard library, by name
(dataclass and pydantic fields read through ``asdict`` / ``model_dump`` / templates), or only
by the tests. ``.ci/run`` passes this file to vulture with the packages (see [tool.vulture]
in pyproject.toml). Click commands, Dramatiq actors, routes and pydantic validators need no
entry: their decorators are in ``ignore_decorators`` there.

Before adding a name, check that it is really used; if it is not, delete it instead.
"""
# ruff: noqa: B018
# mypy: ignore-errors

_ = object()

# Dramatiq middleware hooks (dramatiq.Middleware calls them by name).
_.after_worker_boot
_.before_worker_shutdown
_.before_process_message
_.after_skip_message
# Dramatiq's command line calls workflows.entry:setup by name; a test's fault hook module,
# imported into each worker process (`dsar worker --test-hook`), reaches the App with app_of.
_.setup
_.app_of

# Standard library hooks: http.server handlers, io.RawIOBase, context managers, yaml.
_.do_DELETE
_.do_PATCH
_.do_POST
_.do_PUT
_.log_message
_.protocol_version
_.disable_nagle_algorithm
_.daemon_threads
_.readable
_.readinto
_.seekable
_.exc_type
_.tb
_.flow_style

# The built-in system kinds, loaded by name from the `dsar.kinds` entry points in pyproject.toml.
_.SqlKind
_.S3Kind
_.SaaSKind

# click.Group hook; a rich Console attribute set for its renderer.
_.format_commands
_._width

# SQLAlchemy: TypeDecorator hooks, event-listener signatures, connection options.
_.impl
_.cache_ok
_.process_bind_param
_.process_result_value
_.parameters
_.executemany
_.isolation_level

# pika connection parameters, set by attribute.
_.socket_timeout
_.blocked_connection_timeout
_.connection_attempts
_.retry_delay

# pydantic model configuration.
_.model_config

# Fields read by name: evidence and task results (asdict), ORM columns, settings shown by
# `dsar config`, data-map fields rendered into notices, portal status fields used by templates.
_.duration_ms
_.row_bytes
_.recorded_at
_.issued_via
_.joined_at
_.task_lease_seconds
_.lost_message_seconds
_.retention_sweep_seconds
_.orphan_sweep_seconds
_.partial_sweep_seconds
_.rate_limit_url
_.safeguards
_.dpo
_.supervisory_authority
_.supervisory_authority_url
_.keep_records_months
_.external_keys
_.state_words
_.download_url
_.download_until
_.record_url
_.retained
_.retained_period
_.finished_at
_.customer_id
_.contact
_.docs
_.article
_.pause_basis

# Read only by the tests: counters the tests assert on, and helpers kept as the public way to
# read what dsar writes (an export bundle, a presigned link, a plan's steps, a Fides map).
# Candidates for the next dead-code pass: move into tests/ what only the tests need.
_.bytes_read
_.groups_skipped
_.waited
_.dispose_all
_.json_row
_.load_data
_.csv_rows
_.check_manifest
_.presigned_url
_.import_fides_map
_.steps_for

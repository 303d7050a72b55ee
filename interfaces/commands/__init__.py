"""Click commands, grouped by topic; ``cli.py`` assembles them into ``dsar``."""

"""``dsar demo``: a sample company, its data map, and three requests run end to end."""

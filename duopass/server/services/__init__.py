"""The service layer: one unit of work per command, in the caller's transaction."""

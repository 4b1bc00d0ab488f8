"""The `duopass` command: the edge where files, images and the clock are read."""

__all__: list[str] = []

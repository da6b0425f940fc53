"""astrlite: AstrBot's developer Open API in one small, dependable server."""

__version__ = "0.1.0"

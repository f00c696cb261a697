"""hobguard host side: the command line, the MQTT bridge, deployment tools."""

from hobguard_fw import VERSION as __version__

__all__ = ["__version__"]

"""hobguard host side: the command line, the MQTT bridge, deployment tools."""

__version__ = "0.1.0"

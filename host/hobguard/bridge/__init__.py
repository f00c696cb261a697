"""The bridge: the service that connects hobguard devices to an MQTT broker
and Home Assistant (`hobguard bridge`). What runs in production is here and
only here; the user tools (hobguard.tools) and the simulator build on it,
never the other way round. Its imports stay within the runtime
dependencies (paho-mqtt, pyserial, hobguard_fw): no simulator, no plotting,
no embedded broker.

- service.py      Bridge: MQTT messages → device commands, device frames →
                  MQTT, one DeviceView per device served
- commands.py     which MQTT topics are commands and what each takes (pure)
- state.py        device frames → the published states and events (pure)
- announce.py     re-announcing discovery and states off the command path
- discovery.py    Home Assistant discovery, one table of entities
- device_link.py  one link per device connection: identity, requests,
                  replies, offline detection; transports (serial, any
                  pyserial-shaped port)
- edge.py         what a device may say, checked where it enters
- netlink.py      the network transport (authenticated TCP) and key files
- mqtt.py         the MQTT 5 client: reconnects, refuses unpublishable topics
- config.py       defaults, TOML file, environment, command line → BridgeConfig
- main.py         the `hobguard bridge` command

docs/architecture.md draws the map; docs/contract.md is the MQTT contract.
"""

from .service import Bridge

__all__ = ["Bridge"]

"""Old import path of hobguard.bridge.netlink, kept for the simulator's
command line and its tests until they import the new one."""

from .bridge.netlink import *  # noqa: F403
from .bridge.netlink import NetTransport as NetTransport
from .bridge.netlink import load_key as load_key
from .bridge.netlink import write_key_file as write_key_file

"""Old import path of hobguard.bridge.netlink, kept for code outside this
project written against it (README, "Migration notes"); nothing here imports it."""

from .bridge.netlink import *  # noqa: F403
from .bridge.netlink import NetTransport as NetTransport
from .bridge.netlink import load_key as load_key
from .bridge.netlink import write_key_file as write_key_file

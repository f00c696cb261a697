"""Old import path of hobguard.bridge.config, kept for the demo and the
simulator's command line until they import the new one."""

from .bridge.config import *  # noqa: F403
from .bridge.config import parse_broker_url as parse_broker_url

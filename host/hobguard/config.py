"""Old import path of hobguard.bridge.config, kept for code outside this
project written against it (README, "Migration notes"); nothing here imports it."""

from .bridge.config import *  # noqa: F403
from .bridge.config import parse_broker_url as parse_broker_url

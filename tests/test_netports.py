"""Ports for simulated hobs on the loopback network come from below the
kernel's ephemeral range, so nothing else is handed them between the time
a simulator picks one and its simulated Wi-Fi joins (the firmware binds only
then): not a neighbour's port 0, not the local end of an outgoing
connection."""

from __future__ import annotations

import socket

from hobguard_sim import netports
from hobguard_sim.device import SimDevice


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range():
    ports = netports.free_ports("127.0.0.1", 16)
    assert len(set(ports)) == 16
    assert all(netports.FIRST <= p < netports._ephemeral_start() for p in ports)
    held = []
    try:
        for port in ports:
            sock = socket.socket()
            sock.bind(("127.0.0.1", port))  # raises if it was not free
            held.append(sock)
    finally:
        for sock in held:
            sock.close()


def test_a_port_in_use_is_never_offered():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        taken = busy.getsockname()[1]
        assert taken not in netports.free_ports("127.0.0.1", 64)
        # And one held below the range is skipped too.
        low = netports.free_ports("127.0.0.1")[0]
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", low))
            assert low not in netports.free_ports("127.0.0.1", 64)
    finally:
        busy.close()


def test_a_simulated_hob_asked_for_port_0_listens_below_the_range():
    dev = SimDevice(listen=("127.0.0.1", 0), key=bytes(range(32)))
    try:
        host, port = dev.listen or ("", 0)
        assert host == "127.0.0.1" and netports.FIRST <= port < netports._ephemeral_start()
    finally:
        dev.close()

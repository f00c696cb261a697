"""hobguard simulator: the physics of a hob (``hobguard_sim.physics``) and fakes of the
MicroPython modules the firmware touches, so the real firmware runs against a simulated hob."""

"""The user's tools around a hob: `hobguard deploy` and `hobguard flash`
(deploy.py), `hobguard settings` (settings.py), `hobguard keygen`
(keygen.py). They run on a desk, once, against a board or a file; the
service they prepare is hobguard.bridge.
"""

"""The Litestar web app: JSON API, server-rendered pages (zh-CN first), auth and scoping.

Reads the store and sends commands to workflows through the Temporal client; never writes
event state itself. May import store/, rules/ (for the category list), workflows (types, updates).
"""

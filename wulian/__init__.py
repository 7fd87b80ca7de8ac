"""Wulian (五联): shared pieces of the platform: settings, the CLI and the launcher.

May import any of the project's packages; none of them imports the CLI or the launcher.
"""

"""Processes beyond problem events, declared as data (:mod:`processes.definition`) and shipped in
``processes/data``."""

"""Deterministic orchestration: the EventLifecycle workflow, its state machine and its data types.

Imports only the standard library, temporalio.workflow and transitions; never store/, rules/,
activities/ or web/ (activities are called by name so that no I/O code enters the sandbox).
"""

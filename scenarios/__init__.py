"""Scenario scripts, written against the session verbs of
:mod:`simulator.load.sessions` (never raw frames). Each module has a docstring that
says what it exercises and a ``run(customer)`` function."""

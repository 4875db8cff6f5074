"""The web pages of the mock (package data, served by :mod:`simulator.mock.pages`)."""

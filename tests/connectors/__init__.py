"""Tests of the connectors, each against its real local node or server, or pure."""

"""Tests of the domain core, dsar/: one module per module of the package where they can be."""

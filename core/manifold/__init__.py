"""Manifold fingerprints (ManiFPT): nearest real samples, artifacts, attribution, structure."""

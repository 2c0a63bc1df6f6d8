"""Manifold fingerprints (ManiFPT): nearest real samples, artifacts, attribution, structure."""

from core.manifold.reports import FactorScores, LeaveOneOut, Prediction, StructureReport

__all__ = ["FactorScores", "LeaveOneOut", "Prediction", "StructureReport"]

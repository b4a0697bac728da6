"""Datasets, LightningDataModules and the joint layouts (skeleton.py)."""

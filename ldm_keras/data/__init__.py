"""Datasets: bundled, generated and downloaded, plus loaders for arrays and HDF5."""

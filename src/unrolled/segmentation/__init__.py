"""Segmentation: mean-field inference of the fully connected CRF and the unrolled CRF-RNN (review, box CRF-RNN)."""

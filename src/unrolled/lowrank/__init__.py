"""Low rank: convolutional robust PCA of ultrasound-like movies, the ISTA/FISTA solver and the unrolled CORONA net (review, box CORONA)."""

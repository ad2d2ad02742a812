"""NMF: sparse beta-divergence NMF by multiplicative updates and the deep unrolled NMF for speech enhancement (review, box Deep NMF)."""

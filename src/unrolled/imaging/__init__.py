"""Imaging: matrix-free linear operators, compressive MRI by ADMM and ADMM-CSNet, blind deblurring by HQS and DUBLID (review, boxes ADMM-CSNet and DUBLID)."""

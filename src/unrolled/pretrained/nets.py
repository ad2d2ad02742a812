"""Savable wrappers for pretrained models whose family class has no ``config()`` of its own.

:class:`FCNCRFRNN` is :class:`unrolled.segmentation.unary.UnaryCRF` (the unary FCN followed by CRF-RNN, review
Fig. 12) built from the two parts' JSON configs, so that :func:`unrolled.core.io.save_model` and
:func:`unrolled.core.io.load_model` can write and rebuild it (safetensors + JSON, no pickle). Its weights have the
names of ``UnaryCRF``'s (``unary.*``, ``crf.*``).
"""

from __future__ import annotations

from unrolled.core.io import register_model
from unrolled.segmentation.nets import CRFRNN
from unrolled.segmentation.unary import UnaryCRF, UnaryFCN

__all__ = ["FCNCRFRNN"]


@register_model
class FCNCRFRNN(UnaryCRF):
    """Unary FCN + CRF-RNN (review eqs. (19)-(20), Fig. 12), rebuilt from JSON configs.

    Parameters
    ----------
    unary : dict
        Keyword arguments of :class:`~unrolled.segmentation.unary.UnaryFCN` (its ``config()``).
    crf : dict
        Keyword arguments of :class:`~unrolled.segmentation.nets.CRFRNN` (its ``config()``).
    """

    def __init__(self, unary: dict, crf: dict):
        if not isinstance(unary, dict) or not isinstance(crf, dict):
            raise ValueError(f"unary and crf must be dicts of constructor arguments, got {type(unary).__name__} and "
                             f"{type(crf).__name__}")
        super().__init__(UnaryFCN(**unary), CRFRNN(**crf))

    def config(self) -> dict:
        return {"unary": self.unary.config(), "crf": self.crf.config()}

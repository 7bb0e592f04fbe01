"""The one training loop of jaxml (see :mod:`jaxml.train.loop`)."""

from jaxml.train.loop import NonFiniteLossError, TrainResult, TrainState, make_chunk, make_step, train, train_pure

__all__ = ["NonFiniteLossError", "TrainResult", "TrainState", "make_chunk", "make_step", "train", "train_pure"]

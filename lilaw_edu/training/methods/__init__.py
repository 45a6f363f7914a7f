"""LiLAW's relatives in the same harness (issue 11): Learning to Reweight (``l2rw``),
Meta-Weight-Net (``mwnet``) and confident learning (``confident``, with cleanlab).

Each module holds standalone functions of a model, an optimiser, a training batch and a
validation batch; :mod:`lilaw_edu.training.loop` only dispatches to them.
"""
